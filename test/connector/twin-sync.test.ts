import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engines } from '../helpers/engines.js';
import { connectDevice, create, eventually, rejectsWith, retrieve, startConnector, type Connector } from './helpers.js';

interface SdkTwin {
  on(event: 'properties.desired', listener: (delta: Record<string, unknown>) => void): void;
  properties: { reported: { update(patch: Record<string, unknown>, done: (e?: Error) => void): void } };
}

for (const engine of engines()) {
  describe(`device twin sync on ${engine.name}`, () => {
    let c: Connector;
    before(async () => {
      c = await startConnector(engine);
    });
    after(() => c.srv.stop());

    const register = (id: string) => c.api.callAction({ actionName: 'msdyn_RegisterIoTDevice', action: { IoTDeviceIds: id } });
    const update = (id: string, data: Record<string, unknown>) => c.api.update({ collection: 'msdyn_iotdevices', key: id, data });

    test('editing msdyn_devicesettings sends a desired-properties patch to the device; msdyn_tags updates the twin tags', async () => {
      const id = await create(c, 'msdyn_iotdevices', { msdyn_name: 'Hall', msdyn_deviceid: 'hall-1', msdyn_devicesettings: '{"interval":10,"mode":"eco"}' });
      await register(id);
      const client = await connectDevice(c, id);
      try {
        const twin = (await client.getTwin()) as unknown as SdkTwin;
        const deltas: Record<string, unknown>[] = [];
        twin.on('properties.desired', (delta) => deltas.push(delta));
        await update(id, { msdyn_devicesettings: '{"interval":30,"mode":null}' });
        // The SDK merges the patch into its copy of the desired properties and passes that copy.
        const seen = await eventually(async () => deltas.find((d) => d['interval'] === 30), 5000, 'desired patch at the device');
        assert.equal('mode' in seen, false, 'null deletes');
        const desired = (await c.srv.app.hub.getTwin('hall-1')).properties.desired;
        assert.equal(desired['interval'], 30);
        assert.equal('mode' in desired, false);

        await update(id, { msdyn_tags: '{"site":"HQ"}' });
        await eventually(async () => ((await c.srv.app.hub.getTwin('hall-1')).tags['site'] === 'HQ' ? true : undefined), 5000, 'tags in the twin');
      } finally {
        await client.close();
      }
    });

    test('a device not registered yet keeps its settings until registration applies them', async () => {
      const id = await create(c, 'msdyn_iotdevices', { msdyn_name: 'Later', msdyn_deviceid: 'later-1' });
      await update(id, { msdyn_devicesettings: '{"interval":5}' });
      assert.equal(await c.srv.app.hub.registry.get('later-1'), undefined, 'no identity created by an edit');
      await register(id);
      assert.equal((await c.srv.app.hub.getTwin('later-1')).properties.desired['interval'], 5);
    });

    test('invalid JSON, or JSON that is not an object, is refused with a 400 naming the column', async () => {
      await rejectsWith(create(c, 'msdyn_iotdevices', { msdyn_name: 'Bad', msdyn_devicesettings: '{"interval":' }), 400, /'msdyn_devicesettings' is not valid JSON/);
      const id = await create(c, 'msdyn_iotdevices', { msdyn_name: 'Good' });
      await rejectsWith(update(id, { msdyn_tags: '[1,2]' }), 400, /'msdyn_tags' must be a JSON object/);
      await rejectsWith(update(id, { msdyn_devicesettings: 'eco' }), 400, /'msdyn_devicesettings' is not valid JSON/);
      await update(id, { msdyn_devicesettings: '' });
    });

    test('msdyn_PullDataForIoTDevice writes a data history row from the twin and connection state and updates the device', async () => {
      const id = await create(c, 'msdyn_iotdevices', { msdyn_name: 'Pulled', msdyn_deviceid: 'pull-1' });
      await register(id);
      const client = await connectDevice(c, id);
      try {
        const twin = (await client.getTwin()) as unknown as SdkTwin;
        await new Promise<void>((resolve, reject) => twin.properties.reported.update({ firmware: '2.0' }, (e) => (e ? reject(e) : resolve())));
        await c.api.callAction({ actionName: 'msdyn_PullDataForIoTDevice', action: { IoTDeviceIds: id } });
      } finally {
        await client.close();
      }
      const rows = (await c.api.retrieveMultiple({ collection: 'msdyn_iotdevicedatahistory', filter: `_msdyn_device_value eq ${id}` })).value as Record<string, unknown>[];
      assert.equal(rows.length, 1);
      const row = rows[0]!;
      assert.equal(row['msdyn_iothubdeviceid'], 'pull-1');
      assert.equal(row['msdyn_connectionstate'], true);
      assert.equal(row['msdyn_status'], 192350000, 'Enabled');
      assert.equal(JSON.parse(String(row['msdyn_devicereportedproperties']))['firmware'], '2.0');
      const dev = await retrieve(c, 'msdyn_iotdevices', id, ['msdyn_devicereportedproperties']);
      assert.equal(JSON.parse(String(dev['msdyn_devicereportedproperties']))['firmware'], '2.0');

      const unregistered = await create(c, 'msdyn_iotdevices', { msdyn_name: 'Nowhere', msdyn_deviceid: 'nowhere-1' });
      await c.api.callAction({ actionName: 'msdyn_PullDataForIoTDevice', action: { IoTDeviceIds: unregistered } });
      const missing = (await c.api.retrieveMultiple({ collection: 'msdyn_iotdevicedatahistory', filter: `_msdyn_device_value eq ${unregistered}` })).value as Record<string, unknown>[];
      assert.equal(missing[0]!['msdyn_status'], 192350002, 'Not Found');
    });
  });
}
