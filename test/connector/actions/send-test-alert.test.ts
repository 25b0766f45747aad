import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engines } from '../../helpers/engines.js';
import { create, eventually, rejectsWith, retrieve, startConnector, type Connector } from '../helpers.js';

const ACTION = 'msdyn_IoTSendTestAlert';
const TEST_ALERT_TYPE = 192350003;

interface AlertView {
  msdyn_description: string;
  msdyn_alerttype: number;
  msdyn_alertdata: string;
  msdyn_alerttime: string;
  msdyn_alerttoken: string;
  msdyn_deviceid: string;
  _msdyn_device_value: string;
  _msdyn_customerasset_value: string | null;
}

for (const engine of engines()) {
  describe(`${ACTION} on ${engine.name}`, () => {
    let c: Connector;
    before(async () => {
      c = await startConnector(engine);
    });
    after(() => c.srv.stop());

    const sendTestAlert = (device: string, action: Record<string, unknown> = {}) =>
      c.api.callAction<{ IoTAlertId: string }>({ collection: 'msdyn_iotdevices', key: device, actionName: `Microsoft.Dynamics.CRM.${ACTION}`, action });
    const readAlert = async (id: string) => (await retrieve(c, 'msdyn_iotalerts', id)) as unknown as AlertView;
    async function deviceRecord(deviceId: string): Promise<string> {
      const { value } = await c.api.retrieveMultiple<{ msdyn_iotdeviceid: string }>({ collection: 'msdyn_iotdevices', filter: `msdyn_deviceid eq '${deviceId}'`, select: ['msdyn_iotdeviceid'] });
      return value[0]!.msdyn_iotdeviceid;
    }

    test('a registered device: a test reading in its telemetry and an alert of type Test, readable through the Web API', async () => {
      const asset = await create(c, 'msdyn_customerassets', { msdyn_name: 'Boiler room' });
      await c.api.callAction({ actionName: 'msdyn_RegisterCustomEntity', action: { EntityIds: asset, EntityLogicalName: 'msdyn_customerasset', DeviceIds: 'test-alert-1' } });
      const dev = await deviceRecord('test-alert-1');
      const before = Date.now();
      const { IoTAlertId } = await sendTestAlert(dev, { Measure: 'Temperature', Reading: 21.5 });
      assert.match(IoTAlertId, /^[0-9a-f-]{36}$/);

      const alert = await readAlert(IoTAlertId);
      assert.equal(alert.msdyn_alerttype, TEST_ALERT_TYPE);
      assert.equal(alert._msdyn_device_value, dev);
      assert.equal(alert.msdyn_deviceid, 'test-alert-1');
      assert.equal(alert._msdyn_customerasset_value, asset, 'the asset the device is connected to');
      assert.equal(alert.msdyn_description, 'Test alert: Temperature reading of 21.5 from Boiler room', 'the device is named after the asset');
      const data = JSON.parse(alert.msdyn_alertdata) as Record<string, unknown>;
      assert.deepEqual({ ...data, time: undefined, eventtoken: undefined }, {
        deviceid: 'test-alert-1', readingtype: 'Temperature', reading: 21.5, threshold: 21.5, ruleoutput: 'Test alert', time: undefined, eventtoken: undefined,
      });
      assert.ok(Date.parse(alert.msdyn_alerttime) >= before - 1000);
      assert.equal(alert.msdyn_alerttoken, `${String(data['eventtoken'])}/${ACTION}`);

      // The reading went through the hub as telemetry: it is in the device's readings.
      const { AggregatedDeviceReadings } = await c.api.callAction<{ AggregatedDeviceReadings: string }>({
        actionName: 'msdyn_IoTHubQueryDeviceReadings',
        action: { From: new Date(before - 60_000).toISOString(), To: new Date(Date.now() + 60_000).toISOString(), IoTDeviceId: dev, Interval: 'PT5M' },
      });
      const readings = JSON.parse(AggregatedDeviceReadings) as Record<string, Record<string, Record<string, { max: number; count: number }>>>;
      const buckets = Object.values(readings['Boiler room']?.['Temperature'] ?? {});
      assert.deepEqual(buckets.map((b) => [b.max, b.count]), [[21.5, 1]]);

      // Filtering alerts by type, as a console list would.
      const tests = await c.api.retrieveMultiple<{ msdyn_iotalertid: string }>({ collection: 'msdyn_iotalerts', filter: `msdyn_alerttype eq ${TEST_ALERT_TYPE} and _msdyn_device_value eq ${dev}`, select: ['msdyn_iotalertid'] });
      assert.deepEqual(tests.value.map((a) => a.msdyn_iotalertid), [IoTAlertId]);
    });

    test('without parameters: measure Test, reading 0; each call is a new alert', async () => {
      const dev = await create(c, 'msdyn_iotdevices', { msdyn_name: 'Kiln', msdyn_deviceid: 'test-alert-2' });
      await c.api.callAction({ actionName: 'msdyn_RegisterIoTDevice', action: { IoTDeviceIds: dev } });
      const one = (await sendTestAlert(dev)).IoTAlertId;
      const two = (await sendTestAlert(dev)).IoTAlertId;
      assert.notEqual(one, two);
      const alert = await readAlert(one);
      assert.equal(alert.msdyn_description, 'Test alert: Test reading of 0 from Kiln');
      assert.equal(alert._msdyn_customerasset_value, null);
      assert.deepEqual(JSON.parse(alert.msdyn_alertdata)['readingtype'], 'Test');
    });

    test('a rule that matches the test reading fires as for any reading', async () => {
      const dev = await create(c, 'msdyn_iotdevices', { msdyn_name: 'Oven', msdyn_deviceid: 'test-alert-3' });
      await c.api.callAction({ actionName: 'msdyn_RegisterIoTDevice', action: { IoTDeviceIds: dev } });
      await create(c, 'ccs_iotrules', {
        ccs_name: 'Oven too hot', ccs_scope: 192350002, 'ccs_Device@odata.bind': `/msdyn_iotdevices(${dev})`,
        ccs_condition: JSON.stringify({ measure: 'OvenTemp', op: 'gt', value: 250 }),
      });
      await sendTestAlert(dev, { Measure: 'OvenTemp', Reading: 300 });
      const alerts = await eventually(async () => {
        const { value } = await c.api.retrieveMultiple<{ msdyn_alerttype: number }>({ collection: 'msdyn_iotalerts', filter: `_msdyn_device_value eq ${dev}`, select: ['msdyn_alerttype'] });
        return value.length === 2 ? value : undefined;
      }, 10_000, 'the test alert and the rule alert');
      assert.deepEqual(alerts.map((a) => a.msdyn_alerttype).sort(), [192350000, TEST_ALERT_TYPE]);
    });

    test('a device that is not registered, an unknown device and bad parameters are refused; the server keeps serving', async () => {
      const noId = await create(c, 'msdyn_iotdevices', { msdyn_name: 'Unregistered' });
      await rejectsWith(sendTestAlert(noId), 400, /msdyn_IoTSendTestAlert: The IoT device 'Unregistered' is not registered: it has no Device ID \(msdyn_deviceid\)/);
      const noIdentity = await create(c, 'msdyn_iotdevices', { msdyn_name: 'Ghost', msdyn_deviceid: 'ghost-1' });
      await rejectsWith(sendTestAlert(noIdentity), 400, /The IoT device 'Ghost' is not registered: device 'ghost-1' has no identity in the hub/);
      await rejectsWith(sendTestAlert('00000000-0000-0000-0000-000000000001'), 404, /msdyn_iotdevice/);
      const dev = await create(c, 'msdyn_iotdevices', { msdyn_name: 'Fine', msdyn_deviceid: 'test-alert-4' });
      await c.api.callAction({ actionName: 'msdyn_RegisterIoTDevice', action: { IoTDeviceIds: dev } });
      await rejectsWith(sendTestAlert(dev, { Measure: '  ' }), 400, /Parameter 'Measure' must be 1 to 100 characters/);
      await rejectsWith(sendTestAlert(dev, { Reading: 'hot' }), 400, /Invalid value for parameter 'Reading'/);
      await c.srv.app.hub.registry.update({ deviceId: 'test-alert-4', status: 'disabled' });
      await rejectsWith(sendTestAlert(dev), 400, /Device 'test-alert-4' is disabled in the hub/);
      await c.srv.app.hub.registry.update({ deviceId: 'test-alert-4', status: 'enabled' });
      const { IoTAlertId } = await sendTestAlert(dev);
      assert.equal((await readAlert(IoTAlertId)).msdyn_alerttype, TEST_ALERT_TYPE);
    });
  });
}
