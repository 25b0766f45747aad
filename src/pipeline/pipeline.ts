import type { Bus, Subscription } from '../bus/index.js';
import type { Hub, TelemetryRecord } from '../hub/index.js';
import type { Metrics } from '../metrics/index.js';
import type { RecordContext, RecordsService } from '../records/index.js';
import { restoreState, type DeviceState, type Evaluation, type Firing } from '../rules/index.js';
import type { Row, Store } from '../store/index.js';
import { createAlertWriter } from './alert-writer.js';
import { eq } from '../store/index.js';
import { createDeviceDirectory, type DeviceInfo } from './device-directory.js';
import { createRuleLoader } from './rule-loader.js';
import { RULE_STATE_TABLE, WATERMARK_KEY } from './tables.js';

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

  /** States as they are between tasks: taken with every lane idle, so each matches the alerts already written. */
  function snapshot(): Row[] {
    if (dirty.size === 0) return [];
    const rows: Row[] = [];
    const now = clock();
    for (const deviceId of dirty) {
      const state = states.get(deviceId);
      const last = applied.get(deviceId);
      if (state) rows.push({ deviceid: deviceId, state: JSON.stringify(state), sequence: last?.sequence ?? 0, enqueuedtime: last?.time ?? null, updatedon: now });
    }
    rows.push({ deviceid: WATERMARK_KEY, state: null, sequence: watermark, updatedon: now });
    dirty.clear();
    return rows;
  }

  /** Checkpoints one after another: a later snapshot never lands before an earlier one. */
  let writing: Promise<unknown> = Promise.resolve();
  async function checkpoint(): Promise<void> {
    const rows = await exclusive(snapshot);
    if (rows.length === 0) return;
    const write = writing.then(() =>
      store.transaction(async (tx) => {
        for (const row of rows) {
          const { deviceid, ...rest } = row;
          if ((await tx.update(RULE_STATE_TABLE.name, rest, eq('deviceid', deviceid ?? ''))) === 0) await tx.insert(RULE_STATE_TABLE.name, row);
        }
      }),
    );
    writing = write.catch(() => undefined);
    try {
      await write;
    } catch (e) {
      // Written again with the next checkpoint; until then a crash only means a longer replay.
      for (const row of rows) if (row['deviceid'] !== WATERMARK_KEY && !dirty.has(String(row['deviceid']))) dirty.add(String(row['deviceid']));
      throw e;
    }
  }

  async function restore(): Promise<void> {
    for (const row of await store.select({ table: RULE_STATE_TABLE.name })) {
      const deviceId = String(row['deviceid']);
      const sequence = Number(row['sequence'] ?? 0);
      if (deviceId === WATERMARK_KEY) {
        watermark = sequence;
        continue;
      }
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
    }
    devicesGauge?.set(states.size);
  }

  /**
   * Applies the records of the log after the watermark: all of them, or up to the first one the live subscription
   * has received (`until()`: from there on live delivery has them, in order), or until `deadline` (epoch ms of
   * `Date.now()`) has passed. Without a bound, a log that devices keep writing to faster than rules run could be
   * chased for ever.
   */
  async function catchUp(bounds: { until?: () => number | undefined; deadline?: number } = {}): Promise<number> {
    let n = 0;
    let after = watermark;
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
          await enqueue(rec.deviceId, () => apply(rec, 'replay'), onError);
          after = rec.sequence;
          n++;
        }
      }
    } finally {
      await drained();
      if (failure !== undefined) throw failure;
    }
  }

  let subscription: Subscription | undefined;
  let timers: NodeJS.Timeout[] = [];
  let started = false;

  return {
    tick,
    checkpoint,

    async start() {
      if (started) return;
      started = true;
      await store.syncSchema([RULE_STATE_TABLE]);
      let open!: () => void;
      const ready = new Promise<void>((resolve) => (open = resolve));
      /** The first record live delivery brought: the replay stops there. */
      let firstLive: number | undefined;
      // Subscribed before the replay so that nothing published meanwhile is missed; handled after it. The handler
      // returns once its reading is admitted to its device's lane: the bus's back-pressure, without waiting for
      // the alert writes of one device to let other devices' readings in.
      subscription = bus.subscribe('telemetry.>', async (payload) => {
        const rec = payload as TelemetryRecord;
        firstLive ??= rec.sequence;
        await ready;
        await enqueue(rec.deviceId, () => apply(rec, 'live'), (e) => log.error({ err: e, deviceId: rec.deviceId, sequence: rec.sequence }, 'rules pipeline could not evaluate a reading'));
      });
      await subscription.ready;
      try {
        await exclusive(restore);
        const replayed = await catchUp({ until: () => firstLive });
        if (replayed > 0) log.info({ replayed, devices: states.size }, 'rules pipeline replayed telemetry after its checkpoint');
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
    },

    async stop() {
      offReported();
      rules.close();
      devices.close();
      if (!started) return;
      started = false;
      for (const t of timers) clearInterval(t);
      timers = [];
      await subscription?.unsubscribe();
      subscription = undefined;
      // What the bus still held is in the log: apply it now rather than on the next start, for a while (hubs of
      // other processes may still be writing). A failure here must not keep the app from stopping: the next start
      // replays from the last checkpoint anyway.
      try {
        await drained();
        await catchUp({ deadline: Date.now() + STOP_CATCH_UP_MS });
        await checkpoint();
      } catch (e) {
        log.error({ err: e }, 'rules pipeline could not finish its work before stopping');
      }
    },
  };
}
