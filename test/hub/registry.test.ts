import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createSasToken, POLICY_RIGHTS } from '../../src/hub/index.js';
import { engines } from '../helpers/engines.js';
import { FakeChannel, isCode, openHub, type TestHub } from './helpers.js';

const HOUR_S = 3600;

for (const engine of engines()) {
  describe(`hub registry and authentication (${engine.name})`, () => {
    let t: TestHub;
    before(async () => {
      t = await openHub(engine);
    });
    after(() => t.close());

    const expiry = () => Math.floor(t.clock() / 1000) + HOUR_S;
    const deviceToken = (deviceId: string, key: string, host = 'hub.test') =>
      createSasToken({ resource: `${host}/devices/${deviceId}`, key, expiry: expiry() });

    test('create generates 32-byte keys, an etag and a generation id; get and list return it', async () => {
      const d = await t.hub.registry.create({ deviceId: 'reg-1' });
      assert.equal(Buffer.from(d.primaryKey, 'base64').length, 32);
      assert.equal(Buffer.from(d.secondaryKey, 'base64').length, 32);
      assert.notEqual(d.primaryKey, d.secondaryKey);
      assert.equal(d.status, 'enabled');
      assert.equal(d.connectionState, 'Disconnected');
      assert.equal(d.cloudToDeviceMessageCount, 0);
      assert.ok(d.etag && d.generationId);
      assert.deepEqual(await t.hub.registry.get('reg-1'), d);
      assert.ok((await t.hub.registry.list()).some((x) => x.deviceId === 'reg-1'));
      assert.equal(await t.hub.registry.get('REG-1'), undefined, 'device ids are case-sensitive');
    });

    test('given keys are kept; bad keys, bad ids and duplicates are refused with IoT Hub codes', async () => {
      const key = Buffer.alloc(16, 1).toString('base64');
      const d = await t.hub.registry.create({ deviceId: 'reg-2', primaryKey: key, status: 'disabled' });
      assert.equal(d.primaryKey, key);
      assert.equal(d.status, 'disabled');
      await assert.rejects(t.hub.registry.create({ deviceId: 'reg-2' }), isCode('DeviceAlreadyExists'));
      await assert.rejects(t.hub.registry.create({ deviceId: 'reg-3', primaryKey: 'not base64!' }), isCode('ArgumentInvalid'));
      await assert.rejects(t.hub.registry.create({ deviceId: 'reg-3', primaryKey: Buffer.alloc(8).toString('base64') }), isCode('ArgumentInvalid'));
      await assert.rejects(t.hub.registry.create({ deviceId: 'a/b' }), isCode('ArgumentInvalid'));
      await assert.rejects(t.hub.registry.create({ deviceId: 'x'.repeat(129) }), isCode('ArgumentInvalid'));
      await assert.rejects(t.hub.registry.create({ deviceId: '' }), isCode('ArgumentInvalid'));
      assert.equal(await t.hub.registry.get('reg-3'), undefined);
    });

    test('update is conditional on the etag (412 on mismatch, * always) and changes it', async () => {
      const d = await t.hub.registry.create({ deviceId: 'reg-4' });
      const u = await t.hub.registry.update({ deviceId: 'reg-4', status: 'disabled', statusReason: 'maintenance' }, `"${d.etag}"`);
      assert.equal(u.status, 'disabled');
      assert.equal(u.statusReason, 'maintenance');
      assert.notEqual(u.etag, d.etag);
      assert.equal(u.primaryKey, d.primaryKey, 'absent keys are kept');
      await assert.rejects(t.hub.registry.update({ deviceId: 'reg-4', status: 'enabled' }, d.etag), isCode('PreconditionFailed'));
      const v = await t.hub.registry.update({ deviceId: 'reg-4', status: 'enabled' }, '*');
      assert.equal(v.status, 'enabled');
      await assert.rejects(t.hub.registry.update({ deviceId: 'nope', status: 'enabled' }), isCode('DeviceNotFound'));
      await assert.rejects(t.hub.registry.update({ deviceId: 'reg-4', status: 'paused' as 'enabled' }), isCode('ArgumentInvalid'));
    });

    test('delete removes the identity with its twin; conditional on the etag; 404 when absent', async () => {
      const d = await t.hub.registry.create({ deviceId: 'reg-5' });
      await t.hub.sendC2d('reg-5', { body: Buffer.from('x'), properties: {} });
      await assert.rejects(t.hub.registry.delete('reg-5', 'stale'), isCode('PreconditionFailed'));
      await t.hub.registry.delete('reg-5', d.etag);
      assert.equal(await t.hub.registry.get('reg-5'), undefined);
      await assert.rejects(t.hub.getTwin('reg-5'), isCode('DeviceNotFound'));
      await assert.rejects(t.hub.registry.delete('reg-5'), isCode('DeviceNotFound'));
      // Re-created, it starts afresh: no twin content, no queued messages.
      const again = await t.hub.registry.create({ deviceId: 'reg-5' });
      assert.equal(again.cloudToDeviceMessageCount, 0);
      assert.equal((await t.hub.getTwin('reg-5')).version, 1);
    });

    test('regenerateKey replaces one key; the old one stops authenticating, the other still does', async () => {
      const d = await t.hub.registry.create({ deviceId: 'reg-6' });
      const r = await t.hub.registry.regenerateKey('reg-6', 'primary');
      assert.notEqual(r.primaryKey, d.primaryKey);
      assert.equal(r.secondaryKey, d.secondaryKey);
      await assert.rejects(t.hub.authenticateDevice('reg-6', deviceToken('reg-6', d.primaryKey)), isCode('IotHubUnauthorizedAccess'));
      await t.hub.authenticateDevice('reg-6', deviceToken('reg-6', r.primaryKey));
      await t.hub.authenticateDevice('reg-6', deviceToken('reg-6', d.secondaryKey));
      await assert.rejects(t.hub.registry.regenerateKey('nope', 'primary'), isCode('DeviceNotFound'));
    });

    test('the five shared access policies exist with IoT Hub rights and survive a restart', async () => {
      const policies = await t.hub.registry.policies();
      assert.deepEqual(policies.map((p) => p.keyName).sort(), ['device', 'iothubowner', 'registryRead', 'registryReadWrite', 'service']);
      for (const p of policies) {
        assert.deepEqual(p.rights, POLICY_RIGHTS[p.keyName]);
        assert.equal(Buffer.from(p.primaryKey, 'base64').length, 32);
      }
      const owner = await t.hub.registry.policy('iothubowner');
      const hub = await t.restart();
      assert.deepEqual(await hub.registry.policy('iothubowner'), owner);
      const regenerated = await hub.registry.regeneratePolicyKey('service', 'secondary');
      assert.notEqual(regenerated.secondaryKey, policies.find((p) => p.keyName === 'service')!.secondaryKey);
    });

    test('device authentication: primary or secondary key, sr with a port or another case, until expiry', async () => {
      const d = await t.hub.registry.create({ deviceId: 'auth-1' });
      assert.equal((await t.hub.authenticateDevice('auth-1', deviceToken('auth-1', d.primaryKey))).deviceId, 'auth-1');
      await t.hub.authenticateDevice('auth-1', deviceToken('auth-1', d.secondaryKey));
      await t.hub.authenticateDevice('auth-1', deviceToken('auth-1', d.primaryKey, 'hub.test:8883'));
      await t.hub.authenticateDevice('auth-1', deviceToken('auth-1', d.primaryKey, 'HUB.test'));
      await t.hub.authenticateDevice('auth-1', deviceToken('auth-1', d.primaryKey, 'localhost:9883'));
      const soon = createSasToken({ resource: 'hub.test/devices/auth-1', key: d.primaryKey, expiry: Math.floor(t.clock() / 1000) + 10 });
      await t.hub.authenticateDevice('auth-1', soon);
      t.clock.advance(10_000);
      await assert.rejects(t.hub.authenticateDevice('auth-1', soon), isCode('IotHubUnauthorizedAccess'));
    });

    test('device authentication refuses a wrong key, another device\'s token, another hub, an unknown or disabled device', async () => {
      const a = await t.hub.registry.create({ deviceId: 'auth-2' });
      const b = await t.hub.registry.create({ deviceId: 'auth-3' });
      const refused = isCode('IotHubUnauthorizedAccess');
      await assert.rejects(t.hub.authenticateDevice('auth-2', deviceToken('auth-2', b.primaryKey)), refused);
      await assert.rejects(t.hub.authenticateDevice('auth-2', deviceToken('auth-3', b.primaryKey)), refused);
      await assert.rejects(t.hub.authenticateDevice('auth-2', deviceToken('auth-2', a.primaryKey, 'other.hub')), refused);
      // A device token scoped to the whole hub is not a device token.
      await assert.rejects(t.hub.authenticateDevice('auth-2', createSasToken({ resource: 'hub.test', key: a.primaryKey, expiry: expiry() })), refused);
      await assert.rejects(t.hub.authenticateDevice('ghost', deviceToken('ghost', a.primaryKey)), refused);
      await t.hub.registry.update({ deviceId: 'auth-2', status: 'disabled' });
      await assert.rejects(t.hub.authenticateDevice('auth-2', deviceToken('auth-2', a.primaryKey)), refused);
      await assert.rejects(t.hub.authenticateDevice('auth-3', 'not a token'), refused);
    });

    test('a policy with DeviceConnect may connect a device; one without may not', async () => {
      await t.hub.registry.create({ deviceId: 'auth-4' });
      const device = (await t.hub.registry.policy('device'))!;
      const read = (await t.hub.registry.policy('registryRead'))!;
      const ok = createSasToken({ resource: 'hub.test/devices/auth-4', key: device.primaryKey, keyName: 'device', expiry: expiry() });
      await t.hub.authenticateDevice('auth-4', ok);
      await t.hub.authenticateDevice('auth-4', createSasToken({ resource: 'hub.test', key: device.secondaryKey, keyName: 'device', expiry: expiry() }));
      const noRight = createSasToken({ resource: 'hub.test/devices/auth-4', key: read.primaryKey, keyName: 'registryRead', expiry: expiry() });
      await assert.rejects(t.hub.authenticateDevice('auth-4', noRight), isCode('IotHubUnauthorizedAccess'));
      const otherDevice = createSasToken({ resource: 'hub.test/devices/auth-5', key: device.primaryKey, keyName: 'device', expiry: expiry() });
      await assert.rejects(t.hub.authenticateDevice('auth-4', otherDevice), isCode('IotHubUnauthorizedAccess'));
    });

    test('service authentication checks policy, key, scope, expiry and the right asked for', async () => {
      const owner = (await t.hub.registry.policy('iothubowner'))!;
      const service = (await t.hub.registry.policy('service'))!;
      const token = (keyName: string, key: string, resource = 'hub.test') => createSasToken({ resource, key, keyName, expiry: expiry() });
      assert.equal((await t.hub.authenticateService(token('iothubowner', owner.primaryKey), 'RegistryWrite')).keyName, 'iothubowner');
      await t.hub.authenticateService(token('iothubowner', owner.secondaryKey, 'hub.test:443'), 'ServiceConnect');
      await t.hub.authenticateService(token('service', service.primaryKey), 'ServiceConnect');
      const refused = isCode('IotHubUnauthorizedAccess');
      await assert.rejects(t.hub.authenticateService(token('service', service.primaryKey), 'RegistryRead'), refused);
      await assert.rejects(t.hub.authenticateService(token('service', owner.primaryKey), 'ServiceConnect'), refused);
      await assert.rejects(t.hub.authenticateService(token('nobody', owner.primaryKey), 'ServiceConnect'), refused);
      await assert.rejects(t.hub.authenticateService(token('iothubowner', owner.primaryKey, 'other.hub'), 'ServiceConnect'), refused);
      await assert.rejects(t.hub.authenticateService(token('iothubowner', owner.primaryKey, 'hub.test/devices/x'), 'ServiceConnect'), refused);
      await assert.rejects(t.hub.authenticateService(createSasToken({ resource: 'hub.test', key: owner.primaryKey, expiry: expiry() }), 'ServiceConnect'), refused);
      const expired = createSasToken({ resource: 'hub.test', key: owner.primaryKey, keyName: 'iothubowner', expiry: Math.floor(t.clock() / 1000) - 1 });
      await assert.rejects(t.hub.authenticateService(expired, 'ServiceConnect'), refused);
    });

    test('connection state: attach connects, a newer channel takes over, detach disconnects; written in batches', async () => {
      await t.hub.registry.create({ deviceId: 'conn-1' });
      const events: string[] = [];
      const off = t.hub.on('connection', (id, state) => id === 'conn-1' && events.push(state));
      const first = new FakeChannel('conn-1');
      const detachFirst = t.hub.attach(first);
      assert.equal((await t.hub.registry.get('conn-1'))!.connectionState, 'Connected');
      const second = new FakeChannel('conn-1');
      const detachSecond = t.hub.attach(second);
      assert.match(first.closedWith ?? '', /another connection/);
      assert.equal(second.closedWith, undefined);
      detachFirst(); // the replaced channel going away does not disconnect the device
      assert.equal((await t.hub.registry.get('conn-1'))!.connectionState, 'Connected');
      // The batched write reaches the table: a second hub on the same store sees it.
      const { createHub } = await import('../../src/hub/index.js');
      const other = await createHub({ store: t.store, bus: t.bus, hostName: 'hub.test', clock: t.clock, resetConnectionsOnStart: false });
      try {
        await new Promise((r) => setTimeout(r, 100));
        assert.equal((await other.registry.get('conn-1'))!.connectionState, 'Connected');
        detachSecond();
        assert.equal((await t.hub.registry.get('conn-1'))!.connectionState, 'Disconnected');
        await new Promise((r) => setTimeout(r, 100));
        const seen = (await other.registry.get('conn-1'))!;
        assert.equal(seen.connectionState, 'Disconnected');
        assert.equal(seen.connectionStateUpdatedTime, t.clock());
        assert.equal(seen.lastActivityTime, t.clock());
      } finally {
        await other.close();
      }
      assert.deepEqual(events, ['Connected', 'Disconnected']);
      off();
    });

    test('disabling or deleting an identity closes its connection', async () => {
      await t.hub.registry.create({ deviceId: 'conn-2' });
      const ch = new FakeChannel('conn-2');
      t.hub.attach(ch);
      await t.hub.registry.update({ deviceId: 'conn-2', status: 'disabled' });
      assert.equal(ch.closedWith, 'device disabled');
      await t.hub.registry.create({ deviceId: 'conn-3' });
      const ch3 = new FakeChannel('conn-3');
      t.hub.attach(ch3);
      await t.hub.registry.delete('conn-3');
      assert.equal(ch3.closedWith, 'device deleted');
    });
  });
}
