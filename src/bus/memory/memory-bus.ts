import { assertDurableName, DEFAULT_MAX_DELIVER, DEFAULT_RETRY_DELAY_MS, type RedeliveryOptions } from '../durable.js';
import { BusNoResponderError, BusRemoteError, BusTimeoutError, describeRemoteError } from '../errors.js';
import { subjectMatches } from '../subjects.js';
import type { Bus, BusErrorHandler, BusHandler, RequestHandler, Subscription } from '../types.js';

interface Queued {
  readonly payload: unknown;
  readonly subject: string;
}

/** A handler with the error handler of the connection that subscribed it. */
interface Member {
  readonly handler: BusHandler;
  readonly onError: BusErrorHandler;
  /** The connection that subscribed it. */
  readonly owner: object;
}

/** A plain subscription, or the members of one durable name: either way one queue drained one call at a time. */
interface Sub {
  readonly pattern: string;
  readonly durable: string | undefined;
  /** One handler for a plain subscription; the durable name's current members, taking turns, for a durable one. */
  readonly members: Member[];
  readonly queue: Queued[];
  next: number;
  /** The handler call in progress, so that a member leaving waits for its own call only. */
  active: { readonly member: Member; readonly call: Promise<void> } | undefined;
  running: Promise<void> | undefined;
  closed: boolean;
}

interface Responder {
  readonly handler: RequestHandler;
  /** Calls in progress, so that leaving waits for them. */
  readonly calls: Set<Promise<unknown>>;
  stopped: boolean;
}

/** What the connections of one network share: subscriptions, durable groups and responders. */
interface Broker {
  readonly subs: Set<Sub>;
  readonly groups: Map<string, Sub>;
  readonly responders: Map<string, Responder[]>;
  /** Round robin over a subject's responders. */
  readonly turns: Map<string, number>;
  readonly retryDelayMs: number;
  readonly maxDeliver: number;
}

/**
 * Several in-process bus connections sharing one set of subscriptions, as processes share a NATS server: what one
 * connection publishes or requests reaches the others' subscribers and responders, and closing a connection removes
 * only its own (so a test can stop one "node" abruptly and see the others notice). Nothing is stored.
 */
export interface MemoryBusNetwork {
  connect(opts?: { onError?: BusErrorHandler }): Bus;
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
 *
 * Request/reply passes payloads by reference, like publish; handler calls run concurrently.
 */
export function createMemoryBus(opts: { onError?: BusErrorHandler } & RedeliveryOptions = {}): Bus {
  return createMemoryBusNetwork(opts).connect(opts);
}

export function createMemoryBusNetwork(opts: RedeliveryOptions = {}): MemoryBusNetwork {
  const broker: Broker = {
    subs: new Set(),
    groups: new Map(),
    responders: new Map(),
    turns: new Map(),
    retryDelayMs: opts.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS,
    maxDeliver: opts.maxDeliver ?? DEFAULT_MAX_DELIVER,
  };
  return { connect: (c = {}) => connectTo(broker, c.onError ?? (() => undefined)) };
}

async function deliver(broker: Broker, sub: Sub, { payload, subject }: Queued): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const member = sub.members[sub.next++ % sub.members.length];
    if (!member || sub.closed) return;
    const call = (async () => member.handler(payload, subject))();
    sub.active = { member, call };
    try {
      await call;
      return;
    } catch (e) {
      if (sub.durable === undefined || attempt >= broker.maxDeliver) {
        member.onError(e, subject);
        return;
      }
    } finally {
      sub.active = undefined;
    }
    await sleep(broker.retryDelayMs);
  }
}

async function drain(broker: Broker, sub: Sub): Promise<void> {
  while (sub.queue.length > 0 && !sub.closed) await deliver(broker, sub, sub.queue.shift()!);
  sub.running = undefined;
}

function removeSub(broker: Broker, sub: Sub): void {
  sub.closed = true;
  sub.queue.length = 0;
  broker.subs.delete(sub);
  if (sub.durable !== undefined) broker.groups.delete(sub.durable);
}

function assertConcrete(subject: string): void {
  if (subject === '' || /[*>\s]/.test(subject) || subject.split('.').includes('')) throw new TypeError(`Bus subject must be concrete, got '${subject}'`);
}

function connectTo(broker: Broker, onError: BusErrorHandler): Bus {
  /** This connection's subscriptions and responders, removed by `close()`. */
  const own = new Set<Subscription & { readonly sub?: Sub }>();
  const self = {};
  let closed = false;

  function assertOpen(): void {
    if (closed) throw new Error('The bus connection is closed.');
  }

  return {
    async publish(subject, payload) {
      assertOpen();
      for (const sub of broker.subs) {
        if (!subjectMatches(sub.pattern, subject)) continue;
        sub.queue.push({ payload, subject });
        // Handlers run on a later tick: publishing never runs subscriber code synchronously.
        sub.running ??= Promise.resolve().then(() => drain(broker, sub));
      }
    },

    subscribe(pattern, handler, options = {}): Subscription {
      assertOpen();
      const { durable } = options;
      const member: Member = { handler, onError, owner: self };
      let sub: Sub;
      if (durable === undefined) {
        sub = { pattern, durable, members: [member], queue: [], next: 0, active: undefined, running: undefined, closed: false };
        broker.subs.add(sub);
      } else {
        assertDurableName(durable);
        const group = broker.groups.get(durable);
        if (group && group.pattern !== pattern) {
          // The same rule as a JetStream consumer: one durable name, one filter.
          throw new TypeError(`Bus durable '${durable}' is subscribed to '${group.pattern}', not '${pattern}'`);
        }
        sub = group ?? { pattern, durable, members: [], queue: [], next: 0, active: undefined, running: undefined, closed: false };
        sub.members.push(member);
        broker.groups.set(durable, sub);
        broker.subs.add(sub);
      }
      const subscription = {
        ready: Promise.resolve(),
        sub,
        async unsubscribe() {
          own.delete(subscription);
          const active = sub.active?.member === member ? sub.active.call : undefined;
          const i = sub.members.indexOf(member);
          if (i >= 0) sub.members.splice(i, 1);
          // The last member of a durable name leaves: with no storage here, its queue goes with it.
          if (sub.members.length === 0) removeSub(broker, sub);
          await active?.catch(() => undefined);
        },
      };
      own.add(subscription);
      return subscription;
    },

    async request(subject, payload, { timeoutMs }) {
      assertOpen();
      assertConcrete(subject);
      const list = broker.responders.get(subject) ?? [];
      if (list.length === 0) {
        await Promise.resolve(); // answered asynchronously, as over the network
        throw new BusNoResponderError(subject);
      }
      const turn = broker.turns.get(subject) ?? 0;
      broker.turns.set(subject, turn + 1);
      const responder = list[turn % list.length]!;
      // The handler runs on a later tick, as it would in another process.
      const call = Promise.resolve().then(() => responder.handler(payload, subject));
      responder.calls.add(call);
      const forget = () => void responder.calls.delete(call);
      call.then(forget, forget);
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          call.catch((e: unknown) => {
            const d = describeRemoteError(e);
            throw new BusRemoteError(subject, d.message, d.code);
          }),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new BusTimeoutError(subject, timeoutMs)), timeoutMs);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    },

    respond(subject, handler): Subscription {
      assertOpen();
      assertConcrete(subject);
      const responder: Responder = { handler, calls: new Set(), stopped: false };
      const list = broker.responders.get(subject) ?? [];
      list.push(responder);
      broker.responders.set(subject, list);
      const subscription: Subscription = {
        ready: Promise.resolve(),
        async unsubscribe() {
          own.delete(subscription);
          if (!responder.stopped) {
            responder.stopped = true;
            const current = broker.responders.get(subject) ?? [];
            const i = current.indexOf(responder);
            if (i >= 0) current.splice(i, 1);
            if (current.length === 0) broker.responders.delete(subject);
          }
          await Promise.allSettled([...responder.calls]);
        },
      };
      own.add(subscription);
      return subscription;
    },

    async close() {
      if (closed) return;
      closed = true;
      // Let queued messages finish: in-process subscribers are part of the same shutdown. A durable group that other
      // connections also serve carries on without waiting.
      await Promise.all([...own].map((s) => (s.sub?.members.every((m) => m.owner === self) ? s.sub.running : undefined)));
      await Promise.all([...own].map((s) => s.unsubscribe()));
    },
  };
}
