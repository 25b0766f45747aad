import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type device from 'azure-iot-device';
import { engines } from '../helpers/engines.js';
import { connectDevice, create, eventually, retrieve, startConnector, type Connector } from './helpers.js';

const STATUS = { inProgress: 192350000, sent: 192350001, error: 192350002, delivered: 192350003, expired: 192350004 } as const;

interface CommandView {
  msdyn_iotdevicecommandid: string;
  msdyn_commandstatus: number;
  ccs_responsepayload: string | null;
  msdyn_commandstatusreason: string | null;
  msdyn_deviceid: string | null;
  msdyn_message: string | null;
  _msdyn_device_value: string | null;
  _ccs_parentcommand_value: string | null;
}

for (const engine of engines()) {
  describe(`commands to many devices on ${engine.name}`, () => {
    let c: Connector;
    before(async () => {
      c = await startConnector(engine);
    });
    after(() => c.srv.stop());

    const command = (data: Record<string, unknown>) => create(c, 'msdyn_iotdevicecommands', { msdyn_name: 'to many', ...data });
    const read = async (id: string) => (await retrieve(c, 'msdyn_iotdevicecommands', id)) as unknown as CommandView;
    const childrenOf = async (id: string) =>
      (
        await c.api.retrieveMultiple<CommandView>({
          collection: 'msdyn_iotdevicecommands',
          filter: `_ccs_parentcommand_value eq ${id}`,
          select: ['msdyn_iotdevicecommandid', 'msdyn_commandstatus', 'msdyn_commandstatusreason', 'msdyn_deviceid', 'msdyn_message', '_msdyn_device_value', '_ccs_parentcommand_value', 'ccs_responsepayload'],
          orderBy: ['msdyn_deviceid'],
        })
      ).value;
    const until = (id: string, wanted: number, ms = 10_000) =>
      eventually(async () => {
        const s = await read(id);
        return s.msdyn_commandstatus === wanted ? s : undefined;
      }, ms, `command status ${wanted}`);
    async function deviceRecord(deviceId: string): Promise<string> {
      const { value } = await c.api.retrieveMultiple<{ msdyn_iotdeviceid: string }>({ collection: 'msdyn_iotdevices', filter: `msdyn_deviceid eq '${deviceId}'`, select: ['msdyn_iotdeviceid'] });
      assert.equal(value.length, 1, `device ${deviceId}`);
      return value[0]!.msdyn_iotdeviceid;
    }
    async function registeredDevice(deviceId: string, data: Record<string, unknown> = {}): Promise<string> {
      const id = await create(c, 'msdyn_iotdevices', { msdyn_name: deviceId, msdyn_deviceid: deviceId, ...data });
      await c.api.callAction({ actionName: 'msdyn_RegisterIoTDevice', action: { IoTDeviceIds: id } });
      return id;
    }
    /** The SDK client of a device that completes every message it gets, and the bodies it got. */
    async function completingDevice(deviceRecordId: string): Promise<{ client: device.Client; got: string[] }> {
      const client = await connectDevice(c, deviceRecordId);
      const got: string[] = [];
      client.on('message', (m: device.Message) => {
        got.push(m.getData().toString());
        void client.complete(m);
      });
      return { client, got };
    }

    test('send to all devices connected to an asset: one child per device; the parent is Sent until the offline one completes, then Delivered', async () => {
      const asset = await create(c, 'msdyn_customerassets', { msdyn_name: 'Building 7' });
      // Three devices connected to the asset (Connected Device connections) and registered.
      await c.api.callAction({ actionName: 'msdyn_RegisterCustomEntity', action: { EntityIds: [asset, asset, asset].join(','), EntityLogicalName: 'msdyn_customerasset', DeviceIds: 'fan-a,fan-b,fan-c' } });
      const [a, b, cc] = await Promise.all(['fan-a', 'fan-b', 'fan-c'].map(deviceRecord));
      const online = [await completingDevice(a!), await completingDevice(b!)];
      try {
        const body = '{"CommandName":"Notification","Parameters":{"Message":"Technician dispatched"}}';
        const parent = await command({ msdyn_message: body, 'msdyn_CustomerAsset@odata.bind': `/msdyn_customerassets(${asset})`, msdyn_sendtoallconnecteddevices: true });
        // The online devices complete theirs; the offline one's waits in its queue.
        const sent = await eventually(async () => {
          const s = await read(parent);
          return s.msdyn_commandstatus === STATUS.sent && /2 delivered/.test(String(s.msdyn_commandstatusreason)) ? s : undefined;
        }, 10_000, 'two children delivered');
        const kids = await childrenOf(parent);
        assert.deepEqual(kids.map((k) => [k.msdyn_deviceid, k._msdyn_device_value, k.msdyn_message]), [['fan-a', a, body], ['fan-b', b, body], ['fan-c', cc, body]]);
        assert.match(String(sent.msdyn_commandstatusreason), /Sent to 3 devices: 2 delivered, 1 sent and waiting for the device\./);
        assert.deepEqual(online.map((o) => o.got), [[body], [body]]);
        const offlineChild = kids.find((k) => k.msdyn_deviceid === 'fan-c')!;
        assert.equal(offlineChild.msdyn_commandstatus, STATUS.sent);
        const assetRow = await retrieve(c, 'msdyn_customerassets', asset, ['_msdyn_lastcommandsent_value']);
        assert.equal(assetRow['_msdyn_lastcommandsent_value'], parent, 'the asset points at the command sent for it');

        // The offline device connects, receives its message and completes it.
        const late = await completingDevice(cc!);
        online.push(late);
        const done = await until(parent, STATUS.delivered);
        assert.equal(done.msdyn_commandstatusreason, 'Delivered to all 3 devices.');
        assert.deepEqual(late.got, [body]);
        assert.ok((await childrenOf(parent)).every((k) => k.msdyn_commandstatus === STATUS.delivered));
      } finally {
        for (const o of online) await o.client.close();
      }
    });

    test("send to all from a device: the devices connected to the device's record; a lone device has none", async () => {
      const asset = await create(c, 'msdyn_customerassets', { msdyn_name: 'Plant 2' });
      await c.api.callAction({ actionName: 'msdyn_RegisterCustomEntity', action: { EntityIds: `${asset},${asset}`, EntityLogicalName: 'msdyn_customerasset', DeviceIds: 'plant-1,plant-2' } });
      const p1 = await deviceRecord('plant-1');
      // A device connected to the asset but never registered is left out.
      const unregistered = await create(c, 'msdyn_iotdevices', { msdyn_name: 'plant-3', msdyn_deviceid: 'plant-3' });
      await create(c, 'connections', {
        name: 'Connected Device',
        'record1id_msdyn_customerasset@odata.bind': `/msdyn_customerassets(${asset})`,
        'record2id_msdyn_iotdevice@odata.bind': `/msdyn_iotdevices(${unregistered})`,
        'record2roleid@odata.bind': '/connectionroles(9c86f660-5f5b-e611-810b-00155dbd6a1d)',
      });
      const parent = await command({ msdyn_message: 'ping', 'msdyn_Device@odata.bind': `/msdyn_iotdevices(${p1})`, msdyn_sendtoallconnecteddevices: true });
      await until(parent, STATUS.sent);
      assert.deepEqual((await childrenOf(parent)).map((k) => k.msdyn_deviceid), ['plant-1', 'plant-2']);

      // A command naming only the asset goes to its devices too.
      const byAsset = await command({ msdyn_message: 'ping', 'msdyn_CustomerAsset@odata.bind': `/msdyn_customerassets(${asset})` });
      await until(byAsset, STATUS.sent);
      assert.deepEqual((await childrenOf(byAsset)).map((k) => k.msdyn_deviceid), ['plant-1', 'plant-2']);

      const lone = await registeredDevice('lone-1');
      const none = await command({ msdyn_message: 'ping', 'msdyn_Device@odata.bind': `/msdyn_iotdevices(${lone})`, msdyn_sendtoallconnecteddevices: true });
      const failed = await until(none, STATUS.error);
      assert.match(String(failed.msdyn_commandstatusreason), /^No registered devices to send to: the IoT device .* is not connected to any record/);
      assert.deepEqual(await childrenOf(none), []);
    });

    test('a command to a category: one child per registered device of the category; failures are listed on the parent', async () => {
      const category = await create(c, 'msdyn_iotdevicecategories', { msdyn_name: 'Thermostats' });
      const inCategory = { 'msdyn_Category@odata.bind': `/msdyn_iotdevicecategories(${category})` };
      await registeredDevice('cat-1', inCategory);
      await registeredDevice('cat-2', inCategory);
      await registeredDevice('other-1');
      await create(c, 'msdyn_iotdevices', { msdyn_name: 'cat-3', msdyn_deviceid: 'cat-3', ...inCategory }); // not registered
      const parent = await command({ msdyn_message: '{"CommandName":"Reset Thermostat"}', 'ccs_Category@odata.bind': `/msdyn_iotdevicecategories(${category})` });
      const sent = await until(parent, STATUS.sent);
      assert.match(String(sent.msdyn_commandstatusreason), /Sent to 2 devices: 2 sent and waiting for the device\./);
      assert.deepEqual((await childrenOf(parent)).map((k) => [k.msdyn_deviceid, k.msdyn_commandstatus]), [['cat-1', STATUS.sent], ['cat-2', STATUS.sent]]);

      // A device whose hub identity went away: its child fails, and the parent says which and why.
      await c.srv.app.hub.registry.delete('cat-2');
      const again = await command({ msdyn_message: 'ping', 'ccs_Category@odata.bind': `/msdyn_iotdevicecategories(${category})` });
      const failed = await until(again, STATUS.error);
      assert.match(String(failed.msdyn_commandstatusreason), /^1 of 2 devices failed \(1 sent and waiting for the device, 1 in error\)\. 'cat-2': Device 'cat-2' is not registered with the hub/);

      const empty = await create(c, 'msdyn_iotdevicecategories', { msdyn_name: 'Empty' });
      const none = await command({ msdyn_message: 'ping', 'ccs_Category@odata.bind': `/msdyn_iotdevicecategories(${empty})` });
      assert.match(String((await until(none, STATUS.error)).msdyn_commandstatusreason), /^No registered devices to send to: .* of category 'Empty'\./);
    });

    test('a direct method to a category: each child is a method call; a message the definition refuses fails once, on the parent', async () => {
      const category = await create(c, 'msdyn_iotdevicecategories', { msdyn_name: 'Valves' });
      const inCategory = { 'msdyn_Category@odata.bind': `/msdyn_iotdevicecategories(${category})` };
      const up = await registeredDevice('valve-up', inCategory);
      await registeredDevice('valve-down', inCategory);
      const def = await create(c, 'msdyn_iotdevicecommanddefinitions', { msdyn_name: 'Close Valve', ccs_deliverymethod: 192350001, ccs_methodname: 'close' });
      const param = await create(c, 'msdyn_iotpropertydefinitions', { msdyn_name: 'Percent', msdyn_type: 192350004 });
      await c.api.associate({ collection: 'msdyn_iotdevicecommanddefinitions', primaryKey: def, relationshipName: 'msdyn_iotdevicecommandparameters', relatedCollection: 'msdyn_iotpropertydefinitions', relatedKey: param });
      const client = await connectDevice(c, up);
      try {
        client.onDeviceMethod('probe', (_req, res) => void res.send(200, null));
        client.onDeviceMethod('close', (req, res) => void res.send(200, { closed: (req.payload as { Parameters: { Percent: number } }).Parameters.Percent }));
        await c.srv.app.hub.invokeMethod('valve-up', { methodName: 'probe', payload: null, connectTimeoutInSeconds: 30, responseTimeoutInSeconds: 30 });
        const toValves = (message: string) =>
          command({ msdyn_message: message, 'msdyn_Command@odata.bind': `/msdyn_iotdevicecommanddefinitions(${def})`, 'ccs_Category@odata.bind': `/msdyn_iotdevicecategories(${category})` });

        const parent = await toValves('{"CommandName":"Close Valve","Parameters":{"Percent":80}}');
        // Error as soon as a child fails; the reason follows the other child until it is answered too.
        const failed = await eventually(async () => {
          const s = await read(parent);
          return s.msdyn_commandstatus === STATUS.error && /1 delivered/.test(String(s.msdyn_commandstatusreason)) ? s : undefined;
        }, 10_000, 'one child answered, one failed');
        assert.match(String(failed.msdyn_commandstatusreason), /^1 of 2 devices failed \(1 delivered, 1 in error\)\. 'valve-down': Device 'valve-down' is not online \(404 DeviceNotOnline\)/);
        const kids = await childrenOf(parent);
        assert.deepEqual(kids.map((k) => [k.msdyn_deviceid, k.msdyn_commandstatus]), [['valve-down', STATUS.error], ['valve-up', STATUS.delivered]]);
        assert.deepEqual(JSON.parse(String(kids[1]!.ccs_responsepayload)), { closed: 80 });

        const refused = await toValves('{"Parameters":{"Percent":"most"}}');
        assert.match(String((await until(refused, STATUS.error)).msdyn_commandstatusreason), /^Parameter 'Percent' of the command 'Close Valve' must be a whole number\.$/);
        assert.deepEqual(await childrenOf(refused), [], 'no child was created');
      } finally {
        await client.close();
      }
    });

    test('a category with send to all: the category narrows the connected devices', async () => {
      const category = await create(c, 'msdyn_iotdevicecategories', { msdyn_name: 'Pumps' });
      const asset = await create(c, 'msdyn_customerassets', { msdyn_name: 'Station' });
      await c.api.callAction({ actionName: 'msdyn_RegisterCustomEntity', action: { EntityIds: `${asset},${asset}`, EntityLogicalName: 'msdyn_customerasset', DeviceIds: 'st-pump,st-meter' } });
      await c.api.update({ collection: 'msdyn_iotdevices', key: await deviceRecord('st-pump'), data: { 'msdyn_Category@odata.bind': `/msdyn_iotdevicecategories(${category})` } });
      await registeredDevice('far-pump', { 'msdyn_Category@odata.bind': `/msdyn_iotdevicecategories(${category})` });
      const parent = await command({
        msdyn_message: 'ping',
        'msdyn_CustomerAsset@odata.bind': `/msdyn_customerassets(${asset})`,
        msdyn_sendtoallconnecteddevices: true,
        'ccs_Category@odata.bind': `/msdyn_iotdevicecategories(${category})`,
      });
      await until(parent, STATUS.sent);
      assert.deepEqual((await childrenOf(parent)).map((k) => k.msdyn_deviceid), ['st-pump']);
    });
  });
}
