/**
 * The telemetry → rules → alert pipeline end to end, over MQTT/TLS:
 *
 *   npm run bench:pipeline [-- --devices 1000 --inflight 4 --seconds 10 --rounds 3 --rate 1000 --steady-seconds 20
 *                             --workers 2 --store postgres://… --bus nats://… --profile DIR --no-write]
 *
 * `devices` MQTT.js 5 clients (hand-built SAS tokens, one TLS connection each, over `workers` threads of this process)
 * send QoS 1 thermostat readings (a random walk per device, so values drift across thresholds now and then the way
 * sensors do) to `ccs start` in a child process. The server runs 10 active rules of mixed kinds (threshold, range,
 * duration, window aggregates, rate of change, no data, threshold from a reported property, any/all).
 *
 * Throughput, `rounds` times each, in alternating order: the same load with the rules on; with ten rules of the same
 * kinds whose thresholds no reading reaches (evaluation without alerts); and with no active rule (the baseline:
 * everything but rule evaluation and alert writing). Each device keeps `inflight` messages
 * waiting for their PUBACK (which means: durable in the telemetry log) for `seconds`; then the load stops and the
 * bench waits until the pipeline has evaluated every acknowledged message (its metric) and written every alert.
 * Reported: acknowledged msg/s while sending, and end-to-end msg/s = messages / (first send → last one evaluated).
 *
 * Latency, `rounds` times: a steady `rate` msg/s spread evenly over the devices for `steady-seconds`, rules on.
 * Reading-to-alert latency per alert = the alert's createdon − the reading's enqueued time (both the server's clock;
 * the alert data carries the reading time in ms), for alerts raised by a reading (not by a timer). p50/p99 per round.
 *
 * Medians over rounds; machine, command and load average in the section appended to BENCHMARKS.md.
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import mqtt, { type MqttClient } from 'mqtt';
import { BENCH_ADMIN_TOKEN, HUB_HOST, prepareFleet, type BenchDevice } from './lib/devices.js';
import { cpuSeconds, spawnServer } from './lib/processes.js';
import { appendBenchmark, fmt, log, machine, median, percentile } from './lib/report.js';
import { deleteTestStream } from '../test/helpers/buses.js';

/**
 * The rules: the mix of bench/rules.ts (the evaluator micro-benchmark), with the rate of change at 10 °C a second
 * rather than 0.5 °C: under load a device sends several readings a second, and the rate between two readings that
 * close together swings wide enough to fire on noise (which would make the alert count follow the load).
 */
const CONDITIONS: Record<string, unknown>[] = [
  { measure: 'Temperature', op: 'gt', value: 70 },
  { measure: 'Humidity', op: 'outside', min: 20, max: 80 },
  { measure: 'Temperature', op: 'gt', value: 75, for: 'PT1M' },
  { measure: 'Temperature', aggregate: 'avg', window: 'PT5M', op: 'gt', value: 72 },
  { measure: 'readings.pressure', aggregate: 'max', window: 'PT1M', op: 'gt', value: 1050 },
  { measure: 'Temperature', rateOfChange: 'PT1M', op: 'gt', value: 600 },
  { noDataFor: 'PT10M' },
  { measure: 'Temperature', op: 'gt', value: { property: 'maxTemp', default: 80 } },
  { any: [{ measure: 'readings.vibration', op: 'gt', value: 8 }, { measure: 'readings.pressure', op: 'lt', value: 950 }] },
  // More than 100 readings a minute: true under the throughput load, never at the steady 1 reading a second (where a
  // lower count would turn true for every device in the same second, a burst of alerts that swamps the latency).
  { all: [{ measure: 'Temperature', op: 'gt', value: 60 }, { measure: 'Humidity', aggregate: 'count', window: 'PT1M', op: 'gt', value: 100 }] },
];

/** The same kinds with thresholds no reading reaches: evaluation without alerts, to tell the two costs apart. */
const QUIET: Record<string, unknown>[] = [
  { measure: 'Temperature', op: 'gt', value: 1000 },
  { measure: 'Humidity', op: 'outside', min: -1000, max: 1000 },
  { measure: 'Temperature', op: 'gt', value: 1000, for: 'PT1M' },
  { measure: 'Temperature', aggregate: 'avg', window: 'PT5M', op: 'gt', value: 1000 },
  { measure: 'readings.pressure', aggregate: 'max', window: 'PT1M', op: 'gt', value: 5000 },
  { measure: 'Temperature', rateOfChange: 'PT1M', op: 'gt', value: 1e6 },
  { noDataFor: 'PT1H' },
  { measure: 'Temperature', op: 'gt', value: { property: 'maxTemp', default: 1000 } },
  { any: [{ measure: 'readings.vibration', op: 'gt', value: 1000 }, { measure: 'readings.pressure', op: 'lt', value: -1000 }] },
  { all: [{ measure: 'Temperature', op: 'gt', value: 1000 }, { measure: 'Humidity', aggregate: 'count', window: 'PT1M', op: 'gt', value: 50 }] },
];

// ---------------------------------------------------------------------------------------------------------------
// Load generator thread.

interface WorkerInput {
  readonly script: string;
  readonly port: number;
  readonly ca: string;
  readonly devices: readonly BenchDevice[];
  /** Int32 slots: [2 × index] acknowledged, [2 × index + 1] errors. */
  readonly counters: SharedArrayBuffer;
  readonly index: number;
  readonly seed: number;
}

type Command = { readonly type: 'window'; readonly inflight: number } | { readonly type: 'rate'; readonly perDeviceMs: number } | { readonly type: 'halt' } | { readonly type: 'close' };
type Report = { readonly type: 'ready'; readonly connected: number; readonly failures: readonly string[] } | { readonly type: 'halted'; readonly unacknowledged: number } | { readonly type: 'closed' };

async function loadGenerator(input: WorkerInput): Promise<void> {
  const port = parentPort!;
  const counters = new Int32Array(input.counters);
  const ACKED = 2 * input.index;
  const ERRORS = ACKED + 1;
  let seed = input.seed;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

  interface Device {
    readonly client: MqttClient;
    readonly id: string;
    n: number;
    t: number;
    h: number;
    p: number;
  }
  const devices: Device[] = [];
  const failures: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < input.devices.length) {
        const d = input.devices[next++]!;
        try {
          const client = await mqtt.connectAsync({
            protocol: 'mqtts', host: '127.0.0.1', port: input.port, servername: HUB_HOST, ca: input.ca, clientId: d.deviceId, username: d.username,
            password: d.password, protocolVersion: 4, clean: true, keepalive: 300, reconnectPeriod: 0, connectTimeout: 60_000,
          });
          client.on('error', () => Atomics.add(counters, ERRORS, 1));
          devices.push({ client, id: d.deviceId, n: 0, t: 55 + random() * 20, h: 30 + random() * 40, p: 960 + random() * 80 });
        } catch (e) {
          if (failures.length < 5) failures.push(`${d.deviceId}: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }),
  );
  port.postMessage({ type: 'ready', connected: devices.length, failures } satisfies Report);

  let running = false;
  let outstanding = 0;
  const timers: NodeJS.Timeout[] = [];
  /** The device's next reading: a random walk, now and then across a threshold. */
  const body = (d: Device): Buffer => {
    d.t = clamp(d.t + (random() - 0.5) * 0.6, 50, 85);
    d.h = clamp(d.h + (random() - 0.5) * 3, 10, 90);
    d.p = clamp(d.p + (random() - 0.5) * 8, 930, 1070);
    return Buffer.from(JSON.stringify({
      Temperature: Math.round(d.t * 10) / 10,
      Humidity: Math.round(d.h),
      // Vibration spikes are rare: most alerts come from values drifting across thresholds.
      readings: { pressure: Math.round(d.p), vibration: random() < 0.002 ? 9 : Math.round(random() * 70) / 10 },
    }));
  };
  const send = (d: Device, then?: () => void): void => {
    outstanding++;
    const topic = `devices/${d.id}/messages/events/%24.mid=${d.id}-${input.seed}-${d.n++}`;
    d.client.publish(topic, body(d), { qos: 1 }, (err) => {
      outstanding--;
      Atomics.add(counters, err ? ERRORS : ACKED, 1);
      if (!err && running) then?.();
    });
  };

  port.on('message', (c: Command) => {
    if (c.type === 'window') {
      running = true;
      for (const d of devices) {
        const loop = () => send(d, loop);
        for (let i = 0; i < c.inflight; i++) loop();
      }
    } else if (c.type === 'rate') {
      running = true;
      // Devices spread evenly over the period, each on its own timer.
      devices.forEach((d, i) => {
        const start = setTimeout(() => {
          send(d);
          timers.push(setInterval(() => send(d), c.perDeviceMs));
        }, (c.perDeviceMs * i) / devices.length);
        timers.push(start);
      });
    } else if (c.type === 'halt') {
      running = false;
      for (const t of timers.splice(0)) clearTimeout(t);
      void (async () => {
        const end = performance.now() + 30_000;
        while (outstanding > 0 && performance.now() < end) await new Promise((r) => setTimeout(r, 20));
        port.postMessage({ type: 'halted', unacknowledged: outstanding } satisfies Report);
      })();
    } else if (c.type === 'close') {
      void Promise.all(devices.map((d) => d.client.endAsync(true).catch(() => undefined))).then(() => port.postMessage({ type: 'closed' } satisfies Report));
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Main thread.

/** Steady sending before latencies count. */
const LATENCY_WARMUP_MS = 5000;

type Mode = 'off' | 'quiet' | 'on';

interface ThroughputRound {
  /** Acknowledged msg/s while sending. */
  readonly acked: number;
  /** Messages / (first send → all evaluated and their alerts written). */
  readonly endToEnd: number;
  /** Seconds from the last PUBACK to the pipeline having evaluated everything. */
  readonly drainSeconds: number;
  readonly alertsPerSecond: number;
  readonly serverCores: number;
  readonly serverUsPerMessage: number;
  readonly errors: number;
}

interface LatencyRound {
  readonly sentRate: number;
  readonly alerts: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      devices: { type: 'string', default: '1000' },
      inflight: { type: 'string', default: '4' },
      seconds: { type: 'string', default: '10' },
      rounds: { type: 'string', default: '3' },
      rate: { type: 'string', default: '1000' },
      'steady-seconds': { type: 'string', default: '20' },
      workers: { type: 'string', default: '2' },
      store: { type: 'string' },
      /** A NATS JetStream server for the bus (`nats://…`), instead of the in-process bus. */
      bus: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
      /** Writes a V8 CPU profile of the server into this directory when it stops (`--cpu-prof`). */
      profile: { type: 'string' },
    },
  });
  const DEVICES = Number(args.devices);
  const INFLIGHT = Number(args.inflight);
  const SECONDS = Number(args.seconds);
  const ROUNDS = Number(args.rounds);
  const RATE = Number(args.rate);
  const STEADY = Number(args['steady-seconds']);
  const WORKERS = Math.max(1, Math.min(Number(args.workers), DEVICES));
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  const fleet = await prepareFleet(DEVICES);
  const storeUrl = args.store ?? `sqlite:${join(fleet.dataDir, 'ccs.db')}`;
  const engine = storeUrl.startsWith('sqlite:') ? 'SQLite' : 'PostgreSQL';
  log(`${DEVICES} devices ready in ${fleet.dataDir}; store ${engine}`);
  if (args.store) {
    // The fleet's identities live in its SQLite file: the same ones (same keys, so the same SAS tokens) go into the
    // store under test.
    const { createStore } = await import('../src/store/index.js');
    const { createApp } = await import('../src/app.js');
    const { loadConfig } = await import('../src/config/index.js');
    const local = createStore(`sqlite:${join(fleet.dataDir, 'ccs.db')}`);
    const keys = await local.select({ table: 'ccs_hubdevice', columns: ['deviceid', 'primarykey'] });
    await local.close();
    const app = await createApp(loadConfig(new Map([['data-dir', fleet.dataDir], ['store', storeUrl], ['log-level', 'warn'], ['admin-token', BENCH_ADMIN_TOKEN]]), {}));
    try {
      for (const k of keys) {
        const deviceId = String(k['deviceid']);
        if (!(await app.hub.registry.get(deviceId))) await app.hub.registry.create({ deviceId, primaryKey: String(k['primarykey']) });
      }
    } finally {
      await app.stop();
    }
    log(`${keys.length} device identities in the ${engine} store`);
  }
  const server = await spawnServer('bench/lib/serve-ccs.ts', [
    'start', '--data-dir', fleet.dataDir, '--store', storeUrl, '--http-port', '0', '--https-port', '0', '--mqtts-port', '0', '--host', '127.0.0.1',
    '--hub-hostname', HUB_HOST, '--admin-token', BENCH_ADMIN_TOKEN, '--log-level', 'warn', '--rate-limit', '0',
    ...(args.bus ? ['--bus', args.bus, '--bus-prefix', `bench${process.pid}`] : []),
  ], {
    nofile: 65536,
    ready: /Web API (http:\/\/[^/\s]+)\/api.* devices mqtts:\/\/[^:]+:(\d+)/,
    nodeArgs: args.profile ? ['--cpu-prof', `--cpu-prof-dir=${args.profile}`] : [],
  });
  const base = server.match[1]!;
  const mqttsPort = Number(server.match[2]);
  const api = async (path: string, init: RequestInit = {}): Promise<Response> => {
    const res = await fetch(`${base}${path.startsWith('/') ? path : `/api/data/v9.2/${path}`}`, {
      ...init,
      headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}`, 'content-type': 'application/json', ...init.headers },
    });
    if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${await res.text()}`);
    return res;
  };
  const metric = async (name: string, match = ''): Promise<number> => {
    const text = await (await api('/metrics')).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      if ((line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && line.includes(match)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
  };

  const workers: Worker[] = [];
  try {
    const rules = new Map<Mode, string[]>([['on', []], ['quiet', []]]);
    for (const [mode, list] of [['on', CONDITIONS], ['quiet', QUIET]] as const) {
      for (const [i, c] of list.entries()) {
        const res = await api('ccs_iotrules', {
          method: 'POST',
          body: JSON.stringify({ ccs_name: `bench ${mode} ${i}`, ccs_condition: JSON.stringify(c), ccs_ruleoutput: `Out${i}`, statecode: 1, statuscode: 2 }),
        });
        rules.get(mode)!.push(/\(([^)]+)\)$/.exec(res.headers.get('odata-entityid')!)![1]!);
      }
    }
    /** Activates the rule set of `mode` (none for 'off') and deactivates the other. */
    const setRules = async (mode: Mode) => {
      for (const [set, ids] of rules) {
        for (const id of ids) await api(`ccs_iotrules(${id})`, { method: 'PATCH', body: JSON.stringify(set === mode ? { statecode: 0, statuscode: 1 } : { statecode: 1, statuscode: 2 }) });
      }
    };

    // Load generator threads, connected once for the whole run.
    const counters = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * 2 * WORKERS);
    const view = new Int32Array(counters);
    const total = (slot: 0 | 1) => view.reduce((n, v, i) => (i % 2 === slot ? n + v : n), 0);
    const slices: BenchDevice[][] = Array.from({ length: WORKERS }, () => []);
    fleet.devices.forEach((d, i) => slices[i % WORKERS]!.push(d));
    const ready: Promise<Report>[] = [];
    slices.forEach((devices, index) => {
      const input: WorkerInput = { script: import.meta.url, port: mqttsPort, ca: fleet.ca, devices, counters, index, seed: 1000 + index };
      const w = new Worker(new URL('./lib/ts-worker.mjs', import.meta.url), { workerData: input });
      ready.push(new Promise((resolve) => w.once('message', resolve)));
      workers.push(w);
    });
    const connected = (await Promise.all(ready)) as Extract<Report, { type: 'ready' }>[];
    const n = connected.reduce((s, r) => s + r.connected, 0);
    if (n < DEVICES) throw new Error(`only ${n} of ${DEVICES} devices connected: ${connected.flatMap((r) => r.failures).join('; ')}`);
    log(`${n} devices connected over ${WORKERS} load generator thread(s)`);
    const command = (c: Command): void => {
      for (const w of workers) w.postMessage(c);
    };
    /** Stops sending; resolves, once what is in flight has come back, with how many never did. */
    const halt = async (): Promise<number> => {
      const replies = workers.map((w) => new Promise<Report>((resolve) => w.once('message', resolve)));
      command({ type: 'halt' });
      return ((await Promise.all(replies)) as Extract<Report, { type: 'halted' }>[]).reduce((s, r) => s + r.unacknowledged, 0);
    };
    /** Waits until the pipeline has evaluated `n` readings in all (and so written their alerts). */
    const evaluatedTo = async (n: number): Promise<void> => {
      const end = Date.now() + 600_000;
      while ((await metric('ccs_pipeline_readings_total')) < n) {
        if (Date.now() > end) throw new Error('the pipeline did not catch up within 10 minutes');
        await sleep(50);
      }
    };

    // Throughput: rules off (baseline), rules that never fire, and the rules, in alternating order.
    const results = new Map<Mode, ThroughputRound[]>([['off', []], ['quiet', []], ['on', []]]);
    for (let r = 1; r <= ROUNDS; r++) {
      for (const mode of r % 2 === 1 ? (['off', 'quiet', 'on'] as const) : (['on', 'quiet', 'off'] as const)) {
        await setRules(mode);
        const e0 = await metric('ccs_pipeline_readings_total');
        const f0 = await metric('ccs_pipeline_firings_total', 'outcome="created"');
        const a0 = total(0);
        const x0 = total(1);
        const c0 = cpuSeconds(server.pid);
        const t0 = performance.now();
        command({ type: 'window', inflight: INFLIGHT });
        await sleep(SECONDS * 1000);
        const unacknowledged = await halt();
        const t1 = performance.now();
        const sent = total(0) - a0;
        await evaluatedTo(e0 + sent);
        const t2 = performance.now();
        const c1 = cpuSeconds(server.pid);
        const alerts = (await metric('ccs_pipeline_firings_total', 'outcome="created"')) - f0;
        const result: ThroughputRound = {
          acked: sent / ((t1 - t0) / 1000),
          endToEnd: sent / ((t2 - t0) / 1000),
          drainSeconds: (t2 - t1) / 1000,
          alertsPerSecond: alerts / ((t2 - t0) / 1000),
          serverCores: (c1 - c0) / ((t2 - t0) / 1000),
          serverUsPerMessage: ((c1 - c0) / Math.max(1, sent)) * 1e6,
          errors: total(1) - x0 + unacknowledged,
        };
        results.get(mode)!.push(result);
        log(`round ${r}, rules ${mode}: ${fmt(result.acked)} acked msg/s, ${fmt(result.endToEnd)} end-to-end msg/s, drained in ${result.drainSeconds.toFixed(1)} s, ` +
          `${fmt(alerts)} alerts, server ${result.serverCores.toFixed(2)} cores = ${result.serverUsPerMessage.toFixed(0)} µs/msg`);
        await sleep(1000);
      }
    }

    // Latency at a steady rate, rules on.
    await setRules('on');
    const { createStore } = await import('../src/store/index.js');
    const store = createStore(storeUrl);
    const latency: LatencyRound[] = [];
    try {
      const byRule = new Map<string, number>();
      for (const row of await store.select({ table: 'msdyn_iotalert', columns: ['msdyn_alertdata'] })) {
        const out = String((JSON.parse(String(row['msdyn_alertdata'])) as { ruleoutput?: string }).ruleoutput);
        byRule.set(out, (byRule.get(out) ?? 0) + 1);
      }
      log(`alerts so far by rule: ${[...byRule].sort().map(([k, v]) => `${k} ${v}`).join(', ')}`);
      for (let r = 1; r <= ROUNDS; r++) {
        const e0 = await metric('ccs_pipeline_readings_total');
        const a0 = total(0);
        const t0 = performance.now();
        command({ type: 'rate', perDeviceMs: (DEVICES / RATE) * 1000 });
        // Alerts of the first seconds are left out: rule states that a change of the rule set restarted fire at once,
        // for many devices together.
        await sleep(LATENCY_WARMUP_MS);
        const since = Date.now();
        await sleep(STEADY * 1000);
        await halt();
        const sent = total(0) - a0;
        const sentRate = sent / ((performance.now() - t0) / 1000);
        await evaluatedTo(e0 + sent);
        const rows = await store.select({
          table: 'msdyn_iotalert',
          columns: ['createdon', 'msdyn_alertdata'],
          where: { kind: 'compare', op: 'ge', left: { kind: 'column', column: 'createdon' }, right: { kind: 'value', value: since } },
        });
        const ms: number[] = [];
        const byRule = new Map<string, number>();
        for (const row of rows) {
          const data = JSON.parse(String(row['msdyn_alertdata'])) as { time?: string; eventtoken?: string; ruleoutput?: string };
          if (!data.time || String(data.eventtoken).startsWith('tick:')) continue; // raised by a timer, not a reading
          ms.push(Number(row['createdon']) - Date.parse(data.time));
          byRule.set(String(data.ruleoutput), (byRule.get(String(data.ruleoutput)) ?? 0) + 1);
        }
        log(`latency round ${r} alerts by rule: ${[...byRule].sort().map(([k, v]) => `${k} ${v}`).join(', ')}`);
        const sorted = Float64Array.from(ms).sort();
        const round: LatencyRound = { sentRate, alerts: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN };
        latency.push(round);
        log(`latency round ${r}: ${fmt(sentRate)} msg/s sent, ${round.alerts} alerts from readings, p50 ${round.p50.toFixed(1)} ms, p99 ${round.p99.toFixed(1)} ms, max ${round.max.toFixed(0)} ms`);
        await sleep(1000);
      }
    } finally {
      await store.close();
    }

    const m = (list: readonly ThroughputRound[], f: (r: ThroughputRound) => number) => median(list.map(f));
    const row = (label: string, list: readonly ThroughputRound[]) =>
      `| ${label} | ${fmt(m(list, (r) => r.acked))} | ${fmt(m(list, (r) => r.endToEnd))} | ${m(list, (r) => r.drainSeconds).toFixed(1)} s | ${fmt(m(list, (r) => r.alertsPerSecond))} | ` +
      `${m(list, (r) => r.serverCores).toFixed(2)} | ${m(list, (r) => r.serverUsPerMessage).toFixed(0)} µs | ${list.reduce((s, r) => s + r.errors, 0)} |`;
    const on = results.get('on')!;
    const off = results.get('off')!;
    const quiet = results.get('quiet')!;
    const paired = median(on.map((r, i) => r.endToEnd / off[i]!.endToEnd));
    const quietPaired = median(quiet.map((r, i) => r.endToEnd / off[i]!.endToEnd));
    const commandLine = `npm run bench:pipeline -- --devices ${DEVICES} --inflight ${INFLIGHT} --seconds ${SECONDS} --rounds ${ROUNDS} --rate ${RATE} --steady-seconds ${STEADY} --workers ${WORKERS}` +
      (args.store ? ' --store postgres://…' : '') + (args.bus ? ' --bus nats://…' : '');
    const section = [
      `## Telemetry → rules → alerts, end to end (${engine}${args.bus ? ', NATS JetStream' : ''}) — ${new Date().toISOString().slice(0, 10)}`,
      '',
      `Machine: ${machine()}; load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}. The machine is shared with other work running at the same time: ` +
        'absolute rates move with it; the same-run comparison (rules on against off, alternating rounds) much less.',
      `Command: \`${commandLine}\``,
      `Load: ${fmt(DEVICES)} devices, one MQTT.js 5 TLS connection each over ${WORKERS} load generator thread(s), QoS 1 thermostat readings (a random walk per device: ` +
        'Temperature, Humidity, readings.pressure, readings.vibration). 10 active rules: threshold, range, 1-minute duration, 5-minute average, 1-minute max, rate of change, ' +
        'no data for 10 minutes, threshold from a reported property, any, all (with a count over 1 minute); 60 s duplicate suppression; and for comparison ten rules of the same kinds whose thresholds no reading reaches. Server: `ccs start` in a child process, ' +
        `${engine} store, ${args.bus ? 'NATS JetStream bus (a local nats-server on the same machine)' : 'in-process bus'}.`,
      '',
      `**Throughput**: ${INFLIGHT} unacknowledged per device for ${SECONDS} s, then until the pipeline has evaluated everything; medians of ${ROUNDS} rounds. ` +
        'End-to-end = messages / (first send → every message durable, evaluated and its alerts written).',
      '',
      '| rules | acknowledged msg/s while sending | end-to-end msg/s | pipeline done after the last PUBACK | alerts/s | server cores | server CPU per message | errors |',
      '|---|---|---|---|---|---|---|---|',
      row('10 active (mixed kinds)', on),
      row('10 active of the same kinds that never fire', quiet),
      row('baseline: no active rule', off),
      '',
      `End to end, per-round pairs (medians): rules / baseline ${(paired * 100).toFixed(0)}%, never-firing rules / baseline ${(quietPaired * 100).toFixed(0)}%. ` +
        `Per round, end-to-end msg/s: rules ${on.map((r) => fmt(r.endToEnd)).join(' / ')}; never-firing ${quiet.map((r) => fmt(r.endToEnd)).join(' / ')}; ` +
        `baseline ${off.map((r) => fmt(r.endToEnd)).join(' / ')}.`,
      '',
      `**Reading-to-alert latency** at a steady ${fmt(RATE)} msg/s (${fmt(RATE / DEVICES, 2)} per device per second) for ${STEADY} s after ${LATENCY_WARMUP_MS / 1000} s of warm-up, ` +
        `rules on, ${ROUNDS} rounds: alert createdon − reading enqueued time, alerts raised by readings.`,
      '',
      '| round | msg/s sent | alerts | p50 | p99 | max |',
      '|---|---|---|---|---|---|',
      ...latency.map((l, i) => `| ${i + 1} | ${fmt(l.sentRate)} | ${l.alerts} | ${l.p50.toFixed(1)} ms | ${l.p99.toFixed(1)} ms | ${l.max.toFixed(0)} ms |`),
      `| median | ${fmt(median(latency.map((l) => l.sentRate)))} | ${median(latency.map((l) => l.alerts))} | ${median(latency.map((l) => l.p50)).toFixed(1)} ms | ` +
        `${median(latency.map((l) => l.p99)).toFixed(1)} ms | ${median(latency.map((l) => l.max)).toFixed(0)} ms |`,
      '',
    ].join('\n');
    process.stdout.write(`${section}\n`);
    if (!args['no-write']) appendBenchmark(section);
  } finally {
    await Promise.all(workers.map((w) => new Promise<void>((resolve) => {
      w.once('message', () => resolve());
      w.postMessage({ type: 'close' } satisfies Command);
      setTimeout(resolve, 10_000).unref();
    })));
    await Promise.all(workers.map((w) => w.terminate()));
    await server.stop();
    if (args.bus) await deleteTestStream(args.bus, `bench${process.pid}`);
    fleet.dispose();
  }
}

if (isMainThread) await main();
else await loadGenerator(workerData as WorkerInput);
