import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { engines } from '../helpers/engines.js';
import { startMqttHarness, until, type MqttHarness } from './fixtures/mqtt-harness.js';

type DeviceClient = InstanceType<typeof device.Client>;
type SdkMessage = InstanceType<typeof device.Message>;
type Transport = typeof deviceMqtt.Mqtt | typeof deviceMqtt.MqttWs;

const TIMEOUT = { timeout: 30_000 };

/**
 * The unmodified Azure IoT device SDK (azure-iot-device + azure-iot-device-mqtt) against the gateway, over MQTT/TLS
 * (`Mqtt`, HostName=localhost:<port>) and MQTT over WebSocket (`MqttWs`, wss://localhost:443/$iothub/websocket).
 */
for (const engine of engines()) {
  describe(`Azure IoT device SDK over the MQTT gateway (${engine.name})`, () => {
    let h: MqttHarness;
    before(async () => {
      h = await startMqttHarness(engine);
      await h.listenWebSocket();
    });
    after(async () => {
      await h.close();
    });

    const transports: [string, Transport][] = [['Mqtt', deviceMqtt.Mqtt], ['MqttWs', deviceMqtt.MqttWs]];
    for (const [name, Transport] of transports) {
      const ws = name === 'MqttWs';
      /** Opens a client for a new device and runs `body`; the client is always closed (the SDK retries forever otherwise). */
      async function withDevice(deviceId: string, body: (client: DeviceClient) => Promise<void>): Promise<void> {
        const key = await h.device(deviceId);
        const client = device.Client.fromConnectionString(h.connectionString(deviceId, key, { port: !ws }), Transport);
        try {
          await client.setOptions({ ca: h.ca });
          await client.open();
          await body(client);
        } finally {
          client.removeAllListeners();
          await client.close().catch(() => undefined);
        }
      }
      const id = (s: string) => `sdk-${name.toLowerCase()}-${s}`;

      test(`${name}: open and sendEvent with application properties; they arrive durable`, TIMEOUT, async () => {
        await withDevice(id('events'), async (client) => {
          const message = new device.Message(JSON.stringify({ temperature: 22.5, humidity: 40 }));
          message.messageId = 'msg-1';
          message.contentType = 'application/json';
          message.contentEncoding = 'utf-8';
          message.properties.add('alert', 'hot & humid');
          message.properties.add('unit', 'C');
          await client.sendEvent(message);
          // sendEvent resolved on the PUBACK, which only goes out once the message is in the telemetry log.
          const [record] = await h.hub.readTelemetry({ deviceId: id('events') });
          assert.ok(record);
          assert.equal(record.transport, ws ? 'mqtt-ws' : 'mqtt');
          assert.equal(record.message.messageId, 'msg-1');
          assert.equal(record.message.contentType, 'application/json');
          assert.deepEqual(record.message.properties, { alert: 'hot & humid', unit: 'C' });
          assert.deepEqual(JSON.parse(Buffer.from(record.message.body).toString()), { temperature: 22.5, humidity: 40 });
        });
      });

      test(`${name}: receives a cloud-to-device message and completes it`, TIMEOUT, async () => {
        await withDevice(id('c2d'), async (client) => {
          const received = new Promise<SdkMessage>((resolve) => client.on('message', (m: SdkMessage) => resolve(m)));
          const completed = new Promise<void>((resolve) => {
            const off = h.hub.on('c2d', (deviceId, _mid, outcome) => {
              if (deviceId === id('c2d') && outcome === 'completed') {
                off();
                resolve();
              }
            });
          });
          await h.hub.sendC2d(id('c2d'), {
            body: Buffer.from('Set Values'), messageId: 'cmd-1', correlationId: 'case-7', contentType: 'text/plain', properties: { command: 'SetValues' },
          });
          const m = await received;
          assert.equal(m.getData().toString(), 'Set Values');
          assert.equal(m.messageId, 'cmd-1');
          assert.equal(m.correlationId, 'case-7');
          assert.equal(m.properties.getValue('command'), 'SetValues');
          await client.complete(m);
          await completed;
          await until(async () => (await h.hub.registry.get(id('c2d')))?.cloudToDeviceMessageCount === 0, 5000, 'queue empty');
        });
      });

      test(`${name}: answers a direct method`, TIMEOUT, async () => {
        await withDevice(id('method'), async (client) => {
          client.onDeviceMethod('resetThermostat', (request, response) => {
            void response.send(200, { reset: true, asked: request.payload as unknown });
          });
          const result = await h.hub.invokeMethod(id('method'), {
            methodName: 'resetThermostat', payload: { to: 20 }, responseTimeoutInSeconds: 10, connectTimeoutInSeconds: 5,
          });
          assert.deepEqual(result, { status: 200, payload: { reset: true, asked: { to: 20 } } });
        });
      });

      test(`${name}: twin get, reported patch, desired-patch notification`, TIMEOUT, async () => {
        await withDevice(id('twin'), async (client) => {
          await h.hub.updateTwin(id('twin'), { properties: { desired: { targetTemperature: 21 } } });
          const twin = await client.getTwin();
          assert.equal(twin.properties.desired['targetTemperature'], 21);

          await new Promise<void>((resolve, reject) => {
            twin.properties.reported.update({ firmware: '2.0.1', battery: 93 }, (err?: Error) => (err ? reject(err) : resolve()));
          });
          const reported = (await h.hub.getTwin(id('twin'))).properties.reported;
          assert.equal(reported['firmware'], '2.0.1');
          assert.equal(reported['battery'], 93);

          const delta = new Promise<Record<string, unknown>>((resolve) => {
            twin.on('properties.desired', (d: Record<string, unknown>) => {
              if (d['targetTemperature'] === 24) resolve(d);
            });
          });
          await h.hub.updateTwin(id('twin'), { properties: { desired: { targetTemperature: 24 } } });
          const d = await delta;
          assert.equal(typeof d['$version'], 'number');
        });
      });

      test(`${name}: after a server restart the client reconnects; a message queued while it was away arrives`, TIMEOUT, async () => {
        await withDevice(id('restart'), async (client) => {
          const messages: string[] = [];
          client.on('message', (m: SdkMessage) => {
            messages.push(m.getData().toString());
            void client.complete(m);
          });
          const twin = await client.getTwin();
          const desired: unknown[] = [];
          twin.on('properties.desired', (d: Record<string, unknown>) => desired.push(d['mode']));
          // A desired patch that arrives shows the SDK has finished subscribing to the twin topics (it subscribes
          // after getTwin() resolves, so the first patches may be sent before it has).
          for (let i = 0; !desired.some((d) => typeof d === 'string' && d.startsWith('normal')); i++) {
            assert.ok(i < 50, 'no desired patch reached the device before the restart');
            await h.hub.updateTwin(id('restart'), { properties: { desired: { mode: `normal-${i}` } } });
            await new Promise((r) => setTimeout(r, 100));
          }

          await h.restart(async (hub) => {
            await hub.sendC2d(id('restart'), { body: Buffer.from('queued while away'), properties: {} });
          });
          await until(() => messages.includes('queued while away'), 20_000, 'the queued message');

          // The SDK did not subscribe to the twin topics again (the session was lost with the restart): twin
          // replies and desired patches still reach it.
          const again = await client.getTwin();
          assert.equal(typeof again.properties.reported['$version'], 'number');
          await h.hub.updateTwin(id('restart'), { properties: { desired: { mode: 'eco' } } });
          await until(() => desired.includes('eco'), 5000, 'the desired patch');
          await client.sendEvent(new device.Message('after restart'));
          const records = await h.hub.readTelemetry({ deviceId: id('restart') });
          assert.equal(Buffer.from(records.at(-1)!.message.body).toString(), 'after restart');
        });
      });
    }
  });
}
