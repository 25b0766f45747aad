import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engines } from '../../helpers/engines.js';
import { create, rejectsWith, startConnector, type Connector } from '../helpers.js';

const NAME = 'msdyn_IoTHubQueryDeviceReadings';
const MINUTE = 60_000;

for (const engine of engines()) {
  describe(`${NAME} on ${engine.name}`, () => {
    let c: Connector;
    let device: string;
    before(async () => {
      c = await startConnector(engine);
      device = await create(c, 'msdyn_iotdevices', { msdyn_name: 'Boiler 1', msdyn_deviceid: 'boiler-1' });
    });
    after(() => c.srv.stop());

    const send = (deviceId: string, body: unknown) =>
      c.srv.app.hub.ingest(deviceId, { body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), properties: {} }, 'https');
    const query = async (action: Record<string, unknown>) =>
      JSON.parse((await c.api.callAction<{ AggregatedDeviceReadings: string }>({ actionName: NAME, action })).AggregatedDeviceReadings) as Record<string, unknown>;

    test('aggregates every numeric measure (nested ones dotted) per bucket, skipping other values and bodies', async () => {
      const first = await Promise.all([
        send('boiler-1', { temperature: 20, humidity: 40, state: 'on', readings: { pressure: 1.5, label: 'x' } }),
        send('boiler-1', { temperature: 22, humidity: 42, alarm: true, list: [1, 2] }),
        send('boiler-1', 'not json'),
        send('boiler-1', [1, 2, 3]),
        send('other', { temperature: 99 }),
      ]);
      await new Promise((r) => setTimeout(r, 10));
      const second = await send('boiler-1', { temperature: 30, readings: { pressure: 2.5 } });
      // Buckets start at From: put the boundary right at the second batch, so the first lands in the bucket before.
      const boundary = second.enqueuedTime;
      assert.ok(Math.max(...first.map((r) => r.enqueuedTime)) < boundary);
      const from = new Date(boundary - MINUTE).toISOString();
      const mid = new Date(boundary).toISOString();
      const expected = {
        'Boiler 1': {
          humidity: { [from]: { min: 40, max: 42, avg: 41, sum: 82, count: 2 } },
          'readings.pressure': { [from]: { min: 1.5, max: 1.5, avg: 1.5, sum: 1.5, count: 1 }, [mid]: { min: 2.5, max: 2.5, avg: 2.5, sum: 2.5, count: 1 } },
          temperature: { [from]: { min: 20, max: 22, avg: 21, sum: 42, count: 2 }, [mid]: { min: 30, max: 30, avg: 30, sum: 30, count: 1 } },
        },
      };
      const to = new Date(boundary + MINUTE).toISOString();
      assert.deepEqual(await query({ From: from, To: to, IoTDeviceId: device, Interval: 'PT1M' }), expected);
      assert.deepEqual(await query({ From: from, To: to, IoTDeviceId: device, Interval: '1' }), expected, 'plain minutes');

      // To is exclusive; one bucket covering everything.
      const before = await query({ From: from, To: mid, IoTDeviceId: device, Interval: 'PT1H' });
      assert.deepEqual(before, { 'Boiler 1': { humidity: expected['Boiler 1'].humidity, 'readings.pressure': { [from]: expected['Boiler 1']['readings.pressure'][from] }, temperature: { [from]: expected['Boiler 1'].temperature[from] } } });
      const all = (await query({ From: from, To: to, IoTDeviceId: device, Interval: 'PT2M' }))['Boiler 1'] as Record<string, Record<string, unknown>>;
      assert.deepEqual(all['temperature'], { [from]: { min: 20, max: 30, avg: 24, sum: 72, count: 3 } });

      // A range with nothing, and a device without a Device ID: an empty entry named after the device.
      assert.deepEqual(await query({ From: '2020-01-01T00:00:00Z', To: '2020-01-02T00:00:00Z', IoTDeviceId: device, Interval: 'PT1H' }), { 'Boiler 1': {} });
      const bare = await create(c, 'msdyn_iotdevices', { msdyn_name: 'Unregistered' });
      assert.deepEqual(await query({ From: from, To: to, IoTDeviceId: bare, Interval: 'PT1M' }), { Unregistered: {} });
    });

    test('bad input is a 400 naming the parameter; an unknown device is a 404', async () => {
      const ok = { From: '2024-05-01T00:00:00Z', To: '2024-05-02T00:00:00Z', IoTDeviceId: device, Interval: 'PT1H' };
      await rejectsWith(query({ ...ok, From: 'yesterday' }), 400, /'From'.*date and time/);
      await rejectsWith(query({ ...ok, To: '2024-05-01' }), 400, /'To'.*date and time/);
      await rejectsWith(query({ ...ok, From: ok.To, To: ok.From }), 400, /'From'.*before 'To'/);
      for (const Interval of ['P1M', 'PT', 'soon', '0', 'PT0S', '-5']) {
        await rejectsWith(query({ ...ok, Interval }), 400, /'Interval'.*ISO 8601 duration/);
      }
      await rejectsWith(query({ ...ok, Interval: 'PT1S' }), 400, /'Interval'.*86400 buckets.*at most 10000/);
      assert.deepEqual(await query({ ...ok, Interval: 'P1D' }), { 'Boiler 1': {} }, 'days are accepted');
      await rejectsWith(query({ ...ok, IoTDeviceId: 'boiler-1' }), 400, /'IoTDeviceId'.*GUID/);
      await rejectsWith(query({ ...ok, IoTDeviceId: '00000000-0000-0000-0000-000000000001' }), 404, /msdyn_iotdevice With Id = 00000000-0000-0000-0000-000000000001 Does Not Exist/);
      const { Interval: _, ...noInterval } = ok;
      await rejectsWith(query(noInterval), 400, /Required parameter 'Interval'/);
    });
  });
}
