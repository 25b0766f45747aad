/**
 * Durable record events: the transactional outbox behind `RecordsService.consume`.
 *
 * Every record write adds its event to `ccs_recordevent` atomically with itself (the write carries the row: see
 * `LogAppend`; events are numbered in commit order and `Store.readLog` never hands out a number while a lower one may
 * still commit), so an event exists exactly when its write does. A
 * named consumer keeps its checkpoint — the last sequence it has handled — in `ccs_recordeventconsumer` and follows
 * the log after it: events committed in this process are handed over right after the commit, from memory (no read
 * while they follow on without a gap); the log itself is read every `pollMs` (events other processes wrote), at a
 * gap, and from the checkpoint on when it starts, so nothing committed while it was down is missed.
 *
 * Delivery is at least once, in sequence order: a batch is handed over only after the previous one resolved, and the
 * checkpoint moves past a batch only after its handler resolved. A handler that throws gets the same batch again
 * after a growing delay. Checkpoints are written at most every `checkpointMs` (and when the consumer stops), so a
 * crash replays up to that much: handlers must be idempotent on the event's sequence.
 *
 * One process at a time handles a consumer's events: the one holding its lease (owner and expiry on the checkpoint
 * row, renewed with each checkpoint write). The others stand by and take the lease over when it is released (a clean
 * stop) or has expired (a crashed holder: after at most `leaseMs`).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { CcsError } from '../errors/index.js';
import type { Principal } from '../security/principal.js';
import { and, compare, eq, isNull, or } from '../store/index.js';
import type { LogAppend, PhysicalTable, Queryable, Row, Store } from '../store/types.js';
import type { RecordEvent } from './records-service.js';

/** The outbox: one row per record event, numbered in commit order. Internal: not a metadata table, not in the Web API. */
export const RECORD_EVENT_TABLE: PhysicalTable = {
  name: 'ccs_recordevent',
  primaryKey: 'seq',
  columns: [
    { name: 'seq', type: 'bigint', logNumber: true },
    { name: 'tablename', type: 'text' },
    { name: 'recordid', type: 'text' },
    { name: 'eventtype', type: 'text' },
    /** JSON array of the column names written. */
    { name: 'columnnames', type: 'text' },
    { name: 'userid', type: 'text' },
    { name: 'occurredon', type: 'bigint' },
  ],
  indexes: [],
};

/** One row per named consumer: its checkpoint and lease. */
export const RECORD_EVENT_CONSUMER_TABLE: PhysicalTable = {
  name: 'ccs_recordeventconsumer',
  primaryKey: 'name',
  columns: [
    { name: 'name', type: 'text' },
    /** The last sequence handled: the consumer resumes after it. */
    { name: 'position', type: 'bigint' },
    { name: 'owner', type: 'text' },
    { name: 'leaseuntil', type: 'bigint' },
    { name: 'updatedon', type: 'bigint' },
  ],
  indexes: [],
};

export const RECORD_EVENT_TABLES: readonly PhysicalTable[] = [RECORD_EVENT_TABLE, RECORD_EVENT_CONSUMER_TABLE];

const EVENTS = RECORD_EVENT_TABLE.name;
const CONSUMERS = RECORD_EVENT_CONSUMER_TABLE.name;
const TYPES: ReadonlySet<string> = new Set(['created', 'updated', 'deleted']);
/** Principals of recent local events, by sequence: enough for any batch still in flight. */
const MAX_PRINCIPALS = 10_000;
/** Events committed here and not yet handled, per consumer: beyond this many, the consumer reads the store instead. */
const MAX_OFFERED = 10_000;
/** Rows deleted per statement when pruning, so a day's backlog does not hold the writer for long. */
const PRUNE_SLICE = 5_000;
const MAX_RETRY_MS = 30_000;

/** A record event as a durable consumer gets it. */
export interface DurableRecordEvent {
  /** Position in the log: unique, increasing in commit order. Idempotency keys are built on it. */
  readonly sequence: number;
  readonly type: RecordEvent['type'];
  readonly table: string;
  readonly id: string;
  readonly columns: readonly string[];
  /** The systemuser whose write raised the event. */
  readonly userId: string;
  /** When the write happened (the writer's clock, epoch milliseconds). */
  readonly occurredOn: number;
  /**
   * The writer's principal object, when the event is handled in the process that wrote it (the same object the
   * in-memory listeners got); absent for events read back from another process or an earlier run.
   */
  readonly principal?: Principal;
}

/** Handles a batch of events in sequence order; resolve when done, throw to get the same batch again later. */
export type RecordEventHandler = (events: readonly DurableRecordEvent[]) => Promise<void>;

export interface ConsumeOptions {
  /** Most events per handler call. */
  readonly batchSize?: number;
  /**
   * Called each time this process takes the lease, before its first batch: state built from earlier events (which
   * another process may have handled meanwhile) is to be read again here. Throwing delays the batch, as a handler's
   * failure does.
   */
  readonly onLease?: () => void | Promise<void>;
}

export interface RecordEventConsumer {
  readonly name: string;
  /**
   * Resolves once the consumer has its checkpoint (at once for a name seen before): events committed after that
   * are handed to it, wherever they are written.
   */
  readonly ready: Promise<void>;
  /** Stops after the batch in hand, writes the checkpoint and releases the lease for another process to take. */
  stop(): Promise<void>;
}

export interface RecordEventLogOptions {
  /** How often consumers look for events other processes wrote, and standing-by consumers for a free lease. */
  readonly pollMs?: number;
  /** How long a lease lasts unless renewed; a crashed holder's consumers move to another process after this. */
  readonly leaseMs?: number;
  /** Least time between checkpoint writes while events flow; a crash replays at most about this much. */
  readonly checkpointMs?: number;
  /** Events every consumer has passed are kept this long (by their time), then pruned. */
  readonly retentionMs?: number;
  /** How often a started log prunes. */
  readonly pruneEveryMs?: number;
  readonly batchSize?: number;
}

export interface RecordEventLogDeps {
  readonly store: Store;
  readonly clock: () => number;
  readonly log: Logger;
}

/** What a consumer needs from its log. */
interface LogAccess {
  readonly store: Store;
  readonly clock: () => number;
  readonly log: Logger;
  readonly owner: string;
  readonly pollMs: number;
  readonly leaseMs: number;
  readonly checkpointMs: number;
  read(after: number, limit: number): Promise<DurableRecordEvent[]>;
  lastSequence(db?: Queryable): Promise<number>;
}

export class RecordEventLog {
  readonly #deps: RecordEventLogDeps;
  readonly #access: LogAccess;
  readonly #retentionMs: number;
  readonly #pruneEveryMs: number;
  readonly #batchSize: number;
  readonly #consumers = new Map<string, Consumer>();
  /** Each event's outbox row: its number is filled in by the write that carries it, by the time that commits. */
  readonly #rows = new WeakMap<RecordEvent, Row>();
  readonly #principals = new Map<number, Principal>();
  #started = false;
  #pruneTimer: NodeJS.Timeout | undefined;
  #pruning: Promise<unknown> = Promise.resolve();

  constructor(deps: RecordEventLogDeps, opts: RecordEventLogOptions = {}) {
    this.#deps = deps;
    this.#retentionMs = opts.retentionMs ?? 24 * 3600_000;
    this.#pruneEveryMs = opts.pruneEveryMs ?? 5 * 60_000;
    this.#batchSize = opts.batchSize ?? 256;
    this.#access = {
      ...deps,
      owner: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
      pollMs: opts.pollMs ?? 500,
      leaseMs: opts.leaseMs ?? 15_000,
      checkpointMs: opts.checkpointMs ?? 1000,
      read: (after, limit) => this.read(after, limit),
      lastSequence: (db) => this.#lastSequence(db),
    };
  }

  /**
   * The outbox row of an event, for the write that raises it to carry (`Queryable.insert`/`update`/`delete` with a
   * `LogAppend`): written with the write, in its transaction or in one statement with it, only if it changes a row.
   */
  logFor(event: RecordEvent): LogAppend {
    const row: Row = {
      seq: null,
      tablename: event.table,
      recordid: event.id,
      eventtype: event.type,
      columnnames: JSON.stringify(event.columns),
      userid: event.principal.userId,
      occurredon: this.#deps.clock(),
    };
    this.#rows.set(event, row);
    return { table: EVENTS, column: 'seq', rows: [row] };
  }

  /**
   * Events whose transaction has committed: handed to this process's consumers as they are, so that following the
   * log costs no read while this process writes all of it (the store is read for what other processes wrote).
   */
  committed(events: readonly RecordEvent[]): void {
    const durable: DurableRecordEvent[] = [];
    for (const e of events) {
      const row = this.#rows.get(e);
      const seq = row?.['seq'];
      if (typeof seq !== 'number') continue;
      this.#principals.set(seq, e.principal);
      if (this.#principals.size > MAX_PRINCIPALS) this.#principals.delete(this.#principals.keys().next().value!);
      durable.push({
        sequence: seq, type: e.type, table: e.table, id: e.id, columns: e.columns, userId: e.principal.userId,
        occurredOn: Number(row!['occurredon']), principal: e.principal,
      });
    }
    if (durable.length === 0 || !this.#started) return;
    for (const c of this.#consumers.values()) c.offer(durable);
  }

  /**
   * Registers a durable consumer. A name seen for the first time starts after the latest event; afterwards it
   * resumes from its checkpoint. It handles events once the log is started (`start()`): a process that builds the
   * app only to run a command leaves them to the server.
   */
  consume(name: string, handler: RecordEventHandler, opts: ConsumeOptions = {}): RecordEventConsumer {
    if (this.#consumers.has(name)) throw new Error(`A record event consumer named '${name}' is already registered in this process.`);
    const consumer = new Consumer(this.#access, name, handler, opts, opts.batchSize ?? this.#batchSize, () => this.#consumers.delete(name));
    this.#consumers.set(name, consumer);
    if (this.#started) consumer.start();
    return consumer;
  }

  /** Resolves once every consumer registered so far has its checkpoint row. */
  async ready(): Promise<void> {
    await Promise.all([...this.#consumers.values()].map((c) => c.registered));
  }

  /** Consumers start handling events; pruning runs every `pruneEveryMs`. */
  async start(): Promise<void> {
    if (this.#started) return;
    await this.ready();
    this.#started = true;
    for (const c of this.#consumers.values()) c.start();
    this.#pruneTimer = setInterval(() => {
      this.#pruning = this.prune().catch((err: unknown) => this.#deps.log.error({ err }, 'could not prune record events'));
    }, this.#pruneEveryMs);
    this.#pruneTimer.unref();
  }

  async stop(): Promise<void> {
    this.#started = false;
    clearInterval(this.#pruneTimer);
    await Promise.all([...this.#consumers.values()].map((c) => c.stop()));
    await this.#pruning;
  }

  /**
   * Forgets a consumer for good: stops it if it runs here and deletes its checkpoint, which otherwise keeps the
   * events it has not handled from being pruned. For a consumer no version runs any more.
   */
  async retire(name: string): Promise<void> {
    await this.#consumers.get(name)?.stop();
    await this.#deps.store.delete(CONSUMERS, eq('name', name));
  }

  /** Events after `after`, in sequence order. */
  async read(after: number, limit: number): Promise<DurableRecordEvent[]> {
    const rows = await this.#deps.store.readLog(EVENTS, 'seq', after, limit);
    return rows.map((r) => this.#toEvent(r));
  }

  /**
   * Deletes events every consumer has passed that are older than the retention, keeping the newest event (the
   * numbering continues after it). Resolves to the number deleted.
   */
  async prune(): Promise<number> {
    const { store, clock } = this.#deps;
    const cutoff = clock() - this.#retentionMs;
    let upTo = (await this.#lastSequence()) - 1;
    const slowest = await store.select({ table: CONSUMERS, columns: ['position'], orderBy: [{ column: 'position' }], limit: 1 });
    if (slowest.length > 0) upTo = Math.min(upTo, Number(slowest[0]!['position']));
    const oldest = await store.select({ table: EVENTS, columns: ['seq'], orderBy: [{ column: 'seq' }], limit: 1 });
    let from = oldest.length > 0 ? Number(oldest[0]!['seq']) : upTo + 1;
    let deleted = 0;
    while (from <= upTo) {
      const to = Math.min(upTo, from + PRUNE_SLICE - 1);
      const n = await store.delete(EVENTS, and(compare('seq', 'le', to), compare('occurredon', 'lt', cutoff)));
      // Times grow with the sequence (give or take the writers' clocks): a slice with nothing old enough ends it.
      if (n === 0) break;
      deleted += n;
      from = to + 1;
    }
    return deleted;
  }

  async #lastSequence(db: Queryable = this.#deps.store): Promise<number> {
    const rows = await db.select({ table: EVENTS, columns: ['seq'], orderBy: [{ column: 'seq', descending: true }], limit: 1 });
    return rows.length > 0 ? Number(rows[0]!['seq']) : 0;
  }

  #toEvent(r: Row): DurableRecordEvent {
    const sequence = Number(r['seq']);
    const type = String(r['eventtype']);
    let columns: string[] = [];
    try {
      const parsed: unknown = JSON.parse(String(r['columnnames'] ?? '[]'));
      if (Array.isArray(parsed)) columns = parsed.map(String);
    } catch {
      // Written by this module as JSON; anything else reads as no columns.
    }
    const principal = this.#principals.get(sequence);
    return {
      sequence,
      type: (TYPES.has(type) ? type : 'updated') as RecordEvent['type'],
      table: String(r['tablename']),
      id: String(r['recordid']),
      columns,
      userId: String(r['userid'] ?? ''),
      occurredOn: Number(r['occurredon'] ?? 0),
      ...(principal ? { principal } : {}),
    };
  }
}

/** One named consumer in this process: stands by for the lease, then follows the log from its checkpoint. */
class Consumer implements RecordEventConsumer {
  readonly registered: Promise<void>;
  get ready(): Promise<void> {
    return this.registered;
  }
  readonly #log: Logger;
  #position = 0;
  #persisted = 0;
  #leader = false;
  /** Taken the lease, not yet told the handler's owner (`onLease`). */
  #newLease = false;
  #leaseUntil = 0;
  #lastWrite = 0;
  #running: Promise<void> | undefined;
  #stopping = false;
  #stopped: Promise<void> | undefined;
  /** Events this process committed, by sequence, waiting to be handled without reading them back. */
  readonly #offered = new Map<number, DurableRecordEvent>();
  /** The log may hold events the offers do not: on start, after a poll interval, a gap or a failure. */
  #mustRead = true;
  #kicked = false;
  #wake: (() => void) | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  /** Checkpoint writes, one at a time. */
  #writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly access: LogAccess,
    readonly name: string,
    private readonly handler: RecordEventHandler,
    private readonly opts: ConsumeOptions,
    private readonly batchSize: number,
    private readonly onStopped: () => void,
  ) {
    this.#log = access.log.child({ component: 'record-events', consumer: name });
    this.registered = this.#register().catch((err: unknown) => {
      this.#log.error({ err }, 'could not register the record event consumer');
    });
  }

  start(): void {
    if (this.#stopping) return;
    this.#running ??= this.#run();
  }

  /** Events committed in this process. Looked at on the next turn of the event loop, never in the writer's. */
  offer(events: readonly DurableRecordEvent[]): void {
    if (!this.#leader) return;
    for (const e of events) if (e.sequence > this.#position) this.#offered.set(e.sequence, e);
    if (this.#offered.size > MAX_OFFERED) {
      this.#offered.clear();
      this.#mustRead = true;
    }
    this.#kicked = true;
    const wake = this.#wake;
    if (wake) setImmediate(wake);
  }

  /**
   * The next events after the position: the offered ones while they follow on without a gap, else read from the log
   * (a missing number was written by another process, is still in flight, or never committed: the log tells).
   */
  async #next(): Promise<DurableRecordEvent[]> {
    const batch: DurableRecordEvent[] = [];
    for (let seq = this.#position + 1; batch.length < this.batchSize; seq++) {
      const e = this.#offered.get(seq);
      if (!e) break;
      batch.push(e);
      this.#offered.delete(seq);
    }
    if (batch.length > 0) return batch;
    if (this.#offered.size > 0) this.#mustRead = true;
    if (!this.#mustRead) return batch;
    const read = await this.access.read(this.#position, this.batchSize);
    this.#mustRead = read.length === this.batchSize;
    const last = read.length > 0 ? read[read.length - 1]!.sequence : this.#position;
    for (const seq of this.#offered.keys()) if (seq <= last) this.#offered.delete(seq);
    return read;
  }

  stop(): Promise<void> {
    return (this.#stopped ??= this.#stop());
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#running;
    clearInterval(this.#heartbeat);
    await this.#writes;
    if (this.#leader) {
      this.#leader = false;
      try {
        // The last checkpoint, and the lease handed over at once rather than left to expire.
        await this.access.store.update(CONSUMERS, { position: this.#position, owner: null, leaseuntil: 0, updatedon: this.access.clock() }, this.#mine());
      } catch (err) {
        this.#log.error({ err }, 'could not write the last checkpoint; the next holder replays from the previous one');
      }
    }
    this.onStopped();
  }

  async #register(): Promise<void> {
    const { store, clock } = this.access;
    if ((await store.select({ table: CONSUMERS, columns: ['name'], where: eq('name', this.name) })).length > 0) return;
    try {
      await store.insert(CONSUMERS, { name: this.name, position: await this.access.lastSequence(), owner: null, leaseuntil: 0, updatedon: clock() });
    } catch (e) {
      if (!(e instanceof CcsError && e.code === 'DuplicateKey')) throw e; // another process registered it first
    }
  }

  async #run(): Promise<void> {
    await this.registered;
    let failures = 0;
    while (!this.#stopping) {
      try {
        if (!this.#holdsLease() && !(await this.#acquire())) {
          await this.#sleep(this.access.pollMs, true);
          continue;
        }
        if (this.#newLease) {
          await this.opts.onLease?.();
          this.#newLease = false;
        }
        const batch = await this.#next();
        if (batch.length === 0) {
          // Woken by a commit here, the offers hold what is new; after a whole interval, the log is read.
          if ((await this.#sleep(this.access.pollMs, true)) === 'timer') this.#mustRead = true;
          continue;
        }
        await this.handler(batch);
        failures = 0;
        this.#position = batch[batch.length - 1]!.sequence;
      } catch (err) {
        // The batch is read again from the log.
        this.#mustRead = true;
        failures++;
        const delay = Math.min(100 * 2 ** (failures - 1), MAX_RETRY_MS);
        this.#log.error({ err, position: this.#position, retryInMs: delay }, 'record event consumer failed; trying the same events again');
        await this.#sleep(delay, false);
      }
    }
  }

  #holdsLease(): boolean {
    return this.#leader && this.access.clock() < this.#leaseUntil;
  }

  #mine() {
    return and(eq('name', this.name), eq('owner', this.access.owner));
  }

  /** Takes the lease if it is free, expired or already ours; reads the checkpoint the previous holder left. */
  async #acquire(): Promise<boolean> {
    const { store, clock, owner, leaseMs } = this.access;
    this.#leader = false;
    const now = clock();
    const [row] = await store.select({ table: CONSUMERS, where: eq('name', this.name) });
    if (!row) {
      await this.#register();
      return false;
    }
    const holder = row['owner'];
    if (holder !== null && holder !== owner && Number(row['leaseuntil']) >= now) return false;
    const free = or(isNull('owner'), eq('owner', owner), compare('leaseuntil', 'lt', now));
    if ((await store.update(CONSUMERS, { owner, leaseuntil: now + leaseMs, updatedon: now }, and(eq('name', this.name), free))) === 0) return false;
    const [mine] = await store.select({ table: CONSUMERS, where: this.#mine() });
    if (!mine) return false;
    this.#position = this.#persisted = Number(mine['position']);
    this.#offered.clear();
    this.#mustRead = true;
    this.#leader = true;
    this.#newLease = true;
    this.#leaseUntil = now + leaseMs;
    this.#lastWrite = now;
    if (holder !== null && holder !== owner) this.#log.info({ previous: holder, position: this.#position }, 'took over the record event consumer from an expired lease');
    clearInterval(this.#heartbeat);
    this.#heartbeat = setInterval(() => void this.#beat(), Math.max(10, Math.min(this.access.checkpointMs, leaseMs / 3)));
    this.#heartbeat.unref();
    return true;
  }

  /** Writes the checkpoint when it moved, and renews the lease before a third of it is left. */
  #beat(): Promise<void> {
    this.#writes = this.#writes.then(async () => {
      if (!this.#leader || this.#stopping) return;
      const { store, clock, leaseMs, checkpointMs } = this.access;
      const now = clock();
      const moved = this.#position !== this.#persisted && now - this.#lastWrite >= checkpointMs;
      if (!moved && this.#leaseUntil - now > (leaseMs * 2) / 3) return;
      const position = this.#position;
      try {
        const n = await store.update(CONSUMERS, { position, leaseuntil: now + leaseMs, updatedon: now }, this.#mine());
        if (n === 0) {
          this.#leader = false;
          clearInterval(this.#heartbeat);
          this.#log.warn({ position }, 'lost the record event consumer lease to another process; standing by');
          return;
        }
        this.#persisted = position;
        this.#leaseUntil = now + leaseMs;
        this.#lastWrite = now;
      } catch (err) {
        this.#log.error({ err }, 'could not write the record event checkpoint');
      }
    });
    return this.#writes;
  }

  /** Waits `ms`, or less when stopping (and, if `kickable`, when this process commits new events). */
  #sleep(ms: number, kickable: boolean): Promise<'timer' | 'woken'> {
    if (this.#stopping) return Promise.resolve('woken');
    if (kickable && this.#kicked) {
      this.#kicked = false;
      return Promise.resolve('woken');
    }
    return new Promise((resolve) => {
      const done = (how: 'timer' | 'woken') => {
        clearTimeout(timer);
        if (this.#wake === wake) this.#wake = undefined;
        if (kickable) this.#kicked = false;
        resolve(how);
      };
      const timer = setTimeout(() => done('timer'), ms);
      const wake = kickable ? () => done('woken') : () => (this.#stopping ? done('woken') : undefined);
      this.#wake = wake;
    });
  }
}
