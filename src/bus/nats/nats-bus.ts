import { jetstream, JetStreamApiCodes, JetStreamApiError, jetstreamManager, type ConsumerMessages, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { connect, RequestError, TimeoutError, type Msg } from '@nats-io/transport-node';
import { decodePayload, encodePayload } from '../codec.js';
import { assertDurableName, DEFAULT_MAX_DELIVER, DEFAULT_RETRY_DELAY_MS, type RedeliveryOptions } from '../durable.js';
import { BusNoResponderError, BusRemoteError, BusTimeoutError, describeRemoteError } from '../errors.js';
import type { Bus, BusErrorHandler, BusHandler, RequestHandler, Subscription } from '../types.js';
import { busSubject, consumerConfig, consumerName, createLayout, requestSubject, storedSubject, streamConfig, type Layout } from './layout.js';

export interface NatsBusOptions extends RedeliveryOptions {
  /** `nats://host:port` (user and password may go in the URL). */
  readonly url: string;
  readonly onError?: BusErrorHandler;
  /** First subject token and (upper-cased) stream name; lets installations or test runs share one server. Default `ccs`. */
  readonly prefix?: string;
  /** Partitions per durable name; every process of an installation must agree (see layout.ts). Default 16. */
  readonly partitions?: number;
  /** Stream retention. Default 7 days. */
  readonly maxAgeMs?: number;
  /** Stream size limit in bytes; -1 for none. Default -1. */
  readonly maxBytes?: number;
  /** How long a delivered message may go unacknowledged before the server redelivers it (worker presumed dead). */
  readonly ackWaitMs?: number;
}

const DAY_MS = 24 * 3600_000;

interface Active {
  stop(): Promise<void>;
}

/**
 * The NATS JetStream bus for scale-out. `publish` resolves once the stream has stored the message. A durable
 * subscription is a set of pull consumers, one per partition (layout.ts explains why), acked after the handler
 * resolves, nak'd with `retryDelayMs` when it throws, terminated and reported on the `maxDeliver`-th failure. A
 * plain subscription is a core NATS subscription on the stream's subjects: at most once, nothing kept while away,
 * which is what "not durable" means. Request/reply is core NATS request/reply on subjects outside the stream
 * (layout.ts `requestSubject`), responders in a queue group so that each request reaches one of them; the server
 * answers "no responders" at once when nobody is subscribed, which is how a requester learns that a process is gone.
 */
export async function createNatsBus(opts: NatsBusOptions): Promise<Bus> {
  const layout = createLayout(opts.prefix ?? 'ccs', opts.partitions ?? 16);
  const onError = opts.onError ?? (() => undefined);
  const retryDelayMs = opts.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  const maxDeliver = opts.maxDeliver ?? DEFAULT_MAX_DELIVER;
  const ackWaitMs = opts.ackWaitMs ?? 30_000;

  // Reconnect forever: a NATS restart must not end a long-running server's bus.
  const nc = await connect({ servers: opts.url, name: `ccs-${layout.prefix}`, maxReconnectAttempts: -1 });
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc);
    await ensureStream(jsm, layout, { maxAgeMs: opts.maxAgeMs ?? 7 * DAY_MS, maxBytes: opts.maxBytes ?? -1 });
  } catch (e) {
    await nc.close();
    throw e;
  }
  const js = jetstream(nc);
  const subs = new Set<Active>();
  /** Subscriptions still being set up: a publish through this bus waits for them, as the port promises. */
  const pending = new Set<Promise<void>>();
  let closing: Promise<void> | undefined;
  const connectionListeners = new Set<(change: 'disconnected' | 'reconnected') => void>();
  void (async () => {
    for await (const s of nc.status()) {
      const change = s.type === 'disconnect' ? 'disconnected' : s.type === 'reconnect' ? 'reconnected' : undefined;
      if (change) for (const l of connectionListeners) l(change);
    }
  })().catch((e: unknown) => onError(e, 'connection'));

  function track(pattern: string, sub: Active, ready: Promise<void>): Subscription {
    subs.add(sub);
    const settled = ready.catch(() => undefined);
    pending.add(settled);
    void settled.then(() => pending.delete(settled));
    // An unobserved failure still reaches onError; callers that await `ready` see it too.
    ready.catch((e: unknown) => onError(e, pattern));
    return {
      ready,
      async unsubscribe() {
        subs.delete(sub);
        await sub.stop();
      },
    };
  }

  function subscribePlain(pattern: string, handler: BusHandler): Subscription {
    let closed = false;
    const sub = nc.subscribe(`${layout.prefix}.*.${pattern}`);
    // The iterator yields one message at a time: publish order, one handler call at a time.
    const loop = (async () => {
      for await (const m of sub) {
        if (closed) break;
        const subject = busSubject(m.subject);
        try {
          await handler(decodePayload(m.data), subject);
        } catch (e) {
          onError(e, subject);
        }
      }
    })();
    return track(
      pattern,
      {
        async stop() {
          closed = true;
          sub.unsubscribe();
          await loop;
        },
      },
      // The SUB is on the wire before any later PUB of this connection; flushing makes it so for other connections.
      nc.flush(),
    );
  }

  async function handle(m: JsMsg, handler: BusHandler): Promise<void> {
    const subject = busSubject(m.subject);
    let payload: unknown;
    try {
      payload = decodePayload(m.data);
    } catch (e) {
      // Undecodable bytes will never decode: drop instead of retrying.
      onError(e, subject);
      // No reason text: nats-server 2.9 only recognises a bare `+TERM` and would leave the message pending.
      m.term();
      return;
    }
    // A slow handler is not a dead worker: keep the message ours instead of letting ack_wait hand it to another.
    const keepAlive = setInterval(() => m.working(), Math.max(1000, ackWaitMs / 3));
    try {
      await handler(payload, subject);
      m.ack();
    } catch (e) {
      if (m.info.deliveryCount >= maxDeliver) {
        onError(e, subject);
        m.term();
      } else {
        m.nak(retryDelayMs);
      }
    } finally {
      clearInterval(keepAlive);
    }
  }

  function subscribeDurable(pattern: string, handler: BusHandler, durable: string): Subscription {
    assertDurableName(durable);
    let closed = false;
    const feeds: ConsumerMessages[] = [];
    const loops: Promise<void>[] = [];
    const ready = (async () => {
      const partitions = [...Array(layout.partitions).keys()];
      await Promise.all(partitions.map((p) => jsm.consumers.add(layout.stream, consumerConfig(layout, durable, p, pattern, { ackWaitMs, maxDeliver }))));
      for (const p of partitions) {
        if (closed) return;
        const consumer = await js.consumers.get(layout.stream, consumerName(durable, p));
        const feed = await consumer.consume({ max_messages: 64 });
        feeds.push(feed);
        loops.push(
          (async () => {
            for await (const m of feed) {
              // Stopping: hand a message we will not handle back at once, rather than holding its partition until
              // ack_wait runs out.
              if (closed) m.nak();
              else await handle(m, handler);
            }
            // The feed only ends by itself when the consumer or stream is gone: say so rather than go quiet.
            if (!closed) onError(new Error(`NATS consumer ${consumerName(durable, p)} stopped delivering`), pattern);
          })(),
        );
      }
    })();
    return track(
      pattern,
      {
        async stop() {
          closed = true;
          await ready.catch(() => undefined);
          await Promise.all(feeds.map((f) => f.close()));
          await Promise.all(loops);
        },
      },
      ready,
    );
  }

  function respond(subject: string, handler: RequestHandler): Subscription {
    assertConcrete(subject);
    let stopped = false;
    const calls = new Set<Promise<void>>();
    const sub = nc.subscribe(requestSubject(layout, subject), { queue: 'responders' });
    const answer = async (m: Msg): Promise<void> => {
      let reply: Uint8Array;
      try {
        reply = encodePayload({ r: await handler(decodePayload(m.data), subject) });
      } catch (e) {
        reply = encodePayload({ e: describeRemoteError(e) });
      }
      try {
        m.respond(reply);
      } catch (e) {
        // The connection closed meanwhile: the requester times out, as it would if this process had died.
        onError(e, subject);
      }
    };
    // Unlike a subscription's handler, requests are answered concurrently: one may wait minutes for a device.
    const loop = (async () => {
      for await (const m of sub) {
        if (stopped) break;
        const call = answer(m);
        calls.add(call);
        void call.finally(() => calls.delete(call));
      }
    })();
    return track(
      subject,
      {
        async stop() {
          stopped = true;
          sub.unsubscribe();
          await loop;
          await Promise.allSettled([...calls]);
        },
      },
      nc.flush(),
    );
  }

  return {
    async request(subject, payload, { timeoutMs }) {
      assertConcrete(subject);
      if (pending.size > 0) await Promise.all(pending);
      let m: Msg;
      try {
        m = await nc.request(requestSubject(layout, subject), encodePayload(payload), { timeout: timeoutMs });
      } catch (e) {
        if (e instanceof RequestError && e.isNoResponders()) throw new BusNoResponderError(subject);
        if (e instanceof TimeoutError) throw new BusTimeoutError(subject, timeoutMs);
        throw e;
      }
      const envelope = decodePayload(m.data) as { r?: unknown; e?: { message: string; code?: string } } | undefined;
      if (envelope?.e) throw new BusRemoteError(subject, envelope.e.message, envelope.e.code);
      return envelope?.r;
    },
    respond,
    onConnection(listener) {
      connectionListeners.add(listener);
      return () => void connectionListeners.delete(listener);
    },
    async publish(subject, payload, options = {}) {
      assertConcrete(subject);
      if (pending.size > 0) await Promise.all(pending);
      await js.publish(storedSubject(layout, subject), encodePayload(payload), options.id === undefined ? undefined : { msgID: options.id });
    },
    subscribe(pattern, handler, options = {}) {
      return options.durable === undefined ? subscribePlain(pattern, handler) : subscribeDurable(pattern, handler, options.durable);
    },
    close() {
      closing ??= (async () => {
        const all = [...subs];
        subs.clear();
        await Promise.all(all.map((s) => s.stop()));
        // Drain: publishes in flight are flushed before the connection closes.
        await nc.drain();
      })();
      return closing;
    },
  };
}

function assertConcrete(subject: string): void {
  if (subject === '' || /[*>\s]/.test(subject) || subject.split('.').includes('')) throw new TypeError(`Bus subject must be concrete, got '${subject}'`);
}

async function ensureStream(jsm: JetStreamManager, layout: Layout, limits: { maxAgeMs: number; maxBytes: number }): Promise<void> {
  const config = streamConfig(layout, limits);
  try {
    await jsm.streams.info(layout.stream);
  } catch (e) {
    if (e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamNotFound) {
      await jsm.streams.add(config);
      return;
    }
    throw e;
  }
  // Existing stream: bring the limits we own up to date (storage and retention cannot change in place).
  const { name, storage: _storage, retention: _retention, ...update } = config;
  await jsm.streams.update(name, update);
}
