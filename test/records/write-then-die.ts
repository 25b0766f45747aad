/**
 * A server process that creates one account and is killed (SIGKILL) right after the write commits, before anything
 * reacting to the write can run: the crash the durable record events are for. Used by record-events.test.ts.
 *
 *   node --import tsx test/records/write-then-die.ts <store url> <data dir> <account name> [<lease ms> wait]
 *
 * With `wait`, it prints `ready` once started (holding the consumers' leases if it got them) and writes when a line
 * arrives on stdin.
 */
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';

const [storeUrl, dataDir, name, leaseMs, wait] = process.argv.slice(2);
const flags = new Map(Object.entries({
  'data-dir': dataDir!, store: storeUrl!, 'http-port': '0', 'https-port': '0', 'mqtts-port': '0', host: '127.0.0.1', 'admin-token': 'test-admin-token', 'log-level': 'silent',
}));
const app = await createApp(loadConfig(flags, {}), leaseMs ? { recordEvents: { leaseMs: Number(leaseMs), pollMs: 100 } } : {});
await app.start();
if (wait === 'wait') {
  writeSync(1, 'ready\n');
  await new Promise<void>((resolve) => createInterface({ input: process.stdin }).once('line', () => resolve()));
}
const id = await app.records.create(app.system, 'account', { name: name! });
// Synchronously after the commit: the consumers are woken on a later turn of the event loop, which never comes.
writeSync(1, `${id}\n`);
process.kill(process.pid, 'SIGKILL');
