/**
 * Console benchmark: how long the alert list takes to open with many alerts, in Debian's Chromium.
 *
 *   npm run bench:console [-- --rows 100000 --runs 10 --store sqlite:/tmp/x.db]
 *
 * Seeds `rows` msdyn_iotalert records (every tenth a child of the alert before it, so the list has parents with
 * child counts) over 100 devices, starts the real server in this process, signs in once in Chromium and measures:
 *   1. warm: from a hash change to #/alerts on the dashboard until the first page's rows and child counts show;
 *   2. cold: a full page load of /#/alerts (script load, session resume, event stream hello, first page);
 *   3. baseline, same run: the two Web API requests the list makes (the page with $count, the $batch of child
 *      counts) sent from Node, without a browser.
 * Prints a Markdown table and appends it to BENCHMARKS.md.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdtempSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../src/app.js';
import { loadConfig, parseFlags } from '../src/config/index.js';
import type { Row } from '../src/store/types.js';
import { browserSkipReason, ensureConsoleBuilt, launchBrowser, newContext } from '../test/helpers/browser.js';

const flags = parseFlags(process.argv.slice(2), ['rows', 'runs']);
const ROWS = Number(flags.get('rows') ?? 100_000);
const RUNS = Number(flags.get('runs') ?? 10);
const DEVICES = 100;
const dataDir = mkdtempSync(join(tmpdir(), 'ccs-bench-console-'));
const storeUrl = flags.get('store') ?? `sqlite:${join(dataDir, 'ccs.db')}`;
const TOKEN = 'bench-admin-token';
const PAGE = 50;

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const max = (xs: number[]) => Math.max(...xs);

const skip = browserSkipReason();
if (skip) {
  log(`skipped: ${skip}`);
  process.exit(0);
}
ensureConsoleBuilt();
const config = loadConfig(new Map([['data-dir', dataDir], ['store', storeUrl], ['admin-token', TOKEN], ['log-level', 'warn'], ['http-port', '0'], ['https-port', '0'], ['mqtts-port', '0'], ['host', '127.0.0.1'], ['rate-limit', '0']]), {});
const app = await createApp(config);
const devices: string[] = [];
for (let d = 0; d < DEVICES; d++) devices.push(await app.records.create(app.system, 'msdyn_iotdevice', { msdyn_name: `Device ${d}`, msdyn_deviceid: `bench-${d}` }));
log(`seeding ${ROWS} alerts into ${storeUrl}`);
const now = Date.now();
const CHUNK = 10_000;
let parent = '';
for (let i = 0; i < ROWS; i += CHUNK) {
  await app.store.transaction(async (tx) => {
    for (let j = i; j < Math.min(ROWS, i + CHUNK); j++) {
      const time = now - (ROWS - j) * 20_000; // one alert every 20 s, the newest now
      const id = randomUUID();
      const child = j % 10 !== 0 && parent !== '' && j % 10 < 3;
      const row: Row = {
        msdyn_iotalertid: id, msdyn_description: `Temperature reading of ${70 + (j % 30)} exceeded a threshold of 70`,
        msdyn_alerttime: time, msdyn_alerttype: 192350000 + (j % 4), msdyn_device: devices[j % DEVICES]!, msdyn_deviceid: `bench-${j % DEVICES}`,
        msdyn_alerttoken: `tok-${j}`, msdyn_parentalert: child ? parent : null, statecode: 0, statuscode: 1, createdon: time, modifiedon: time, versionnumber: 1,
      };
      if (!child) parent = id;
      await tx.insert('msdyn_iotalert', row);
    }
  });
}
const info = await app.start();
const url = info.url;
log(`server at ${url}`);

// Baseline: the list's own requests from Node.
const headers = { Authorization: `Bearer ${TOKEN}`, Accept: 'application/json', Prefer: `odata.maxpagesize=${PAGE},odata.include-annotations="OData.Community.Display.V1.FormattedValue"` };
const listUrl = `${url}/api/data/v9.2/msdyn_iotalerts?$select=msdyn_description,msdyn_alerttime,msdyn_alerttype,_msdyn_device_value,statecode,_msdyn_case_value,_msdyn_parentalert_value,_msdyn_lastcommandsent_value&$filter=${encodeURIComponent('_msdyn_parentalert_value eq null and statecode eq 0')}&$orderby=msdyn_alerttime desc&$count=true`;
async function apiOnly(): Promise<{ ms: number; count: number }> {
  const t0 = performance.now();
  const page = (await (await fetch(listUrl, { headers })).json()) as { value: Row[]; '@odata.count': number };
  const boundary = 'b';
  const parts = page.value.map((a) => `--${boundary}\r\nContent-Type: application/http\r\n\r\nGET /api/data/v9.2/msdyn_iotalerts/$count?$filter=${encodeURIComponent(`_msdyn_parentalert_value eq ${String(a['msdyn_iotalertid'])}`)} HTTP/1.1\r\n\r\n`);
  const res = await fetch(`${url}/api/data/v9.2/$batch`, { method: 'POST', headers: { ...headers, 'Content-Type': `multipart/mixed; boundary=${boundary}` }, body: `${parts.join('')}--${boundary}--\r\n` });
  await res.text();
  return { ms: performance.now() - t0, count: page['@odata.count'] };
}
const api: number[] = [];
let listed = 0;
for (let i = 0; i < RUNS + 1; i++) {
  const r = await apiOnly();
  listed = r.count;
  if (i > 0) api.push(r.ms); // the first warms caches
}

const browser = await launchBrowser();
const context = await newContext(browser);
const page = await context.newPage();
await page.goto(`${url}/`);
await page.getByLabel('Token').fill(TOKEN);
await page.getByRole('button', { name: 'Sign in' }).click();
await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
const ready = async () => {
  await page.getByTestId('alerts-table').locator('tbody tr').nth(PAGE - 1).waitFor();
  await page.getByTestId('alerts-table').getByRole('button', { name: /Show \d+ child/ }).first().waitFor();
};
const warm: number[] = [];
for (let i = 0; i < RUNS + 1; i++) {
  await page.evaluate(() => (location.hash = '#/'));
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  const t0 = performance.now();
  await page.evaluate(() => (location.hash = '#/alerts'));
  await ready();
  if (i > 0) warm.push(performance.now() - t0);
}
const cold: number[] = [];
for (let i = 0; i < RUNS; i++) {
  await page.goto('about:blank');
  const t0 = performance.now();
  await page.goto(`${url}/#/alerts`);
  await ready();
  cold.push(performance.now() - t0);
}
await browser.close();
await app.stop();

const fmt = (xs: number[]) => `${median(xs).toFixed(0)} ms | ${max(xs).toFixed(0)} ms`;
const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
const engine = storeUrl.startsWith('postgres') ? 'PostgreSQL' : 'SQLite';
const table = `
## Console: alert list — ${new Date().toISOString().slice(0, 10)}

Machine: ${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${engine} store, server in the
bench process, Debian Chromium (headless) through playwright-core. ${ROWS.toLocaleString('en')} alerts (${listed.toLocaleString('en')} top-level,
the rest their children) over ${DEVICES} devices; the list shows ${PAGE} active top-level alerts, newest first, with
\`$count\` and a \`$batch\` of ${PAGE} child counts. ${RUNS} runs each (median | worst).

\`npm run bench:console -- --rows ${ROWS}${flags.get('store') ? ` --store ${engine === 'PostgreSQL' ? 'postgres://…' : '…'}` : ''}\`

| measurement | median | worst |
|---|---|---|
| open the alert list from the dashboard (hash change → ${PAGE} rows and child counts shown) | ${fmt(warm)} |
| cold load of /#/alerts (page, script, session resume, event stream, first page) | ${fmt(cold)} |
| baseline: the list's two Web API requests from Node, no browser | ${fmt(api)} |
`;
process.stdout.write(table);
appendFileSync(join(import.meta.dirname, '..', 'BENCHMARKS.md'), table);
