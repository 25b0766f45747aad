import { isUtf8 } from 'node:buffer';
import { CcsError, DuplicateKeyError } from '../errors/index.js';
import type { Condition, JsonNumbersBucket, Queryable, Row, Store } from '../store/types.js';
import { COUNTER_TABLE, TELEMETRY_TABLE } from './tables.js';
import { and, compare, eq } from '../store/index.js';
import type { HubMessage, TelemetryRecord } from './types.js';

/** Device-to-cloud message limit (iot-hub-devguide-quotas-throttling.md): 256 KB, body and properties together. */
export const D2C_MAX_BYTES = 256 * 1024;

export interface TelemetryLogOptions {
  readonly store: Store;
  readonly clock: () => number;
  /** Largest group written in one transaction. */
  readonly maxBatch?: number;
  /** How long the first message of an idle period waits for company before its group is written. */
  readonly lingerMs?: number;
  /**
   * Groups written at once. More than one keeps a networked engine busy while a group waits on round trips; groups
   * still complete (resolve and reach the bus) in sequence order.
   */
  readonly concurrency?: number;
  /** Sequence numbers reserved per trip to the counter row. */
  readonly sequenceBlock?: number;
  /** Called with each committed group, in order, before its appends resolve (hand-off to the bus). */
  readonly onDurable?: (records: readonly TelemetryRecord[], commitSeconds: number) => void;
}

export interface TelemetryLog {
  /** Resolves once the message is committed (the PUBACK / 204 point). */
  append(deviceId: string, message: HubMessage, transport: string): Promise<TelemetryRecord>;
  read(opts?: { deviceId?: string; afterSequence?: number; limit?: number }): Promise<TelemetryRecord[]>;
  /** One device's records enqueued in [from, to), in sequence order; `afterSequence` pages on. */
  readDevice(deviceId: string, range: DeviceTelemetryRange): Promise<TelemetryRecord[]>;
  /** Deletes the records enqueued before `before` (epoch ms); resolves to how many went. */
  purge(before: number): Promise<number>;
  /** Writes whatever is waiting and resolves once it is durable. */
  flush(): Promise<void>;
  readonly stats: { groups: number; records: number };
}

/** A time range of one device's telemetry: `from` inclusive, `to` exclusive (epoch ms). */
export interface DeviceTelemetryRange {
  readonly from: number;
  readonly to: number;
  /** Default 1,000, at most 10,000. */
  readonly limit?: number;
  readonly afterSequence?: number;
}

interface Waiting {
  readonly deviceId: string;
  readonly message: HubMessage;
  readonly transport: string;
  readonly enqueuedTime: number;
  readonly resolve: (r: TelemetryRecord) => void;
  readonly reject: (e: unknown) => void;
}

/** Size as IoT Hub meters it: body plus property names and values. */
export function messageSize(message: HubMessage): number {
  let size = message.body.length;
  for (const [k, v] of Object.entries(message.properties)) size += k.length + v.length;
  for (const v of [message.messageId, message.correlationId, message.userId, message.contentType, message.contentEncoding]) {
    if (v !== undefined) size += v.length;
  }
  return size;
}

function systemProperties(m: HubMessage): string | null {
  // Keys are IoT Hub's property-bag names (§1.5), so what is stored reads like what the device sent.
  const s: Record<string, string | number> = {};
  if (m.messageId !== undefined) s['$.mid'] = m.messageId;
  if (m.correlationId !== undefined) s['$.cid'] = m.correlationId;
  if (m.userId !== undefined) s['$.uid'] = m.userId;
  if (m.contentType !== undefined) s['$.ct'] = m.contentType;
  if (m.contentEncoding !== undefined) s['$.ce'] = m.contentEncoding;
  if (m.expiryTime !== undefined) s['$.exp'] = m.expiryTime;
  for (const _ in s) return JSON.stringify(s);
  return null;
}

function toRow(sequence: number, w: Waiting): Row {
  const body = w.message.body;
  // Text when it is text (readable in SQL, half the size of base64); NUL is refused by PostgreSQL text.
  const text = isUtf8(body) && !body.includes(0);
  let props: string | null = null;
  for (const _ in w.message.properties) {
    props = JSON.stringify(w.message.properties);
    break;
  }
  return {
    sequence,
    deviceid: w.deviceId,
    enqueuedtime: w.enqueuedTime,
    properties: props,
    system: systemProperties(w.message),
    body: text ? body.toString('utf8') : body.toString('base64'),
    bodyencoding: text ? 'utf8' : 'base64',
    transport: w.transport,
  };
}

function fromRow(r: Row): TelemetryRecord {
  const system = r['system'] === null ? {} : (JSON.parse(String(r['system'])) as Record<string, string | number>);
  const message: HubMessage = {
    body: Buffer.from(String(r['body']), r['bodyencoding'] === 'utf8' ? 'utf8' : 'base64'),
    properties: r['properties'] === null ? {} : (JSON.parse(String(r['properties'])) as Record<string, string>),
    ...(system['$.mid'] !== undefined ? { messageId: String(system['$.mid']) } : {}),
    ...(system['$.cid'] !== undefined ? { correlationId: String(system['$.cid']) } : {}),
    ...(system['$.uid'] !== undefined ? { userId: String(system['$.uid']) } : {}),
    ...(system['$.ct'] !== undefined ? { contentType: String(system['$.ct']) } : {}),
    ...(system['$.ce'] !== undefined ? { contentEncoding: String(system['$.ce']) } : {}),
    ...(system['$.exp'] !== undefined ? { expiryTime: Number(system['$.exp']) } : {}),
  };
  return {
    sequence: Number(r['sequence']),
    deviceId: String(r['deviceid']),
    enqueuedTime: Number(r['enqueuedtime']),
    message,
    transport: String(r['transport']),
  };
}

/**
 * The durable telemetry log, written with group commit: appends that arrive while a group is being written (or within
 * `lingerMs` of an idle start) are written together in one transaction, and each append resolves when its group has
 * committed. One commit per group instead of per message is what lets QoS 1 ingest run at tens of thousands of
 * messages per second while every PUBACK still means "durable".
 *
 * Sequence numbers come from blocks reserved on a shared counter row (compare-and-set), so several hub nodes on one
 * PostgreSQL never collide; within a node they increase in arrival order, which keeps each device's messages in order.
 */
export function createTelemetryLog(opts: TelemetryLogOptions): TelemetryLog {
  const { store, clock } = opts;
  const maxBatch = opts.maxBatch ?? 2000;
  const lingerMs = opts.lingerMs ?? 1;
  const block = opts.sequenceBlock ?? 10_000;
  let queue: Waiting[] = [];
  const concurrency = Math.max(1, opts.concurrency ?? 1);
  const writing = new Set<Promise<void>>();
  /** Serialises taking sequence numbers (a block reservation may have to wait for the counter row). */
  let numbering: Promise<unknown> = Promise.resolve();
  /** Completion of the latest group: each group hands over only after the one before it. */
  let lastDone: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let nextSequence = 0;
  let blockEnd = 0; // exclusive
  const stats = { groups: 0, records: 0 };

  async function reserve(tx: Queryable, needed: number): Promise<void> {
    const size = Math.max(block, needed);
    for (;;) {
      const r = (await tx.select({ table: COUNTER_TABLE.name, where: eq('name', 'telemetry'), limit: 1 }))[0];
      if (!r) {
        try {
          await tx.insert(COUNTER_TABLE.name, { name: 'telemetry', value: size });
          nextSequence = 1;
          blockEnd = size + 1;
          return;
        } catch (e) {
          if (e instanceof DuplicateKeyError) continue;
          throw e;
        }
      }
      const current = Number(r['value']);
      const n = await tx.update(COUNTER_TABLE.name, { value: current + size }, and(eq('name', 'telemetry'), eq('value', current)));
      if (n === 1) {
        nextSequence = current + 1;
        blockEnd = current + size + 1;
        return;
      }
    }
  }

  function takeSequences(n: number): Promise<number> {
    const taken = numbering.then(async () => {
      if (blockEnd - nextSequence < n) {
        // Its own transaction: on PostgreSQL the counter row must not stay locked while a group writes.
        await store.transaction((tx) => reserve(tx, n));
      }
      const first = nextSequence;
      nextSequence += n;
      return first;
    });
    numbering = taken.catch(() => undefined);
    return taken;
  }

  async function writeGroup(group: Waiting[], previous: Promise<void>): Promise<void> {
    const records: TelemetryRecord[] = [];
    const started = performance.now();
    let failure: unknown;
    try {
      const first = await takeSequences(group.length);
      await store.transaction(async (tx) => {
        await tx.insertMany(TELEMETRY_TABLE.name, group.map((entry, i) => toRow(first + i, entry)));
      });
      for (let i = 0; i < group.length; i++) {
        const w = group[i]!;
        records.push({ sequence: first + i, deviceId: w.deviceId, enqueuedTime: w.enqueuedTime, message: w.message, transport: w.transport });
      }
    } catch (e) {
      failure = e;
    }
    const seconds = (performance.now() - started) / 1000;
    // In sequence order: a device's messages reach the bus (and their PUBACKs go out) in the order they came.
    await previous;
    if (failure !== undefined) {
      for (const w of group) w.reject(failure);
      return;
    }
    stats.groups++;
    stats.records += group.length;
    opts.onDurable?.(records, seconds);
    for (let i = 0; i < group.length; i++) group[i]!.resolve(records[i]!);
  }

  function startWrite(): void {
    timer = undefined;
    while (writing.size < concurrency && queue.length > 0) {
      const group = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);
      queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch);
      const done: Promise<void> = writeGroup(group, lastDone).finally(() => {
        writing.delete(done);
        // Whatever arrived meanwhile is the next group: no wait, it already had company.
        if (queue.length > 0) startWrite();
      });
      lastDone = done;
      writing.add(done);
    }
  }

  function schedule(): void {
    if (writing.size >= concurrency || timer) return;
    if (queue.length >= maxBatch) startWrite();
    else timer = setTimeout(startWrite, lingerMs);
  }

  return {
    stats,
    append(deviceId, message, transport) {
      const size = messageSize(message);
      if (size > D2C_MAX_BYTES) {
        return Promise.reject(new CcsError('MessageTooLarge', `Device-to-cloud message is ${size} bytes; the limit is ${D2C_MAX_BYTES}.`));
      }
      return new Promise<TelemetryRecord>((resolve, reject) => {
        queue.push({ deviceId, message, transport, enqueuedTime: clock(), resolve, reject });
        schedule();
      });
    },

    async read(q = {}) {
      const where: Condition[] = [];
      if (q.deviceId !== undefined) where.push(eq('deviceid', q.deviceId));
      if (q.afterSequence !== undefined) where.push(compare('sequence', 'gt', q.afterSequence));
      const rows = await store.select({
        table: TELEMETRY_TABLE.name,
        where: where.length === 0 ? undefined : and(...where),
        orderBy: [{ column: 'sequence' }],
        limit: Math.min(Math.max(q.limit ?? 1000, 1), 10_000),
      });
      return rows.map(fromRow);
    },

    async readDevice(deviceId, range) {
      // Time first, then device: the log is indexed on `enqueuedtime` only (see TELEMETRY_TABLE), so the range picks
      // the rows and the device filters them.
      const where: Condition[] = [compare('enqueuedtime', 'ge', range.from), compare('enqueuedtime', 'lt', range.to), eq('deviceid', deviceId)];
      if (range.afterSequence !== undefined) where.push(compare('sequence', 'gt', range.afterSequence));
      const rows = await store.select({
        table: TELEMETRY_TABLE.name,
        where: and(...where),
        orderBy: [{ column: 'sequence' }],
        limit: Math.min(Math.max(range.limit ?? 1000, 1), 10_000),
      });
      return rows.map(fromRow);
    },

    purge(before) {
      return store.delete(TELEMETRY_TABLE.name, compare('enqueuedtime', 'lt', before));
    },

    async flush() {
      if (timer) {
        clearTimeout(timer);
        startWrite();
      }
      while (writing.size > 0) await Promise.all(writing);
    },
  };
}

/** Per measure (dotted path) and bucket index: the numbers of one device's readings. */
export type ReadingAggregates = Map<string, Map<number, { min: number; max: number; sum: number; count: number }>>;

/** Time one aggregation query aims at; slices adapt to it. */
const SLICE_TARGET_MS = 50;

/**
 * The numbers in one device's telemetry bodies in `[from, to)`, aggregated per measure and per bucket of `interval`
 * ms from `from`, by the store (SQL over the JSON text). The range is read in slices that adapt to how long each
 * query takes, so a range of millions of rows never holds an embedded engine (which runs on this thread) for long:
 * min, max, sum and count of a bucket merge across slices. Only text bodies can be JSON.
 */
export async function aggregateDeviceTelemetry(
  store: Pick<Store, 'aggregateJsonNumbers'>,
  deviceId: string,
  range: { readonly from: number; readonly to: number; readonly interval: number },
): Promise<ReadingAggregates> {
  const { from, to, interval } = range;
  const out: ReadingAggregates = new Map();
  const merge = (r: JsonNumbersBucket) => {
    let series = out.get(r.path);
    if (!series) out.set(r.path, (series = new Map()));
    const a = series.get(r.bucket);
    if (!a) series.set(r.bucket, { min: r.min, max: r.max, sum: r.sum, count: r.count });
    else {
      a.min = Math.min(a.min, r.min);
      a.max = Math.max(a.max, r.max);
      a.sum += r.sum;
      a.count += r.count;
    }
  };
  // Starts small (a busy hub logs thousands of rows a second) and grows quickly where rows are few.
  let width = 60_000;
  for (let start = from; start < to; ) {
    const end = Math.min(to, start + width);
    const began = performance.now();
    const rows = await store.aggregateJsonNumbers({
      table: TELEMETRY_TABLE.name,
      // Time first: the log is indexed on enqueuedtime only (see TELEMETRY_TABLE).
      where: and(compare('enqueuedtime', 'ge', start), compare('enqueuedtime', 'lt', end), eq('deviceid', deviceId), eq('bodyencoding', 'utf8')),
      json: 'body',
      time: 'enqueuedtime',
      origin: from,
      width: interval,
    });
    for (const r of rows) merge(r);
    start = end;
    const took = performance.now() - began;
    if (took < SLICE_TARGET_MS / 4) width *= 4;
    else if (took < SLICE_TARGET_MS / 2) width *= 2;
    else if (took > SLICE_TARGET_MS * 2) width = Math.max(1000, Math.floor(width / 2));
    // Lets sockets and timers in between slices.
    if (start < to) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return out;
}
