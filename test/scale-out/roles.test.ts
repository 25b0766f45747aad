import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { ConfigError, loadConfig, parseFlags } from '../../src/config/index.js';
import { engines } from '../helpers/engines.js';
import { isCode } from '../hub/helpers.js';
import { dropStore, sharedBuses, sharedTls, startNode, until, type SharedBus, type SharedTls, type TestNode } from './nodes.js';

const dataDir = () => mkdtempSync(join(tmpdir(), 'ccs-roles-'));

describe('--roles', () => {
  test('all three by default; a subset from the flag, CCS_ROLES or the config file, in a fixed order', () => {
    assert.deepEqual(loadConfig(new Map([['data-dir', dataDir()]]), {}).roles, ['api', 'hub', 'worker']);
    assert.deepEqual(loadConfig(parseFlags(['--data-dir', dataDir(), '--roles', 'worker,api']), {}).roles, ['api', 'worker']);
    assert.deepEqual(loadConfig(parseFlags(['--data-dir', dataDir(), '--roles=hub']), {}).roles, ['hub']);
    assert.deepEqual(loadConfig(new Map([['data-dir', dataDir()]]), { CCS_ROLES: ' hub , worker ' }).roles, ['hub', 'worker']);
    // The flag wins over the environment.
    assert.deepEqual(loadConfig(parseFlags(['--data-dir', dataDir(), '--roles', 'api']), { CCS_ROLES: 'hub' }).roles, ['api']);
    const dir = dataDir();
    writeFileSync(join(dir, 'ccs.json'), JSON.stringify({ roles: 'api,hub' }));
    assert.deepEqual(loadConfig(new Map([['data-dir', dir]]), {}).roles, ['api', 'hub']);
    assert.ok(Object.isFrozen(loadConfig(new Map([['data-dir', dataDir()]]), {}).roles));
  });

  test('an unknown, repeated or empty role fails at start, naming --roles and CCS_ROLES', () => {
    for (const bad of ['api,web', 'hub,hub', 'api,', 'API', 'all']) {
      assert.throws(
        () => loadConfig(parseFlags(['--data-dir', dataDir(), '--roles', bad]), {}),
        (e) => e instanceof ConfigError && e.message.includes('--roles / CCS_ROLES') && e.message.includes(`'${bad}'`) && /api, hub, worker/.test(e.message),
        bad,
      );
      assert.throws(() => loadConfig(new Map([['data-dir', dataDir()]]), { CCS_ROLES: bad }), (e) => e instanceof ConfigError && e.message.includes('CCS_ROLES'), bad);
    }
    assert.throws(() => loadConfig(parseFlags(['--data-dir', dataDir(), '--roles', '']), {}), (e) => e instanceof ConfigError && e.message.includes('--roles'));
    const dir = dataDir();
    writeFileSync(join(dir, 'ccs.json'), JSON.stringify({ roles: ['api'] }));
    assert.throws(() => loadConfig(new Map([['data-dir', dir]]), {}), (e) => e instanceof ConfigError && e.message.includes('roles'));
  });
});

/**
 * An installation split by role: node A serves the Web API and the devices (`api,hub`), node W runs the rules pipeline
 * and the connector processes (`worker`) and listens on nothing. A's device telemetry reaches W's rules over the bus;
 * A's hub events (connection state) reach W's device sync; a node without `hub` offers device operations by routing.
 */
for (const engine of engines()) {
  const makeBus = sharedBuses()[0]!;
  describe(`roles across nodes (${engine.name})`, () => {
    let bus: SharedBus;
    let tls: SharedTls;
    let a: TestNode;
    let w: TestNode;
    let api: TestNode;

    before(async () => {
      bus = makeBus();
      tls = sharedTls();
      const storeUrl = engine.url();
      a = await startNode({ storeUrl, bus: await bus.connect(), tls, roles: 'api,hub' });
      // The rule exists before the worker starts: record events stay in the process that wrote the record.
      const rule = await a.webApi('ccs_iotrules', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ccs_name: 'Too hot', ccs_condition: JSON.stringify({ measure: 'Temperature', op: 'gt', value: 70 }) }),
      });
      assert.equal(rule.status, 204, await rule.text());
      w = await startNode({ storeUrl, bus: await bus.connect(), tls, roles: 'worker' });
      api = await startNode({ storeUrl, bus: await bus.connect(), tls, roles: 'api' });
    });

    after(async () => {
      await w?.stop();
      await api?.stop();
      if (a) {
        await dropStore(a.app);
        await a.stop();
      }
      await bus?.cleanup();
    });

    test('each node listens only for its roles', async () => {
      assert.deepEqual([w.info.url, w.info.port, w.info.mqttsPort, w.info.httpsPort], ['', 0, 0, 0]);
      assert.ok(api.info.port > 0 && api.info.mqttsPort === 0 && api.info.httpsPort === 0);
      assert.ok(a.info.port > 0 && a.info.mqttsPort > 0 && a.info.httpsPort > 0);
      assert.deepEqual(w.info.roles, ['worker']);
      const who = await api.webApi('WhoAmI');
      assert.equal(who.status, 200);
    });

    test('telemetry on the hub node raises an alert on the worker; the worker records the connection state', { timeout: 120_000 }, async () => {
      const created = await a.webApi('msdyn_iotdevices', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ msdyn_name: 'Boiler', msdyn_deviceid: 'boiler-9' }),
      });
      assert.equal(created.status, 204, await created.text());
      const recordId = /\(([^)]+)\)$/.exec(created.headers.get('odata-entityid')!)![1]!;
      const cs = await a.app.hub.deviceConnectionString('boiler-9', { create: true });
      const client = device.Client.fromConnectionString(cs, deviceMqtt.Mqtt);
      await client.setOptions({ ca: tls.ca });
      await client.open();
      try {
        const m = new device.Message(JSON.stringify({ Temperature: 90 }));
        m.messageId = 'hot-1';
        await client.sendEvent(m);
        const alerts = await until(async () => {
          const res = await api.webApi(`msdyn_iotalerts?$filter=msdyn_deviceid eq 'boiler-9'`);
          const list = ((await res.json()) as { value: Record<string, unknown>[] }).value;
          return list.length > 0 ? list : undefined;
        }, 'the alert raised by the worker');
        assert.equal(alerts.length, 1);
        assert.equal(alerts[0]!['msdyn_description'], 'Temperature reading of 90 exceeded a threshold of 70');
        // Connection state comes from A's hub events, applied by W's device sync (A runs no worker).
        await until(async () => {
          const r = (await (await a.webApi(`msdyn_iotdevices(${recordId})?$select=msdyn_connectionstate`)).json()) as Record<string, unknown>;
          return r['msdyn_connectionstate'] === true ? true : undefined;
        }, 'msdyn_connectionstate true');

        // The api-only node has no device listener, yet reaches the device on A.
        client.onDeviceMethod('ping', (_req, res) => void res.send(200, { pong: true }));
        const answer = await api.app.hub.invokeMethod('boiler-9', { methodName: 'ping', payload: null, responseTimeoutInSeconds: 10, connectTimeoutInSeconds: 10 });
        assert.deepEqual(answer, { status: 200, payload: { pong: true } });
      } finally {
        await client.close();
      }
      await until(async () => {
        const r = (await (await a.webApi(`msdyn_iotdevices(${recordId})?$select=msdyn_connectionstate`)).json()) as Record<string, unknown>;
        return r['msdyn_connectionstate'] === false ? true : undefined;
      }, 'msdyn_connectionstate false');
      await assert.rejects(api.app.hub.invokeMethod('boiler-9', { methodName: 'ping', payload: null }), isCode('DeviceNotOnline'));
    });
  });
}

describe('a node alone without the hub role', () => {
  let node: TestNode | undefined;
  let bus: SharedBus | undefined;
  after(async () => {
    if (node) {
      await dropStore(node.app);
      await node.stop();
    }
    await bus?.cleanup();
  });

  test('serves the Web API; device operations find every device offline, and messages still queue', async () => {
    const [engine] = engines();
    bus = sharedBuses()[0]!();
    node = await startNode({ storeUrl: engine!.url(), bus: await bus.connect(), tls: sharedTls(), roles: 'api' });
    await node.app.hub.registry.create({ deviceId: 'lonely' });
    await assert.rejects(node.app.hub.invokeMethod('lonely', { methodName: 'm', payload: null }), isCode('DeviceNotOnline'));
    const queued = await node.app.hub.sendC2d('lonely', { body: Buffer.from('later'), properties: {} });
    assert.equal((await node.app.hub.registry.get('lonely'))?.cloudToDeviceMessageCount, 1);
    assert.equal(typeof queued.messageId, 'string');
    const twin = await node.app.hub.updateTwin('lonely', { properties: { desired: { a: 1 } } });
    assert.equal(twin.properties.desired['a'], 1);
    assert.equal((await node.webApi('WhoAmI')).status, 200);
  });
});
