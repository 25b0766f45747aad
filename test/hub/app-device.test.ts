import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { engines } from '../helpers/engines.js';
import { startServer, type TestServer } from '../helpers/server.js';

const [engine] = engines();

async function eventually<T>(probe: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
} // the listeners' wiring is engine-independent; the hub suites cover every engine

describe('the running server accepts devices', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer(engine!);
  });
  after(() => srv.stop());

  test('a device record, its connection string from the Web API, and the unmodified SDK over MQTT/TLS', async () => {
    const created = await srv.fetch('msdyn_iotdevices', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ msdyn_name: 'Lobby', msdyn_deviceid: 'lobby-1' }) });
    const id = /\(([^)]+)\)$/.exec(created.headers.get('odata-entityid')!)![1]!;
    const res = await srv.fetch(`msdyn_iotdevices(${id})/Microsoft.Dynamics.CRM.ccs_GetDeviceConnectionString()`);
    const { ConnectionString } = (await res.json()) as { ConnectionString: string };
    const client = device.Client.fromConnectionString(ConnectionString, deviceMqtt.Mqtt);
    try {
      await client.setOptions({ ca: srv.app.tls().ca });
      await client.open();
      const message = new device.Message(JSON.stringify({ Temperature: 71 }));
      message.properties.add('kind', 'reading');
      await client.sendEvent(message);
      const records = await srv.app.hub.readTelemetry({ deviceId: 'lobby-1' });
      assert.equal(records.length, 1);
      assert.equal(records[0]!.message.properties['kind'], 'reading');
      assert.deepEqual(JSON.parse(records[0]!.message.body.toString()), { Temperature: 71 });
      // Connection state, last activity and reported properties flow back to the device record.
      const twin = await client.getTwin();
      await new Promise<void>((resolve, reject) => twin.properties.reported.update({ firmware: '1.2.3' }, (e?: Error) => (e ? reject(e) : resolve())));
      const record = await eventually(async () => {
        const r = (await (await srv.fetch(`msdyn_iotdevices(${id})?$select=msdyn_connectionstate,msdyn_lastactivitytime,msdyn_devicereportedproperties`)).json()) as Record<string, unknown>;
        return r['msdyn_connectionstate'] === true && typeof r['msdyn_devicereportedproperties'] === 'string' ? r : undefined;
      });
      assert.match(String(record['msdyn_lastactivitytime']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(JSON.parse(String(record['msdyn_devicereportedproperties'])).firmware, '1.2.3');
    } finally {
      await client.close();
    }
    await eventually(async () => {
      const r = (await (await srv.fetch(`msdyn_iotdevices(${id})?$select=msdyn_connectionstate`)).json()) as Record<string, unknown>;
      return r['msdyn_connectionstate'] === false ? r : undefined;
    });
  });

  test('the HTTPS port serves the same Web API', async () => {
    const https = await import('node:https');
    const body = await new Promise<string>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: srv.httpsPort, path: '/api/data/v9.2/WhoAmI()', ca: srv.app.tls().ca, servername: 'localhost', headers: { authorization: 'Bearer test-admin-token' } }, (r) => {
        let text = '';
        r.on('data', (c: Buffer) => (text += c.toString()));
        r.on('end', () => resolve(text));
      }).on('error', reject);
    });
    assert.match(JSON.parse(body).UserId, /^[0-9a-f-]{36}$/);
  });
});
