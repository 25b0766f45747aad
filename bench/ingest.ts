/**
 * Device telemetry ingest over MQTT/TLS (issue 3, acceptance "Benchmarks").
 *
 *   npm run bench:ingest [-- --devices 1000 --inflight 4,16 --seconds 5 --warmup 2 --rounds 3 --workers 2
 *                           --payload-bytes 0 --server-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"]
 *
 * `--compare-root <dir>` adds a third server: ccs from another copy of the sources (say, before a change), for an A/B
 * under the same load in the same run; `--compare-node-args` gives that server other node flags (`--compare-root .` with
 * `--compare-node-args=--max-semi-space-size=64` measures a V8 setting). `--server-node-args` go to every server's node (e.g. a CPU profile of each; read it with bench/lib/cpuprofile.ts).
 * `devices` MQTT.js 5 clients (hand-built SAS tokens, one TLS connection each, spread over `workers` threads of this
 * process) publish QoS 1 telemetry on `devices/{id}/messages/events/`, each keeping `inflight` messages waiting for
 * their PUBACK (a list measures each window in turn: a device SDK sends one or a few at a time, a gateway many). Two servers, each in its own child process, receive the same load in alternating rounds:
 *   - ccs (`ccs start`, SQLite store): a PUBACK means the message is committed to the telemetry log (durable);
 *   - the baseline: a bare Aedes 1.x broker over TLS with the same certificate, accepting every CONNECT, no
 *     subscribers, in-memory.
 * Per round: messages acknowledged per second, PUBACK latency p50/p99, and the server's CPU time per message (read
 * from /proc, so a busy shared machine shows up as lower throughput but not as higher cost). Reported: medians over
 * rounds, and ccs as a fraction of the baseline. Appended to BENCHMARKS.md.
 */
import { cpSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { BENCH_ADMIN_TOKEN, HUB_HOST, prepareFleet, type BenchDevice } from './lib/devices.js';
import type { IngestWorkerInput, IngestWorkerReport } from './lib/ingest-worker.js';
import { cpuSeconds, spawnServer, type ChildServer } from './lib/processes.js';
import { appendBenchmark, fmt, log, machine, median, percentile } from './lib/report.js';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    inflight: { type: 'string', default: '4,16' },
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    workers: { type: 'string', default: '2' },
    'payload-bytes': { type: 'string', default: '0' },
    'server-node-args': { type: 'string', default: '' },
    only: { type: 'string', default: 'both' },
    'compare-root': { type: 'string' },
    'compare-node-args': { type: 'string' },
    'no-write': { type: 'boolean', default: false },
  },
});
const DEVICES = Number(args.devices);
/** In-flight windows to measure, each a table of its own. */
const INFLIGHT = args.inflight.split(',').map(Number);
const SECONDS = Number(args.seconds);
const WARMUP = Number(args.warmup);
const ROUNDS = Number(args.rounds);
const WORKERS = Math.max(1, Math.min(Number(args.workers), DEVICES));
const SERVER_NODE_ARGS = args['server-node-args'].split(' ').filter(Boolean);

/** A thermostat reading, padded with a `pad` field to `--payload-bytes` when asked. */
function payload(): string {
  const reading = { Temperature: 68.4, Humidity: 44.9 };
  const bytes = Number(args['payload-bytes']);
  const base = JSON.stringify(reading);
  return bytes > base.length + 10 ? JSON.stringify({ ...reading, pad: 'x'.repeat(bytes - base.length - 10) }) : base;
}

interface RoundResult {
  readonly rate: number;
  readonly p50: number;
  readonly p99: number;
  /** Server CPU, cores busy on average while measuring. */
  readonly serverCores: number;
  /** Server CPU time per acknowledged message, microseconds. */
  readonly serverUsPerMessage: number;
  /** Load generator (this process) CPU, cores. */
  readonly clientCores: number;
  readonly errors: number;
}

function split<T>(items: readonly T[], parts: number): T[][] {
  const out: T[][] = Array.from({ length: parts }, () => []);
  items.forEach((item, i) => out[i % parts]!.push(item));
  return out;
}

async function round(name: string, server: ChildServer, port: number, devices: readonly BenchDevice[], ca: string, inflight: number): Promise<RoundResult> {
  const counters = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * 2 * WORKERS);
  const view = new Int32Array(counters);
  const body = payload();
  const workers = split(devices, WORKERS).map((slice, index) => {
    const input: IngestWorkerInput = {
      host: '127.0.0.1', port, servername: HUB_HOST, ca, devices: slice, inflight, payload: body, counters, index, connectConcurrency: 50,
    };
    return new Worker(new URL('./lib/ts-worker.mjs', import.meta.url), { workerData: { ...input, script: new URL('./lib/ingest-worker.ts', import.meta.url).href } });
  });
  const reports = workers.map(
    (w) =>
      new Promise<IngestWorkerReport[]>((resolve, reject) => {
        const got: IngestWorkerReport[] = [];
        w.on('message', (m: IngestWorkerReport) => {
          got.push(m);
          if (m.type === 'done') resolve(got);
        });
        w.on('error', reject);
      }),
  );
  const ready = await Promise.all(
    workers.map((w) => new Promise<Extract<IngestWorkerReport, { type: 'ready' }>>((resolve) => w.once('message', resolve))),
  );
  const connected = ready.reduce((n, r) => n + r.connected, 0);
  if (connected < devices.length) {
    for (const w of workers) w.postMessage('stop');
    await Promise.all(reports);
    throw new Error(`${name}: only ${connected} of ${devices.length} devices connected: ${ready.flatMap((r) => r.failures).join('; ')}`);
  }
  const total = (slot: 0 | 1) => view.reduce((n, v, i) => (i % 2 === slot ? n + v : n), 0);

  for (const w of workers) w.postMessage('go');
  await new Promise((r) => setTimeout(r, WARMUP * 1000));
  for (const w of workers) w.postMessage('measure');
  const m0 = process.hrtime.bigint() / 1000n;
  const a0 = total(0);
  const e0 = total(1);
  const t0 = performance.now();
  const s0 = cpuSeconds(server.pid);
  const c0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const a1 = total(0);
  const e1 = total(1);
  const t1 = performance.now();
  const s1 = cpuSeconds(server.pid);
  const c1 = process.cpuUsage(c0);
  for (const w of workers) w.postMessage('stop');
  // For reading a server CPU profile of this stretch only: bench/lib/cpuprofile.ts --window <from>,<to>.
  log(`${name}: measured from ${m0} to ${process.hrtime.bigint() / 1000n} (monotonic µs)`);
  const done = (await Promise.all(reports)).map((r) => r.at(-1) as Extract<IngestWorkerReport, { type: 'done' }>);
  await Promise.all(workers.map((w) => w.terminate()));

  const all = new Float64Array(done.reduce((n, d) => n + d.latencies.length, 0));
  let at = 0;
  for (const d of done) {
    all.set(d.latencies, at);
    at += d.latencies.length;
  }
  all.sort();
  const seconds = (t1 - t0) / 1000;
  const acked = a1 - a0;
  return {
    rate: acked / seconds,
    p50: percentile(all, 50),
    p99: percentile(all, 99),
    serverCores: (s1 - s0) / seconds,
    serverUsPerMessage: ((s1 - s0) / Math.max(1, acked)) * 1e6,
    clientCores: (c1.user + c1.system) / 1e6 / seconds,
    errors: e1 - e0 + done.reduce((n, d) => n + d.unacknowledged, 0),
  };
}

function summary(results: readonly RoundResult[]): RoundResult {
  const m = (f: (r: RoundResult) => number) => median(results.map(f));
  return {
    rate: m((r) => r.rate), p50: m((r) => r.p50), p99: m((r) => r.p99), serverCores: m((r) => r.serverCores),
    serverUsPerMessage: m((r) => r.serverUsPerMessage), clientCores: m((r) => r.clientCores), errors: results.reduce((n, r) => n + r.errors, 0),
  };
}

function describe(r: RoundResult): string {
  return `${fmt(r.rate)} msg/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, server ${r.serverCores.toFixed(2)} cores = ${r.serverUsPerMessage.toFixed(1)} µs/msg, load generator ${r.clientCores.toFixed(2)} cores`;
}

const CCS_LABEL = 'ccs (`ccs start`, SQLite; PUBACK = committed to the telemetry log)';
const BARE_LABEL = 'baseline: bare Aedes 1.x over TLS, same certificate, accept-all, no subscribers, in-memory';

/** One table per in-flight window: a row per server, then ccs against the baseline. */
function report(inflight: number, names: readonly string[], results: ReadonlyMap<string, readonly RoundResult[]>): string {
  const row = (name: string, r: RoundResult) =>
    `| ${name} | ${fmt(r.rate)} | ${r.p50.toFixed(1)} ms | ${r.p99.toFixed(1)} ms | ${r.serverCores.toFixed(2)} | ${r.serverUsPerMessage.toFixed(1)} µs | ${fmt(1e6 / r.serverUsPerMessage)} | ${r.clientCores.toFixed(2)} | ${r.errors} |`;
  const lines = [
    `**${inflight} unacknowledged per device** (${fmt(DEVICES * inflight)} in flight)`,
    '',
    '| server | acknowledged msg/s | PUBACK p50 | PUBACK p99 | server cores | server CPU per message | msg/s per server core | load generator cores | errors |',
    '|---|---|---|---|---|---|---|---|---|',
    ...names.map((n) => row(n === 'ccs' ? CCS_LABEL : n === 'bare Aedes' ? BARE_LABEL : n, summary(results.get(n)!))),
    '',
  ];
  const c = results.get('ccs');
  const b = results.get('bare Aedes');
  if (c && b) {
    const cs = summary(c);
    const bs = summary(b);
    // Rounds ran back to back, so each round's pair saw about the same machine: the median of paired ratios.
    const paired = median(c.map((r, i) => r.rate / b[i]!.rate));
    const ratio = cs.rate / bs.rate;
    lines.push(
      `ccs: ${(ratio * 100).toFixed(0)}% of the bare broker's rate (median of per-round pairs ${(paired * 100).toFixed(0)}%; goal ≥ 50%: ${Math.min(ratio, paired) >= 0.5 ? 'met' : 'missed'}), ` +
        `${fmt(cs.rate)} msg/s (goal ≥ 25,000: ${cs.rate >= 25_000 ? 'met' : 'missed'}); server CPU per message ${(cs.serverUsPerMessage / bs.serverUsPerMessage).toFixed(2)}× the bare broker's. ` +
        `Per round, msg/s: ccs ${c.map((r) => fmt(r.rate)).join(' / ')}; bare ${b.map((r) => fmt(r.rate)).join(' / ')}.`,
      '',
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const fleet = await prepareFleet(DEVICES);
  log(`${DEVICES} devices ready in ${fleet.dataDir}`);
  const servers: { name: string; server: ChildServer; port: number }[] = [];
  const compareDir = `${fleet.dataDir}-compare`;
  const ccsArgs = ['start', '--data-dir', fleet.dataDir, '--http-port', '0', '--https-port', '0', '--mqtts-port', '0', '--host', '127.0.0.1', '--hub-hostname', HUB_HOST,
    '--admin-token', BENCH_ADMIN_TOKEN, '--log-level', 'warn', '--rate-limit', '0'];
  try {
    if (args.only !== 'bare') {
      const ccs = await spawnServer('bench/lib/serve-ccs.ts', ccsArgs, { nodeArgs: SERVER_NODE_ARGS, nofile: 65536, ready: /devices mqtts:\/\/[^:]+:(\d+)/ });
      servers.push({ name: 'ccs', server: ccs, port: Number(ccs.match[1]) });
    }
    if (args['compare-root']) {
      // Another copy of the sources (say, before a change) on its own copy of the data, under the same load: an A/B in
      // one run. Both copies must share one store schema version.
      const root = args['compare-root'];
      cpSync(fleet.dataDir, compareDir, { recursive: true });
      const args2 = ccsArgs.map((a) => (a === fleet.dataDir ? compareDir : a));
      const nodeArgs = args['compare-node-args'] === undefined ? SERVER_NODE_ARGS : args['compare-node-args'].split(' ').filter(Boolean);
      const cmp = await spawnServer(`${root}/bench/lib/serve-ccs.ts`, args2, { nodeArgs, nofile: 65536, ready: /devices mqtts:\/\/[^:]+:(\d+)/, cwd: root });
      servers.push({ name: `ccs @ ${root}${args['compare-node-args'] ? ` (node ${nodeArgs.join(' ')})` : ''}`, server: cmp, port: Number(cmp.match[1]) });
    }
    if (args.only !== 'ccs') {
      const bare = await spawnServer('bench/lib/serve-bare-aedes.ts', ['--cert', fleet.certFile, '--key', fleet.keyFile], {
        nodeArgs: SERVER_NODE_ARGS, nofile: 65536, ready: /listening on (\d+)/,
      });
      servers.push({ name: 'bare Aedes', server: bare, port: Number(bare.match[1]) });
    }
    const header = [
      `## Device ingest over MQTT/TLS — ${new Date().toISOString().slice(0, 10)}`,
      '',
    ];
    const tables: string[] = [];
    for (const inflight of INFLIGHT) {
      const results = new Map<string, RoundResult[]>(servers.map((s) => [s.name, []]));
      for (let r = 1; r <= ROUNDS; r++) {
        // Alternating rounds: a shared machine's slow minute hits both servers rather than one.
        for (const s of r % 2 === 1 ? servers : [...servers].reverse()) {
          const result = await round(s.name, s.server, s.port, fleet.devices, fleet.ca, inflight);
          results.get(s.name)!.push(result);
          log(`inflight ${inflight}, round ${r}, ${s.name}: ${describe(result)}`);
        }
      }
      tables.push(report(inflight, servers.map((s) => s.name), results));
    }
    const command = `npm run bench:ingest -- --devices ${DEVICES} --inflight ${INFLIGHT.join(',')} --seconds ${SECONDS} --warmup ${WARMUP} --rounds ${ROUNDS} --workers ${WORKERS}` +
      (Number(args['payload-bytes']) > 0 ? ` --payload-bytes ${args['payload-bytes']}` : '') +
      (args['compare-root'] ? ` --compare-root ${args['compare-root']}` : '') +
      (args['compare-node-args'] ? ` --compare-node-args="${args['compare-node-args']}"` : '') +
      (args.only !== 'both' ? ` --only ${args.only}` : '') +
      (SERVER_NODE_ARGS.length ? ` --server-node-args="${SERVER_NODE_ARGS.join(' ')}"` : '');
    const lines = [
      ...header,
      `Machine: ${machine()}; load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')} (shared with other work: throughput moves with it, CPU per message much less).`,
      `Command: \`${command}\``,
      `Load: ${fmt(DEVICES)} devices, one MQTT.js 5 TLS connection each (hand-built SAS tokens) over ${WORKERS} worker thread(s) of the load generator, ` +
        `QoS 1 telemetry, \`${payload().length}\`-byte JSON bodies, N unacknowledged per device (a new publish as each PUBACK comes back); ` +
        `${ROUNDS} alternating rounds of ${SECONDS} s after ${WARMUP} s of warm-up per N; medians over rounds. ` +
        'Servers in their own child processes; CPU time from /proc; "msg/s per server core" is 1 / (server CPU per message), what the server would do with one core to itself.',
      '',
      ...tables,
    ];
    const section = lines.join('\n');
    process.stdout.write(`${section}\n`);
    if (!args['no-write']) appendBenchmark(section);
  } finally {
    await Promise.all(servers.map((s) => s.server.stop()));
    fleet.dispose();
    rmSync(compareDir, { recursive: true, force: true });
  }
}

await main();
