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

/** Bucket bounds for one rule evaluation (seconds): it takes microseconds. */
const EVALUATION_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.05];
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const REPLAY_PAGE = 5000;

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
 * All work (readings, ticks, checkpoints) runs one item at a time: states are updated in place by the evaluator and
 * a device's alerts are written in order.
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
  /** Last telemetry sequence applied to each device's state. */
  const applied = new Map<string, number>();
  const dirty = new Set<string>();
  let watermark = 0;
  /** Reported properties per device, and whether the evaluator has been given the latest ones. */
  const reported = new Map<string, { doc: Record<string, unknown>; given: boolean }>();

  let chain: Promise<unknown> = Promise.resolve();
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = chain.then(fn);
    chain = next.catch(() => undefined);
    return next;
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
    if (rec.sequence <= (applied.get(deviceId) ?? 0)) return; // redelivered, or already replayed
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
    applied.set(deviceId, rec.sequence);
    dirty.add(deviceId);
    if (rec.sequence > watermark) watermark = rec.sequence;
    noteSuppressed(ev);
    if (ev.firings.length > 0) await emit(ev.firings, device, source === 'live' ? rec.enqueuedTime : null);
  }

  async function tick(): Promise<void> {
    const now = clock();
    let evaluator: Awaited<ReturnType<typeof rules.current>> | undefined;
    for (const [deviceId, state] of states) {
      if (state.due === null || state.due > now) continue;
      evaluator ??= await rules.current();
      const ev = evaluator.tick(state, now);
      states.set(deviceId, ev.state);
      dirty.add(deviceId);
      noteSuppressed(ev);
      if (ev.firings.length > 0) await emit(ev.firings, await devices.get(deviceId), null);
    }
  }

  async function checkpoint(): Promise<void> {
    if (dirty.size === 0) return;
    const rows: Row[] = [];
    const now = clock();
    for (const deviceId of dirty) {
      const state = states.get(deviceId);
      if (state) rows.push({ deviceid: deviceId, state: JSON.stringify(state), sequence: applied.get(deviceId) ?? 0, updatedon: now });
    }
    rows.push({ deviceid: WATERMARK_KEY, state: null, sequence: watermark, updatedon: now });
    dirty.clear();
    try {
      await store.transaction(async (tx) => {
        for (const row of rows) {
          const { deviceid, ...rest } = row;
          if ((await tx.update(RULE_STATE_TABLE.name, rest, eq('deviceid', deviceid ?? ''))) === 0) await tx.insert(RULE_STATE_TABLE.name, row);
        }
      });
    } catch (e) {
      // Written again with the next checkpoint; until then a crash only means a longer replay.
      for (const row of rows) if (row['deviceid'] !== WATERMARK_KEY) dirty.add(String(row['deviceid']));
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
      applied.set(deviceId, sequence);
    }
    devicesGauge?.set(states.size);
  }

  /** Applies every record of the log after the watermark. */
  async function catchUp(): Promise<number> {
    let n = 0;
    for (;;) {
      const page = await hub.readTelemetry({ afterSequence: watermark, limit: REPLAY_PAGE });
      if (page.length === 0) return n;
      for (const rec of page) {
        await apply(rec, 'replay');
        if (rec.sequence > watermark) watermark = rec.sequence;
      }
      n += page.length;
    }
  }

  let subscription: Subscription | undefined;
  let timers: NodeJS.Timeout[] = [];
  let started = false;

  return {
    tick: () => serial(tick),
    checkpoint: () => serial(checkpoint),

    async start() {
      if (started) return;
      started = true;
      await store.syncSchema([RULE_STATE_TABLE]);
      let open!: () => void;
      const ready = new Promise<void>((resolve) => (open = resolve));
      // Subscribed before the replay so that nothing published meanwhile is missed; handled after it.
      subscription = bus.subscribe('telemetry.>', async (payload) => {
        await ready;
        await serial(() => apply(payload as TelemetryRecord, 'live'));
      });
      await subscription.ready;
      try {
        await serial(async () => {
          await restore();
          const replayed = await catchUp();
          if (replayed > 0) log.info({ replayed, devices: states.size }, 'rules pipeline replayed telemetry after its checkpoint');
          await tick();
          await checkpoint();
        });
      } finally {
        open();
      }
      const every = (ms: number, what: string, fn: () => Promise<void>) => {
        const t = setInterval(() => {
          serial(fn).catch((e: unknown) => log.error({ err: e }, `rules pipeline ${what} failed`));
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
      // What the bus still held is in the log: apply it now rather than on the next start. A failure here must not
      // keep the app from stopping: the next start replays from the last checkpoint anyway.
      await serial(async () => {
        await catchUp();
        await checkpoint();
      }).catch((e: unknown) => log.error({ err: e }, 'rules pipeline could not finish its work before stopping'));
    },
  };
}
