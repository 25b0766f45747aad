import { randomUUID } from 'node:crypto';
import { CcsError } from '../errors/index.js';
import type { Row, Store } from '../store/types.js';
import { C2D_TABLE } from './tables.js';
import { and, compare, eq, isNull, or } from '../store/index.js';
import type { C2dMessage, DeviceChannel, HubMessage } from './types.js';

/** Outcome of a message that leaves the queue (IoT Hub's feedback status). */
export type C2dOutcome = 'completed' | 'expired' | 'rejected' | 'deliveryCountExceeded';

// Limits from iot-hub-devguide-quotas-throttling.md and iot-hub-devguide-messages-c2d.md.
export const C2D_MAX_PENDING = 50;
export const C2D_MAX_BYTES = 64 * 1024;
export const C2D_DEFAULT_TTL_MS = 60 * 60 * 1000;
export const C2D_MAX_TTL_MS = 2 * 24 * 60 * 60 * 1000;
export const C2D_MAX_DELIVERY_COUNT = 100;
/** How long a received (HTTPS) or in-flight (MQTT) message stays invisible to other receivers. */
export const C2D_LOCK_MS = 60_000;

/**
 * Property names and values a C2D message may carry: ASCII letters and digits plus ``! # $ % & ' * + - . ^ _ ` | ~``
 * (iot-hub-devguide-messages-construct.md, "Message properties").
 */
const PROPERTY_CHARS = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]*$/;

export interface C2dQueueOptions {
  readonly store: Store;
  readonly clock: () => number;
  readonly onOutcome: (deviceId: string, messageId: string, outcome: C2dOutcome) => void;
  readonly maxPending?: number;
  readonly lockMs?: number;
  readonly maxDeliveryCount?: number;
}

export interface C2dQueue {
  enqueue(deviceId: string, message: HubMessage & { ttlSeconds?: number }): Promise<C2dMessage>;
  /** Locks and returns the oldest deliverable message, counting a delivery; undefined when there is none. */
  next(deviceId: string): Promise<C2dMessage | undefined>;
  settle(deviceId: string, lockToken: string, outcome: 'complete' | 'reject' | 'abandon'): Promise<void>;
  /** Removes expired messages (all devices when `deviceId` is absent), reporting each as `expired`. */
  purgeExpired(deviceId?: string): Promise<number>;
  pending(deviceId: string): Promise<number>;
}

function toMessage(r: Row): C2dMessage {
  const opt = (k: string) => (r[k] === null || r[k] === undefined ? undefined : String(r[k]));
  return {
    messageId: String(r['messageid']),
    lockToken: opt('locktoken') ?? '',
    enqueuedTime: Number(r['enqueuedtime']),
    deliveryCount: Number(r['deliverycount']),
    body: Buffer.from(String(r['body']), 'base64'),
    properties: JSON.parse(String(r['properties'])) as Record<string, string>,
    expiryTime: Number(r['expirytime']),
    ...(opt('correlationid') !== undefined ? { correlationId: opt('correlationid') } : {}),
    ...(opt('userid') !== undefined ? { userId: opt('userid') } : {}),
    ...(opt('contenttype') !== undefined ? { contentType: opt('contenttype') } : {}),
    ...(opt('contentencoding') !== undefined ? { contentEncoding: opt('contentencoding') } : {}),
  };
}

/**
 * The durable per-device cloud-to-device queue (iot-hub-devguide-messages-c2d.md): at most 50 pending messages per
 * device, each with an expiry, delivered oldest first, locked while a device holds it, completed, rejected or
 * abandoned, dead-lettered after 100 deliveries.
 */
export function createC2dQueue(opts: C2dQueueOptions): C2dQueue {
  const { store, clock } = opts;
  const maxPending = opts.maxPending ?? C2D_MAX_PENDING;
  const lockMs = opts.lockMs ?? C2D_LOCK_MS;
  const maxDeliveryCount = opts.maxDeliveryCount ?? C2D_MAX_DELIVERY_COUNT;
  let lastSeq = 0;
  /** Enqueues per device run one at a time on this node, so the 50-message check is exact here. */
  const enqueueChains = new Map<string, Promise<unknown>>();

  function nextSeq(): number {
    // Time-based so that order holds across restarts; microsecond-scaled to stay unique within a millisecond.
    lastSeq = Math.max(clock() * 1000, lastSeq + 1);
    return lastSeq;
  }

  async function purgeExpired(deviceId?: string): Promise<number> {
    const now = clock();
    const expired = compare('expirytime', 'le', now);
    const rows = await store.select({
      table: C2D_TABLE.name, columns: ['id', 'deviceid', 'messageid'], where: deviceId === undefined ? expired : and(eq('deviceid', deviceId), expired),
    });
    let n = 0;
    for (const r of rows) {
      if ((await store.delete(C2D_TABLE.name, eq('id', r['id']!))) === 1) {
        n++;
        opts.onOutcome(String(r['deviceid']), String(r['messageid']), 'expired');
      }
    }
    return n;
  }

  async function pending(deviceId: string): Promise<number> {
    return store.count({ table: C2D_TABLE.name, where: and(eq('deviceid', deviceId), compare('expirytime', 'gt', clock())) });
  }

  function validate(message: HubMessage & { ttlSeconds?: number }): void {
    if (!Buffer.isBuffer(message.body)) throw new CcsError('ArgumentInvalid', 'The message body must be bytes.');
    let size = message.body.length;
    for (const [k, v] of Object.entries(message.properties ?? {})) {
      if (typeof v !== 'string' || !PROPERTY_CHARS.test(k) || !PROPERTY_CHARS.test(v) || k === '') {
        throw new CcsError('ArgumentInvalid', `Message property '${k}': names and values may hold only ASCII letters, digits and !#$%&'*+-.^_\`|~.`);
      }
      size += k.length + v.length;
    }
    if (size > C2D_MAX_BYTES) throw new CcsError('MessageTooLarge', `Cloud-to-device message is ${size} bytes; the limit is ${C2D_MAX_BYTES}.`);
    if (message.ttlSeconds !== undefined && (!Number.isFinite(message.ttlSeconds) || message.ttlSeconds <= 0)) {
      throw new CcsError('ArgumentInvalid', 'ttlSeconds must be a positive number.');
    }
  }

  async function enqueueNow(deviceId: string, message: HubMessage & { ttlSeconds?: number }): Promise<C2dMessage> {
    const now = clock();
    await purgeExpired(deviceId);
    if ((await pending(deviceId)) >= maxPending) {
      throw new CcsError('DeviceMaximumQueueDepthExceeded', `Device '${deviceId}' already has ${maxPending} cloud-to-device messages pending.`);
    }
    // TTL: the message's own expiry or ttl, else the hub default (1 hour), never beyond 2 days.
    const ttl = message.expiryTime !== undefined ? message.expiryTime - now : message.ttlSeconds !== undefined ? message.ttlSeconds * 1000 : C2D_DEFAULT_TTL_MS;
    const expiry = now + Math.min(Math.max(ttl, 1), C2D_MAX_TTL_MS);
    const row: Row = {
      id: randomUUID(),
      deviceid: deviceId,
      seq: nextSeq(),
      messageid: message.messageId ?? randomUUID(),
      correlationid: message.correlationId ?? null,
      userid: message.userId ?? null,
      contenttype: message.contentType ?? null,
      contentencoding: message.contentEncoding ?? null,
      properties: JSON.stringify(message.properties ?? {}),
      body: message.body.toString('base64'),
      enqueuedtime: now,
      expirytime: expiry,
      deliverycount: 0,
      locktoken: null,
      lockeduntil: null,
    };
    await store.insert(C2D_TABLE.name, row);
    return toMessage(row);
  }

  return {
    enqueue(deviceId, message) {
      validate(message);
      const prev = enqueueChains.get(deviceId) ?? Promise.resolve();
      const run = prev.then(() => enqueueNow(deviceId, message), () => enqueueNow(deviceId, message));
      enqueueChains.set(deviceId, run);
      const cleanup = () => {
        if (enqueueChains.get(deviceId) === run) enqueueChains.delete(deviceId);
      };
      run.then(cleanup, cleanup);
      return run;
    },

    async next(deviceId) {
      // Expired messages go first, so they are reported now rather than when the queue runs dry.
      await purgeExpired(deviceId);
      for (let attempt = 0; attempt < 100; attempt++) {
        const now = clock();
        const r = (await store.select({
          table: C2D_TABLE.name,
          where: and(eq('deviceid', deviceId), compare('expirytime', 'gt', now), or(isNull('lockeduntil'), compare('lockeduntil', 'le', now))),
          orderBy: [{ column: 'seq' }],
          limit: 1,
        }))[0];
        if (!r) return undefined;
        const count = Number(r['deliverycount']);
        if (count >= maxDeliveryCount) {
          if ((await store.delete(C2D_TABLE.name, and(eq('id', r['id']!), eq('deliverycount', count)))) === 1) {
            opts.onOutcome(deviceId, String(r['messageid']), 'deliveryCountExceeded');
          }
          continue;
        }
        const lock: Row = { locktoken: randomUUID(), lockeduntil: now + lockMs, deliverycount: count + 1 };
        // Compare-and-set on the delivery count read above: another receiver that locked it first wins.
        const n = await store.update(C2D_TABLE.name, lock, and(eq('id', r['id']!), eq('deliverycount', count)));
        if (n === 1) return toMessage({ ...r, ...lock });
      }
      return undefined;
    },

    async settle(deviceId, lockToken, outcome) {
      const now = clock();
      const where = and(eq('deviceid', deviceId), eq('locktoken', lockToken), compare('lockeduntil', 'gt', now));
      const r = (await store.select({ table: C2D_TABLE.name, columns: ['id', 'messageid'], where, limit: 1 }))[0];
      const lost = () => new CcsError('DeviceMessageLockLost', `The lock '${lockToken}' of a message for '${deviceId}' is unknown or has expired.`);
      if (!r) throw lost();
      const byLock = and(eq('id', r['id']!), eq('locktoken', lockToken));
      if (outcome === 'abandon') {
        if ((await store.update(C2D_TABLE.name, { locktoken: null, lockeduntil: null }, byLock)) === 0) throw lost();
        return;
      }
      if ((await store.delete(C2D_TABLE.name, byLock)) === 0) throw lost();
      opts.onOutcome(deviceId, String(r['messageid']), outcome === 'complete' ? 'completed' : 'rejected');
    },

    purgeExpired,
    pending,
  };
}

/**
 * Pushes queued messages to the connection that holds a device, one at a time and in order: the next message goes
 * only once the device has acknowledged the previous one (PUBACK completes it; MQTT has no reject or abandon,
 * reference/iot-hub.md §1.6). A failed or unacknowledged delivery leaves the message queued for a later attempt.
 */
export function createC2dDispatcher(opts: {
  readonly queue: C2dQueue;
  readonly channelOf: (deviceId: string) => DeviceChannel | undefined;
  readonly onError: (e: unknown, deviceId: string) => void;
  /** Wait before retrying after a failed delivery. */
  readonly retryMs?: number;
  /** Longest wait for the device's acknowledgement. */
  readonly ackTimeoutMs?: number;
}): {
  kick(deviceId: string): void;
  /** The channel went away: a delivery waiting on its acknowledgement fails now, leaving the message queued. */
  abandon(channel: DeviceChannel): void;
  idle(): Promise<void>;
  close(): void;
} {
  const retryMs = opts.retryMs ?? 5_000;
  const ackTimeoutMs = opts.ackTimeoutMs ?? C2D_LOCK_MS;
  const running = new Map<string, Promise<void>>();
  const again = new Set<string>();
  const retries = new Map<string, NodeJS.Timeout>();
  const inFlight = new Map<DeviceChannel, (e: Error) => void>();
  let closed = false;

  async function deliver(channel: DeviceChannel, message: C2dMessage): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        channel.deliverC2d(message),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('no acknowledgement from the device')), ackTimeoutMs);
          inFlight.set(channel, reject);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      inFlight.delete(channel);
    }
  }

  async function run(deviceId: string): Promise<void> {
    for (;;) {
      const channel = opts.channelOf(deviceId);
      if (!channel || closed) return;
      const message = await opts.queue.next(deviceId);
      if (!message) return;
      try {
        await deliver(channel, message);
      } catch {
        await opts.queue.settle(deviceId, message.lockToken, 'abandon').catch(() => undefined);
        scheduleRetry(deviceId);
        return;
      }
      // The PUBACK completes the message; a lost lock (it expired meanwhile) only means it was delivered twice.
      await opts.queue.settle(deviceId, message.lockToken, 'complete').catch((e: unknown) => opts.onError(e, deviceId));
    }
  }

  function scheduleRetry(deviceId: string): void {
    if (closed || retries.has(deviceId)) return;
    const t = setTimeout(() => {
      retries.delete(deviceId);
      kick(deviceId);
    }, retryMs);
    t.unref();
    retries.set(deviceId, t);
  }

  function kick(deviceId: string): void {
    if (closed) return;
    if (running.has(deviceId)) {
      again.add(deviceId);
      return;
    }
    const p = run(deviceId)
      .catch((e: unknown) => {
        opts.onError(e, deviceId);
        scheduleRetry(deviceId);
      })
      .finally(() => {
        running.delete(deviceId);
        if (again.delete(deviceId)) kick(deviceId);
      });
    running.set(deviceId, p);
  }

  return {
    kick,
    abandon(channel) {
      inFlight.get(channel)?.(new Error('the connection closed before acknowledging'));
    },
    async idle() {
      while (running.size > 0) await Promise.all(running.values());
    },
    close() {
      closed = true;
      for (const abort of inFlight.values()) abort(new Error('the hub is shutting down'));
      for (const t of retries.values()) clearTimeout(t);
      retries.clear();
    },
  };
}
