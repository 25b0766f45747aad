import { assertDurableName, DEFAULT_MAX_DELIVER, DEFAULT_RETRY_DELAY_MS, type RedeliveryOptions } from '../durable.js';
import { subjectMatches } from '../subjects.js';
import type { Bus, BusErrorHandler, BusHandler, Subscription } from '../types.js';

interface Queued {
  readonly payload: unknown;
  readonly subject: string;
}

/** A plain subscription, or the members of one durable name: either way one queue drained one call at a time. */
interface Sub {
  readonly pattern: string;
  readonly durable: string | undefined;
  /** One handler for a plain subscription; the durable name's current members, taking turns, for a durable one. */
  readonly handlers: BusHandler[];
  readonly queue: Queued[];
  next: number;
  /** The handler call in progress, so that a member leaving waits for its own call only. */
  active: { readonly handler: BusHandler; readonly call: Promise<void> } | undefined;
  running: Promise<void> | undefined;
  closed: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The in-process bus for the all-in-one server. Each subscription has its own queue drained one handler call at a
 * time, so a handler sees messages in publish order (the rules engine relies on per-device order) and a slow handler
 * never blocks the publisher. A plain subscription's handler error is reported to `onError` and does not stop it.
 *
 * Durable subscriptions (`{ durable }`), honestly: this bus has no storage of its own. Messages published while no
 * subscriber of a durable name exists are not kept — in the all-in-one server the durable record is the hub's
 * telemetry log in the store, which the pipeline reads back after a restart. What it does give: subscribers with one
 * durable name form a group with one queue; they take turns, one call at a time for the whole group (so every
 * subject's order holds), and a handler that throws gets the same message again after `retryDelayMs`, up to
 * `maxDeliver` deliveries, before the error is reported and the message dropped. The queue waits meanwhile: later
 * messages of the group never overtake a message being retried.
 */
export function createMemoryBus(opts: { onError?: BusErrorHandler } & RedeliveryOptions = {}): Bus {
  const subs = new Set<Sub>();
  const groups = new Map<string, Sub>();
  const onError = opts.onError ?? (() => undefined);
  const retryDelayMs = opts.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  const maxDeliver = opts.maxDeliver ?? DEFAULT_MAX_DELIVER;

  async function deliver(sub: Sub, { payload, subject }: Queued): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const handler = sub.handlers[sub.next++ % sub.handlers.length];
      if (!handler || sub.closed) return;
      const call = (async () => handler(payload, subject))();
      sub.active = { handler, call };
      try {
        await call;
        return;
      } catch (e) {
        if (sub.durable === undefined || attempt >= maxDeliver) {
          onError(e, subject);
          return;
        }
      } finally {
        sub.active = undefined;
      }
      await sleep(retryDelayMs);
    }
  }

  async function drain(sub: Sub): Promise<void> {
    while (sub.queue.length > 0 && !sub.closed) await deliver(sub, sub.queue.shift()!);
    sub.running = undefined;
  }

  function remove(sub: Sub): void {
    sub.closed = true;
    sub.queue.length = 0;
    subs.delete(sub);
    if (sub.durable !== undefined) groups.delete(sub.durable);
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
    subscribe(pattern, handler, options = {}): Subscription {
      const { durable } = options;
      let sub: Sub;
      if (durable === undefined) {
        sub = { pattern, durable, handlers: [handler], queue: [], next: 0, active: undefined, running: undefined, closed: false };
        subs.add(sub);
      } else {
        assertDurableName(durable);
        const group = groups.get(durable);
        if (group && group.pattern !== pattern) {
          // The same rule as a JetStream consumer: one durable name, one filter.
          throw new TypeError(`Bus durable '${durable}' is subscribed to '${group.pattern}', not '${pattern}'`);
        }
        sub = group ?? { pattern, durable, handlers: [], queue: [], next: 0, active: undefined, running: undefined, closed: false };
        sub.handlers.push(handler);
        groups.set(durable, sub);
        subs.add(sub);
      }
      return {
        ready: Promise.resolve(),
        async unsubscribe() {
          const active = sub.active?.handler === handler ? sub.active.call : undefined;
          const i = sub.handlers.indexOf(handler);
          if (i >= 0) sub.handlers.splice(i, 1);
          // The last member of a durable name leaves: with no storage here, its queue goes with it.
          if (sub.handlers.length === 0) remove(sub);
          await active?.catch(() => undefined);
        },
      };
    },
    async close() {
      // Let queued messages finish: in-process subscribers are part of the same shutdown.
      await Promise.all([...subs].map((s) => s.running));
      for (const s of [...subs]) remove(s);
    },
  };
}
