import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type device from 'azure-iot-device';
import { engines } from '../helpers/engines.js';
import { connectDevice, create, eventually, rejectsWith, retrieve, startConnector, type Connector } from './helpers.js';

const STATUS = { inProgress: 192350000, sent: 192350001, error: 192350002, delivered: 192350003, expired: 192350004 } as const;
const DIRECT_METHOD = 192350001;
const COLUMNS = ['msdyn_commandstatus', 'msdyn_commandstatusreason', 'msdyn_deviceid', 'ccs_responsestatus', 'ccs_responsepayload'];

for (const engine of engines()) {
  describe(`commands as direct methods on ${engine.name}`, () => {
    let c: Connector;
    before(async () => {
      c = await startConnector(engine);
    });
    after(() => c.srv.stop());

    async function registeredDevice(deviceId: string): Promise<string> {
      const id = await create(c, 'msdyn_iotdevices', { msdyn_name: deviceId, msdyn_deviceid: deviceId });
      await c.api.callAction({ actionName: 'msdyn_RegisterIoTDevice', action: { IoTDeviceIds: id } });
      return id;
    }
    const definition = (data: Record<string, unknown>) => create(c, 'msdyn_iotdevicecommanddefinitions', { ccs_deliverymethod: DIRECT_METHOD, ...data });
    const command = (def: string, dev: string, data: Record<string, unknown>) =>
      create(c, 'msdyn_iotdevicecommands', {
        msdyn_name: 'cmd',
        'msdyn_Command@odata.bind': `/msdyn_iotdevicecommanddefinitions(${def})`,
        'msdyn_Device@odata.bind': `/msdyn_iotdevices(${dev})`,
        ...data,
      });
    const until = (id: string, wanted: number, ms = 10_000) =>
      eventually(async () => {
        const s = await retrieve(c, 'msdyn_iotdevicecommands', id, COLUMNS);
        return s['msdyn_commandstatus'] === wanted ? s : undefined;
      }, ms, `command status ${wanted}`);
    /** Resolves once the device has subscribed to methods: a probe call it answers gets through. */
    async function methodsReady(client: device.Client, deviceId: string): Promise<void> {
      client.onDeviceMethod('probe', (_req, res) => void res.send(200, null));
      await c.srv.app.hub.invokeMethod(deviceId, { methodName: 'probe', payload: null, connectTimeoutInSeconds: 30, responseTimeoutInSeconds: 30 });
    }

    test('the device answers: Delivered, with its status and payload stored; an empty message is a null payload', async () => {
      const dev = await registeredDevice('method-1');
      const def = await definition({ msdyn_name: 'Reset Thermostat', ccs_methodname: 'reset' });
      const client = await connectDevice(c, dev);
      try {
        const asked: unknown[] = [];
        client.onDeviceMethod('reset', (req, res) => {
          asked.push(req.payload);
          void res.send(asked.length === 1 ? 200 : 503, { reset: asked.length === 1, asked: req.payload as unknown });
        });
        await methodsReady(client, 'method-1');
        const body = '{"CommandName":"Reset Thermostat","Parameters":{}}';
        const id = await command(def, dev, { msdyn_message: body });
        const done = await until(id, STATUS.delivered);
        assert.match(String(done['msdyn_commandstatusreason']), /Device 'method-1' answered method 'reset' with status 200 at /);
        assert.equal(done['ccs_responsestatus'], 200);
        assert.deepEqual(JSON.parse(String(done['ccs_responsepayload'])), { reset: true, asked: JSON.parse(body) });
        assert.equal(done['msdyn_deviceid'], 'method-1', 'filled in from the device');
        const d = await retrieve(c, 'msdyn_iotdevices', dev, ['_msdyn_lastcommandsent_value']);
        assert.equal(d['_msdyn_lastcommandsent_value'], id);

        // Any answer is a delivery; the device's own status code says how it went.
        const second = await until(await command(def, dev, { msdyn_message: '' }), STATUS.delivered);
        assert.deepEqual(asked[1], null, 'an empty message calls the method with a null payload');
        assert.equal(second['ccs_responsestatus'], 503);
        assert.match(String(second['msdyn_commandstatusreason']), /with status 503/);
      } finally {
        await client.close();
      }
    });

    test('the method name defaults to the definition name', async () => {
      const dev = await registeredDevice('method-2');
      const def = await definition({ msdyn_name: 'Blink' });
      const client = await connectDevice(c, dev);
      try {
        client.onDeviceMethod('Blink', (req, res) => void res.send(200, { blinked: (req.payload as { Times: number }).Times }));
        await methodsReady(client, 'method-2');
        // Keys other than the command name and parameters are the device's business: they go through unchecked.
        const done = await until(await command(def, dev, { msdyn_message: '{"Times":3}' }), STATUS.delivered);
        assert.deepEqual(JSON.parse(String(done['ccs_responsepayload'])), { blinked: 3 });
      } finally {
        await client.close();
      }
    });

    test('a device that is not online: Error with the hub reason (404 DeviceNotOnline)', async () => {
      const dev = await registeredDevice('method-offline');
      const def = await definition({ msdyn_name: 'Reboot' });
      const id = await command(def, dev, { msdyn_message: '{}' });
      const failed = await until(id, STATUS.error);
      assert.match(String(failed['msdyn_commandstatusreason']), /Device 'method-offline' is not online \(404 DeviceNotOnline\)/);
      assert.equal(failed['ccs_responsestatus'], null);
    });

    test('a device that does not answer within ccs_timetolive (raised to the 5 s minimum): Error, timed out', async () => {
      const dev = await registeredDevice('method-silent');
      const def = await definition({ msdyn_name: 'Sleep' });
      const client = await connectDevice(c, dev);
      try {
        client.onDeviceMethod('Sleep', () => undefined); // never answers
        await methodsReady(client, 'method-silent');
        const id = await command(def, dev, { msdyn_message: '{}', ccs_timetolive: 1 });
        const sent = await until(id, STATUS.sent, 4000);
        assert.match(String(sent['msdyn_commandstatusreason']), /Calling method 'Sleep' on device 'method-silent'; waiting up to 5 s for its answer/);
        const failed = await until(id, STATUS.error, 20_000);
        assert.match(String(failed['msdyn_commandstatusreason']), /did not answer method 'Sleep' within 5 s: timed out \(504 GatewayTimeout\)/);
      } finally {
        await client.close();
      }
    });

    test("the definition's parameters check a method's message like any other", async () => {
      const dev = await registeredDevice('method-3');
      const def = await definition({ msdyn_name: 'Set Values' });
      const param = await create(c, 'msdyn_iotpropertydefinitions', { msdyn_name: 'Temperature', msdyn_type: 192350004 });
      await c.api.associate({ collection: 'msdyn_iotdevicecommanddefinitions', primaryKey: def, relationshipName: 'msdyn_iotdevicecommandparameters', relatedCollection: 'msdyn_iotpropertydefinitions', relatedKey: param });
      const failed = await until(await command(def, dev, { msdyn_message: '{"Parameters":{"Temperature":"hot"}}' }), STATUS.error);
      assert.match(String(failed['msdyn_commandstatusreason']), /Parameter 'Temperature' of the command 'Set Values' must be a whole number/);
      await rejectsWith(command(def, dev, { msdyn_message: 'Temperature=30' }), 400, /not valid JSON/);
    });

    test('a direct-method definition whose method name the hub would refuse is a 400 at create and update', async () => {
      await rejectsWith(definition({ msdyn_name: 'Heat/Cool' }), 400, /'Heat\/Cool' cannot be a method name: .*Set ccs_methodname/);
      await rejectsWith(definition({ msdyn_name: 'x', ccs_methodname: 'a+b' }), 400, /'a\+b' cannot be a method name/);
      // The same name is fine for a cloud-to-device definition, and with a method name of its own.
      const def = await create(c, 'msdyn_iotdevicecommanddefinitions', { msdyn_name: 'Heat/Cool' });
      await rejectsWith(c.api.update({ collection: 'msdyn_iotdevicecommanddefinitions', key: def, data: { ccs_deliverymethod: DIRECT_METHOD } }), 400, /cannot be a method name/);
      await c.api.update({ collection: 'msdyn_iotdevicecommanddefinitions', key: def, data: { ccs_deliverymethod: DIRECT_METHOD, ccs_methodname: 'heatCool' } });
      const row = await retrieve(c, 'msdyn_iotdevicecommanddefinitions', def, ['ccs_deliverymethod', 'ccs_methodname']);
      assert.deepEqual([row['ccs_deliverymethod'], row['ccs_methodname']], [DIRECT_METHOD, 'heatCool']);
    });
  });
}
