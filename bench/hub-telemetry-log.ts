/**
 * The hub's durable write path alone: `hub.ingest()` with group commit, no sockets and no TLS. It bounds what the
 * end-to-end ingest benchmark (MQTT over TLS, `bench:ingest`) can reach, and shows what the group commit buys.
 *
 *   node --import tsx bench/hub-telemetry-log.ts [--devices 1000] [--window 10] [--messages 200000] [--concurrency 1]
 *                                                [--store <url>]
 *
 * `devices` senders each keep `window` messages in flight (as QoS 1 clients do), each completion sending the next;
 * the figure is messages per second resolved, i.e. committed. As the baseline, the same number of messages written
 * one transaction per message (no group commit), for a tenth of the count. Prints one line per run.
 */
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryBus } from '../src/bus/index.js';
import { parseFlags } from '../src/config/index.js';
import { createHub } from '../src/hub/index.js';
import { createStore, PostgresStore } from '../src/store/index.js';

const flags = parseFlags(process.argv.slice(2), ['devices', 'window', 'messages', 'concurrency']);
const DEVICES = Number(flags.get('devices') ?? 1000);
const WINDOW = Number(flags.get('window') ?? 10);
const MESSAGES = Number(flags.get('messages') ?? 200_000);
const CONCURRENCY = Number(flags.get('concurrency') ?? 1);
const storeUrl = flags.get('store') ?? `sqlite:${join(mkdtempSync(join(tmpdir(), 'ccs-bench-hub-')), 'ccs.db')}`;

const store = createStore(storeUrl);
const hub = await createHub({ store, bus: createMemoryBus(), hostName: 'localhost', telemetryConcurrency: CONCURRENCY });
const body = Buffer.from(JSON.stringify({ temperature: 21.5, humidity: 48.2 }));
const message = { body, properties: { unit: 'C' } };

async function grouped(total: number): Promise<number> {
  let sent = 0;
  const started = performance.now();
  async function sender(d: number): Promise<void> {
    while (sent < total) {
      sent++;
      await hub.ingest(`device-${d}`, message, 'mqtt');
    }
  }
  await Promise.all(Array.from({ length: DEVICES * WINDOW }, (_, i) => sender(i % DEVICES)));
  return total / ((performance.now() - started) / 1000);
}

async function oneByOne(total: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < total; i++) await hub.ingest(`device-${i % DEVICES}`, message, 'mqtt');
  return total / ((performance.now() - started) / 1000);
}

await grouped(Math.min(20_000, MESSAGES)); // warm-up
const before = hub.telemetryStats;
const rate = await grouped(MESSAGES);
const after = hub.telemetryStats;
const groups = after.groups - before.groups;
const baseline = await oneByOne(Math.max(1000, Math.floor(MESSAGES / 10)));
process.stdout.write(
  `${store.engine}: ${Math.round(rate).toLocaleString('en')} msg/s with group commit (${DEVICES} devices × ${WINDOW} in flight, ${CONCURRENCY} group(s) at once, ` +
    `${MESSAGES.toLocaleString('en')} messages, ${groups} groups, mean ${Math.round(MESSAGES / groups)}/group); ` +
    `baseline one commit per message: ${Math.round(baseline).toLocaleString('en')} msg/s; ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}\n`,
);
await hub.close();
if (store instanceof PostgresStore) await store.dropSchema();
await store.close();
