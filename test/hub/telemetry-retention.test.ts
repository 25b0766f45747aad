import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engines } from '../helpers/engines.js';
import { eventually, openHub, type TestHub } from './helpers.js';

const DAY = 86_400_000;

for (const engine of engines()) {
  describe(`telemetry by device and time, and retention (${engine.name})`, () => {
    let t: TestHub;
    before(async () => {
      t = await openHub(engine, { telemetryRetentionDays: 2 });
    });
    after(() => t.close());

    const send = (deviceId: string, n: number) => t.hub.ingest(deviceId, { body: Buffer.from(JSON.stringify({ n })), properties: {} }, 'mqtt');
    const ns = async (deviceId: string, from: number, to: number, more: { limit?: number; afterSequence?: number } = {}) =>
      (await t.hub.readDeviceTelemetry(deviceId, { from, to, ...more })).map((r) => JSON.parse(r.message.body.toString()).n as number);

    test('reads one device in [from, to), pages on by sequence, purges what is older, and applies retention on start', async () => {
      const t0 = t.clock();
      await Promise.all([send('ret-a', 1), send('ret-b', 100)]);
      t.clock.advance(DAY);
      await send('ret-a', 2);
      t.clock.advance(DAY);
      await Promise.all([send('ret-a', 3), send('ret-a', 4)]);

      assert.deepEqual(await ns('ret-a', t0, t0 + 3 * DAY), [1, 2, 3, 4]);
      assert.deepEqual(await ns('ret-a', t0 + 1, t0 + 2 * DAY), [2], 'from inclusive, to exclusive');
      assert.deepEqual(await ns('ret-b', t0, t0 + 3 * DAY), [100]);
      const page = await t.hub.readDeviceTelemetry('ret-a', { from: t0, to: t0 + 3 * DAY, limit: 2 });
      assert.deepEqual(page.map((r) => r.deviceId), ['ret-a', 'ret-a']);
      assert.deepEqual(await ns('ret-a', t0, t0 + 3 * DAY, { afterSequence: page[1]!.sequence }), [3, 4]);

      assert.equal(await t.hub.purgeTelemetry(t0 + 1), 2, 'both devices\' first records');
      assert.deepEqual(await ns('ret-a', t0, t0 + 3 * DAY), [2, 3, 4]);
      assert.deepEqual(await ns('ret-b', t0, t0 + 3 * DAY), []);
      assert.equal(await t.hub.purgeTelemetry(t0 + 1), 0);

      // Two days' retention: a restart a day later purges the record from day 1 (not awaited on start).
      t.clock.advance(DAY + 1);
      const hub = await t.restart();
      await eventually(async () => (await ns('ret-a', t0, t0 + 3 * DAY)).length === 2);
      assert.deepEqual(await ns('ret-a', t0, t0 + 3 * DAY), [3, 4]);
      assert.equal((await hub.readTelemetry({ deviceId: 'ret-a' })).length, 2);
    });

    test('retention 0 keeps telemetry forever', async () => {
      const own = await openHub(engine, { telemetryRetentionDays: 0 });
      try {
        const t0 = own.clock();
        await own.hub.ingest('keep', { body: Buffer.from('{}'), properties: {} }, 'mqtt');
        own.clock.advance(3650 * DAY);
        await own.restart();
        await new Promise((r) => setTimeout(r, 50));
        assert.equal((await own.hub.readDeviceTelemetry('keep', { from: t0, to: t0 + 1 })).length, 1);
      } finally {
        await own.close();
      }
    });
  });
}
