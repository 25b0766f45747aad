/**
 * What one IoT alert costs the server, everything it sets off included:
 *
 *   npm run bench:alert-cost [-- --alerts 3000 --devices 200 --concurrency 16 --rounds 3 --store postgres://… --no-write]
 *
 * Runs the app in this process (no devices, no load generator: nothing else competes for the measurement) and writes
 * `alerts` firings through the pipeline's alert writer, `concurrency` at a time, spread over `devices` devices. Then
 * waits until what the alerts set off has settled: every top-level alert in the IoT Alert to Case process and every
 * run of the shipped "IoT - Parent IoT Alerts" workflow completed. Reported per round: CPU time of this process per
 * alert (the figure that decides how many alerts a core can take) and alerts/s end to end; medians over rounds.
 * CPU profile: `node --cpu-prof --import tsx bench/alert-cost.ts …`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { createAlertWriter } from '../src/pipeline/alert-writer.js';
import type { Firing } from '../src/rules/index.js';
import { and, eq } from '../src/store/index.js';
import { appendBenchmark, fmt, log, machine, median } from './lib/report.js';

const { values: args } = parseArgs({
  options: {
    alerts: { type: 'string', default: '3000' },
    devices: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
    store: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
  },
});
const ALERTS = Number(args.alerts);
const DEVICES = Number(args.devices);
const CONCURRENCY = Number(args.concurrency);
const ROUNDS = Number(args.rounds);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Tokens of their own for each run, so that runs against one database never meet an earlier run's alerts. */
const RUN = Date.now().toString(36);

function firing(round: number, i: number): Firing {
  const deviceId = `bench-alert-${i % DEVICES}`;
  const time = Date.now();
  const condition = { measure: 'Temperature', op: 'gt', value: 70 } as const;
  return {
    ruleId: 'bench-rule', ruleName: 'bench', deviceId, deviceRecordId: null, time, trigger: 'reading', messageId: `${RUN}-r${round}-m${i}`,
    eventToken: `${RUN}-r${round}-m${i}`, ruleOutput: 'Out0', alertType: 192350000, description: `Temperature reading of ${71 + (i % 10)} exceeded a threshold of 70`,
    readingType: 'Temperature', reading: 71 + (i % 10), threshold: 70, condition, readings: [],
  } as unknown as Firing;
}

const dataDir = mkdtempSync(join(tmpdir(), 'ccs-bench-alerts-'));
const storeUrl = args.store ?? `sqlite:${join(dataDir, 'ccs.db')}`;
const engine = storeUrl.startsWith('sqlite:') ? 'SQLite' : 'PostgreSQL';
const app = await createApp(loadConfig(new Map([
  ['data-dir', dataDir], ['store', storeUrl], ['log-level', 'warn'], ['admin-token', 'bench-admin-token'],
  ['http-port', '0'], ['https-port', '0'], ['mqtts-port', '0'], ['host', '127.0.0.1'],
]), {}));
await app.start();
const writer = createAlertWriter({ store: app.store, records: app.records, system: app.system });

/** Every alert of the round in the case process (or a child), and its parent-alerts run completed. */
async function settled(since: number): Promise<boolean> {
  const after = { kind: 'compare', op: 'ge', left: { kind: 'column', column: 'createdon' }, right: { kind: 'value', value: since } } as const;
  const runs = await app.store.count({ table: 'asyncoperation', where: and(after, eq('statecode', 3), eq('operationtype', 10)) });
  if (runs < ALERTS) return false;
  const alerts = await app.store.select({ table: 'msdyn_iotalert', columns: ['processid', 'msdyn_parentalert'], where: after });
  return alerts.length >= ALERTS && alerts.every((a) => a['processid'] != null || a['msdyn_parentalert'] != null);
}

interface Round { readonly cpuUsPerAlert: number; readonly writeCpuUsPerAlert: number; readonly alertsPerSecond: number }
const rounds: Round[] = [];
try {
  for (let r = 1; r <= ROUNDS; r++) {
    const since = Date.now();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < ALERTS) await writer.write(firing(r, next++), null);
    }));
    const written = process.cpuUsage(c0);
    while (!(await settled(since))) await sleep(20);
    const t1 = performance.now();
    const c1 = process.cpuUsage(c0);
    const round = {
      cpuUsPerAlert: (c1.user + c1.system) / ALERTS,
      writeCpuUsPerAlert: (written.user + written.system) / ALERTS,
      alertsPerSecond: ALERTS / ((t1 - t0) / 1000),
    };
    rounds.push(round);
    log(`round ${r}: ${fmt(round.cpuUsPerAlert)} µs CPU per alert (${fmt(round.writeCpuUsPerAlert)} µs of it while writing), ${fmt(round.alertsPerSecond)} alerts/s settled`);
  }
} finally {
  await app.stop();
  if (!args.store) rmSync(dataDir, { recursive: true, force: true });
}

const section = [
  `## What one IoT alert costs (${engine}) — ${new Date().toISOString().slice(0, 10)}`,
  '',
  `Machine: ${machine()}. Command: \`npm run bench:alert-cost -- --alerts ${ALERTS} --devices ${DEVICES} --concurrency ${CONCURRENCY} --rounds ${ROUNDS}${args.store ? ' --store postgres://…' : ''}\`. ` +
    'The app in the bench process; alerts written through the pipeline\'s alert writer, then everything they set off settled (IoT Alert to Case process, "IoT - Parent IoT Alerts" runs). Medians over rounds.',
  '',
  '| CPU per alert, all included | of which while writing | alerts/s settled |',
  '|---|---|---|',
  `| ${fmt(median(rounds.map((x) => x.cpuUsPerAlert)))} µs | ${fmt(median(rounds.map((x) => x.writeCpuUsPerAlert)))} µs | ${fmt(median(rounds.map((x) => x.alertsPerSecond)))} |`,
  '',
].join('\n');
process.stdout.write(`${section}\n`);
if (!args['no-write']) appendBenchmark(section);
