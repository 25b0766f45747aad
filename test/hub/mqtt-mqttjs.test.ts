import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { createMqttGateway } from '../../src/hub/mqtt/index.js';
import type { Hub } from '../../src/hub/types.js';
import { engines } from '../helpers/engines.js';
import { closedByServer, mqttJs, nextMessage, startMqttHarness, until, type MqttHarness } from './fixtures/mqtt-harness.js';

/** MQTT.js 5 as a bare device with a hand-built SAS token: the IoT Hub topics over MQTT 3.1.1/TLS. */
for (const engine of engines()) {
  describe(`MQTT gateway with MQTT.js (${engine.name})`, () => {
    let h: MqttHarness;
    const clients: MqttClient[] = [];
    async function connect(deviceId: string, opts: { clean?: boolean } = {}): Promise<{ client: MqttClient; key: string }> {
      const key = (await h.hub.registry.get(deviceId))?.primaryKey ?? (await h.device(deviceId));
      const client = await mqttJs(h, { deviceId, key, ...opts });
      clients.push(client);
      return { client, key };
    }

    before(async () => {
      h = await startMqttHarness(engine);
    });
    after(async () => {
      await Promise.all(clients.map((c) => c.endAsync(true)));
      await h.close();
    });

    test('telemetry: PUBACK only once the message is durable, with its property bag decoded', async () => {
      const { client } = await connect('js-telemetry');
      const body = Buffer.from(JSON.stringify({ temperature: 21.5 }));
      await client.publishAsync('devices/js-telemetry/messages/events/%24.mid=m-1&%24.ct=application%2Fjson&%24.ce=utf-8&alert=hot%20%26%20humid', body, { qos: 1 });
      // Read straight after the PUBACK: no waiting, it must already be in the telemetry log.
      const records = await h.hub.readTelemetry({ deviceId: 'js-telemetry' });
      assert.equal(records.length, 1);
      const m = records[0]!.message;
      assert.equal(m.messageId, 'm-1');
      assert.equal(m.contentType, 'application/json');
      assert.equal(m.contentEncoding, 'utf-8');
      assert.deepEqual(m.properties, { alert: 'hot & humid' });
      assert.deepEqual(Buffer.from(m.body), body);
      assert.equal(records[0]!.transport, 'mqtt');

      // RETAIN is not stored by IoT Hub: it becomes the `mqtt-retain` property.
      await client.publishAsync('devices/js-telemetry/messages/events/', 'r', { qos: 1, retain: true });
      const again = await h.hub.readTelemetry({ deviceId: 'js-telemetry' });
      assert.deepEqual(again[1]!.message.properties, { 'mqtt-retain': 'true' });

      // Many in flight: all acknowledged, all stored, in order.
      await Promise.all(Array.from({ length: 50 }, (_, i) => client.publishAsync('devices/js-telemetry/messages/events/', String(i), { qos: 1 })));
      const all = await h.hub.readTelemetry({ deviceId: 'js-telemetry' });
      assert.deepEqual(all.slice(2).map((r) => Buffer.from(r.message.body).toString()), Array.from({ length: 50 }, (_, i) => String(i)));
    });

    test('the PUBACK waits for the hub to make the message durable', async () => {
      // The same hub behind a second gateway, with ingest held until the test lets it go.
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const gated = new Proxy(h.hub, {
        get: (target, prop, receiver) =>
          prop === 'ingest'
            ? async (...args: Parameters<Hub['ingest']>) => {
                await gate;
                return target.ingest(...args);
              }
            : Reflect.get(target, prop, receiver),
      });
      const gateway = await createMqttGateway({ hub: gated, tls: h.tls, log: h.log });
      try {
        const port = await gateway.listen(0, '127.0.0.1');
        const client = await mqttJs(h, { deviceId: 'js-gated', key: await h.device('js-gated'), port });
        clients.push(client);
        let acked = false;
        const publishing = client.publishAsync('devices/js-gated/messages/events/', 'held', { qos: 1 }).then(() => {
          acked = true;
        });
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(acked, false, 'no PUBACK while the hub has not stored the message');
        release();
        await publishing;
        assert.equal((await h.hub.readTelemetry({ deviceId: 'js-gated' })).length, 1);
      } finally {
        await gateway.close();
      }
    });

    test('cloud-to-device: delivered with its properties on devicebound, completed by the PUBACK', async () => {
      const { client } = await connect('js-c2d');
      const granted = await client.subscribeAsync('devices/js-c2d/messages/devicebound/#', { qos: 1 });
      assert.equal(granted[0]!.qos, 1);
      const completed = new Promise<string>((resolve) => {
        const off = h.hub.on('c2d', (deviceId, messageId, outcome) => {
          if (deviceId === 'js-c2d' && outcome === 'completed') {
            off();
            resolve(messageId);
          }
        });
      });
      const arrival = nextMessage(client, (t) => t.startsWith('devices/js-c2d/messages/devicebound/'));
      const queued = await h.hub.sendC2d('js-c2d', { body: Buffer.from('reboot'), properties: { command: 'Reset' }, messageId: 'c2d-1', correlationId: 'corr-1' });
      const { topic, payload } = await arrival;
      assert.equal(payload.toString(), 'reboot');
      const bag = new URLSearchParams(topic.split('/')[4]);
      assert.equal(bag.get('$.mid'), 'c2d-1');
      assert.equal(bag.get('$.cid'), 'corr-1');
      assert.equal(bag.get('command'), 'Reset');
      assert.equal(await completed, queued.messageId);
      await until(async () => (await h.hub.registry.get('js-c2d'))?.cloudToDeviceMessageCount === 0, 5000, 'queue empty');
    });

    test('persistent session: a message queued while away arrives on reconnect without subscribing again', async () => {
      const { client } = await connect('js-session', { clean: false });
      await client.subscribeAsync('devices/js-session/messages/devicebound/#', { qos: 1 });
      await client.endAsync();
      await h.hub.sendC2d('js-session', { body: Buffer.from('while away'), properties: {} });
      const { client: back } = await connect('js-session', { clean: false });
      const { payload } = await nextMessage(back, (t) => t.startsWith('devices/js-session/messages/devicebound/'));
      assert.equal(payload.toString(), 'while away');
    });

    test('twin: GET and reported PATCH are answered to the asking connection even without a twin/res subscription', async () => {
      const { client } = await connect('js-twin');
      const get = nextMessage(client, (t) => t.startsWith('$iothub/twin/res/'));
      await client.publishAsync('$iothub/twin/GET/?$rid=r1', ' ');
      const res = await get;
      assert.equal(res.topic, '$iothub/twin/res/200/?$rid=r1');
      const doc = JSON.parse(res.payload.toString()) as { desired: { $version: number }; reported: { $version: number } };
      assert.equal(typeof doc.desired.$version, 'number');
      assert.equal(typeof doc.reported.$version, 'number');

      const patch = nextMessage(client, (t) => t.startsWith('$iothub/twin/res/'));
      await client.publishAsync('$iothub/twin/PATCH/properties/reported/?$rid=r2', JSON.stringify({ firmware: '1.2' }));
      const patched = await patch;
      assert.match(patched.topic, /^\$iothub\/twin\/res\/204\/\?\$rid=r2&\$version=\d+$/);
      assert.equal(patched.payload.length, 0, 'a 204 carries an empty body (the SDK JSON.parses any other)');
      assert.equal((await h.hub.getTwin('js-twin')).properties.reported['firmware'], '1.2');

      const bad = nextMessage(client, (t) => t.startsWith('$iothub/twin/res/'));
      await client.publishAsync('$iothub/twin/PATCH/properties/reported/?$rid=r3', 'not json');
      const refused = await bad;
      assert.equal(refused.topic, '$iothub/twin/res/400/?$rid=r3');
      const error = JSON.parse(refused.payload.toString()) as { errorCode: number; message: string };
      assert.ok(error.errorCode, 'errorCode must be truthy for the SDK to fail the request');
      assert.equal(typeof error.message, 'string');
    });

    test('direct method: request on $iothub/methods/POST, response correlated by $rid', async () => {
      const { client } = await connect('js-method');
      await client.subscribeAsync('$iothub/methods/POST/#', { qos: 0 });
      client.on('message', (topic, payload) => {
        const m = /^\$iothub\/methods\/POST\/([^/]+)\/\?\$rid=(.+)$/.exec(topic);
        if (!m) return;
        const answer = JSON.stringify({ method: m[1], got: JSON.parse(payload.toString()) as unknown });
        void client.publishAsync(`$iothub/methods/res/201/?$rid=${m[2]}`, answer);
      });
      const r = await h.hub.invokeMethod('js-method', { methodName: 'reboot', payload: { delay: 1 }, responseTimeoutInSeconds: 5 });
      assert.deepEqual(r, { status: 201, payload: { method: 'reboot', got: { delay: 1 } } });
    });

    test('desired-property patches reach a connected device that subscribed', async () => {
      const { client } = await connect('js-desired');
      await client.subscribeAsync('$iothub/twin/PATCH/properties/desired/#', { qos: 0 });
      const arrival = nextMessage(client, (t) => t.startsWith('$iothub/twin/PATCH/properties/desired/'));
      const twin = await h.hub.updateTwin('js-desired', { properties: { desired: { interval: 30 } } });
      const { topic, payload } = await arrival;
      const version = (twin.properties.desired as { $version: number }).$version;
      assert.equal(topic, `$iothub/twin/PATCH/properties/desired/?$version=${version}`);
      assert.deepEqual(JSON.parse(payload.toString()), { interval: 30, $version: version });
    });

    test('a Will is delivered as telemetry marked iothub-MessageType=Will; one on another topic is refused', async () => {
      const key = await h.device('js-will');
      const client = await mqttJs(h, {
        deviceId: 'js-will', key, will: { topic: 'devices/js-will/messages/events/%24.mid=last&reason=power', payload: Buffer.from('gone'), qos: 1 },
      });
      clients.push(client);
      client.on('error', () => {});
      // Dropped without DISCONNECT: the server publishes the Will ([MQTT-3.1.2-8]).
      client.stream.destroy();
      await until(async () => (await h.hub.readTelemetry({ deviceId: 'js-will' })).length === 1, 5000, 'the Will');
      const [will] = await h.hub.readTelemetry({ deviceId: 'js-will' });
      assert.equal(Buffer.from(will!.message.body).toString(), 'gone');
      assert.equal(will!.message.messageId, 'last');
      assert.deepEqual(will!.message.properties, { reason: 'power', 'iothub-MessageType': 'Will' });

      await assert.rejects(
        mqttJs(h, { deviceId: 'js-will', key, will: { topic: 'devices/other/messages/events/', payload: Buffer.from('x'), qos: 0 } }),
        (e: { code?: number }) => e.code === 5,
      );
    });

    test('a QoS 2 subscription is granted as QoS 1', async () => {
      const { client } = await connect('js-qos2sub');
      const granted = await client.subscribeAsync('devices/js-qos2sub/messages/devicebound/#', { qos: 2 });
      assert.equal(granted[0]!.qos, 1);
    });

    test('one connection per device: a new CONNECT takes over and the old one is closed', async () => {
      const { client: first } = await connect('js-takeover');
      const firstClosed = closedByServer(first);
      const { client: second } = await connect('js-takeover');
      await firstClosed;
      await second.publishAsync('devices/js-takeover/messages/events/', 'from the second', { qos: 1 });
      const records = await h.hub.readTelemetry({ deviceId: 'js-takeover' });
      assert.equal(Buffer.from(records.at(-1)!.message.body).toString(), 'from the second');
      assert.equal((await h.hub.registry.get('js-takeover'))?.connectionState, 'Connected');
    });
  });
}
