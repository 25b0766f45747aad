import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engines } from '../helpers/engines.js';
import { FakeChannel, isCode, openHub, type TestHub } from './helpers.js';

for (const engine of engines()) {
  describe(`device twins (${engine.name})`, () => {
    let t: TestHub;
    before(async () => {
      t = await openHub(engine);
    });
    after(() => t.close());

    test('a new twin is empty at $version 1; the document has desired and reported with $version', async () => {
      await t.hub.registry.create({ deviceId: 'twin-1' });
      const twin = await t.hub.getTwin('twin-1');
      assert.equal(twin.deviceId, 'twin-1');
      assert.deepEqual(twin.tags, {});
      assert.deepEqual(twin.properties, { desired: { $version: 1 }, reported: { $version: 1 } });
      assert.equal(twin.status, 'enabled');
      assert.deepEqual(await t.hub.getTwinDocument('twin-1'), { desired: { $version: 1 }, reported: { $version: 1 } });
      await assert.rejects(t.hub.getTwin('no-such'), isCode('DeviceNotFound'));
      await assert.rejects(t.hub.getTwinDocument('no-such'), isCode('DeviceNotFound'));
    });

    test('service patches merge tags and desired; null deletes; versions and etag move; the device gets the patch', async () => {
      await t.hub.registry.create({ deviceId: 'twin-2' });
      const ch = new FakeChannel('twin-2');
      const detach = t.hub.attach(ch);
      const v0 = await t.hub.getTwin('twin-2');
      const v1 = await t.hub.updateTwin('twin-2', { tags: { site: 'A', floor: 2 }, properties: { desired: { setpoint: 21, mode: { fan: 'auto', eco: true } } } });
      assert.deepEqual(v1.tags, { site: 'A', floor: 2 });
      assert.deepEqual(v1.properties.desired, { setpoint: 21, mode: { fan: 'auto', eco: true }, $version: 2 });
      assert.equal(v1.version, v0.version + 1);
      assert.notEqual(v1.etag, v0.etag);
      const v2 = await t.hub.updateTwin('twin-2', { tags: { floor: null }, properties: { desired: { mode: { eco: null }, setpoint: null, interval: 5 } } }, v1.etag);
      assert.deepEqual(v2.tags, { site: 'A' });
      assert.deepEqual(v2.properties.desired, { mode: { fan: 'auto' }, interval: 5, $version: 3 });
      // Tags alone do not change the desired version or notify the device.
      const v3 = await t.hub.updateTwin('twin-2', { tags: { zone: 'north' } });
      assert.equal(v3.properties.desired['$version'], 3);
      assert.deepEqual(ch.desiredPatches, [
        { patch: { setpoint: 21, mode: { fan: 'auto', eco: true }, $version: 2 }, version: 2 },
        { patch: { mode: { eco: null }, setpoint: null, interval: 5, $version: 3 }, version: 3 },
      ]);
      detach();
      // Durable: a restarted hub reads the same twin.
      const hub = await t.restart();
      const after = await hub.getTwin('twin-2');
      assert.deepEqual(after.properties.desired, { mode: { fan: 'auto' }, interval: 5, $version: 3 });
      assert.equal(after.etag, v3.etag);
    });

    test('a stale etag is 412 and changes nothing; * and no etag always apply', async () => {
      await t.hub.registry.create({ deviceId: 'twin-3' });
      const v0 = await t.hub.getTwin('twin-3');
      await t.hub.updateTwin('twin-3', { tags: { a: 1 } }, `"${v0.etag}"`);
      await assert.rejects(t.hub.updateTwin('twin-3', { tags: { a: 2 } }, v0.etag), isCode('PreconditionFailed'));
      await assert.rejects(t.hub.replaceTwin('twin-3', { tags: {} }, v0.etag), isCode('PreconditionFailed'));
      assert.deepEqual((await t.hub.getTwin('twin-3')).tags, { a: 1 });
      assert.deepEqual((await t.hub.updateTwin('twin-3', { tags: { a: 3 } }, '*')).tags, { a: 3 });
    });

    test('replace swaps tags and desired whole and sends the whole desired document', async () => {
      await t.hub.registry.create({ deviceId: 'twin-4' });
      await t.hub.updateTwin('twin-4', { tags: { x: 1 }, properties: { desired: { a: 1, b: 2 } } });
      const ch = new FakeChannel('twin-4');
      t.hub.attach(ch);
      const r = await t.hub.replaceTwin('twin-4', { tags: { y: 2 }, properties: { desired: { c: 3 } } });
      assert.deepEqual(r.tags, { y: 2 });
      assert.deepEqual(r.properties.desired, { c: 3, $version: 3 });
      assert.deepEqual(ch.desiredPatches, [{ patch: { c: 3, $version: 3 }, version: 3 }]);
    });

    test('reported PATCH merges, bumps the reported $version, emits an event; the service cannot write reported', async () => {
      await t.hub.registry.create({ deviceId: 'twin-5' });
      const events: { reported: Record<string, unknown>; version: number }[] = [];
      const off = t.hub.on('reported', (id, reported, version) => id === 'twin-5' && events.push({ reported, version }));
      assert.equal(await t.hub.patchReported('twin-5', { firmware: '1.0', battery: { level: 80, charging: false } }), 2);
      assert.equal(await t.hub.patchReported('twin-5', { battery: { charging: null }, firmware: '1.1' }), 3);
      const doc = await t.hub.getTwinDocument('twin-5');
      assert.deepEqual(doc.reported, { firmware: '1.1', battery: { level: 80 }, $version: 3 });
      assert.deepEqual(events.at(-1), { reported: { firmware: '1.1', battery: { level: 80 }, $version: 3 }, version: 3 });
      off();
      // Desired is untouched by the device; a service patch of `reported` is ignored rather than applied.
      await t.hub.updateTwin('twin-5', { properties: { reported: { hacked: true } } as never });
      assert.equal((await t.hub.getTwinDocument('twin-5')).reported['hacked'], undefined);
    });

    test('concurrent reported patches all land (compare-and-set, no lost update)', async () => {
      await t.hub.registry.create({ deviceId: 'twin-6' });
      const versions = await Promise.all(Array.from({ length: 20 }, (_, i) => t.hub.patchReported('twin-6', { [`k${i}`]: i })));
      assert.deepEqual([...versions].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 2));
      const doc = await t.hub.getTwinDocument('twin-6');
      assert.equal(Object.keys(doc.reported).length, 21);
      assert.equal(doc.reported['$version'], 21);
    });

    test('invalid documents are refused: keys with . $ or space, non-objects, too deep, too large', async () => {
      await t.hub.registry.create({ deviceId: 'twin-7' });
      const bad = isCode('ArgumentInvalid');
      await assert.rejects(t.hub.patchReported('twin-7', { 'a.b': 1 }), bad);
      await assert.rejects(t.hub.patchReported('twin-7', { a: { $x: 1 } }), bad);
      await assert.rejects(t.hub.patchReported('twin-7', { 'a b': 1 }), bad);
      await assert.rejects(t.hub.patchReported('twin-7', [1, 2] as never), bad);
      await assert.rejects(t.hub.patchReported('twin-7', 'text' as never), bad);
      let deep: Record<string, unknown> = { leaf: 1 };
      for (let i = 0; i < 11; i++) deep = { n: deep };
      await assert.rejects(t.hub.updateTwin('twin-7', { properties: { desired: deep } }), bad);
      await assert.rejects(t.hub.patchReported('twin-7', { big: 'x'.repeat(33 * 1024) }), isCode('MessageTooLarge'));
      await assert.rejects(t.hub.updateTwin('twin-7', { tags: { big: 'x'.repeat(9 * 1024) } }), isCode('MessageTooLarge'));
      // $version echoed by a device is tolerated.
      assert.equal(await t.hub.patchReported('twin-7', { $version: 99, ok: true }), 2);
    });
  });
}
