import { BusNoResponderError, subjectToken, type Bus, type Subscription } from '../bus/index.js';
import { DuplicateKeyError } from '../errors/index.js';
import { createNodeId, type Hub, type TelemetryRecord } from '../hub/index.js';
import type { Metrics } from '../metrics/index.js';
import type { RecordContext, RecordsService } from '../records/index.js';
import { restoreState, type DeviceState, type Evaluation, type Firing } from '../rules/index.js';
import type { Row, Store } from '../store/index.js';
import { createAlertWriter } from './alert-writer.js';
import { and, compare, eq, isIn, isNull, ne, or } from '../store/index.js';
import { createDeviceDirectory, type DeviceInfo } from './device-directory.js';
import { partitionOfDevice, partitionsOf, RULE_PARTITIONS } from './partitions.js';
import { createRuleLoader } from './rule-loader.js';
import { RULE_STATE_TABLE, RULE_WATERMARK_TABLE, RULE_WORKER_TABLE, WATERMARK_KEY } from './tables.js';

export interface AlertPipelineDeps {
  readonly store: Store;
  readonly records: RecordsService;
  /** The platform's own context: alerts are created by the system. */
  readonly system: RecordContext;
  readonly hub: Pick<Hub, 'on' | 'readTelemetry' | 'getTwinDocument'>;
  readonly bus: Bus;
  readonly clock: () => number;
  readonly log: { error(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void; info(obj: unknown, msg?: string): void };
  readonly metrics?: Metrics;
  /** How often time-driven conditions (durations, windows, no data) are evaluated; default 1000 ms. */
  readonly tickMs?: number;
  /** How often changed device states are written to the store; default 5000 ms. */
  readonly checkpointMs?: number;
  /** Readings (and ticks) of different devices evaluated and written at once; default 16. */
  readonly concurrency?: number;
  /**
   * This worker's id among the rules workers sharing the device partitions (the cluster node id in scale-out);
   * unique per running process. Default: a new random one.
   */
  readonly workerId?: string;
  /** How often the worker writes its heartbeat and takes or hands over partitions; default 3000 ms. */
  readonly heartbeatMs?: number;
  /** A worker whose heartbeat is older than this is presumed gone and its partitions are taken; default 15000 ms. */
  readonly staleMs?: number;
}

export interface AlertPipeline {
  /** Restores checkpointed states, replays the telemetry log after the checkpoint, then follows the bus. */
  start(): Promise<void>;
  /** Stops following the bus, applies what the log holds beyond what was handled, and checkpoints. */
  stop(): Promise<void>;
  /** Evaluates time-driven conditions now (what the timer does every `tickMs`). */
  tick(): Promise<void>;
  /** Writes changed device states now (what the timer does every `checkpointMs`). */
  checkpoint(): Promise<void>;
  /** Writes this worker's heartbeat and takes or hands over partitions now (what the timer does every `heartbeatMs`). */
  heartbeat(): Promise<void>;
  /** This worker's id in `ccs_ruleworker` and `ccs_rulewatermark`. */
  readonly workerId: string;
  /** The partitions this worker holds now, ascending. */
  partitions(): number[];
  /**
   * Stops at once as a process that dies would: no catch-up, no checkpoint, and its worker row and partitions are
   * left behind for the other workers to take. For tests of takeover; `stop()` afterwards does nothing more.
   */
  crash(): Promise<void>;
}

/**
 * Whether a record is one the device's state has already been given. Sequences increase with arrival on each hub
 * node, but several hub nodes take them from blocks reserved in advance, so a device that moves to another node may
 * go on with lower ones: a record enqueued later than the last one applied is new whatever its sequence. Records
 * enqueued in the same millisecond on one node compare by sequence; a checkpoint written without times (older
 * versions) compares by sequence alone.
 */
export function isApplied(last: { readonly sequence: number; readonly time: number | null } | undefined, rec: Pick<TelemetryRecord, 'sequence' | 'enqueuedTime'>): boolean {
  if (last === undefined) return false;
  if (last.time === null || rec.enqueuedTime === last.time) return rec.sequence <= last.sequence;
  return rec.enqueuedTime < last.time;
}

/** Bucket bounds for one rule evaluation (seconds): it takes microseconds. */
const EVALUATION_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.05];
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const REPLAY_PAGE = 5000;
/** Tasks (a reading or a tick of one device) admitted at once; one device's run one at a time whatever this is. */
const DEFAULT_CONCURRENCY = 16;
/** How long stopping may spend applying what the log holds beyond what was handled. */
const STOP_CATCH_UP_MS = 10_000;

type BodyKind = 'json' | 'not_json' | 'no_number' | 'empty';

/**
 * The body as JSON when it is JSON; undefined otherwise. Never throws: a device sending text, binary or half a
 * document must not stop its own rules or anyone else's. `no_number` marks JSON whose top level holds no number
 * (the usual sign of numbers sent as strings), for the metric only; the evaluator ignores such values itself.
 */
export function parseBody(body: Uint8Array): { value: unknown; kind: BodyKind } {
  if (body.length === 0) return { value: undefined, kind: 'empty' };
  let value: unknown;
  try {
    // A networked bus may hand the bytes over as a plain Uint8Array.
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { value: undefined, kind: 'not_json' };
  }
  if (typeof value === 'number') return { value, kind: 'json' };
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const v of Object.values(value)) if (typeof v === 'number' || (typeof v === 'object' && v !== null)) return { value, kind: 'json' };
  }
  return { value, kind: Array.isArray(value) ? 'json' : 'no_number' };
}

/**
 * The rules pipeline: telemetry (bus `telemetry.>`) → per-device evaluator state → `msdyn_iotalert`.
 *
 * Crash safety rests on three things: the telemetry log holds every acknowledged message with a sequence; each
 * device's state is checkpointed with the last sequence applied to it, and a watermark below which everything was
 * applied; alerts are idempotent on their token. A restart restores the states and replays the log after the
 * watermark (records at or below a device's own sequence are skipped), so what was lost from memory is recomputed
 * and alerts already written are not written again.
 *
 * Several workers share the devices by partition (partitions.ts, docs/scale-out.md): each holds the partitions
 * rendezvous hashing gives it among the live workers (`ccs_ruleworker`), drops live records of the others before
 * they cost anything, and checkpoints a watermark per partition (`ccs_rulewatermark`). A partition changes hands only
 * once its holder has checkpointed and released it (or is gone); the new holder restores the partition's states and
 * replays the log after its watermark, so a hand-over costs a replay of what was not checkpointed, nothing more. One
 * worker alone holds all partitions and behaves as the single worker always did.
 *
 * Work runs in per-device lanes: a device's readings and ticks one at a time and in order (its state is updated in
 * place by the evaluator, its alerts are written in order), different devices' at the same time. A checkpoint takes
 * its snapshot with every lane idle, so a state is never saved ahead of the alerts its readings raised, and the
 * watermark only counts readings whose work is done.
 */
export function createAlertPipeline(deps: AlertPipelineDeps): AlertPipeline {
  const { store, records, system, hub, bus, clock, log } = deps;
  const m = deps.metrics;
  const readingsTotal = m?.counter('ccs_pipeline_readings_total', 'Telemetry records evaluated by the rules pipeline, by body kind.', ['body', 'source']);
  const evaluationSeconds = m?.histogram('ccs_pipeline_evaluation_seconds', 'Rule evaluation time of one reading (all rules of its device).', EVALUATION_BUCKETS);
  const firingsTotal = m?.counter('ccs_pipeline_firings_total', 'Rule firings, by outcome: alert created, duplicate (token seen), suppressed, failed.', ['outcome']);
  const latencySeconds = m?.histogram('ccs_pipeline_reading_to_alert_seconds', 'From the hub enqueuing a reading to its alert being created.', LATENCY_BUCKETS);
  const rulesGauge = m?.gauge('ccs_pipeline_active_rules', 'Active IoT rules loaded into the evaluator.');
  const devicesGauge = m?.gauge('ccs_pipeline_devices', 'Devices with rule state in memory.');
  const partitionsGauge = m?.gauge('ccs_pipeline_partitions_owned', `Device partitions (of ${RULE_PARTITIONS}) this rules worker evaluates.`);
  const workerId = deps.workerId ?? createNodeId();
  const heartbeatMs = deps.heartbeatMs ?? 3000;
  const staleMs = deps.staleMs ?? 15_000;

  const rules = createRuleLoader({ records, system, log, onLoad: (defs) => rulesGauge?.set(defs.length) });
  const devices = createDeviceDirectory({ records, system });
  const writer = createAlertWriter({ store, records, system });

  const states = new Map<string, DeviceState>();
  /** The last telemetry record applied to each device's state: its sequence and enqueued time (null: not known). */
  const applied = new Map<string, { sequence: number; time: number | null }>();
  const dirty = new Set<string>();
  let watermark = 0;
  /** Reported properties per device, and whether the evaluator has been given the latest ones. */
  const reported = new Map<string, { doc: Record<string, unknown>; given: boolean }>();

  // Partitions (partitions.ts): this worker evaluates the devices of the partitions it holds, and only those.
  /** 1 for each partition this worker holds; read for every live record, so an array rather than a set. */
  const held = new Uint8Array(RULE_PARTITIONS);
  let heldCount = 0;
  /** Watermark of each held partition: every record of its devices up to it has been applied. */
  const marks = new Map<number, number>();
  /** The partition watermarks as last written, so a checkpoint writes only those that moved. */
  const writtenMarks = new Map<number, number>();
  /** The watermark of versions before partitioning: the default of a partition without a row of its own. */
  let legacyWatermark = 0;
  const partitionCache = new Map<string, number>();
  function partitionOf(deviceId: string): number {
    let p = partitionCache.get(deviceId);
    if (p === undefined) {
      p = partitionOfDevice(deviceId);
      partitionCache.set(deviceId, p);
    }
    return p;
  }
  const owns = (deviceId: string): boolean => held[partitionOf(deviceId)] === 1;
  const heldList = (): number[] => {
    const list: number[] = [];
    for (let p = 0; p < RULE_PARTITIONS; p++) if (held[p] === 1) list.push(p);
    return list;
  };
  /**
   * Live records received and not yet admitted to a lane: a checkpoint's watermarks stay below them, since records
   * after them may already be done (handlers of different bus partitions run side by side).
   */
  const pending = new Set<TelemetryRecord>();

  // Work runs in per-device lanes: one device's readings and ticks one at a time, in order; different devices'
  // concurrently (up to `concurrency` tasks admitted at once), so alert writes to a networked store overlap.
  const limit = Math.max(1, deps.concurrency ?? DEFAULT_CONCURRENCY);
  const lanes = new Map<string, Promise<void>>();
  let admitted = 0;
  /** Exclusive sections waiting or running: no new task is admitted meanwhile. */
  let paused = 0;
  let admission: (() => void)[] = [];
  let idle: (() => void)[] = [];
  function wake(): void {
    if (admitted === 0) for (const resolve of idle.splice(0)) resolve();
    const waiting = admission;
    admission = [];
    for (const resolve of waiting) resolve();
  }
  /** Resolves once no task is admitted or running. */
  async function drained(): Promise<void> {
    while (admitted > 0) await new Promise<void>((resolve) => idle.push(resolve));
  }
  /**
   * Queues `fn` in the device's lane; resolves once it is admitted (not done), which is the back-pressure a caller
   * feeding many tasks waits on. The returned `done` settles when the task has run; it never rejects.
   */
  async function enqueue(deviceId: string, fn: () => Promise<void>, onError: (e: unknown) => void): Promise<{ done: Promise<void> }> {
    while (paused > 0 || admitted >= limit) await new Promise<void>((resolve) => admission.push(resolve));
    admitted++;
    const task: Promise<void> = (lanes.get(deviceId) ?? Promise.resolve())
      .then(fn)
      .catch(onError)
      .finally(() => {
        if (lanes.get(deviceId) === task) lanes.delete(deviceId);
        admitted--;
        wake();
      });
    lanes.set(deviceId, task);
    return { done: task };
  }
  /**
   * Runs `fn` with every lane idle and nothing admitted until it is done (restoring, checkpoint snapshots).
   * Exclusive sections run one after another.
   */
  let exclusiveChain: Promise<unknown> = Promise.resolve();
  function exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = exclusiveChain.then(async () => {
      paused++;
      try {
        await drained();
        return await fn();
      } finally {
        paused--;
        wake();
      }
    });
    exclusiveChain = run.catch(() => undefined);
    return run;
  }

  const offReported = hub.on('reported', (deviceId, doc) => reported.set(deviceId, { doc, given: false }));

  async function reportedFor(deviceId: string): Promise<Record<string, unknown> | undefined> {
    let entry = reported.get(deviceId);
    if (!entry) {
      let doc: Record<string, unknown> = {};
      try {
        doc = (await hub.getTwinDocument(deviceId)).reported;
      } catch {
        // No identity (telemetry replayed for a deleted device): thresholds fall back to their defaults.
      }
      entry = reported.get(deviceId) ?? { doc, given: false };
      reported.set(deviceId, entry);
    }
    if (entry.given) return undefined; // the state keeps the thresholds it was given last
    entry.given = true;
    return entry.doc;
  }

  async function emit(firings: readonly Firing[], device: DeviceInfo | null, enqueuedTime: number | null): Promise<void> {
    for (const f of firings) {
      try {
        const created = await writer.write(f, device);
        firingsTotal?.inc({ outcome: created ? 'created' : 'duplicate' });
        if (created && enqueuedTime !== null) latencySeconds?.observe(Math.max(0, clock() - enqueuedTime) / 1000);
      } catch (e) {
        firingsTotal?.inc({ outcome: 'failed' });
        log.error({ err: e, deviceId: f.deviceId, rule: f.ruleId, token: f.eventToken }, 'writing an IoT alert failed');
      }
    }
  }

  function noteSuppressed(ev: Evaluation): void {
    if (ev.suppressed > 0) firingsTotal?.inc({ outcome: 'suppressed' }, ev.suppressed);
  }

  async function apply(rec: TelemetryRecord, source: 'live' | 'replay'): Promise<void> {
    const deviceId = rec.deviceId;
    // Not (or no longer) this worker's: its partition was handed over while the record waited for its lane.
    if (!owns(deviceId)) return;
    if (isApplied(applied.get(deviceId), rec)) return; // redelivered, or already replayed
    const evaluator = await rules.current();
    const device = await devices.get(deviceId);
    const body = parseBody(rec.message.body);
    readingsTotal?.inc({ body: body.kind, source });
    const started = performance.now();
    const ev = evaluator.evaluate(states.get(deviceId), {
      deviceId,
      time: rec.enqueuedTime,
      body: body.value,
      messageId: rec.message.messageId ?? null,
      reported: await reportedFor(deviceId),
      device: device === null ? { recordId: null, categoryId: null } : { recordId: device.recordId, categoryId: device.categoryId },
    });
    evaluationSeconds?.observe((performance.now() - started) / 1000);
    if (!states.has(deviceId)) devicesGauge?.set(states.size + 1);
    states.set(deviceId, ev.state);
    applied.set(deviceId, { sequence: rec.sequence, time: rec.enqueuedTime });
    dirty.add(deviceId);
    if (rec.sequence > watermark) watermark = rec.sequence;
    noteSuppressed(ev);
    if (ev.firings.length > 0) await emit(ev.firings, device, source === 'live' ? rec.enqueuedTime : null);
  }

  async function tickDevice(deviceId: string, now: number): Promise<void> {
    const state = states.get(deviceId);
    if (!state || state.due === null || state.due > now) return;
    const ev = (await rules.current()).tick(state, now);
    states.set(deviceId, ev.state);
    dirty.add(deviceId);
    noteSuppressed(ev);
    if (ev.firings.length > 0) await emit(ev.firings, await devices.get(deviceId), null);
  }

  /** Evaluates what time alone changes, in each due device's lane; resolves once all of it is done. */
  async function tick(): Promise<void> {
    const now = clock();
    const done: Promise<void>[] = [];
    for (const [deviceId, state] of states) {
      if (state.due === null || state.due > now) continue;
      const task = await enqueue(deviceId, () => tickDevice(deviceId, now), (e) => log.error({ err: e, deviceId }, 'rules pipeline tick failed'));
      done.push(task.done);
    }
    await Promise.all(done);
  }

  interface Snapshot {
    readonly rows: Row[];
    /** Partition watermarks that moved since last written: [partition, sequence]. */
    readonly marks: [number, number][];
  }

  /**
   * States as they are between tasks: taken with every lane idle, so each matches the alerts already written. The
   * held partitions' watermarks move up to the highest sequence applied, kept below any live record still waiting
   * for its lane. `force`: the watermarks even when no state changed (a partition about to be handed over).
   */
  function snapshot(force = false): Snapshot {
    if (dirty.size === 0 && !force) return { rows: [], marks: [] };
    const rows: Row[] = [];
    const now = clock();
    for (const deviceId of dirty) {
      const state = states.get(deviceId);
      const last = applied.get(deviceId);
      if (state) rows.push({ deviceid: deviceId, state: JSON.stringify(state), sequence: last?.sequence ?? 0, enqueuedtime: last?.time ?? null, updatedon: now, partition: partitionOf(deviceId) });
    }
    dirty.clear();
    let reach = watermark;
    for (const rec of pending) if (rec.sequence - 1 < reach) reach = rec.sequence - 1;
    const moved: [number, number][] = [];
    for (const p of heldList()) {
      const mark = Math.max(marks.get(p) ?? 0, reach);
      marks.set(p, mark);
      if (writtenMarks.get(p) !== mark) moved.push([p, mark]);
    }
    return { rows, marks: moved };
  }

  /**
   * Writes a snapshot in one transaction: the partition watermarks first, each only while this worker still holds
   * the partition (a worker presumed gone must not overwrite the states of the one that took over), then the
   * states, then the installation watermark (the lowest of all partitions', for older readers and downgrades).
   * Checkpoints are written one after another: a later snapshot never lands before an earlier one.
   */
  let writing: Promise<unknown> = Promise.resolve();
  async function write(snap: Snapshot): Promise<void> {
    if (snap.rows.length === 0 && snap.marks.length === 0) return;
    const now = clock();
    const run = writing.then(() =>
      store.transaction(async (tx) => {
        // Watermarks usually move together (to the highest sequence applied): one statement per value, not per partition.
        const taken = new Set<number>();
        const byMark = new Map<number, number[]>();
        for (const [partition, sequence] of snap.marks) byMark.set(sequence, [...(byMark.get(sequence) ?? []), partition]);
        for (const [sequence, partitions] of byMark) {
          const n = await tx.update(RULE_WATERMARK_TABLE.name, { sequence, updatedon: now }, and(isIn('partition', partitions), eq('workerid', workerId)));
          if (n === partitions.length) continue;
          const still = new Set((await tx.select({ table: RULE_WATERMARK_TABLE.name, columns: ['partition'], where: and(isIn('partition', partitions), eq('workerid', workerId)) })).map((r) => Number(r['partition'])));
          for (const p of partitions) if (!still.has(p)) taken.add(p);
        }
        for (const row of snap.rows) {
          if (taken.has(Number(row['partition']))) continue;
          const { deviceid, ...rest } = row;
          if ((await tx.update(RULE_STATE_TABLE.name, rest, eq('deviceid', deviceid ?? ''))) === 0) await tx.insert(RULE_STATE_TABLE.name, row);
        }
        if (snap.marks.length === 0) return;
        const all = await tx.select({ table: RULE_WATERMARK_TABLE.name, columns: ['sequence'] });
        if (all.length < RULE_PARTITIONS) return;
        let low = Infinity;
        for (const r of all) low = Math.min(low, Number(r['sequence'] ?? 0));
        const row = { deviceid: WATERMARK_KEY, state: null, sequence: low, updatedon: now };
        if ((await tx.update(RULE_STATE_TABLE.name, { sequence: low, updatedon: now }, eq('deviceid', WATERMARK_KEY))) === 0) await tx.insert(RULE_STATE_TABLE.name, row);
      }),
    );
    writing = run.catch(() => undefined);
    try {
      await run;
      for (const [p, mark] of snap.marks) if (held[p] === 1 || writtenMarks.has(p)) writtenMarks.set(p, mark);
    } catch (e) {
      // Written again with the next checkpoint; until then a crash only means a longer replay.
      for (const row of snap.rows) dirty.add(String(row['deviceid']));
      throw e;
    }
  }

  /** Set when a networked bus has reconnected, until the held partitions are replayed (resync). */
  let feedGap = false;
  async function checkpoint(): Promise<void> {
    if (feedGap) return; // the states may have skipped what the live feed lost: resync first
    await write(await exclusive(() => snapshot()));
  }

  /** Drops what this worker knows of the devices of `partitions` (run with every lane idle). */
  function forget(partitions: readonly number[]): void {
    const gone = new Set(partitions);
    for (const p of gone) {
      if (held[p] === 1) heldCount--;
      held[p] = 0;
      marks.delete(p);
      writtenMarks.delete(p);
    }
    for (const deviceId of [...applied.keys(), ...states.keys()]) {
      if (!gone.has(partitionOf(deviceId))) continue;
      states.delete(deviceId);
      applied.delete(deviceId);
      dirty.delete(deviceId);
    }
    for (const deviceId of [...reported.keys()]) if (gone.has(partitionOf(deviceId))) reported.delete(deviceId);
    devicesGauge?.set(states.size);
    partitionsGauge?.set(heldCount);
  }

  /** Takes `partitions` with their watermarks (run with every lane idle): live records of their devices are applied from now on. */
  function take(partitions: ReadonlyMap<number, number>): void {
    for (const [p, mark] of partitions) {
      if (held[p] === 0) heldCount++;
      held[p] = 1;
      marks.set(p, mark);
      writtenMarks.set(p, mark);
    }
    partitionsGauge?.set(heldCount);
  }

  /**
   * Restores the checkpointed states of the devices of `partitions`. Rows of versions before partitioning have no
   * partition: theirs is computed, and they are marked changed so that the next checkpoint writes it.
   */
  async function restore(partitions: ReadonlySet<number>): Promise<void> {
    const rows = await store.select({ table: RULE_STATE_TABLE.name, where: or(isIn('partition', [...partitions]), isNull('partition')) });
    for (const row of rows) {
      const deviceId = String(row['deviceid']);
      if (deviceId === WATERMARK_KEY) continue;
      const partition = row['partition'] === null || row['partition'] === undefined ? undefined : Number(row['partition']);
      if (!partitions.has(partition ?? partitionOf(deviceId))) continue;
      const sequence = Number(row['sequence'] ?? 0);
      let state: DeviceState | undefined;
      try {
        state = restoreState(JSON.parse(String(row['state'])));
      } catch {
        state = undefined;
      }
      if (state === undefined || state.deviceId !== deviceId) {
        log.warn({ deviceId }, 'discarding a rule state checkpoint that cannot be read');
        continue;
      }
      states.set(deviceId, state);
      applied.set(deviceId, { sequence, time: typeof row['enqueuedtime'] === 'number' ? row['enqueuedtime'] : null });
      if (partition === undefined) dirty.add(deviceId);
    }
    devicesGauge?.set(states.size);
  }

  /**
   * Applies the records of held partitions in the log after `after`: all of them, or up to the first one the live
   * subscription has received (`until()`: from there on live delivery has them, in order), or until `deadline`
   * (epoch ms of `Date.now()`) has passed. Without a bound, a log that devices keep writing to faster than rules run
   * could be chased for ever.
   */
  async function catchUp(after: number, bounds: { until?: () => number | undefined; deadline?: number } = {}): Promise<number> {
    let n = 0;
    let failure: unknown;
    const onError = (e: unknown) => (failure ??= e);
    try {
      for (;;) {
        const page = await hub.readTelemetry({ afterSequence: after, limit: REPLAY_PAGE });
        if (page.length === 0) return n;
        for (const rec of page) {
          const until = bounds.until?.();
          if (until !== undefined && rec.sequence >= until) return n;
          if (bounds.deadline !== undefined && Date.now() > bounds.deadline) return n;
          if (failure !== undefined) return n;
          after = rec.sequence;
          if (!owns(rec.deviceId)) continue;
          await enqueue(rec.deviceId, () => apply(rec, 'replay'), onError);
          n++;
        }
      }
    } finally {
      await drained();
      if (failure !== undefined) throw failure;
    }
  }

  /**
   * Applies the records of the devices of `partitions` in the log after `after`, to its end, one after another (it
   * runs in an exclusive section, where lanes admit nothing). Live records of those devices wait meanwhile and are
   * recognised as applied afterwards.
   */
  async function replayTaken(partitions: ReadonlySet<number>, after: number): Promise<number> {
    let n = 0;
    for (;;) {
      const page = await hub.readTelemetry({ afterSequence: after, limit: REPLAY_PAGE });
      if (page.length === 0) return n;
      for (const rec of page) {
        after = rec.sequence;
        if (!partitions.has(partitionOf(rec.deviceId))) continue;
        await apply(rec, 'replay');
        n++;
      }
    }
  }

  const workerSubject = `rules.worker.${subjectToken(workerId)}`;
  let responder: Subscription | undefined;

  /**
   * Whether another worker's process is gone: nothing answers on its subject (the bus says so at once), though its
   * row is still fresh (a process killed a moment ago). A worker that does not answer in time is presumed alive:
   * only its heartbeat decides then.
   */
  async function isGone(id: string): Promise<boolean> {
    try {
      await bus.request(`rules.worker.${subjectToken(id)}`, null, { timeoutMs: 2000 });
      return false;
    } catch (e) {
      return e instanceof BusNoResponderError;
    }
  }

  /**
   * One heartbeat: writes this worker's row, removes the rows of workers that are gone, computes the partitions this
   * worker should own among the live ones, hands over those it should no longer (checkpoint, forget, release), and
   * takes those that no live worker holds (compare-and-set on the holder, then restore and replay). A partition
   * another live worker still holds is taken at a later heartbeat, once that worker has handed it over, so one
   * device is never evaluated by two workers at once.
   */
  async function rebalance(phase: 'start' | 'run', firstLive?: () => number | undefined): Promise<void> {
    const now = clock();
    if ((await store.update(RULE_WORKER_TABLE.name, { heartbeat: now }, eq('workerid', workerId))) === 0) {
      try {
        await store.insert(RULE_WORKER_TABLE.name, { workerid: workerId, heartbeat: now, startedon: now });
      } catch (e) {
        if (!(e instanceof DuplicateKeyError)) throw e;
      }
    }
    await store.delete(RULE_WORKER_TABLE.name, and(compare('heartbeat', 'lt', now - staleMs), ne('workerid', workerId)));
    const live = new Set<string>([workerId]);
    for (const r of await store.select({ table: RULE_WORKER_TABLE.name, columns: ['workerid', 'heartbeat'] })) {
      const id = String(r['workerid']);
      if (id === workerId) continue;
      if (await isGone(id)) {
        await store.delete(RULE_WORKER_TABLE.name, and(eq('workerid', id), eq('heartbeat', r['heartbeat'] ?? null)));
        log.warn({ worker: id }, 'a rules worker stopped without leaving; taking its share of the devices');
        continue;
      }
      live.add(id);
    }
    const desired = new Set(partitionsOf(workerId, live));
    const rows = new Map<number, Row>();
    for (const r of await store.select({ table: RULE_WATERMARK_TABLE.name })) rows.set(Number(r['partition']), r);

    // Taken by another worker while this one was presumed gone: its states win, this worker's are dropped unsaved.
    const lostUnsaved = heldList().filter((p) => rows.get(p)?.['workerid'] !== workerId);
    if (lostUnsaved.length > 0) {
      await exclusive(() => forget(lostUnsaved));
      log.warn({ partitions: lostUnsaved.length }, 'rules partitions were taken over by another worker while this one was presumed gone');
    }
    const lost = heldList().filter((p) => !desired.has(p));
    if (lost.length > 0) {
      const snap = await exclusive(() => {
        const s = snapshot(true);
        forget(lost);
        return s;
      });
      // Released only once written: the next holder restores these states and replays after these watermarks.
      await write(snap);
      log.info({ partitions: lost.length, worker: workerId }, 'rules worker handed over partitions');
    }
    // Held in the store but not here (handed over just now, or a hand-over or take that failed earlier): released.
    const stray = [...rows.values()].filter((r) => r['workerid'] === workerId && held[Number(r['partition'])] === 0 && !desired.has(Number(r['partition'])));
    if (stray.length > 0 || lost.length > 0) {
      const release = [...new Set([...lost, ...stray.map((r) => Number(r['partition']))])];
      await store.update(RULE_WATERMARK_TABLE.name, { workerid: null, updatedon: clock() }, and(isIn('partition', release), eq('workerid', workerId)));
    }

    const claimed: number[] = [];
    for (const p of desired) {
      if (held[p] === 1) continue;
      const r = rows.get(p);
      if (r === undefined) {
        try {
          await store.insert(RULE_WATERMARK_TABLE.name, { partition: p, sequence: legacyWatermark, workerid: workerId, updatedon: now });
          claimed.push(p);
        } catch (e) {
          if (!(e instanceof DuplicateKeyError)) throw e; // another worker made it meanwhile: next heartbeat
        }
        continue;
      }
      const holder = r['workerid'] === null || r['workerid'] === undefined ? null : String(r['workerid']);
      if (holder !== null && holder !== workerId && live.has(holder)) continue; // not handed over yet
      if (holder === workerId || (await store.update(RULE_WATERMARK_TABLE.name, { workerid: workerId, updatedon: now }, and(eq('partition', p), eq('workerid', holder)))) === 1) {
        claimed.push(p);
      }
    }
    partitionsGauge?.set(heldCount);
    if (claimed.length === 0) return;
    // Read again after the compare-and-set: the watermark the previous holder wrote before releasing.
    const gained = new Map<number, number>();
    for (const r of await store.select({ table: RULE_WATERMARK_TABLE.name, where: and(isIn('partition', claimed), eq('workerid', workerId)) })) {
      gained.set(Number(r['partition']), Number(r['sequence'] ?? 0));
    }
    if (gained.size === 0) return;
    const parts = new Set(gained.keys());
    const from = Math.min(...gained.values());
    let replayed = 0;
    if (phase === 'start') {
      // Live records wait until the start is done: the replay runs in the lanes, up to the first of them.
      await exclusive(async () => {
        take(gained);
        await restore(parts);
      });
      replayed = await catchUp(from, { until: firstLive });
    } else {
      replayed = await exclusive(async () => {
        take(gained);
        try {
          await restore(parts);
          return await replayTaken(parts, from);
        } catch (e) {
          forget([...parts]); // taken again at the next heartbeat (the row still names this worker)
          throw e;
        }
      });
    }
    log.info({ partitions: parts.size, held: heldCount, replayed, worker: workerId }, 'rules worker took partitions');
  }

  /**
   * Takes the held partitions again as after a crash, because the live feed of a networked bus lost what was
   * published while it was disconnected: a device's next reading would make its state skip the lost ones for good.
   * The checkpointed states are restored and the log replayed after their watermarks, in order; alerts already
   * written are recognised by their tokens. Until this is done no checkpoint is written (`feedGap`).
   */
  async function resync(): Promise<void> {
    const parts = heldList();
    const replayed = parts.length === 0 ? 0 : await exclusive(async () => {
      const stored = new Map<number, number>();
      for (const r of await store.select({ table: RULE_WATERMARK_TABLE.name, where: isIn('partition', parts) })) stored.set(Number(r['partition']), Number(r['sequence'] ?? 0));
      const again = new Map(parts.map((p) => [p, stored.get(p) ?? legacyWatermark]));
      forget(parts);
      take(again);
      const set = new Set(parts);
      await restore(set);
      return replayTaken(set, Math.min(...again.values()));
    });
    feedGap = false;
    log.info({ partitions: parts.length, replayed, worker: workerId }, 'rules worker replayed its partitions after the bus reconnected');
  }

  /** Heartbeats one after another (the timer's and explicit ones), each after a resync the bus asked for. */
  let beating: Promise<unknown> = Promise.resolve();
  function heartbeat(phase: 'start' | 'run' = 'run', firstLive?: () => number | undefined): Promise<void> {
    const run = beating.then(async () => {
      if (feedGap) await resync();
      await rebalance(phase, firstLive);
    });
    beating = run.catch(() => undefined);
    return run;
  }
  const offConnection = bus.onConnection?.((change) => {
    if (change !== 'reconnected' || !started) return;
    feedGap = true;
    const run = beating.then(() => (feedGap ? resync() : undefined));
    beating = run.catch((e: unknown) => log.error({ err: e }, 'rules worker could not replay after the bus reconnected; trying again at the next heartbeat'));
  });

  let subscription: Subscription | undefined;
  let timers: NodeJS.Timeout[] = [];
  let started = false;

  async function halt(): Promise<void> {
    started = false;
    for (const t of timers) clearInterval(t);
    timers = [];
    await subscription?.unsubscribe();
    subscription = undefined;
  }

  /** Stops answering other workers' pings: from now on they take this worker for gone. */
  async function vanish(): Promise<void> {
    await responder?.unsubscribe().catch((e: unknown) => log.warn({ err: e }, 'leaving the rules workers on the bus failed'));
    responder = undefined;
  }

  return {
    tick,
    checkpoint,
    workerId,
    heartbeat: () => heartbeat('run'),
    partitions: heldList,

    async start() {
      if (started) return;
      started = true;
      await store.syncSchema([RULE_STATE_TABLE, RULE_WORKER_TABLE, RULE_WATERMARK_TABLE]);
      const [legacy] = await store.select({ table: RULE_STATE_TABLE.name, where: eq('deviceid', WATERMARK_KEY), limit: 1 });
      legacyWatermark = Number(legacy?.['sequence'] ?? 0);
      // Answers "are you there" from other workers, so that a worker that died is replaced at once, not after staleMs.
      responder = bus.respond(workerSubject, () => true);
      await responder.ready;
      let open!: () => void;
      const ready = new Promise<void>((resolve) => (open = resolve));
      /** The first record live delivery brought: the replay stops there. */
      let firstLive: number | undefined;
      // Subscribed before the replay so that nothing published meanwhile is missed; handled after it. The handler
      // returns once its reading is admitted to its device's lane: the bus's back-pressure, without waiting for
      // the alert writes of one device to let other devices' readings in. Records of devices in partitions other
      // workers hold are dropped here, uncounted.
      subscription = bus.subscribe('telemetry.>', async (payload) => {
        const rec = payload as TelemetryRecord;
        firstLive ??= rec.sequence;
        pending.add(rec);
        try {
          await ready;
          if (!owns(rec.deviceId)) return;
          await enqueue(rec.deviceId, () => apply(rec, 'live'), (e) => log.error({ err: e, deviceId: rec.deviceId, sequence: rec.sequence }, 'rules pipeline could not evaluate a reading'));
        } finally {
          pending.delete(rec);
        }
      });
      await subscription.ready;
      try {
        await heartbeat('start', () => firstLive);
        await tick();
        await checkpoint();
      } finally {
        open();
      }
      const every = (ms: number, what: string, fn: () => Promise<void>) => {
        let running = false;
        const t = setInterval(() => {
          if (running) return; // the last one is still at work: skip a beat rather than pile up
          running = true;
          fn()
            .catch((e: unknown) => log.error({ err: e }, `rules pipeline ${what} failed`))
            .finally(() => {
              running = false;
            });
        }, ms);
        t.unref();
        timers.push(t);
      };
      every(deps.tickMs ?? 1000, 'tick', tick);
      every(deps.checkpointMs ?? 5000, 'checkpoint', checkpoint);
      every(heartbeatMs, 'heartbeat', () => heartbeat('run'));
    },

    async stop() {
      offReported();
      offConnection?.();
      rules.close();
      devices.close();
      if (!started) return;
      await halt();
      await beating;
      // What the bus still held is in the log: apply it now rather than on the next start, for a while (hubs of
      // other processes may still be writing). A failure here must not keep the app from stopping: the next start
      // replays from the last checkpoint anyway.
      try {
        await drained();
        if (heldCount > 0) {
          let from = Infinity;
          for (const mark of marks.values()) from = Math.min(from, mark);
          await catchUp(Math.max(from, watermark), { deadline: Date.now() + STOP_CATCH_UP_MS });
        }
        await checkpoint();
        // Then the partitions are free for the other workers' next heartbeat.
        await store.update(RULE_WATERMARK_TABLE.name, { workerid: null, updatedon: clock() }, eq('workerid', workerId));
        await store.delete(RULE_WORKER_TABLE.name, eq('workerid', workerId));
      } catch (e) {
        log.error({ err: e }, 'rules pipeline could not finish its work before stopping');
      }
      // Only now: while it catches up and checkpoints, the others must not take this worker for gone.
      await vanish();
      await exclusive(() => forget(heldList()));
    },

    async crash() {
      offReported();
      rules.close();
      devices.close();
      if (!started) return;
      await halt();
      await vanish();
      await beating;
      await exclusive(() => forget(heldList()));
    },
  };
}
