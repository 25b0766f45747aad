/**
 * Single-record write benchmark: what each Web API create and update costs, one request per record (no `$batch`).
 *
 *   npm run bench:record-writes -- [--store sqlite:/tmp/x.db | postgres://…] [--seconds 10] [--concurrency 8] [--rounds 3]
 *
 * Starts the real server in a child process (fresh store unless --store is given) and, for each round, creates
 * accounts with POST for `seconds` at `concurrency`, then updates them with PATCH for as long. Accounts start no
 * workflow and no webhook: the figures are the write path itself. Prints medians over rounds as a Markdown table.
 * CCS_BENCH_NODE_ARGS is passed to the server's node (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseFlags } from '../src/config/index.js';

const flags = parseFlags(process.argv.slice(2), ['seconds', 'concurrency', 'rounds']);
const SECONDS = Number(flags.get('seconds') ?? 10);
const CONCURRENCY = Number(flags.get('concurrency') ?? 8);
const ROUNDS = Number(flags.get('rounds') ?? 3);
const dataDir = mkdtempSync(join(tmpdir(), 'ccs-bench-writes-'));
const storeUrl = flags.get('store') ?? `sqlite:${join(dataDir, 'ccs.db')}`;
const TOKEN = 'bench-admin-token';

function startServer(): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(process.env['CCS_BENCH_NODE_ARGS']?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', 'bench/server.ts', 'start', '--data-dir', dataDir, '--store', storeUrl, '--http-port', '0', '--https-port', '0', '--mqtts-port', '0', '--host', '127.0.0.1', '--admin-token', TOKEN, '--log-level', 'warn', '--rate-limit', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /http:\/\/[^:]+:(\d+)\//.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function request(port: number, method: string, path: string, body: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** CPU time (user + system) a process has used, in ms, from /proc (Linux); NaN elsewhere. */
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface Figures {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  /** Server CPU per request, µs: what the server would do with a core to itself, whatever else the machine runs. */
  readonly cpuUs: number;
}

async function load(pid: number, op: (i: number) => Promise<void>): Promise<Figures> {
  const latencies: number[] = [];
  const cpu0 = cpuMs(pid);
  const end = performance.now() + SECONDS * 1000;
  const start = performance.now();
  let i = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      await op(i++);
      latencies.push(performance.now() - t);
    }
  }));
  latencies.sort((a, b) => a - b);
  const cpuUs = ((cpuMs(pid) - cpu0) * 1000) / latencies.length;
  return { rps: latencies.length / ((performance.now() - start) / 1000), p50: percentile(latencies, 50), p99: percentile(latencies, 99), cpuUs };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const { child, port } = await startServer();
  const creates: Figures[] = [];
  const updates: Figures[] = [];
  const pid = child.pid!;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const ids: string[] = [];
      creates.push(await load(pid, async (i) => {
        const r = await request(port, 'POST', '/api/data/v9.2/accounts', JSON.stringify({ name: `Bench ${round}-${i}`, telephone1: '+1 555 0100' }));
        if (r.status !== 204) throw new Error(`create failed: ${r.status} ${r.body.slice(0, 300)}`);
        ids.push(/\(([0-9a-f-]{36})\)/.exec(String(r.headers['odata-entityid']))![1]!);
      }));
      updates.push(await load(pid, async (i) => {
        const r = await request(port, 'PATCH', `/api/data/v9.2/accounts(${ids[i % ids.length]!})`, JSON.stringify({ description: `update ${i}` }));
        if (r.status !== 204) throw new Error(`update failed: ${r.status} ${r.body.slice(0, 300)}`);
      }));
      process.stderr.write(`round ${round + 1}: creates ${creates.at(-1)!.rps.toFixed(0)}/s (${creates.at(-1)!.cpuUs.toFixed(0)} µs CPU each), updates ${updates.at(-1)!.rps.toFixed(0)}/s (${updates.at(-1)!.cpuUs.toFixed(0)} µs)\n`);
    }
  } finally {
    child.kill('SIGTERM');
    agent.destroy();
  }
  const row = (what: string, xs: typeof creates) =>
    `| ${what} | ${median(xs.map((x) => x.rps)).toFixed(0)} records/s | ${median(xs.map((x) => x.cpuUs)).toFixed(0)} µs | ${median(xs.map((x) => x.p50)).toFixed(2)} ms | ${median(xs.map((x) => x.p99)).toFixed(2)} ms | ${xs.map((x) => x.rps.toFixed(0)).join(' / ')} |`;
  process.stdout.write([
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; store \`${storeUrl.replace(/\/\/[^@]*@/, '//').replace(/\?.*$/, '')}\`.`,
    `Command: \`npm run bench:record-writes -- --seconds ${SECONDS} --concurrency ${CONCURRENCY} --rounds ${ROUNDS}\``,
    '',
    '| single-record writes over HTTP | median throughput | server CPU per request | p50 | p99 | throughput per round |',
    '|---|---|---|---|---|---|',
    row(`POST accounts, concurrency ${CONCURRENCY}`, creates),
    row(`PATCH accounts, concurrency ${CONCURRENCY}`, updates),
    '',
  ].join('\n'));
}

await main();
