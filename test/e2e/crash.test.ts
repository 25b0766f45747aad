import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { createStore, PostgresStore, type Store } from '../../src/store/index.js';
import { createRecord, registerDevice, spawnServer, type ServerProcess } from './server-process.js';
import { deleteTestStream, testBusPrefix } from '../helpers/buses.js';

/**
 * Crash safety of the whole program: `kill -9` during a QoS 1 burst from several MQTT.js devices over TLS, restart on
 * the same store, and check that every acknowledged message is in the telemetry log and that the rules pipeline
 * raised every alert exactly once.
 *
 * The readings alternate under and over the rules' thresholds, each over-threshold reading with its own value and
 * message id, so (with suppression off) every over-threshold message raises exactly one alert per rule, token
 * `<message id>/<rule id>`. The server is killed twice; after each restart the devices resend from their first
 * unacknowledged message (from the under-threshold reading before it, so the rules are re-armed whatever reached the
 * log), as a device SDK does, and in the end the burst completes: every message must then be stored and every
 * over-threshold one must have its alerts, once each.
 */

const DEVICES = 10;
const PER_DEVICE = 1000;
const TOTAL = DEVICES * PER_DEVICE;
/** Messages per device sent before the burst, one at a time. */
const WARM_UP = 50;
/** The kills come once this many messages have been acknowledged in all. */
const KILL_POINTS = [2500, 5000, 7500];
const IN_FLIGHT = 64;
const HOST = 'localhost';

interface Variant {
  readonly name: string;
  /** Rules over the readings: every over-threshold reading (100 + its index) crosses all of them. */
  readonly thresholds: readonly number[];
  readonly store: () => string;
  readonly bus?: () => { url: string; args: string[]; cleanup: () => Promise<void> };
}

function variants(): Variant[] {
  // Three rules on SQLite: alerts come three per over-threshold reading, enough that a kill often catches the
  // pipeline with work not done yet. One on PostgreSQL, where every alert costs more round trips.
  const list: Variant[] = [{ name: 'SQLite, in-process bus', thresholds: [70, 80, 90], store: () => `sqlite:${join(mkdtempSync(join(tmpdir(), 'ccs-crash-db-')), 'ccs.db')}` }];
  const pg = process.env['CCS_TEST_POSTGRES_URL'];
  const nats = process.env['CCS_TEST_NATS_URL'];
  if (pg && nats) {
    list.push({
      name: 'PostgreSQL, NATS JetStream',
      thresholds: [70],
      store: () => {
        const u = new URL(pg);
        u.searchParams.set('schema', `ccs_test_${randomBytes(6).toString('hex')}`);
        return u.toString();
      },
      bus: () => {
        const prefix = testBusPrefix();
        return {
          url: nats,
          args: ['--bus-prefix', prefix],
          cleanup: () => deleteTestStream(nats, prefix),
        };
      },
    });
  }
  return list;
}

function sasToken(deviceId: string, key: string): string {
  const se = Math.floor(Date.now() / 1000) + 3600;
  const sr = encodeURIComponent(`${HOST}/devices/${deviceId}`);
  const sig = createHmac('sha256', Buffer.from(key, 'base64')).update(`${sr}\n${se}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}`;
}

function connectDevice(srv: ServerProcess, deviceId: string, key: string): Promise<MqttClient> {
  return mqtt.connectAsync(`mqtts://${HOST}:${srv.mqttsPort}`, {
    clientId: deviceId,
    username: `${HOST}/${deviceId}/?api-version=2021-04-12`,
    password: sasToken(deviceId, key),
    protocolVersion: 4,
    clean: true,
    ca: srv.ca,
    reconnectPeriod: 0,
    connectTimeout: 30_000,
  });
}

const messageId = (deviceId: string, i: number) => `${deviceId}-m${i}`;
/** Even messages are under the threshold (re-arm), odd ones over it, each with a value of its own. */
const reading = (i: number) => ({ Temperature: i % 2 === 0 ? 20 : 100 + i });

/**
 * Sends messages `from`..PER_DEVICE-1 of one device in order with up to IN_FLIGHT unacknowledged, recording each
 * PUBACK. Resolves when all are acknowledged or the connection is gone (then the rest simply stay unacknowledged).
 */
function burst(client: MqttClient, deviceId: string, from: number, until: number, acked: boolean[], onAck: () => void, inFlight = IN_FLIGHT): Promise<void> {
  return new Promise<void>((resolve) => {
    if (from >= until) return resolve();
    let next = from;
    let pending = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve();
    };
    client.once('close', finish);
    // Settled by the last PUBACK or by the connection closing, whichever comes first.
    const pump = () => {
      while (!done && pending < inFlight && next < until && client.connected) {
        const i = next++;
        pending++;
        const topic = `devices/${deviceId}/messages/events/%24.mid=${encodeURIComponent(messageId(deviceId, i))}`;
        client.publish(topic, JSON.stringify(reading(i)), { qos: 1 }, (err) => {
          pending--;
          if (!err) {
            acked[i] = true;
            onAck();
          }
          if (next >= until && pending === 0) finish();
          else pump();
        });
      }
    };
    pump();
  });
}

async function readLog(store: Store): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  for (let after = 0; ; ) {
    const rows = await store.select({
      table: 'ccs_telemetry',
      columns: ['sequence', 'system'],
      where: { kind: 'compare', op: 'gt', left: { kind: 'column', column: 'sequence' }, right: { kind: 'value', value: after } },
      orderBy: [{ column: 'sequence' }],
      limit: 5000,
    });
    if (rows.length === 0) return ids;
    for (const r of rows) {
      const mid = r['system'] === null ? undefined : (JSON.parse(String(r['system'])) as Record<string, unknown>)['$.mid'];
      if (typeof mid === 'string') ids.set(mid, (ids.get(mid) ?? 0) + 1);
    }
    after = Number(rows[rows.length - 1]!['sequence']);
  }
}

/** Alert tokens of this test's rules, with how many alerts carry each. */
async function readAlerts(store: Store, ruleIds: readonly string[]): Promise<Map<string, number>> {
  const tokens = new Map<string, number>();
  const rows = await store.select({ table: 'msdyn_iotalert', columns: ['msdyn_alerttoken'] });
  for (const r of rows) {
    const t = r['msdyn_alerttoken'];
    if (typeof t === 'string' && ruleIds.some((r) => t.endsWith(`/${r}`))) tokens.set(t, (tokens.get(t) ?? 0) + 1);
  }
  return tokens;
}

/** The rules pipeline's checkpointed watermark (0 before its first checkpoint). */
async function watermark(store: Store): Promise<number> {
  const [row] = await store.select({ table: 'ccs_rulestate', columns: ['sequence'], where: { kind: 'compare', op: 'eq', left: { kind: 'column', column: 'deviceid' }, right: { kind: 'value', value: '' } } }).catch(() => []);
  return row ? Number(row['sequence']) : 0;
}

/** The sum of a metric's samples at /metrics, over the series whose labels contain `match`. */
async function metric(srv: ServerProcess, name: string, match = ''): Promise<number> {
  const text = await (await srv.fetch('/metrics')).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (line.includes(match)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms: number, srv?: ServerProcess): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what} not reached within ${ms} ms (last: ${String(last)})\n${srv?.output().slice(-4000) ?? ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

for (const variant of variants()) {
  describe(`crash safety: kill -9 mid-burst (${variant.name})`, () => {
    test(`every acknowledged message of a ${TOTAL}-message QoS 1 burst is stored, and every alert exists exactly once`, { timeout: 600_000 }, async (t) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'ccs-crash-'));
      const storeUrl = variant.store();
      const bus = variant.bus?.();
      const spawnOpts = { dataDir, store: storeUrl, bus: bus?.url, args: bus?.args };
      let srv = await spawnServer(spawnOpts);
      const store = createStore(storeUrl);
      const clients: MqttClient[] = [];
      try {
        const ruleIds: string[] = [];
        for (const threshold of variant.thresholds) {
          ruleIds.push(await createRecord(srv, 'ccs_iotrules', {
            ccs_name: `Crash test: over ${threshold}`,
            ccs_condition: JSON.stringify({ measure: 'Temperature', op: 'gt', value: threshold }),
            ccs_suppressseconds: 0,
          }));
        }
        const tokens = (d: string, i: number) => ruleIds.map((r) => `${messageId(d, i)}/${r}`);
        const devices = Array.from({ length: DEVICES }, (_, d) => `crash-${d}`);
        const keys = new Map<string, string>();
        for (const d of devices) keys.set(d, await registerDevice(srv, d));
        const acked = new Map(devices.map((d) => [d, new Array<boolean>(PER_DEVICE).fill(false)]));
        let ackCount = 0;
        const countAcked = () => [...acked.values()].reduce((n, a) => n + a.filter(Boolean).length, 0);
        /**
         * Where each device goes on after a restart: its first unacknowledged message, or the under-threshold
         * message before it, so that the rules are re-armed whatever part of the burst reached the log.
         */
        const resumeAt = (d: string) => {
          const first = acked.get(d)!.indexOf(false);
          return first < 0 ? PER_DEVICE : first - (first % 2);
        };

        // A first part at an easy pace, until the rules pipeline has checkpointed its state: the restarts then
        // restore a checkpoint and replay what came after it.
        for (const d of devices) clients.push(await connectDevice(srv, d, keys.get(d)!));
        await Promise.all(devices.map((d, i) => burst(clients[i]!, d, 0, WARM_UP, acked.get(d)!, () => void ackCount++, 1)));
        await waitFor('a rules checkpoint', async () => ((await watermark(store)) > 0 ? true : undefined), 60_000, srv);

        for (const [round, killAt] of KILL_POINTS.entries()) {
          if (round > 0) for (const d of devices) clients.push(await connectDevice(srv, d, keys.get(d)!));
          // Killed from the PUBACK callback itself, so the server is caught in the middle of its work.
          let killed: Promise<number | string> | undefined;
          await Promise.all(
            devices.map((d, i) =>
              burst(clients[i]!, d, resumeAt(d), PER_DEVICE, acked.get(d)!, () => {
                if (++ackCount >= killAt && !killed) killed = srv.kill();
              }),
            ),
          );
          assert.ok(killed, `the burst finished (${countAcked()} acknowledged) before the kill at ${killAt}`);
          assert.equal(await killed, 'SIGKILL');
          for (const c of clients.splice(0)) await c.endAsync(true).catch(() => undefined);
          const ackedNow = countAcked();
          assert.ok(ackedNow < TOTAL, `all ${ackedNow} acknowledged before the kill`);

          // Restart on the same data. The pipeline has replayed the log by the time the server is listening.
          srv = await spawnServer(spawnOpts);
          const log = await readLog(store);
          const missing = devices.flatMap((d) => acked.get(d)!.flatMap((ok, i) => (ok && !log.has(messageId(d, i)) ? [messageId(d, i)] : [])));
          assert.deepEqual(missing, [], 'acknowledged messages missing from the telemetry log after kill -9');
          // Every acknowledged over-threshold message has its alerts now, before any device sends again: no later
          // message can stand in for a lost one.
          const alerts = await readAlerts(store, ruleIds);
          const lost = devices.flatMap((d) => acked.get(d)!.flatMap((ok, i) => (ok && i % 2 === 1 ? tokens(d, i).filter((k) => !alerts.has(k)) : [])));
          assert.deepEqual(lost, [], 'alerts missing after the restart for acknowledged messages');
          assert.deepEqual([...alerts].filter(([, n]) => n > 1), [], 'duplicated alerts after the restart');
          const recovered = await metric(srv, 'ccs_pipeline_firings_total', 'outcome="created"');
          const replayed = await metric(srv, 'ccs_pipeline_readings_total', 'source="replay"');
          t.diagnostic(`kill ${round + 1}: ${ackedNow} of ${TOTAL} acknowledged, ${log.size} message ids in the log, ${alerts.size} alerts; ` +
            `the restart replayed ${replayed} readings and created ${recovered} alerts`);
        }

        // The devices reconnect and resend from where they were; the burst completes.
        for (const d of devices) clients.push(await connectDevice(srv, d, keys.get(d)!));
        await Promise.all(devices.map((d, i) => burst(clients[i]!, d, resumeAt(d), PER_DEVICE, acked.get(d)!, () => void ackCount++)));
        assert.equal(countAcked(), TOTAL, 'every message acknowledged in the end');

        const expected = (TOTAL / 2) * variant.thresholds.length;
        await waitFor(`${expected} alerts`, async () => ((await readAlerts(store, ruleIds)).size >= expected ? true : undefined), 180_000, srv);
        for (const c of clients.splice(0)) await c.endAsync().catch(() => undefined);
        assert.equal(await srv.stop(), 0, `orderly shutdown failed:\n${srv.output().slice(-4000)}`);

        const log = await readLog(store);
        for (const d of devices) for (let i = 0; i < PER_DEVICE; i++) assert.ok(log.has(messageId(d, i)), `${messageId(d, i)} is in the log`);
        const alerts = await readAlerts(store, ruleIds);
        assert.deepEqual([...alerts].filter(([, n]) => n > 1), [], 'duplicated alerts');
        for (const d of devices) for (let i = 1; i < PER_DEVICE; i += 2) for (const k of tokens(d, i)) assert.ok(alerts.has(k), `alert ${k}`);
        assert.equal(alerts.size, expected);
      } finally {
        for (const c of clients) await c.endAsync(true).catch(() => undefined);
        if (srv.child.exitCode === null && srv.child.signalCode === null) await srv.kill();
        if (store instanceof PostgresStore) await store.dropSchema();
        await store.close();
        await bus?.cleanup();
      }
    });
  });
}

const scaleOut = variants().find((v) => v.bus !== undefined);

describe('crash safety: kill -9 a worker mid-stream (PostgreSQL, NATS JetStream, separate hub and worker processes)', { skip: !scaleOut && 'needs CCS_TEST_POSTGRES_URL and CCS_TEST_NATS_URL' }, () => {
  test(`a ${TOTAL}-message burst through a hub node while its worker is killed ${KILL_POINTS.length} times: every alert exactly once`, { timeout: 600_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ccs-crash-worker-'));
    const storeUrl = scaleOut!.store();
    const bus = scaleOut!.bus!();
    const common = { dataDir, store: storeUrl, bus: bus.url };
    const hub = await spawnServer({ ...common, args: [...bus.args, '--roles', 'api,hub'] });
    // A worker replays what it missed before it reports running: give it time.
    const startWorker = () => spawnServer({ ...common, args: [...bus.args, '--roles', 'worker'], startTimeoutMs: 240_000 });
    // Every worker started, so that none outlives the test whatever happens.
    const workers: ServerProcess[] = [];
    const startedWorker = (w: ServerProcess) => (workers.push(w), w);
    let worker = startedWorker(await startWorker());
    const store = createStore(storeUrl);
    const clients: MqttClient[] = [];
    try {
      const ruleIds: string[] = [];
      for (const threshold of scaleOut!.thresholds) {
        ruleIds.push(await createRecord(hub, 'ccs_iotrules', {
          ccs_name: `Crash test: over ${threshold}`,
          ccs_condition: JSON.stringify({ measure: 'Temperature', op: 'gt', value: threshold }),
          ccs_suppressseconds: 0,
        }));
      }
      const devices = Array.from({ length: DEVICES }, (_, d) => `worker-crash-${d}`);
      const keys = new Map<string, string>();
      for (const d of devices) keys.set(d, await registerDevice(hub, d));
      const acked = new Map(devices.map((d) => [d, new Array<boolean>(PER_DEVICE).fill(false)]));
      let ackCount = 0;
      for (const d of devices) clients.push(await connectDevice(hub, d, keys.get(d)!));
      await Promise.all(devices.map((d, i) => burst(clients[i]!, d, 0, WARM_UP, acked.get(d)!, () => void ackCount++, 1)));
      await waitFor('a rules checkpoint', async () => ((await watermark(store)) > 0 ? true : undefined), 60_000, worker);

      // The worker is killed at each kill point and started again at once; the hub goes on taking the burst.
      // Restarts run one after another, so that each kill takes the worker the previous restart started and no worker
      // is left running unseen.
      const restarts: Promise<void>[] = [];
      let restarting = Promise.resolve();
      let next = 0;
      await Promise.all(
        devices.map((d, i) =>
          burst(clients[i]!, d, WARM_UP, PER_DEVICE, acked.get(d)!, () => {
            if (++ackCount < (KILL_POINTS[next] ?? Infinity)) return;
            next++;
            restarting = restarting.then(async () => {
              assert.equal(await worker.kill(), 'SIGKILL');
              worker = startedWorker(await startWorker());
            });
            restarts.push(restarting);
          }),
        ),
      );
      assert.equal(ackCount, TOTAL, 'the hub acknowledged every message');
      await Promise.all(restarts);
      assert.equal(restarts.length, KILL_POINTS.length, 'the worker was killed at every kill point');

      const expected = (TOTAL / 2) * scaleOut!.thresholds.length;
      await waitFor(`${expected} alerts`, async () => ((await readAlerts(store, ruleIds)).size >= expected ? true : undefined), 300_000, worker);
      for (const c of clients.splice(0)) await c.endAsync().catch(() => undefined);
      assert.equal(await worker.stop(), 0, `worker shutdown failed:\n${worker.output().slice(-4000)}`);
      assert.equal(await hub.stop(), 0, `hub shutdown failed:\n${hub.output().slice(-4000)}`);

      const log = await readLog(store);
      for (const d of devices) for (let i = 0; i < PER_DEVICE; i++) assert.ok(log.has(messageId(d, i)), `${messageId(d, i)} is in the log`);
      const alerts = await readAlerts(store, ruleIds);
      assert.deepEqual([...alerts].filter(([, n]) => n > 1), [], 'duplicated alerts');
      for (const d of devices) {
        for (let i = 1; i < PER_DEVICE; i += 2) for (const r of ruleIds) assert.ok(alerts.has(`${messageId(d, i)}/${r}`), `alert of ${messageId(d, i)}`);
      }
      assert.equal(alerts.size, expected);
    } finally {
      for (const c of clients) await c.endAsync(true).catch(() => undefined);
      for (const p of [hub, ...workers]) if (p.child.exitCode === null && p.child.signalCode === null) await p.kill();
      if (store instanceof PostgresStore) await store.dropSchema();
      await store.close();
      await bus.cleanup();
    }
  });
});
