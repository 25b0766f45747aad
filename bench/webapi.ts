/**
 * Web API benchmark: the alert query agents and dashboards run most, and bulk creates through `$batch`.
 *
 *   npm run bench:webapi [-- --rows 1000000 --devices 1000 --seconds 15 --concurrency 32 --store sqlite:/tmp/x.db]
 *
 * Seeds `rows` msdyn_iotalert records over `devices` devices (once per store file; reused when present), starts the
 * real server in a child process (the load generator gets the other core), and measures:
 *   1. the query `_msdyn_device_value eq X and msdyn_alerttime ge T`, `$orderby=msdyn_alerttime desc`, `$top=50`,
 *      at the given concurrency, over HTTP with keep-alive;
 *   2. the same query straight through the store (no HTTP, no OData parsing): the baseline;
 *   3. creates through `$batch` (change sets of 1,000 creates).
 * Results are appended to BENCHMARKS.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync } from 'node:fs';
import http from 'node:http';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../src/app.js';
import { loadConfig, parseFlags } from '../src/config/index.js';
import { compileQuery } from '../src/odata/index.js';
import { createStore } from '../src/store/index.js';
import type { Row } from '../src/store/types.js';

const flags = parseFlags(process.argv.slice(2), ['rows', 'devices', 'seconds', 'concurrency', 'batches']);
const ROWS = Number(flags.get('rows') ?? 1_000_000);
const DEVICES = Number(flags.get('devices') ?? 1000);
const SECONDS = Number(flags.get('seconds') ?? 15);
const CONCURRENCY = Number(flags.get('concurrency') ?? 32);
const BATCHES = Number(flags.get('batches') ?? 20);
const dataDir = flags.get('data-dir') ?? mkdtempSync(join(tmpdir(), 'ccs-bench-'));
const storeUrl = flags.get('store') ?? `sqlite:${join(tmpdir(), `ccs-bench-${ROWS}-${DEVICES}.db`)}`;
const TOKEN = 'bench-admin-token';
const T0 = Date.UTC(2024, 0, 1);
const SPAN = 30 * 24 * 3600 * 1000; // alerts spread over 30 days

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function seed(): Promise<string[]> {
  const config = loadConfig(new Map([['data-dir', dataDir], ['store', storeUrl], ['admin-token', TOKEN], ['log-level', 'warn']]), {});
  const app = await createApp(config);
  try {
    const existing = await app.store.select({ table: 'msdyn_iotdevice', columns: ['msdyn_iotdeviceid'], orderBy: [{ column: 'msdyn_deviceid' }] });
    const have = await app.store.count({ table: 'msdyn_iotalert' });
    if (existing.length >= DEVICES && have >= ROWS) {
      log(`reusing ${storeUrl}: ${existing.length} devices, ${have} alerts`);
      await app.start().then(() => undefined); // ensures the admin token exists
      return existing.slice(0, DEVICES).map((r) => String(r['msdyn_iotdeviceid']));
    }
    log(`seeding ${DEVICES} devices and ${ROWS} alerts into ${storeUrl}`);
    const devices: string[] = [];
    for (let d = 0; d < DEVICES; d++) {
      devices.push(await app.records.create(app.system, 'msdyn_iotdevice', { msdyn_name: `Device ${d}`, msdyn_deviceid: `bench-${String(d).padStart(5, '0')}` }));
    }
    // Rows go straight to the store in large transactions: seeding is not what is measured.
    const CHUNK = 10_000;
    const started = Date.now();
    for (let i = 0; i < ROWS; i += CHUNK) {
      await app.store.transaction(async (tx) => {
        for (let j = i; j < Math.min(ROWS, i + CHUNK); j++) {
          const time = T0 + Math.floor((j / ROWS) * SPAN);
          const row: Row = {
            msdyn_iotalertid: randomUUID(), msdyn_description: `Temperature reading of ${70 + (j % 30)} exceeded a threshold of 70`,
            msdyn_alerttime: time, msdyn_alerttype: 192350000, msdyn_device: devices[j % DEVICES]!, msdyn_deviceid: `bench-${String(j % DEVICES).padStart(5, '0')}`,
            msdyn_alerttoken: `tok-${j}`, statecode: 0, statuscode: 1, createdon: time, modifiedon: time, versionnumber: 1,
          };
          await tx.insert('msdyn_iotalert', row);
        }
      });
      if ((i / CHUNK) % 10 === 9) log(`  ${i + CHUNK} rows (${Math.round((i + CHUNK) / ((Date.now() - started) / 1000))}/s)`);
    }
    await app.start();
    return devices;
  } finally {
    await app.stop();
  }
}

function startServer(): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(process.env['CCS_BENCH_NODE_ARGS']?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', 'bench/server.ts', 'start', '--data-dir', dataDir, '--store', storeUrl, '--http-port', '0', '--host', '127.0.0.1', '--admin-token', TOKEN, '--log-level', 'warn', '--rate-limit', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
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

function request(port: number, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers: { authorization: `Bearer ${TOKEN}`, accept: 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

/** Runs `op` from `concurrency` loops for `seconds`; returns throughput and latency percentiles. */
async function load(concurrency: number, seconds: number, op: (i: number) => Promise<void>): Promise<{ rps: number; p50: number; p99: number; n: number }> {
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  let i = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await op(i++);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { rps: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), n: latencies.length };
}

function queryFor(device: string, i: number): { path: string; since: string } {
  // Each query asks for the last few days of one device: the usual dashboard and device-page read.
  const since = new Date(T0 + SPAN - (1 + (i % 5)) * 24 * 3600 * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const filter = encodeURIComponent(`_msdyn_device_value eq ${device} and msdyn_alerttime ge ${since}`);
  return { path: `/api/data/v9.2/msdyn_iotalerts?$filter=${filter}&$orderby=${encodeURIComponent('msdyn_alerttime desc')}&$top=50`, since };
}

async function main(): Promise<void> {
  const devices = await seed();
  const { child, port } = await startServer();
  try {
    // Warm up, and check the query answers what it should.
    const probe = await request(port, 'GET', queryFor(devices[0]!, 0).path);
    if (probe.status !== 200) throw new Error(`query failed: ${probe.status} ${probe.body.slice(0, 300)}`);
    log(`probe: ${JSON.parse(probe.body).value.length} alerts in the first page`);
    await load(CONCURRENCY, 2, async (i) => void (await request(port, 'GET', queryFor(devices[i % devices.length]!, i).path)));

    log(`HTTP query at concurrency ${CONCURRENCY} for ${SECONDS}s`);
    let errors = 0;
    const api = await load(CONCURRENCY, SECONDS, async (i) => {
      const r = await request(port, 'GET', queryFor(devices[(i * 7919) % devices.length]!, i).path);
      if (r.status !== 200) errors++;
    });

    log('baseline: the same query straight through the store');
    const store = createStore(storeUrl);
    const config = loadConfig(new Map([['data-dir', dataDir], ['store', storeUrl], ['log-level', 'warn'], ['admin-token', TOKEN]]), {});
    const app = await createApp(config);
    const table = app.records.table('msdyn_iotalert');
    const direct = await load(CONCURRENCY, SECONDS, async (i) => {
      const device = devices[(i * 7919) % devices.length]!;
      const since = Date.parse(queryFor(device, i).since);
      await app.store.select({
        table: 'msdyn_iotalert',
        where: { kind: 'and', items: [
          { kind: 'compare', op: 'eq', left: { kind: 'column', column: 'msdyn_device' }, right: { kind: 'value', value: device } },
          { kind: 'compare', op: 'ge', left: { kind: 'column', column: 'msdyn_alerttime' }, right: { kind: 'value', value: since } },
        ] },
        orderBy: [{ column: 'msdyn_alerttime', descending: true }, { column: table.primaryIdAttribute, descending: true }],
        limit: 51,
      });
    });
    // The OData layer alone, for the profile: parse and compile the same query text.
    const params = new URLSearchParams(queryFor(devices[0]!, 0).path.split('?')[1]);
    const t = performance.now();
    for (let k = 0; k < 10_000; k++) compileQuery(params, table, app.records.model);
    const compileUs = ((performance.now() - t) / 10_000) * 1000;
    await app.stop();
    await store.close();

    log(`$batch creates: ${BATCHES} batches of 1,000`);
    const batchTimes: number[] = [];
    for (let b = 0; b < BATCHES; b++) {
      const boundary = `batch_${randomUUID()}`;
      const cs = `changeset_${randomUUID()}`;
      const parts: string[] = [];
      for (let k = 0; k < 1000; k++) {
        const device = devices[(b * 1000 + k) % devices.length]!;
        parts.push(`--${cs}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: ${k + 1}\r\n\r\nPOST /api/data/v9.2/msdyn_iotalerts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n${JSON.stringify({
          msdyn_description: `Batch alert ${b}-${k}`, msdyn_alerttime: new Date().toISOString(), msdyn_alerttype: 192350000, 'msdyn_Device@odata.bind': `/msdyn_iotdevices(${device})`,
        })}\r\n`);
      }
      const body = `--${boundary}\r\nContent-Type: multipart/mixed; boundary=${cs}\r\n\r\n${parts.join('')}--${cs}--\r\n--${boundary}--\r\n`;
      const t0 = performance.now();
      const r = await request(port, 'POST', '/api/data/v9.2/$batch', body, { 'content-type': `multipart/mixed; boundary=${boundary}` });
      batchTimes.push(performance.now() - t0);
      if (r.status !== 200) throw new Error(`batch failed: ${r.status} ${r.body.slice(0, 500)}`);
    }
    batchTimes.sort((a, b) => a - b);
    const batchMedian = percentile(batchTimes, 50);
    const createsPerSecond = 1000 / (batchMedian / 1000);

    const ratio = direct.p50 > 0 ? api.p50 / direct.p50 : NaN;
    const result = [
      `## Web API — ${new Date().toISOString().slice(0, 10)}`,
      '',
      `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; store \`${storeUrl.replace(/\/\/[^@]*@/, '//')}\`.`,
      `Command: \`npm run bench:webapi -- --rows ${ROWS} --devices ${DEVICES} --seconds ${SECONDS} --concurrency ${CONCURRENCY}\``,
      `Data: ${ROWS.toLocaleString('en-US')} msdyn_iotalert rows over ${DEVICES.toLocaleString('en-US')} devices. Server in a child process, load generator in this one (keep-alive, one core each).`,
      '',
      '| measurement | throughput | p50 | p99 |',
      '|---|---|---|---|',
      `| query over HTTP (\`_msdyn_device_value eq X and msdyn_alerttime ge T\`, \`$orderby=msdyn_alerttime desc\`, \`$top=50\`), concurrency ${CONCURRENCY} | ${api.rps.toFixed(0)} queries/s (${errors} errors) | ${api.p50.toFixed(2)} ms | ${api.p99.toFixed(2)} ms |`,
      `| baseline: same query straight through the store, concurrency ${CONCURRENCY} | ${direct.rps.toFixed(0)} queries/s | ${direct.p50.toFixed(3)} ms | ${direct.p99.toFixed(3)} ms |`,
      `| creates through \`$batch\` (change sets of 1,000, median of ${BATCHES}) | ${createsPerSecond.toFixed(0)} records/s | ${batchMedian.toFixed(0)} ms per batch | ${percentile(batchTimes, 99).toFixed(0)} ms |`,
      '',
      `Per-query cost: HTTP ${(1000 / api.rps).toFixed(3)} ms of server time per query vs store ${(1000 / direct.rps).toFixed(3)} ms (${((1000 / api.rps) / (1000 / direct.rps)).toFixed(1)}×); p50 ratio ${ratio.toFixed(1)}×. Parsing and compiling the OData query alone: ${compileUs.toFixed(1)} µs.`,
      '',
    ].join('\n');
    process.stdout.write(`${result}\n`);
    const file = 'BENCHMARKS.md';
    if (!existsSync(file)) appendFileSync(file, '# Benchmarks\n\nFigures from `npm run bench:*` on the machine named in each entry. Medians and ratios; the machine is shared.\n\n');
    appendFileSync(file, `${result}\n`);
  } finally {
    child.kill('SIGTERM');
    agent.destroy();
  }
}

await main();
