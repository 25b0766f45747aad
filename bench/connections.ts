/**
 * Idle device connections (issue 3, acceptance "Benchmarks"): resident memory per connection.
 *
 *   npm run bench:connections [-- --connections 10000 --sources 4 --concurrency 100 --settle 3 --rounds 1]
 *
 * `connections` TLS connections, each sending one MQTT CONNECT with a valid SAS token (a registered device, clean
 * session 0 like the Azure IoT device SDK, keepalive 1177 s, IoT Hub's largest) and then staying idle, are opened to
 * each server in turn, each in its own child process:
 *   - ccs (`ccs start`, SQLite): TLS, MQTT session, authentication, a registered device connection;
 *   - the baseline: a bare Node TLS server (`tls.createServer`, same certificate) that answers the CONNECT with a
 *     fixed CONNACK and only holds the socket.
 * The server's resident set size is read after a full garbage collection before connecting and once every connection
 * is up (and the server has settled); the difference divided by the count is the memory per connection. Connections
 * come from several source addresses (127.0.0.2, 127.0.0.3, …) so that ephemeral ports never run short. Appended to
 * BENCHMARKS.md.
 */
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import type { TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { BENCH_ADMIN_TOKEN, HUB_HOST, prepareFleet, type BenchFleet } from './lib/devices.js';
import { connectDevice, connectPacket } from './lib/mqtt-connect.js';
import { spawnServer, type ChildServer } from './lib/processes.js';
import type { ProbeReply } from './lib/probe.js';
import { appendBenchmark, fmt, log, machine, median } from './lib/report.js';

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '10000' },
    sources: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '100' },
    settle: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '1' },
    'server-node-args': { type: 'string', default: '' },
    'no-write': { type: 'boolean', default: false },
  },
});
const COUNT = Number(args.connections);
const SOURCES = Math.max(1, Number(args.sources));
const CONCURRENCY = Number(args.concurrency);
const SETTLE_MS = Number(args.settle) * 1000;
const ROUNDS = Math.max(1, Number(args.rounds));
const SERVER_NODE_ARGS = args['server-node-args'].split(' ').filter(Boolean);
const KEEPALIVE = 1177;

interface Measurement {
  readonly before: ProbeReply;
  readonly after: ProbeReply;
  readonly connected: number;
  readonly seconds: number;
  readonly dropped: number;
}

async function measure(name: string, server: ChildServer, port: number, fleet: BenchFleet): Promise<Measurement> {
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const before = await server.probe();
  const sockets: TLSSocket[] = [];
  let dropped = 0;
  let next = 0;
  const failures: string[] = [];
  const started = performance.now();
  let lastLog = started;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < COUNT) {
        const i = next++;
        const d = fleet.devices[i]!;
        const packet = connectPacket({ clientId: d.deviceId, username: d.username, password: d.password, keepalive: KEEPALIVE, clean: false });
        try {
          const socket = await connectDevice({
            host: '127.0.0.1', port, servername: HUB_HOST, ca: fleet.ca, localAddress: `127.0.0.${2 + (i % SOURCES)}`, packet,
          });
          socket.once('close', () => dropped++);
          sockets.push(socket);
        } catch (e) {
          if (failures.length < 5) failures.push(`${d.deviceId}: ${e instanceof Error ? e.message : String(e)}`);
        }
        if (performance.now() - lastLog > 5000) {
          lastLog = performance.now();
          log(`  ${name}: ${sockets.length} connected`);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  if (failures.length > 0) log(`${name}: ${COUNT - sockets.length} connections failed, e.g. ${failures.join('; ')}`);
  // Let the server finish what connecting left behind (ccs writes connection state in batches).
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const after = await server.probe();
  const held = dropped;
  const connected = sockets.length - held;
  log(`${name}: ${connected} connections held; RSS ${(before.rss / 2 ** 20).toFixed(1)} → ${(after.rss / 2 ** 20).toFixed(1)} MiB`);
  for (const s of sockets) s.destroy();
  await new Promise((r) => setTimeout(r, 500));
  return { before, after, connected, seconds, dropped: held };
}

/** This process's open-file limit: it holds every client socket. */
function softFileLimit(): number {
  const out = execFileSync('bash', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  return out === 'unlimited' ? Infinity : Number(out);
}

function perConnection(m: Measurement, field: 'rss' | 'heapUsed' | 'external'): number {
  return (m.after[field] - m.before[field]) / Math.max(1, m.connected);
}

/** Fresh servers each round, ccs first then the baseline: one measurement of each. */
async function measureRound(fleet: BenchFleet): Promise<{ ccs: Measurement; bare: Measurement }> {
  const ccs = await spawnServer(
    'bench/lib/serve-ccs.ts',
    ['start', '--data-dir', fleet.dataDir, '--http-port', '0', '--https-port', '0', '--mqtts-port', '0', '--host', '127.0.0.1', '--hub-hostname', HUB_HOST,
      '--admin-token', BENCH_ADMIN_TOKEN, '--log-level', 'warn', '--rate-limit', '0'],
    { nodeArgs: SERVER_NODE_ARGS, nofile: COUNT + 4096, ready: /devices mqtts:\/\/[^:]+:(\d+)/ },
  );
  let c: Measurement;
  try {
    c = await measure('ccs', ccs, Number(ccs.match[1]), fleet);
  } finally {
    await ccs.stop();
  }
  const bare = await spawnServer('bench/lib/serve-bare-tls.ts', ['--cert', fleet.certFile, '--key', fleet.keyFile], {
    nodeArgs: SERVER_NODE_ARGS, nofile: COUNT + 4096, ready: /listening on (\d+)/,
  });
  try {
    return { ccs: c, bare: await measure('bare TLS', bare, Number(bare.match[1]), fleet) };
  } finally {
    await bare.stop();
  }
}

async function main(): Promise<void> {
  if (COUNT + 256 > softFileLimit()) {
    throw new Error(`--connections ${COUNT} needs more open files than this process may have (ulimit -n ${softFileLimit()}); raise it or connect fewer.`);
  }
  const fleet = await prepareFleet(COUNT);
  log(`${COUNT} devices ready in ${fleet.dataDir}`);
  const rounds: { ccs: Measurement; bare: Measurement }[] = [];
  try {
    for (let r = 1; r <= ROUNDS; r++) rounds.push(await measureRound(fleet));
  } finally {
    fleet.dispose();
  }
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  /** The round whose RSS per connection is the median one: its figures are quoted together. */
  const typical = (which: 'ccs' | 'bare'): Measurement => {
    const sorted = rounds.map((r) => r[which]).sort((a, b) => perConnection(a, 'rss') - perConnection(b, 'rss'));
    return sorted[(sorted.length - 1) >> 1]!;
  };
  const c = typical('ccs');
  const b = typical('bare');
  const row = (name: string, m: Measurement) =>
    `| ${name} | ${fmt(m.connected)} | ${mib(m.before.rss)} → ${mib(m.after.rss)} | **${kib(perConnection(m, 'rss'))}** | ${kib(perConnection(m, 'heapUsed'))} | ${kib(perConnection(m, 'external'))} | ${m.seconds.toFixed(1)} s |`;
  const ratio = median(rounds.map((r) => perConnection(r.ccs, 'rss') / perConnection(r.bare, 'rss')));
  const command = `npm run bench:connections -- --connections ${COUNT} --sources ${SOURCES} --concurrency ${CONCURRENCY} --settle ${SETTLE_MS / 1000} --rounds ${ROUNDS}` +
    (SERVER_NODE_ARGS.length ? ` --server-node-args="${SERVER_NODE_ARGS.join(' ')}"` : '');
  const section = [
    `## Idle device connections — ${new Date().toISOString().slice(0, 10)}`,
    '',
    `Machine: ${machine()}; load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')} (shared).`,
    `Command: \`${command}\``,
    `Load: ${fmt(COUNT)} TLS connections from one process over ${SOURCES} source addresses, each an MQTT CONNECT with a valid SAS token ` +
      `(clean session 0, keepalive ${KEEPALIVE} s), then idle. Server in its own child process; RSS after a full GC, before connecting and ${SETTLE_MS / 1000} s after the last CONNACK. ` +
      `${ROUNDS} round(s), fresh servers each; the round with the median figure is shown.`,
    '',
    '| server | connections held | RSS before → after | RSS per connection | JS heap per connection | external per connection | time to connect all |',
    '|---|---|---|---|---|---|---|',
    row('ccs (`ccs start`, SQLite): TLS + MQTT session + authenticated device connection', c),
    row('baseline: bare Node TLS server, same certificate, fixed CONNACK, holds the socket', b),
    '',
    `ccs uses ${ratio.toFixed(2)}× the bare TLS server's memory per connection (goal ≤ 1.5×: ${ratio <= 1.5 ? 'met' : 'missed'})` +
      (ROUNDS > 1 ? `; per round ${rounds.map((r) => (perConnection(r.ccs, 'rss') / perConnection(r.bare, 'rss')).toFixed(2)).join(' / ')}` : '') +
      `; ${rounds.reduce((n, r) => n + r.ccs.dropped + r.bare.dropped, 0)} connections dropped while held.`,
    '',
  ].join('\n');
  process.stdout.write(`${section}\n`);
  if (!args['no-write']) appendBenchmark(section);
}

await main();
