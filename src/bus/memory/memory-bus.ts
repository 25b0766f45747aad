import { subjectMatches } from '../subjects.js';
import type { Bus, BusHandler, Subscription } from '../types.js';

interface Sub {
  readonly pattern: string;
  readonly handler: BusHandler;
  readonly queue: { payload: unknown; subject: string }[];
  running: Promise<void> | undefined;
  closed: boolean;
}

/**
 * The in-process bus for the all-in-one server. Each subscription has its own queue drained one handler call at a
 * time, so a handler sees messages in publish order (the rules engine relies on per-device order) and a slow handler
 * never blocks the publisher. A handler's error is reported to `onError` and does not stop the subscription.
 */
export function createMemoryBus(opts: { onError?: (e: unknown, subject: string) => void } = {}): Bus {
  const subs = new Set<Sub>();
  const onError = opts.onError ?? (() => undefined);

  async function drain(sub: Sub): Promise<void> {
    while (sub.queue.length > 0 && !sub.closed) {
      const { payload, subject } = sub.queue.shift()!;
      try {
        await sub.handler(payload, subject);
      } catch (e) {
        onError(e, subject);
      }
    }
    sub.running = undefined;
  }

  return {
    async publish(subject, payload) {
      for (const sub of subs) {
        if (!subjectMatches(sub.pattern, subject)) continue;
        sub.queue.push({ payload, subject });
        // Handlers run on a later tick: publishing never runs subscriber code synchronously.
        sub.running ??= Promise.resolve().then(() => drain(sub));
      }
    },
    subscribe(pattern, handler): Subscription {
      const sub: Sub = { pattern, handler, queue: [], running: undefined, closed: false };
      subs.add(sub);
      return {
        async unsubscribe() {
          sub.closed = true;
          subs.delete(sub);
          sub.queue.length = 0;
          await sub.running;
        },
      };
    },
    async close() {
      const running = [...subs].map((s) => s.running);
      // Let queued messages finish: in-process subscribers are part of the same shutdown.
      await Promise.all(running);
      for (const s of subs) s.closed = true;
      subs.clear();
    },
  };
}
