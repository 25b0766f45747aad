import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { C2D_MAX_PENDING } from '../../src/hub/index.js';
import { engines } from '../helpers/engines.js';
import { eventually, FakeChannel, isCode, openHub, type TestHub } from './helpers.js';

const msg = (text: string, extra: { ttlSeconds?: number; properties?: Record<string, string>; messageId?: string } = {}) => ({
  body: Buffer.from(text),
  properties: extra.properties ?? {},
  ...(extra.ttlSeconds !== undefined ? { ttlSeconds: extra.ttlSeconds } : {}),
  ...(extra.messageId !== undefined ? { messageId: extra.messageId } : {}),
});

for (const engine of engines()) {
  describe(`cloud-to-device queue (${engine.name})`, () => {
    let t: TestHub;
    const outcomes: string[] = [];
    before(async () => {
      t = await openHub(engine, { c2dRetryMs: 30 });
      t.hub.on('c2d', (id, messageId, outcome) => outcomes.push(`${id}:${messageId}:${outcome}`));
    });
    after(() => t.close());

    test('at most 50 pending per device: the 51st is 403 DeviceMaximumQueueDepthExceeded; other devices unaffected', async () => {
      await t.hub.registry.create({ deviceId: 'q-1' });
      await t.hub.registry.create({ deviceId: 'q-2' });
      for (let i = 0; i < C2D_MAX_PENDING; i++) await t.hub.sendC2d('q-1', msg(`m${i}`));
      await assert.rejects(t.hub.sendC2d('q-1', msg('one too many')), isCode('DeviceMaximumQueueDepthExceeded'));
      assert.equal((await t.hub.registry.get('q-1'))!.cloudToDeviceMessageCount, 50);
      await t.hub.sendC2d('q-2', msg('fine'));
      // Concurrent sends cannot overshoot either.
      await t.hub.registry.create({ deviceId: 'q-3' });
      const results = await Promise.allSettled(Array.from({ length: 60 }, (_, i) => t.hub.sendC2d('q-3', msg(`c${i}`))));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 50);
    });

    test('unknown device, oversized message and bad property characters are refused', async () => {
      await assert.rejects(t.hub.sendC2d('ghost', msg('x')), isCode('DeviceNotFound'));
      await t.hub.registry.create({ deviceId: 'q-4' });
      await assert.rejects(t.hub.sendC2d('q-4', { body: Buffer.alloc(64 * 1024 + 1), properties: {} }), isCode('MessageTooLarge'));
      await assert.rejects(t.hub.sendC2d('q-4', msg('x', { properties: { 'a b': '1' } })), isCode('ArgumentInvalid'));
      await assert.rejects(t.hub.sendC2d('q-4', msg('x', { properties: { a: 'é' } })), isCode('ArgumentInvalid'));
      await t.hub.sendC2d('q-4', msg('x', { properties: { "k!#$%&'*+-.^_`|~": 'v1' } }));
    });

    test('expired messages leave the queue (reported as expired) and free their slots; default TTL is one hour', async () => {
      await t.hub.registry.create({ deviceId: 'q-5' });
      const short = await t.hub.sendC2d('q-5', msg('short', { ttlSeconds: 10 }));
      const long = await t.hub.sendC2d('q-5', msg('default'));
      assert.equal(long.expiryTime! - long.enqueuedTime, 3600_000);
      assert.equal(short.expiryTime! - short.enqueuedTime, 10_000);
      const capped = await t.hub.sendC2d('q-5', msg('capped', { ttlSeconds: 30 * 24 * 3600 }));
      assert.equal(capped.expiryTime! - capped.enqueuedTime, 2 * 24 * 3600_000);
      t.clock.advance(11_000);
      const got = await t.hub.receiveC2d('q-5');
      assert.equal(got!.body.toString(), 'default');
      await t.hub.settleC2d('q-5', got!.lockToken, 'complete');
      assert.ok(outcomes.includes(`q-5:${short.messageId}:expired`));
      // An hour later the one-hour message would be gone; the capped one is still there.
      t.clock.advance(3600_000);
      // A full queue of expired messages takes new ones again.
      await t.hub.registry.create({ deviceId: 'q-5b' });
      for (let i = 0; i < C2D_MAX_PENDING; i++) await t.hub.sendC2d('q-5b', msg(`m${i}`, { ttlSeconds: 5 }));
      await assert.rejects(t.hub.sendC2d('q-5b', msg('full')), isCode('DeviceMaximumQueueDepthExceeded'));
      t.clock.advance(5_000);
      await t.hub.sendC2d('q-5b', msg('room again'));
      assert.equal(outcomes.filter((o) => o.startsWith('q-5b:') && o.endsWith(':expired')).length, C2D_MAX_PENDING);
      const left = await t.hub.receiveC2d('q-5');
      assert.equal(left!.body.toString(), 'capped');
      await t.hub.settleC2d('q-5', left!.lockToken, 'complete');
      assert.equal((await t.hub.registry.get('q-5'))!.cloudToDeviceMessageCount, 0);
    });

    test('delivery through the channel: in order, one at a time, each completed by the acknowledgement', async () => {
      await t.hub.registry.create({ deviceId: 'q-6' });
      for (const m of ['a', 'b', 'c']) await t.hub.sendC2d('q-6', msg(m, { properties: { n: m } }));
      const ch = new FakeChannel('q-6');
      ch.c2dBehaviour = 'hold';
      t.hub.attach(ch);
      await eventually(() => ch.delivered.length === 1);
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(ch.delivered.length, 1, 'the next waits for the acknowledgement');
      ch.c2dBehaviour = 'ack';
      ch.release();
      await eventually(() => ch.delivered.length === 3);
      assert.deepEqual(ch.delivered.map((m) => m.body.toString()), ['a', 'b', 'c']);
      assert.deepEqual(ch.delivered.map((m) => m.properties['n']), ['a', 'b', 'c']);
      assert.deepEqual(ch.delivered.map((m) => m.deliveryCount), [1, 1, 1]);
      await eventually(async () => (await t.hub.registry.get('q-6'))!.cloudToDeviceMessageCount === 0);
      // The outcome event follows the queue update, so wait for it too.
      await eventually(() => outcomes.filter((o) => o.startsWith('q-6:') && o.endsWith(':completed')).length === 3);
      // A message sent while connected goes straight out.
      await t.hub.sendC2d('q-6', msg('d'));
      await eventually(() => ch.delivered.length === 4);
    });

    test('a failed delivery is retried later with a higher delivery count; a reconnect delivers what was queued', async () => {
      await t.hub.registry.create({ deviceId: 'q-7' });
      await t.hub.sendC2d('q-7', msg('first'));
      await t.hub.sendC2d('q-7', msg('second'));
      const ch = new FakeChannel('q-7');
      ch.c2dBehaviour = 'fail';
      const detach = t.hub.attach(ch);
      await eventually(() => ch.delivered.length >= 2);
      assert.deepEqual(ch.delivered.slice(0, 2).map((m) => [m.body.toString(), m.deliveryCount]), [['first', 1], ['first', 2]]);
      detach();
      const before = ch.delivered.length;
      await new Promise((r) => setTimeout(r, 80));
      assert.equal(ch.delivered.length, before, 'no delivery without a connection');
      // The device comes back on a new connection: the queue is delivered, in order.
      const again = new FakeChannel('q-7');
      t.hub.attach(again);
      await eventually(() => again.delivered.length === 2);
      assert.deepEqual(again.delivered.map((m) => m.body.toString()), ['first', 'second']);
      assert.ok(again.delivered[0]!.deliveryCount > 2);
      await eventually(async () => (await t.hub.registry.get('q-7'))!.cloudToDeviceMessageCount === 0);
    });

    test('a connection that goes away mid-delivery does not hold up delivery to the new one', async () => {
      // Long retry and acknowledgement waits: only the hand-over itself can get the message through in time.
      const own = await openHub(engine, { c2dRetryMs: 60_000 });
      try {
        await own.hub.registry.create({ deviceId: 'q-10' });
        const old = new FakeChannel('q-10');
        old.c2dBehaviour = 'hold';
        own.hub.attach(old);
        await own.hub.sendC2d('q-10', msg('pending'));
        await eventually(() => old.delivered.length === 1);
        const fresh = new FakeChannel('q-10');
        own.hub.attach(fresh);
        await eventually(() => fresh.delivered.length === 1, 2000);
        assert.equal(fresh.delivered[0]!.body.toString(), 'pending');
        assert.equal(fresh.delivered[0]!.deliveryCount, 2);
      } finally {
        await own.close();
      }
    });

    test('messages survive a restart and are delivered when the device connects to the new hub', async () => {
      await t.hub.registry.create({ deviceId: 'q-8' });
      await t.hub.sendC2d('q-8', msg('while away', { messageId: 'mid-8' }));
      const hub = await t.restart();
      hub.on('c2d', (id, messageId, outcome) => outcomes.push(`${id}:${messageId}:${outcome}`));
      const ch = new FakeChannel('q-8');
      hub.attach(ch);
      await eventually(() => ch.delivered.length === 1);
      assert.equal(ch.delivered[0]!.messageId, 'mid-8');
      assert.equal(ch.delivered[0]!.body.toString(), 'while away');
    });

    test('HTTPS receive locks the oldest message; complete, reject and abandon settle it; a lost lock is 412', async () => {
      await t.hub.registry.create({ deviceId: 'q-9' });
      await t.hub.sendC2d('q-9', msg('one', { messageId: 'm1' }));
      await t.hub.sendC2d('q-9', msg('two', { messageId: 'm2' }));
      await t.hub.sendC2d('q-9', msg('three', { messageId: 'm3' }));
      const r1 = (await t.hub.receiveC2d('q-9'))!;
      assert.equal(r1.messageId, 'm1');
      assert.equal(r1.deliveryCount, 1);
      assert.ok(r1.lockToken);
      // While m1 is locked the next receive gets m2.
      const r2 = (await t.hub.receiveC2d('q-9'))!;
      assert.equal(r2.messageId, 'm2');
      await t.hub.settleC2d('q-9', r1.lockToken, 'abandon');
      await assert.rejects(t.hub.settleC2d('q-9', r1.lockToken, 'complete'), isCode('DeviceMessageLockLost'));
      const again = (await t.hub.receiveC2d('q-9'))!;
      assert.equal(again.messageId, 'm1');
      assert.equal(again.deliveryCount, 2);
      await t.hub.settleC2d('q-9', again.lockToken, 'complete');
      await t.hub.settleC2d('q-9', r2.lockToken, 'reject');
      assert.ok(outcomes.includes('q-9:m1:completed'));
      assert.ok(outcomes.includes('q-9:m2:rejected'));
      // A lock runs out after a minute: the message is receivable again and the old token is dead.
      const r3 = (await t.hub.receiveC2d('q-9'))!;
      assert.equal(r3.messageId, 'm3');
      assert.equal(await t.hub.receiveC2d('q-9'), undefined);
      t.clock.advance(61_000);
      const r3b = (await t.hub.receiveC2d('q-9'))!;
      assert.equal(r3b.messageId, 'm3');
      await assert.rejects(t.hub.settleC2d('q-9', r3.lockToken, 'complete'), isCode('DeviceMessageLockLost'));
      await t.hub.settleC2d('q-9', r3b.lockToken, 'complete');
      assert.equal(await t.hub.receiveC2d('q-9'), undefined);
      await assert.rejects(t.hub.settleC2d('q-9', 'no-such-lock', 'complete'), isCode('DeviceMessageLockLost'));
    });
  });
}
