/**
 * A server process that creates one account and is killed (SIGKILL) right after the write commits, before anything
 * reacting to the write can run: the crash the durable record events are for. Used by record-events.test.ts.
 *
 *   node --import tsx test/records/write-then-die.ts <store url> <data dir> <account name>
 */
import { writeSync } from 'node:fs';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';

const [storeUrl, dataDir, name] = process.argv.slice(2);
const flags = new Map(Object.entries({
  'data-dir': dataDir!, store: storeUrl!, 'http-port': '0', 'https-port': '0', 'mqtts-port': '0', host: '127.0.0.1', 'admin-token': 'test-admin-token', 'log-level': 'silent',
}));
const app = await createApp(loadConfig(flags, {}));
await app.start();
const id = await app.records.create(app.system, 'account', { name: name! });
// Synchronously after the commit: the consumers are woken on a later turn of the event loop, which never comes.
writeSync(1, `${id}\n`);
process.kill(process.pid, 'SIGKILL');
