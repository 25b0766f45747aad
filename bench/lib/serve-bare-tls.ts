/**
 * Baseline for bench:connections: a bare Node TLS server with the same certificate as ccs that only holds sockets.
 * It answers the client's first bytes (an MQTT CONNECT) with a fixed CONNACK so the client does exactly what it does
 * against ccs; nothing is parsed or kept per connection beyond the socket itself.
 *
 *   node --import tsx bench/lib/serve-bare-tls.ts --cert <pem> --key <pem> [--port 0] [--host 127.0.0.1]
 *
 * Prints `bare-tls listening on <port>`.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:tls';
import { parseArgs } from 'node:util';
import { installProbe } from './probe.js';

/** CONNACK, session present 0, return code 0 (MQTT 3.1.1 §3.2). */
const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);

const { values } = parseArgs({ options: { cert: { type: 'string' }, key: { type: 'string' }, port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } } });
const server = createServer({ cert: readFileSync(values.cert!, 'utf8'), key: readFileSync(values.key!, 'utf8'), minVersion: 'TLSv1.2' }, (socket) => {
  socket.once('data', () => socket.write(CONNACK));
  socket.on('error', () => socket.destroy());
});
server.on('tlsClientError', () => {});
installProbe();
server.listen(Number(values.port), values.host, () => {
  process.stdout.write(`bare-tls listening on ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
