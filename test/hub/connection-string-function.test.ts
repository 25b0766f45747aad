import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deviceTokenFromConnectionString } from '../../src/hub/index.js';
import { engines } from '../helpers/engines.js';
import { startServer, type TestServer } from '../helpers/server.js';

const FN = 'Microsoft.Dynamics.CRM.ccs_GetDeviceConnectionString()';
const json = { 'content-type': 'application/json' };

for (const engine of engines()) {
  describe(`msdyn_iotdevices(<id>)/${FN} (${engine.name})`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer(engine);
    });
    after(() => srv.stop());

    async function createDevice(body: Record<string, unknown>): Promise<string> {
      const res = await srv.fetch('msdyn_iotdevices', { method: 'POST', headers: json, body: JSON.stringify(body) });
      assert.equal(res.status, 204, await res.text());
      return /\(([^)]+)\)$/.exec(res.headers.get('odata-entityid')!)![1]!;
    }

    test('an admin gets the connection string; the identity is created on first call and reused after', async () => {
      const id = await createDevice({ msdyn_name: 'Thermostat 7', msdyn_deviceid: 'thermostat-7' });
      assert.equal(await srv.app.hub.registry.get('thermostat-7'), undefined);
      const res = await srv.fetch(`msdyn_iotdevices(${id})/${FN}`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as Record<string, string>;
      assert.match(body['@odata.context']!, /\$metadata#Microsoft\.Dynamics\.CRM\.ccs_GetDeviceConnectionStringResponse$/);
      const identity = (await srv.app.hub.registry.get('thermostat-7'))!;
      assert.equal(body['ConnectionString'], `HostName=localhost:${srv.mqttsPort};DeviceId=thermostat-7;SharedAccessKey=${identity.primaryKey}`);
      const token = deviceTokenFromConnectionString(body['ConnectionString']!, Math.floor(Date.now() / 1000) + 600);
      await srv.app.hub.authenticateDevice('thermostat-7', token);
      const again = (await (await srv.fetch(`msdyn_iotdevices(${id})/${FN}`)).json()) as Record<string, string>;
      assert.equal(again['ConnectionString'], body['ConnectionString']);
      // Keys never appear in ordinary reads of the record.
      const read = await (await srv.fetch(`msdyn_iotdevices(${id})`)).text();
      assert.ok(!read.includes(identity.primaryKey) && !read.includes(identity.secondaryKey));
      const list = await (await srv.fetch('msdyn_iotdevices')).text();
      assert.ok(!list.includes(identity.primaryKey));
    });

    test('a non-admin caller is 403, even with read access to the device', async () => {
      const id = await createDevice({ msdyn_name: 'Thermostat 8', msdyn_deviceid: 'thermostat-8' });
      for (const role of ['agent', 'readonly', 'integration']) {
        const { token } = await srv.app.tokens.create({ role, name: role });
        const res = await srv.fetch(`msdyn_iotdevices(${id})/${FN}`, { token });
        assert.equal(res.status, 403, role);
        const text = await res.text();
        assert.match(text, /administrator/);
        assert.ok(!text.includes('SharedAccessKey'));
      }
      assert.equal(await srv.app.hub.registry.get('thermostat-8'), undefined, 'nothing was created for them');
    });

    test('a device without a Device ID is 400; an unknown record 404; the function is in $metadata', async () => {
      const id = await createDevice({ msdyn_name: 'No id yet' });
      const res = await srv.fetch(`msdyn_iotdevices(${id})/${FN}`);
      assert.equal(res.status, 400);
      assert.match(await res.text(), /no Device ID/);
      const missing = await srv.fetch(`msdyn_iotdevices(00000000-0000-0000-0000-00000000abcd)/${FN}`);
      assert.equal(missing.status, 404);
      const metadata = await (await srv.fetch('$metadata')).text();
      assert.match(metadata, /<Function Name="ccs_GetDeviceConnectionString" IsBound="true">/);
      assert.equal((await srv.fetch(`msdyn_iotdevices(${id})/${FN}`, { method: 'POST' })).status, 405);
    });
  });
}
