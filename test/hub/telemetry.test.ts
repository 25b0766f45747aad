import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { telemetrySubject } from '../../src/bus/index.js';
import type { TelemetryRecord } from '../../src/hub/index.js';
import { engines } from '../helpers/engines.js';
import { eventually, isCode, openHub, type TestHub } from './helpers.js';

for (const engine of engines()) {
  describe(`telemetry ingest (${engine.name})`, () => {
    let t: TestHub;
    before(async () => {
      t = await openHub(engine);
    });
    after(() => t.close());

    test('many concurrent ingests: all durable, grouped into few transactions, in order per device, on the bus', async () => {
      const published: TelemetryRecord[] = [];
      const sub = t.bus.subscribe('telemetry.*', (payload) => void published.push(payload as TelemetryRecord));
      const devices = 20;
      const perDevice = 50;
      const groupsBefore = t.hub.telemetryStats.groups;
      // Each device sends its messages back to back (as a QoS 1 window would), all devices at once.
      const results = await Promise.all(
        Array.from({ length: devices }, (_, d) =>
          Promise.all(Array.from({ length: perDevice }, (_, i) =>
            t.hub.ingest(`tel-${d}`, { body: Buffer.from(JSON.stringify({ d, i })), properties: { i: String(i) } }, 'mqtt'))),
        ),
      );
      const total = devices * perDevice;
      const groups = t.hub.telemetryStats.groups - groupsBefore;
      assert.ok(groups >= 1 && groups < total / 10, `group commit: ${groups} transactions for ${total} messages`);
      // Sequences are unique and, per device, follow the send order.
      const all = results.flat();
      assert.equal(new Set(all.map((r) => r.sequence)).size, total);
      for (const perDev of results) {
        for (let i = 1; i < perDev.length; i++) assert.ok(perDev[i]!.sequence > perDev[i - 1]!.sequence);
      }
      // Durable: a restarted hub reads them back from the log, in order.
      const hub = await t.restart();
      const log = await hub.readTelemetry({ afterSequence: Math.min(...all.map((r) => r.sequence)) - 1, limit: 10_000 });
      assert.equal(log.length, total);
      for (let d = 0; d < devices; d++) {
        const mine = log.filter((r) => r.deviceId === `tel-${d}`).map((r) => JSON.parse(r.message.body.toString()).i as number);
        assert.deepEqual(mine, Array.from({ length: perDevice }, (_, i) => i));
      }
      // And the bus saw each record once (delivery is asynchronous), in log order per device.
      await eventually(() => published.length >= total);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(published.length, total);
      for (let d = 0; d < devices; d++) {
        const seqs = published.filter((r) => r.deviceId === `tel-${d}`).map((r) => r.sequence);
        assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
      }
      await sub.unsubscribe();
    });

    test('with several groups in flight, groups still complete in sequence order', async () => {
      const own = await openHub(engine, { telemetryConcurrency: 3, telemetryMaxBatch: 7 });
      try {
        const published: TelemetryRecord[] = [];
        own.bus.subscribe('telemetry.>', (p) => void published.push(p as TelemetryRecord));
        const resolvedOrder: number[] = [];
        const all = await Promise.all(
          Array.from({ length: 100 }, (_, i) =>
            own.hub.ingest(`c-${i % 4}`, { body: Buffer.from(String(i)), properties: {} }, 'mqtt').then((r) => {
              resolvedOrder.push(r.sequence);
              return r;
            })),
        );
        assert.ok(own.hub.telemetryStats.groups >= 100 / 7);
        assert.deepEqual(resolvedOrder, [...resolvedOrder].sort((a, b) => a - b), 'appends resolve in sequence order');
        assert.deepEqual(all.map((r) => r.message.body.toString()), Array.from({ length: 100 }, (_, i) => String(i)));
        for (let i = 1; i < all.length; i++) assert.ok(all[i]!.sequence > all[i - 1]!.sequence);
        await eventually(() => published.length === 100);
        assert.deepEqual(published.map((r) => r.sequence), all.map((r) => r.sequence));
        assert.equal((await own.hub.readTelemetry({ limit: 1000 })).length, 100);
      } finally {
        await own.close();
      }
    });

    test('properties, system properties, binary bodies and the transport are kept', async () => {
      const binary = Buffer.from([0, 1, 2, 255, 254, 0]);
      const r = await t.hub.ingest('tel-props', {
        body: binary,
        properties: { alert: 'true', 'temp unit': 'C' },
        messageId: 'm-1',
        correlationId: 'c-1',
        userId: 'u-1',
        contentType: 'application/octet-stream',
        contentEncoding: 'binary',
        expiryTime: 1_900_000_000_000,
      }, 'https');
      const text = await t.hub.ingest('tel-props', { body: Buffer.from('{"t":21.5,"n":"Zürich"}'), properties: {} }, 'mqtt-ws');
      const [a, b] = await t.hub.readTelemetry({ deviceId: 'tel-props' });
      assert.equal(a!.sequence, r.sequence);
      assert.deepEqual(a!.message.body, binary);
      assert.deepEqual(a!.message.properties, { alert: 'true', 'temp unit': 'C' });
      assert.equal(a!.message.messageId, 'm-1');
      assert.equal(a!.message.correlationId, 'c-1');
      assert.equal(a!.message.userId, 'u-1');
      assert.equal(a!.message.contentType, 'application/octet-stream');
      assert.equal(a!.message.contentEncoding, 'binary');
      assert.equal(a!.message.expiryTime, 1_900_000_000_000);
      assert.equal(a!.transport, 'https');
      assert.equal(a!.enqueuedTime, t.clock());
      assert.equal(b!.sequence, text.sequence);
      assert.equal(b!.message.body.toString(), '{"t":21.5,"n":"Zürich"}');
      assert.equal(b!.transport, 'mqtt-ws');
    });

    test('a message over 256 KB is refused with MessageTooLarge; one at the limit is accepted', async () => {
      await assert.rejects(t.hub.ingest('tel-big', { body: Buffer.alloc(256 * 1024 + 1), properties: {} }, 'mqtt'), isCode('MessageTooLarge'));
      await assert.rejects(t.hub.ingest('tel-big', { body: Buffer.alloc(256 * 1024 - 2), properties: { ab: 'c' } }, 'mqtt'), isCode('MessageTooLarge'));
      const ok = await t.hub.ingest('tel-big', { body: Buffer.alloc(256 * 1024), properties: {} }, 'mqtt');
      assert.equal((await t.hub.readTelemetry({ deviceId: 'tel-big' }))[0]!.sequence, ok.sequence);
    });

    test('ingest records activity: lastActivityTime of the identity moves', async () => {
      await t.hub.registry.create({ deviceId: 'tel-act' });
      assert.equal((await t.hub.registry.get('tel-act'))!.lastActivityTime, null);
      t.clock.advance(1000);
      await t.hub.ingest('tel-act', { body: Buffer.from('x'), properties: {} }, 'mqtt');
      assert.equal((await t.hub.registry.get('tel-act'))!.lastActivityTime, t.clock());
    });

    test('records go out on telemetry.<deviceId>, with device ids made subject-safe', async () => {
      const got: string[] = [];
      const sub = t.bus.subscribe(telemetrySubject('dot.ted*id'), (p) => void got.push((p as TelemetryRecord).deviceId));
      const other = t.bus.subscribe(telemetrySubject('dot'), () => void got.push('wrong'));
      await t.hub.ingest('dot.ted*id', { body: Buffer.from('1'), properties: {} }, 'mqtt');
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(got, ['dot.ted*id']);
      await sub.unsubscribe();
      await other.unsubscribe();
    });
  });
}
