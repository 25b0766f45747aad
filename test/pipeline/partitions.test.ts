import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import mqtt from 'mqtt';
import type { App, AppDeps, StartInfo } from '../../src/app.js';
import type { Bus } from '../../src/bus/index.js';
import { ownerOf, partitionOfDevice, partitionsOf, RULE_PARTITIONS } from '../../src/pipeline/partitions.js';
import { createStore, eq, PostgresStore } from '../../src/store/index.js';
import { engines } from '../helpers/engines.js';
import { ADMIN_TOKEN, sharedBuses, sharedTls, startNode, until, type SharedBus, type SharedTls } from '../scale-out/nodes.js';

describe('device partitions', () => {
  test('a device id falls in one partition: FNV-1a 32 of its UTF-8 bytes, modulo 64', () => {
    // FNV-1a 32 reference values: '' → 0x811c9dc5, 'a' → 0xe40c292c, 'foobar' → 0xbf9cf968.
    assert.equal(partitionOfDevice(''), 0x811c9dc5 % 64);
    assert.equal(partitionOfDevice('a'), 0xe40c292c % 64);
    assert.equal(partitionOfDevice('foobar'), 0xbf9cf968 % 64);
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (id) => {
        const p = partitionOfDevice(id);
        return Number.isInteger(p) && p >= 0 && p < RULE_PARTITIONS && p === partitionOfDevice(id);
      }),
    );
  });

  test('one worker owns every partition; every partition has exactly one owner among the live workers', () => {
    assert.deepEqual(partitionsOf('only', ['only']), Array.from({ length: RULE_PARTITIONS }, (_, i) => i));
    assert.equal(ownerOf(3, []), undefined);
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,20}$/), { minLength: 1, maxLength: 8 }), (workers) => {
        const shares = workers.map((w) => partitionsOf(w, workers));
        const all = shares.flat().sort((x, y) => x - y);
        assert.deepEqual(all, Array.from({ length: RULE_PARTITIONS }, (_, i) => i));
        // The order the workers are listed in changes nothing.
        assert.deepEqual(partitionsOf(workers[0]!, [...workers].reverse()), shares[0]);
      }),
    );
  });

  test('a worker joining takes partitions only from the others, and a worker leaving gives only its own', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,20}$/), { minLength: 2, maxLength: 8 }), (workers) => {
        const before = workers.slice(0, -1);
        const joiner = workers[workers.length - 1]!;
        for (let p = 0; p < RULE_PARTITIONS; p++) {
          const was = ownerOf(p, before);
          const now = ownerOf(p, workers);
          assert.ok(now === was || now === joiner, `partition ${p} moved from ${was} to ${now}, not to the joiner`);
        }
      }),
    );
    // With several workers the shares are not lopsided: each of four has some.
    const four = ['w-a1', 'w-b2', 'w-c3', 'w-d4'];
    for (const w of four) assert.ok(partitionsOf(w, four).length > 0);
  });
});

/** Requests to the nodes go to localhost: a proxy configured for the machine must not take them. */
for (const k of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY']) delete process.env[k];

interface Worker {
  readonly app: App;
  readonly info: StartInfo;
  readonly id: string;
  metric(name: string, match?: string): Promise<number>;
  stop(): Promise<void>;
}

/** An all-roles node of an installation (startNode) with the test's clock and pipeline timings. */
async function startWorker(storeUrl: string, bus: Bus, tls: SharedTls, clock?: () => number, pipeline?: AppDeps['pipeline']): Promise<Worker> {
  const { app, info } = await startNode({ storeUrl, bus, tls, clock, pipeline });
  let stopped = false;
  return {
    app,
    info,
    id: app.pipeline.workerId,
    async metric(name, match = '') {
      const text = await (await fetch(`${info.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
      let sum = 0;
      for (const line of text.split('\n')) {
        if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
        if (line.includes(match)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
      return sum;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await app.stop();
      await bus.close();
    },
  };
}

/**
 * Heartbeats, one worker after the other, until the live workers hold all 64 partitions between them, none twice.
 * A heartbeat that fails is tried again, as the timer would: on SQLite, two nodes in one process may find the file
 * locked by the other's background work (see `settled`).
 */
async function settle(workers: readonly Worker[]): Promise<void> {
  let failure: unknown;
  for (let round = 0; round < 10; round++) {
    for (const w of workers) await w.app.pipeline.heartbeat().catch((e: unknown) => (failure = e));
    const shares = workers.map((w) => w.app.pipeline.partitions());
    const all = shares.flat();
    const expected = workers.map((w) => partitionsOf(w.id, workers.map((x) => x.id)));
    if (all.length === RULE_PARTITIONS && new Set(all).size === RULE_PARTITIONS && shares.every((s, i) => s.join() === expected[i]!.join())) return;
  }
  throw new Error('the workers did not settle on their partitions', { cause: failure });
}

/** Device ids `prefix-N` whose partition `workerId` owns among `live`, `n` of them. */
function devicesOf(prefix: string, workerId: string, live: readonly string[], n: number): string[] {
  const ids: string[] = [];
  for (let i = 0; ids.length < n; i++) if (ownerOf(partitionOfDevice(`${prefix}-${i}`), live) === workerId) ids.push(`${prefix}-${i}`);
  return ids;
}

async function alertTokens(app: App, deviceId: string): Promise<string[]> {
  const rows = await app.store.select({ table: 'msdyn_iotalert', columns: ['msdyn_alerttoken'], where: eq('msdyn_deviceid', deviceId) });
  return rows.map((r) => String(r['msdyn_alerttoken'])).sort();
}

async function createRule(app: App, name: string, condition: Record<string, unknown>): Promise<string> {
  return app.records.create(app.system, 'ccs_iotrule', { ccs_name: name, ccs_condition: JSON.stringify(condition), ccs_suppressseconds: 0 });
}

function ingest(app: App, deviceId: string, temperature: number, messageId: string) {
  return app.hub.ingest(deviceId, { body: Buffer.from(JSON.stringify({ Temperature: temperature })), properties: {}, messageId }, 'https');
}

function sasToken(deviceId: string, key: string): string {
  const se = Math.floor(Date.now() / 1000) + 3600;
  const sr = encodeURIComponent(`localhost/devices/${deviceId}`);
  const sig = createHmac('sha256', Buffer.from(key, 'base64')).update(`${sr}\n${se}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}`;
}

const TIMEOUT = { timeout: 120_000 };

/**
 * Waits until `evaluated` readings were evaluated in all, and the alert `token` (if any) is written. The tests send
 * one reading at a time and wait for it: two apps in one process on one SQLite file must not write at the same time,
 * since better-sqlite3 waits for the file's lock synchronously, and an app beginning a transaction while the other's
 * is open between two awaits blocks the very event loop the other needs to commit ("database is locked"). The nodes
 * of a real installation are separate processes (on PostgreSQL).
 */
async function settled(any: Worker, evaluated: number, total: () => Promise<number>, token?: string): Promise<void> {
  await until(async () => ((await total()) >= evaluated ? true : undefined), `${evaluated} readings evaluated`);
  if (token === undefined) return;
  await until(async () => {
    const rows = await any.app.store.select({ table: 'msdyn_iotalert', columns: ['msdyn_alerttoken'], where: eq('msdyn_alerttoken', token) });
    return rows.length > 0 ? true : undefined;
  }, `alert ${token}`);
}

for (const engine of engines()) {
  describe(`rules workers sharing device partitions (${engine.name})`, () => {
    const tls = sharedTls();
    const [memoryBus] = sharedBuses();
    /** Nodes on one fresh store and one bus (in-process by default); `close` stops them all and drops the store's schema. */
    function installation(clock?: () => number, makeBus: () => SharedBus = memoryBus!, pipeline?: AppDeps['pipeline']) {
      const storeUrl = engine.url();
      const bus = makeBus();
      const workers: Worker[] = [];
      return {
        storeUrl,
        bus,
        async start(): Promise<Worker> {
          const w = await startWorker(storeUrl, await bus.connect(), tls, clock, pipeline);
          workers.push(w);
          return w;
        },
        async close(): Promise<void> {
          for (const w of workers) await w.stop().catch(() => undefined);
          await bus.cleanup();
          // The nodes' stores are closed by now: one of its own to drop the schema with.
          const store = createStore(storeUrl);
          if (store instanceof PostgresStore) await store.dropSchema().catch(() => undefined);
          await store.close();
        },
      };
    }

    for (const makeBus of sharedBuses()) {
      // One namespace just for its name; each test opens its own.
      test(`two workers (${makeBus().name} bus): each device is evaluated by exactly one of them, and each alert is created once`, TIMEOUT, async (t) => {
        const inst = installation(undefined, makeBus);
        t.after(() => inst.close());
        const a = await inst.start();
        const ruleId = await createRule(a.app, 'Hot', { measure: 'Temperature', op: 'gt', value: 70 });
        const b = await inst.start();
        await settle([a, b]);
        const live = [a.id, b.id];
        assert.equal((await a.metric('ccs_pipeline_partitions_owned')) + (await b.metric('ccs_pipeline_partitions_owned')), RULE_PARTITIONS);
        assert.ok((await a.metric('ccs_pipeline_partitions_owned')) > 0 && (await b.metric('ccs_pipeline_partitions_owned')) > 0);

        // Real devices over MQTT/TLS to A's hub: three of each worker's devices.
        const devices = [...devicesOf('share', a.id, live, 3), ...devicesOf('share', b.id, live, 3)];
        const PER_DEVICE = 10;
        const total = async () => (await a.metric('ccs_pipeline_readings_total')) + (await b.metric('ccs_pipeline_readings_total'));
        let count = 0;
        for (const deviceId of devices) {
          const identity = await a.app.hub.registry.create({ deviceId });
          const client = await mqtt.connectAsync(`mqtts://localhost:${a.info.mqttsPort}`, {
            clientId: deviceId,
            username: `localhost/${deviceId}/?api-version=2021-04-12`,
            password: sasToken(deviceId, identity.primaryKey),
            protocolVersion: 4,
            ca: tls.ca,
            reconnectPeriod: 0,
          });
          try {
            for (let i = 0; i < PER_DEVICE; i++) {
              // Under then over the threshold, each over-threshold reading its own alert (suppression off).
              await client.publishAsync(`devices/${deviceId}/messages/events/%24.mid=${deviceId}-m${i}`, JSON.stringify({ Temperature: i % 2 === 0 ? 20 : 100 + i }), { qos: 1 });
              await settled(a, ++count, total, i % 2 === 1 ? `${deviceId}-m${i}/${ruleId}` : undefined);
            }
          } finally {
            await client.endAsync();
          }
        }
        const sent = devices.length * PER_DEVICE;
        await a.app.pipeline.checkpoint();
        await b.app.pipeline.checkpoint();
        assert.equal(await total(), sent, 'each reading evaluated once in all');
        assert.equal(await a.metric('ccs_pipeline_readings_total'), 3 * PER_DEVICE, "A evaluated its devices' readings");
        assert.equal(await b.metric('ccs_pipeline_readings_total'), 3 * PER_DEVICE, "B evaluated its devices' readings");
        for (const d of devices) {
          const expected = Array.from({ length: PER_DEVICE / 2 }, (_, k) => `${d}-m${2 * k + 1}/${ruleId}`).sort();
          await until(async () => ((await alertTokens(a.app, d)).length >= expected.length ? true : undefined), `alerts of ${d}`);
          assert.deepEqual(await alertTokens(a.app, d), expected);
        }
        assert.equal((await a.metric('ccs_pipeline_firings_total', 'outcome="duplicate"')) + (await b.metric('ccs_pipeline_firings_total', 'outcome="duplicate"')), 0);
        // Checkpoints carry their partition; every partition has its watermark and its holder.
        const [row] = await a.app.store.select({ table: 'ccs_rulestate', where: eq('deviceid', devices[0]!) });
        assert.equal(row?.['partition'], partitionOfDevice(devices[0]!));
        const marks = await a.app.store.select({ table: 'ccs_rulewatermark' });
        assert.equal(marks.length, RULE_PARTITIONS);
        for (const m of marks) assert.equal(m['workerid'], ownerOf(Number(m['partition']), live));
      });
    }

    for (const ending of ['stops', 'crashes'] as const) {
      test(`a duration half-way on worker B completes on A once B ${ending}: the alert fires at the right time, once`, TIMEOUT, async (t) => {
        let now = Date.UTC(2030, 0, 1, 12, 0, 0);
        const clock = () => now;
        const inst = installation(clock);
        t.after(() => inst.close());
        const a = await inst.start();
        const ruleId = await createRule(a.app, 'Hot for 40 s', { measure: 'Temperature', op: 'gt', value: 70, for: 'PT40S' });
        const b = await inst.start();
        await settle([a, b]);
        const [oven, late] = devicesOf('oven', b.id, [a.id, b.id], 2) as [string, string];
        const t0 = now;
        await ingest(a.app, oven, 90, 'o-1');
        await until(async () => ((await b.metric('ccs_pipeline_readings_total')) === 1 ? true : undefined), 'B evaluated the reading');
        assert.equal(await a.metric('ccs_pipeline_readings_total'), 0, 'A dropped it: not its partition');
        /** Moves the test clock, the workers' heartbeats keeping up with it (steps under their staleness). */
        const advance = async (to: number, workers: Worker[]) => {
          while (now < to) {
            now = Math.min(to, now + 10_000);
            for (const w of workers) await w.app.pipeline.heartbeat();
          }
        };
        await advance(t0 + 20_000, [a, b]);
        await b.app.pipeline.tick();
        assert.deepEqual(await alertTokens(a.app, oven), []);
        const readByB = await b.metric('ccs_pipeline_readings_total');

        if (ending === 'stops') {
          await b.stop();
        } else {
          await b.app.pipeline.crash();
          // Sent while B is dead and before A took over: in the log only.
          await ingest(a.app, late, 95, 'l-1');
        }
        const t1 = now;
        // A's next heartbeat finds B gone (it left, or nothing answers for it) and takes its partitions.
        await a.app.pipeline.heartbeat();
        assert.equal(a.app.pipeline.partitions().length, RULE_PARTITIONS);
        assert.equal(await a.metric('ccs_pipeline_partitions_owned'), RULE_PARTITIONS);
        await advance(t0 + 30_000, [a]);
        await a.app.pipeline.tick();
        assert.deepEqual(await alertTokens(a.app, oven), []);
        await advance(t0 + 45_000, [a]);
        await a.app.pipeline.tick();
        const [alert] = await a.app.store.select({ table: 'msdyn_iotalert', where: eq('msdyn_deviceid', oven) });
        assert.ok(alert, 'the duration completed on A');
        const data = JSON.parse(String(alert['msdyn_alertdata'])) as Record<string, unknown>;
        assert.equal(data['time'], new Date(t0 + 40_000).toISOString());
        assert.deepEqual(await alertTokens(a.app, oven), [`tick:${oven}:${t0 + 40_000}/${ruleId}`]);
        await advance(t0 + 90_000, [a]);
        await a.app.pipeline.tick();
        assert.equal((await alertTokens(a.app, oven)).length, 1, 'and only once');
        if (ending === 'stops') {
          // B checkpointed before it let go: A replayed nothing, so nothing was counted twice.
          assert.equal(await a.metric('ccs_pipeline_readings_total'), 0);
          assert.equal(readByB, 1);
        } else {
          // The reading sent while no one held the partition was replayed by A, and its duration completes too.
          assert.deepEqual(await alertTokens(a.app, late), [`tick:${late}:${t1 + 40_000}/${ruleId}`]);
          // At most what B applied since its last checkpoint is applied again.
          assert.ok((await a.metric('ccs_pipeline_readings_total', 'source="replay"')) <= 2);
        }
      });
    }

    test('a worker that is alive but stops writing its heartbeat (hung) loses its partitions once its heartbeat is stale', TIMEOUT, async (t) => {
      let now = Date.UTC(2030, 0, 1, 12, 0, 0);
      const clock = () => now;
      const inst = installation(clock);
      t.after(() => inst.close());
      const a = await inst.start();
      const ruleId = await createRule(a.app, 'Hot', { measure: 'Temperature', op: 'gt', value: 70 });
      // Another worker, as far as A can tell: it answers on the bus, writes a heartbeat once, and takes its share.
      const ghostBus = await inst.bus.connect();
      t.after(() => ghostBus.close());
      const ghost = ghostBus.respond('rules.worker.ghost', () => true);
      await ghost.ready;
      await a.app.store.insert('ccs_ruleworker', { workerid: 'ghost', heartbeat: now, startedon: now });
      await a.app.pipeline.heartbeat();
      const share = partitionsOf('ghost', [a.id, 'ghost']);
      assert.deepEqual(a.app.pipeline.partitions(), partitionsOf(a.id, [a.id, 'ghost']), 'A handed over the share of the new worker');
      for (const p of share) await a.app.store.update('ccs_rulewatermark', { workerid: 'ghost' }, eq('partition', p));

      // The ghost holds the device, so A leaves its reading alone; then the ghost hangs.
      const [device] = devicesOf('hung', 'ghost', [a.id, 'ghost'], 1) as [string];
      await ingest(a.app, device, 90, 'h-1');
      now += 10_000;
      await a.app.pipeline.heartbeat();
      assert.equal(a.app.pipeline.partitions().length, RULE_PARTITIONS - share.length, 'within staleMs the ghost keeps its share');
      assert.equal(await a.metric('ccs_pipeline_readings_total'), 0);
      assert.deepEqual(await alertTokens(a.app, device), []);

      now += 10_000; // 20 s without a heartbeat: stale
      await a.app.pipeline.heartbeat();
      assert.equal(a.app.pipeline.partitions().length, RULE_PARTITIONS);
      assert.equal((await a.app.store.select({ table: 'ccs_ruleworker', where: eq('workerid', 'ghost') })).length, 0, 'its row was removed');
      // A replayed the reading the ghost never evaluated: the alert exists, once.
      assert.deepEqual(await alertTokens(a.app, device), [`h-1/${ruleId}`]);
      assert.equal(await a.metric('ccs_pipeline_readings_total', 'source="replay"'), 1);
      await a.app.pipeline.heartbeat();
      assert.deepEqual(await alertTokens(a.app, device), [`h-1/${ruleId}`]);
    });

    test('a worker whose partition was taken while it was presumed gone writes none of its states, and drops them', TIMEOUT, async (t) => {
      // Heartbeats and checkpoints only when the test says so.
      const inst = installation(undefined, undefined, { heartbeatMs: 3_600_000, checkpointMs: 3_600_000 });
      t.after(() => inst.close());
      const a = await inst.start();
      await createRule(a.app, 'Hot', { measure: 'Temperature', op: 'gt', value: 70 });
      const p = partitionOfDevice('zombie-1');
      const [before] = await a.app.store.select({ table: 'ccs_rulewatermark', where: eq('partition', p) });
      // Another worker took the partition behind A's back (A's heartbeat was late): the row names it now.
      await a.app.store.update('ccs_rulewatermark', { workerid: 'other' }, eq('partition', p));
      await ingest(a.app, 'zombie-1', 20, 'z-1');
      await until(async () => ((await a.metric('ccs_pipeline_readings_total')) === 1 ? true : undefined), 'the reading evaluated');
      await a.app.pipeline.checkpoint();
      assert.equal((await a.app.store.select({ table: 'ccs_rulestate', where: eq('deviceid', 'zombie-1') })).length, 0, "no state written over the new holder's");
      const [after] = await a.app.store.select({ table: 'ccs_rulewatermark', where: eq('partition', p) });
      assert.equal(after?.['workerid'], 'other');
      assert.equal(after?.['sequence'], before?.['sequence'], 'nor its watermark');
      // At its next heartbeat A drops the partition's devices unsaved; 'other' has no heartbeat row, so A takes the
      // partition back at once and replays its reading from the log.
      await a.app.pipeline.heartbeat();
      assert.equal(a.app.pipeline.partitions().length, RULE_PARTITIONS);
      assert.equal(await a.metric('ccs_pipeline_readings_total', 'source="replay"'), 1);
      await a.app.pipeline.checkpoint();
      const [row] = await a.app.store.select({ table: 'ccs_rulestate', where: eq('deviceid', 'zombie-1') });
      assert.equal(row?.['partition'], p);
    });

    test('checkpoints written before partitioning (no partition, one watermark) are restored without a full replay', TIMEOUT, async (t) => {
      let now = Date.UTC(2030, 0, 1, 12, 0, 0);
      const clock = () => now;
      const inst = installation(clock);
      t.after(() => inst.close());
      const a = await inst.start();
      const ruleId = await createRule(a.app, 'Hot for 40 s', { measure: 'Temperature', op: 'gt', value: 70, for: 'PT40S' });
      const t0 = now;
      await ingest(a.app, 'kettle-1', 90, 'k-1');
      for (let i = 0; i < 5; i++) await ingest(a.app, 'kettle-2', 20, `k2-${i}`);
      await until(async () => ((await a.metric('ccs_pipeline_readings_total')) === 6 ? true : undefined), 'readings evaluated');
      await a.stop();
      // What an older version left: state rows without a partition, the watermark row, no partition rows.
      const store = createStore(inst.storeUrl);
      await store.delete('ccs_rulewatermark', { kind: 'true' });
      await store.update('ccs_rulestate', { partition: null }, { kind: 'true' });
      const [legacy] = await store.select({ table: 'ccs_rulestate', where: eq('deviceid', '') });
      const legacyMark = Number(legacy?.['sequence']);
      assert.ok(legacyMark > 0);
      await store.close();

      const b = await inst.start();
      assert.equal(await b.metric('ccs_pipeline_readings_total', 'source="replay"'), 0, 'nothing replayed: the old watermark stands for every partition');
      assert.equal(b.app.pipeline.partitions().length, RULE_PARTITIONS);
      for (const m of await b.app.store.select({ table: 'ccs_rulewatermark' })) assert.ok(Number(m['sequence']) >= legacyMark, `partition ${String(m['partition'])} starts from the old watermark`);
      now = t0 + 45_000;
      await b.app.pipeline.tick();
      assert.deepEqual(await alertTokens(b.app, 'kettle-1'), [`tick:kettle-1:${t0 + 40_000}/${ruleId}`], 'the duration went on from the old checkpoint');
      await b.app.pipeline.checkpoint();
      const [row] = await b.app.store.select({ table: 'ccs_rulestate', where: eq('deviceid', 'kettle-1') });
      assert.equal(row?.['partition'], partitionOfDevice('kettle-1'), 'the row was written again with its partition');
      assert.equal((await b.app.store.select({ table: 'ccs_rulewatermark' })).length, RULE_PARTITIONS);
    });

    test('a worker joining later takes part of the partitions; the first forgets them; no alert is lost or repeated', TIMEOUT, async (t) => {
      let now = Date.UTC(2030, 0, 1, 12, 0, 0);
      const clock = () => now;
      const inst = installation(clock);
      t.after(() => inst.close());
      const a = await inst.start();
      const hot = await createRule(a.app, 'Hot', { measure: 'Temperature', op: 'gt', value: 70 });
      const veryHot = await createRule(a.app, 'Very hot for 40 s', { measure: 'Temperature', op: 'gt', value: 200, for: 'PT40S' });
      assert.equal(a.app.pipeline.partitions().length, RULE_PARTITIONS, 'alone, A holds every partition');
      assert.equal(await a.metric('ccs_pipeline_partitions_owned'), RULE_PARTITIONS);

      const devices = Array.from({ length: 16 }, (_, i) => `join-${i}`);
      let sent = 0;
      let joined: Worker | undefined;
      const total = async () => (await a.metric('ccs_pipeline_readings_total')) + ((await joined?.metric('ccs_pipeline_readings_total')) ?? 0);
      const round = async (r: number) => {
        for (const d of devices) {
          await ingest(a.app, d, 20, `${d}-r${r}-under`);
          await settled(a, ++sent, total);
          await ingest(a.app, d, 100 + r, `${d}-r${r}-over`);
          await settled(a, ++sent, total, `${d}-r${r}-over/${hot}`);
        }
      };
      await round(0);
      // A furnace half-way through a duration when the partitions move.
      const t0 = now;
      await ingest(a.app, 'furnace-9', 250, 'f-1');
      await settled(a, ++sent, total);

      const b = await inst.start();
      joined = b;
      assert.equal(b.app.pipeline.partitions().length, 0, 'B takes nothing A still holds');
      await settle([a, b]);
      const live = [a.id, b.id];
      const aOwned = a.app.pipeline.partitions().length;
      assert.ok(aOwned > 0 && aOwned < RULE_PARTITIONS);
      assert.equal(await a.metric('ccs_pipeline_partitions_owned'), aOwned, "A's gauge dropped");
      assert.equal(aOwned + (await b.metric('ccs_pipeline_partitions_owned')), RULE_PARTITIONS);
      assert.ok(devices.some((d) => ownerOf(partitionOfDevice(d), live) === b.id), 'some devices moved to B');
      assert.equal(await b.metric('ccs_pipeline_readings_total'), 0, 'B replayed nothing: A checkpointed before letting go');

      await round(1);
      await round(2);
      for (const d of devices) {
        const expected = [0, 1, 2].map((r) => `${d}-r${r}-over/${hot}`).sort();
        await until(async () => ((await alertTokens(a.app, d)).length >= 3 ? true : undefined), `alerts of ${d}`);
        assert.deepEqual(await alertTokens(a.app, d), expected);
      }
      assert.equal(await total(), sent, 'every reading evaluated once across the move');

      // The furnace's duration completes on whichever worker holds it now, once.
      const holder = ownerOf(partitionOfDevice('furnace-9'), live) === a.id ? a : b;
      for (const w of [a, b]) assert.equal(w.app.pipeline.partitions().includes(partitionOfDevice('furnace-9')), w === holder);
      // After each move of the clock the holder's tick comes first (its timer may be at it too): on SQLite the other
      // node must not write while the alert is being written (see `settled`).
      for (const step of [10_000, 20_000]) {
        now = t0 + step;
        await holder.app.pipeline.tick();
        await settle([a, b]);
      }
      const furnace = async () => (await alertTokens(a.app, 'furnace-9')).filter((k) => k.endsWith(`/${veryHot}`));
      assert.deepEqual(await furnace(), []);
      for (const step of [30_000, 40_000, 50_000]) {
        now = t0 + step;
        await holder.app.pipeline.tick();
        await settle([a, b]);
      }
      assert.deepEqual(await furnace(), [`tick:furnace-9:${t0 + 40_000}/${veryHot}`]);
      assert.deepEqual(await alertTokens(a.app, 'furnace-9'), [`f-1/${hot}`, `tick:furnace-9:${t0 + 40_000}/${veryHot}`].sort());
    });
  });
}
