import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engines } from '../../helpers/engines.js';
import { connectDevice, create, rejectsWith, retrieve, startConnector, type Connector } from '../helpers.js';

const ROLE = '9c86f660-5f5b-e611-810b-00155dbd6a1d';
const REGISTERED = 192350003;
const ERROR = 192350004;
const label = (text: string) => ({ '@odata.type': 'Microsoft.Dynamics.CRM.Label', LocalizedLabels: [{ '@odata.type': 'Microsoft.Dynamics.CRM.LocalizedLabel', Label: text, LanguageCode: 1033 }] });

for (const engine of engines()) {
  describe(`device registration on ${engine.name}`, () => {
    let c: Connector;
    before(async () => {
      c = await startConnector(engine);
    });
    after(() => c.srv.stop());

    const registerCustomEntity = (action: Record<string, unknown>) => c.api.callAction({ actionName: 'msdyn_RegisterCustomEntity', action });
    const registerDevice = (ids: string) => c.api.callAction({ actionName: 'msdyn_RegisterIoTDevice', action: { IoTDeviceIds: ids } });
    const connectionsOf = async (recordId: string) =>
      (await c.api.retrieveMultiple({ collection: 'connections', filter: `_record1id_value eq ${recordId}`, select: ['_record2id_value', '_record2roleid_value'] })).value as Record<string, unknown>[];
    const historyOf = async (deviceRecord: string) =>
      (await c.api.retrieveMultiple({ collection: 'msdyn_iotdeviceregistrationhistories', filter: `_msdyn_device_value eq ${deviceRecord}`, select: ['ccs_registrationstatus', 'ccs_registrationmessage', 'ccs_deviceid', 'msdyn_action', 'ccs_registrationtime'] })).value as Record<string, unknown>[];

    test('an account and a customer asset → msdyn_RegisterCustomEntity → a registered device, connected to the asset, that the SDK connects as', async () => {
      const account = await create(c, 'accounts', { name: 'Contoso' });
      const asset = await create(c, 'msdyn_customerassets', { msdyn_name: 'Chiller 7', 'msdyn_account@odata.bind': `/accounts(${account})` });
      await registerCustomEntity({ EntityIds: asset, EntityLogicalName: 'msdyn_customerasset' });

      const links = await connectionsOf(asset);
      assert.equal(links.length, 1);
      assert.equal(links[0]!['_record2roleid_value'], ROLE);
      const deviceRecord = String(links[0]!['_record2id_value']);
      const dev = await retrieve(c, 'msdyn_iotdevices', deviceRecord, ['msdyn_name', 'msdyn_deviceid', 'msdyn_registrationstatus', 'msdyn_registrationmessage', '_msdyn_account_value']);
      assert.equal(dev['msdyn_name'], 'Chiller 7', 'named after the asset');
      assert.equal(dev['msdyn_deviceid'], deviceRecord, 'no device id given: the record id is the hub identity');
      assert.equal(dev['msdyn_registrationstatus'], REGISTERED, String(dev['msdyn_registrationmessage']));
      assert.equal(dev['_msdyn_account_value'], account, "the asset's account");
      const history = await historyOf(deviceRecord);
      assert.equal(history.length, 1);
      assert.equal(history[0]!['ccs_registrationstatus'], REGISTERED);
      assert.equal(history[0]!['msdyn_action'], 192350000);
      assert.equal(history[0]!['ccs_deviceid'], deviceRecord);
      assert.ok(history[0]!['ccs_registrationtime'] instanceof Date, 'registration time');
      assert.equal((await retrieve(c, 'msdyn_customerassets', asset, ['msdyn_registrationstatus']))['msdyn_registrationstatus'], REGISTERED, 'aggregate on the asset');

      const client = await connectDevice(c, deviceRecord);
      await client.close();

      // Again: the connected device is reused, registered once more (a second history row), no second connection.
      await registerCustomEntity({ EntityIds: asset, EntityLogicalName: 'msdyn_customerasset' });
      assert.equal((await connectionsOf(asset)).length, 1);
      assert.equal((await historyOf(deviceRecord)).length, 2);
    });

    test('a custom table created through EntityDefinitions, with DeviceIds and Names', async () => {
      const res = await c.srv.fetch('EntityDefinitions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          '@odata.type': 'Microsoft.Dynamics.CRM.EntityMetadata', SchemaName: 'new_Boiler', DisplayName: label('Boiler'), DisplayCollectionName: label('Boilers'), OwnershipType: 'UserOwned',
          Attributes: [{ '@odata.type': 'Microsoft.Dynamics.CRM.StringAttributeMetadata', AttributeType: 'String', SchemaName: 'new_Name', IsPrimaryName: true, MaxLength: 100, DisplayName: label('Name') }],
        }),
      });
      assert.equal(res.status, 204, await res.clone().text());
      const b1 = await create(c, 'new_boilers', { new_name: 'Basement' });
      const b2 = await create(c, 'new_boilers', { new_name: 'Roof' });
      const existing = await create(c, 'msdyn_iotdevices', { msdyn_name: 'Roof sensor', msdyn_deviceid: 'roof-1' });
      await registerCustomEntity({ EntityIds: `${b1}, ${b2}`, EntityLogicalName: 'new_boiler', DeviceIds: 'boiler-basement,roof-1', Names: 'Basement boiler' });

      const d1 = String((await connectionsOf(b1))[0]!['_record2id_value']);
      const dev1 = await retrieve(c, 'msdyn_iotdevices', d1, ['msdyn_name', 'msdyn_deviceid', 'msdyn_registrationstatus']);
      assert.deepEqual([dev1['msdyn_name'], dev1['msdyn_deviceid'], dev1['msdyn_registrationstatus']], ['Basement boiler', 'boiler-basement', REGISTERED]);
      assert.equal((await connectionsOf(b2))[0]!['_record2id_value'], existing, 'found by device id');
      assert.equal((await retrieve(c, 'msdyn_iotdevices', existing, ['msdyn_name']))['msdyn_name'], 'Roof sensor', 'an existing device keeps its name');
      assert.ok(await c.srv.app.hub.registry.get('boiler-basement'));
      assert.ok(await c.srv.app.hub.registry.get('roof-1'));
    });

    test('msdyn_RegisterIoTDevice: tags and settings to the twin, a disabled identity enabled, an invalid id an Error with a message', async () => {
      const id = await create(c, 'msdyn_iotdevices', { msdyn_name: 'Lobby', msdyn_deviceid: 'lobby-reg', msdyn_tags: '{"site":"HQ","floor":1}', msdyn_devicesettings: '{"targetTemperature":21}' });
      await c.srv.app.hub.registry.create({ deviceId: 'lobby-reg', status: 'disabled' });
      const bad = await create(c, 'msdyn_iotdevices', { msdyn_name: 'Bad', msdyn_deviceid: 'has space' });
      await registerDevice(`${id},${bad}`);

      const dev = await retrieve(c, 'msdyn_iotdevices', id, ['msdyn_registrationstatus', 'msdyn_registrationmessage']);
      assert.equal(dev['msdyn_registrationstatus'], REGISTERED);
      assert.match(String(dev['msdyn_registrationmessage']), /enabled the existing device identity/);
      assert.equal((await c.srv.app.hub.registry.get('lobby-reg'))!.status, 'enabled');
      const twin = await c.srv.app.hub.getTwin('lobby-reg');
      assert.deepEqual(twin.tags, { site: 'HQ', floor: 1 });
      assert.equal(twin.properties.desired['targetTemperature'], 21);

      const failed = await retrieve(c, 'msdyn_iotdevices', bad, ['msdyn_registrationstatus', 'msdyn_registrationmessage']);
      assert.equal(failed['msdyn_registrationstatus'], ERROR);
      assert.match(String(failed['msdyn_registrationmessage']), /Invalid device id 'has space'/);
      const history = await historyOf(bad);
      assert.equal(history.length, 1);
      assert.equal(history[0]!['ccs_registrationstatus'], ERROR);
    });

    test('bad input: unknown ids, malformed lists, unknown tables and parameters', async () => {
      const missing = '00000000-0000-0000-0000-000000000001';
      await rejectsWith(registerDevice(missing), 404, /msdyn_iotdevice With Id = 00000000-0000-0000-0000-000000000001 Does Not Exist/);
      await rejectsWith(registerDevice('not-a-guid'), 400, /'IoTDeviceIds'.*not GUIDs: not-a-guid/);
      await rejectsWith(registerDevice(' '), 400, /'IoTDeviceIds'.*comma-separated list/);
      await rejectsWith(c.api.callAction({ actionName: 'msdyn_RegisterIoTDevice', action: {} }), 400, /Required parameter 'IoTDeviceIds'/);
      await rejectsWith(c.api.callAction({ actionName: 'msdyn_RegisterIoTDevice', action: { IoTDeviceIds: missing, DeviceIds: 'x' } }), 400, /unresolved parameters/);
      await rejectsWith(registerCustomEntity({ EntityIds: missing, EntityLogicalName: 'new_nope' }), 400, /'EntityLogicalName'.*new_nope/);
      await rejectsWith(registerCustomEntity({ EntityIds: missing, EntityLogicalName: 'msdyn_iotdevice' }), 400, /msdyn_RegisterIoTDevice/);
      await rejectsWith(registerCustomEntity({ EntityIds: missing, EntityLogicalName: 'account' }), 404, /account With Id/);
      const account = await create(c, 'accounts', { name: 'Fabrikam' });
      await rejectsWith(registerCustomEntity({ EntityIds: account, EntityLogicalName: 'account', DeviceIds: 'a,b' }), 400, /'DeviceIds' .*2 items for 1 records/);
      assert.equal((await connectionsOf(account)).length, 0, 'nothing written');
    });
  });
}
