import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DynamicsWebApi } from 'dynamics-web-api';
import { engines } from '../../helpers/engines.js';
import { ADMIN_TOKEN, startServer } from '../../helpers/server.js';
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

for (const engine of engines()) {
  describe(`${NAME} over many readings on ${engine.name}`, () => {
    test('agrees with a reading-by-reading computation over days of readings, mixed with other devices and bodies', async () => {
      const DAY = 86_400_000;
      const start = Date.UTC(2031, 2, 1);
      let now = start;
      const srv = await startServer(engine, { clock: () => now, settings: { 'rate-limit': '0' } });
      try {
        const api = new DynamicsWebApi({ serverUrl: srv.url, onTokenRefresh: async () => ADMIN_TOKEN });
        const device = await create({ srv, api }, 'msdyn_iotdevices', { msdyn_name: 'Pump 7', msdyn_deviceid: 'pump-7' });
        // A seeded sequence: the same readings on every run.
        let seed = 7;
        const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
        const expected = new Map<string, Map<number, { min: number; max: number; sum: number; count: number }>>();
        const add = (measure: string, bucket: number, v: number) => {
          let series = expected.get(measure);
          if (!series) expected.set(measure, (series = new Map()));
          const a = series.get(bucket);
          if (!a) series.set(bucket, { min: v, max: v, sum: v, count: 1 });
          else Object.assign(a, { min: Math.min(a.min, v), max: Math.max(a.max, v), sum: a.sum + v, count: a.count + 1 });
        };
        const sent: Promise<unknown>[] = [];
        const send = (deviceId: string, body: string) =>
          sent.push(srv.app.hub.ingest(deviceId, { body: Buffer.from(body), properties: {} }, 'https'));
        const from = start + DAY / 2;
        const to = start + 9 * DAY;
        for (let i = 0; i < 3000; i++) {
          now = start + Math.floor(random() * 10 * DAY);
          const temp = Math.round(random() * 400) / 2 - 50;
          const flow = Math.round(random() * 1000);
          const kind = i % 10;
          if (kind === 7) send('pump-7', `not json ${temp}`);
          else if (kind === 8) send('pump-8', JSON.stringify({ temp: 1000 }));
          else if (kind === 9) send('pump-7', JSON.stringify({ temp: String(temp), flow: null, on: true }));
          else {
            send('pump-7', JSON.stringify(kind % 2 ? { temp } : { temp, line: { flow } }));
            if (now >= from && now < to) {
              const bucket = (iv: number) => Math.floor((now - from) / iv);
              for (const iv of [DAY, DAY / 4]) {
                add(`${iv}:temp`, bucket(iv), temp);
                if (kind % 2 === 0) add(`${iv}:line.flow`, bucket(iv), flow);
              }
            }
          }
        }
        await Promise.all(sent);
        for (const [iv, Interval] of [[DAY, 'P1D'], [DAY / 4, 'PT6H']] as const) {
          const { AggregatedDeviceReadings } = await api.callAction<{ AggregatedDeviceReadings: string }>({
            actionName: NAME,
            action: { From: new Date(from).toISOString(), To: new Date(to).toISOString(), IoTDeviceId: device, Interval },
          });
          const want: Record<string, Record<string, unknown>> = {};
          for (const measure of ['line.flow', 'temp']) {
            want[measure] = {};
            for (const [b, a] of [...expected.get(`${iv}:${measure}`)!].sort((x, y) => x[0] - y[0])) {
              want[measure][new Date(from + b * iv).toISOString()] = { min: a.min, max: a.max, avg: a.sum / a.count, sum: a.sum, count: a.count };
            }
          }
          assert.deepEqual(JSON.parse(AggregatedDeviceReadings), { 'Pump 7': want }, Interval);
        }
      } finally {
        await srv.stop();
      }
    });
  });
}
