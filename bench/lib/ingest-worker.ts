/**
 * One load-generator thread of bench:ingest: MQTT.js 5 clients over TLS, each a device publishing QoS 1 telemetry on
 * its IoT Hub topic and keeping `inflight` publishes waiting for their PUBACK (a new one goes out as each is
 * acknowledged). Acknowledgements are counted in shared memory so the main thread reads exact totals at any time;
 * latencies (publish call → PUBACK) are kept only while the main thread says it is measuring.
 *
 * Messages from the main thread: 'go' (start publishing), 'measure' (record latencies), 'stop'.
 */
import { parentPort, workerData } from 'node:worker_threads';
import mqtt, { type MqttClient } from 'mqtt';
import type { BenchDevice } from './devices.js';

export interface IngestWorkerInput {
  readonly host: string;
  readonly port: number;
  readonly servername: string;
  readonly ca: string;
  readonly devices: readonly BenchDevice[];
  readonly inflight: number;
  readonly payload: string;
  /** Int32 slots: [2 × index] acknowledged, [2 × index + 1] errors. */
  readonly counters: SharedArrayBuffer;
  readonly index: number;
  readonly connectConcurrency: number;
}

export type IngestWorkerReport =
  | { readonly type: 'ready'; readonly connected: number; readonly failures: readonly string[] }
  | { readonly type: 'done'; readonly latencies: Float64Array; readonly unacknowledged: number };

const input = workerData as IngestWorkerInput;
const port = parentPort!;
const counters = new Int32Array(input.counters);
const ACKED = 2 * input.index;
const ERRORS = 2 * input.index + 1;
const payload = Buffer.from(input.payload);

let publishing = false;
let measuring = false;
let latencies = new Float64Array(1 << 16);
let latencyCount = 0;
let outstanding = 0;

function record(ms: number): void {
  if (latencyCount === latencies.length) {
    const bigger = new Float64Array(latencies.length * 2);
    bigger.set(latencies);
    latencies = bigger;
  }
  latencies[latencyCount++] = ms;
}

function connect(d: BenchDevice): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect({
      protocol: 'mqtts',
      host: input.host,
      port: input.port,
      servername: input.servername,
      ca: input.ca,
      clientId: d.deviceId,
      username: d.username,
      password: d.password,
      protocolVersion: 4,
      clean: true,
      keepalive: 180,
      reconnectPeriod: 0,
      connectTimeout: 60_000,
    });
    client.once('connect', () => {
      client.removeAllListeners('error');
      client.on('error', () => Atomics.add(counters, ERRORS, 1));
      resolve(client);
    });
    client.once('error', (e) => {
      client.end(true);
      reject(e);
    });
  });
}

function publishLoop(client: MqttClient, topic: string): void {
  const send = (): void => {
    if (!publishing) return;
    const started = performance.now();
    outstanding++;
    client.publish(topic, payload, { qos: 1 }, (err) => {
      outstanding--;
      if (err) {
        Atomics.add(counters, ERRORS, 1);
        return;
      }
      Atomics.add(counters, ACKED, 1);
      if (measuring) record(performance.now() - started);
      send();
    });
  };
  for (let i = 0; i < input.inflight; i++) send();
}

const clients: { client: MqttClient; topic: string }[] = [];
const failures: string[] = [];
let next = 0;
await Promise.all(
  Array.from({ length: Math.min(input.connectConcurrency, input.devices.length) }, async () => {
    while (next < input.devices.length) {
      const d = input.devices[next++]!;
      try {
        clients.push({ client: await connect(d), topic: `devices/${d.deviceId}/messages/events/` });
      } catch (e) {
        if (failures.length < 5) failures.push(`${d.deviceId}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }),
);
port.postMessage({ type: 'ready', connected: clients.length, failures } satisfies IngestWorkerReport);

port.on('message', (m: string) => {
  if (m === 'go') {
    publishing = true;
    for (const c of clients) publishLoop(c.client, c.topic);
  } else if (m === 'measure') {
    measuring = true;
  } else if (m === 'stop') {
    publishing = false;
    measuring = false;
    void finish();
  }
});

async function finish(): Promise<void> {
  // Let what is in flight come back (up to 10 s) so connections close with nothing pending.
  const end = performance.now() + 10_000;
  while (outstanding > 0 && performance.now() < end) await new Promise((r) => setTimeout(r, 20));
  const unacknowledged = outstanding;
  await Promise.all(clients.map((c) => c.client.endAsync(true).catch(() => undefined)));
  const result = latencies.slice(0, latencyCount);
  port.postMessage({ type: 'done', latencies: result, unacknowledged } satisfies IngestWorkerReport, [result.buffer]);
}
