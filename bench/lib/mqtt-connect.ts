/**
 * A minimal MQTT 3.1.1 device connection for bench:connections: TLS, one CONNECT built by hand, wait for the CONNACK,
 * then nothing. Ten thousand MQTT.js clients would cost the load generator far more memory and timers than the
 * connections themselves; this costs a TLS socket.
 */
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

function utf8Field(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const out = Buffer.alloc(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  bytes.copy(out, 2);
  return out;
}

/** MQTT 3.1.1 §2.2.3: remaining length, 7 bits per byte, high bit = more. */
function remainingLength(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    bytes.push(b);
  } while (n > 0);
  return Buffer.from(bytes);
}

/**
 * CONNECT (MQTT 3.1.1 §3.1) with username and password. `clean` false is what the Azure IoT device SDK sends
 * (reference/iot-hub.md §2.2).
 */
export function connectPacket(opts: { clientId: string; username: string; password: string; keepalive: number; clean: boolean }): Buffer {
  const flags = 0x80 | 0x40 | (opts.clean ? 0x02 : 0);
  const header = Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, flags, opts.keepalive >> 8, opts.keepalive & 0xff]);
  const body = Buffer.concat([header, utf8Field(opts.clientId), utf8Field(opts.username), utf8Field(opts.password)]);
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body]);
}

export interface DeviceConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly servername: string;
  readonly ca: string;
  /** Source address (127.0.0.x): each has its own ephemeral port range. */
  readonly localAddress?: string;
  readonly packet: Buffer;
  readonly timeoutMs?: number;
}

/** Opens TLS, sends CONNECT, resolves with the socket once CONNACK accepted it (return code 0). */
export function connectDevice(opts: DeviceConnectOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    // The TCP socket first: that is where the source address is chosen (tls.connect's options do not carry it).
    const tcp = tcpConnect({ host: opts.host, port: opts.port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    const socket = tlsConnect({ socket: tcp, servername: opts.servername, ca: opts.ca });
    const timer = setTimeout(() => fail(new Error('no CONNACK in time')), opts.timeoutMs ?? 60_000);
    let got = Buffer.alloc(0);
    function fail(e: Error): void {
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    }
    socket.once('secureConnect', () => socket.write(opts.packet));
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed before CONNACK')));
    socket.on('data', function onData(chunk: Buffer) {
      got = Buffer.concat([got, chunk]);
      if (got.length < 4) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.removeAllListeners('close');
      socket.removeAllListeners('error');
      // After the CONNACK the socket only has to stay open; errors now mean the server dropped it.
      socket.on('error', () => {});
      // MQTT 3.1.1 §3.2: 0x20, remaining length 2, session present, return code.
      if (got[0] !== 0x20 || got[3] !== 0) {
        socket.destroy();
        reject(new Error(`CONNACK refused: ${got.subarray(0, 4).toString('hex')}`));
        return;
      }
      resolve(socket);
    });
  });
}
