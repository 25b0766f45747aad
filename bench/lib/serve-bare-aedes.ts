/**
 * Baseline for bench:ingest: a bare Aedes 1.x broker over TLS with the same certificate as ccs, accepting every
 * CONNECT, no subscribers, in-memory persistence (aedes' default). It acknowledges a QoS 1 PUBLISH once its own
 * pipeline has run, with nothing written to disk.
 *
 *   node --import tsx bench/lib/serve-bare-aedes.ts --cert <pem> --key <pem> [--port 0] [--host 127.0.0.1]
 *
 * Prints `bare-aedes listening on <port>`.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:tls';
import { Aedes } from 'aedes';
import { parseArgs } from 'node:util';
import { installProbe } from './probe.js';

const { values } = parseArgs({ options: { cert: { type: 'string' }, key: { type: 'string' }, port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } } });
const broker = await Aedes.createBroker({
  maxClientsIdLength: 128,
  authenticate: (_client, _username, _password, done) => done(null, true),
});
const server = createServer({ cert: readFileSync(values.cert!, 'utf8'), key: readFileSync(values.key!, 'utf8'), minVersion: 'TLSv1.2' }, (socket) => broker.handle(socket));
server.on('tlsClientError', () => {});
installProbe();
server.listen(Number(values.port), values.host, () => {
  process.stdout.write(`bare-aedes listening on ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  broker.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
