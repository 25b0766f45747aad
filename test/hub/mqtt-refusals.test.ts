import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import type { MqttClient } from 'mqtt';
import { engines } from '../helpers/engines.js';
import { closedByServer, HOST, mqttJs, rawTls, sasToken, startMqttHarness, until, type MqttHarness } from './fixtures/mqtt-harness.js';

const T = { timeout: 20_000 };

/** The MQTT.js CONNACK refusal code of a failed connect (`ErrorWithReasonCode.code`). */
async function refusal(connecting: Promise<MqttClient>): Promise<number> {
  try {
    const c = await connecting;
    await c.endAsync(true);
  } catch (e) {
    return (e as { code?: number }).code ?? -1;
  }
  assert.fail('the connection was accepted');
}

/**
 * What IoT Hub refuses, refused the same way: CONNACK "Not authorized" / "Bad username or password" for bad
 * credentials, the connection closed for what a device may not do. Each while another device keeps being served.
 */
for (const engine of engines()) {
  describe(`MQTT gateway refusals (${engine.name})`, () => {
    let h: MqttHarness;
    let bystander: MqttClient;
    let sent = 0;
    const clients: MqttClient[] = [];
    async function connect(deviceId: string): Promise<MqttClient> {
      const key = (await h.hub.registry.get(deviceId))?.primaryKey ?? (await h.device(deviceId));
      const client = await mqttJs(h, { deviceId, key });
      client.on('error', () => {});
      clients.push(client);
      return client;
    }
    const keyOf = async (deviceId: string) => (await h.hub.registry.get(deviceId))?.primaryKey ?? (await h.device(deviceId));

    before(async () => {
      h = await startMqttHarness(engine);
      bystander = await connect('bystander');
      await bystander.subscribeAsync('devices/bystander/messages/devicebound/#', { qos: 1 });
    });
    /** The other device is still served: its telemetry is acknowledged and stored, its C2D still arrives. */
    beforeEach(async () => {
      assert.ok(bystander.connected, 'the bystander is still connected');
      await bystander.publishAsync('devices/bystander/messages/events/', `still here ${++sent}`, { qos: 1 });
      const records = await h.hub.readTelemetry({ deviceId: 'bystander' });
      assert.equal(records.length, sent);
    });
    after(async () => {
      assert.ok(bystander.connected, 'the bystander is still connected at the end');
      const got = new Promise<void>((resolve) => bystander.once('message', () => resolve()));
      await h.hub.sendC2d('bystander', { body: Buffer.from('ping'), properties: {} });
      await got;
      await Promise.all(clients.map((c) => c.endAsync(true)));
      await h.close();
    });

    test('wrong key: CONNACK Not authorized', T, async () => {
      await h.device('wrong-key');
      const otherKey = Buffer.alloc(32, 7).toString('base64');
      assert.equal(await refusal(mqttJs(h, { deviceId: 'wrong-key', key: otherKey })), 5);
    });

    test('wrong key with the Azure SDK: UnauthorizedError', T, async () => {
      await h.device('sdk-wrong-key');
      const client = device.Client.fromConnectionString(h.connectionString('sdk-wrong-key', Buffer.alloc(32, 9).toString('base64')), deviceMqtt.Mqtt);
      try {
        await client.setOptions({ ca: h.ca });
        await assert.rejects(client.open(), (e: Error) => e.name === 'UnauthorizedError');
      } finally {
        await client.close().catch(() => undefined);
      }
    });

    test('expired token: CONNACK Not authorized', T, async () => {
      const key = await keyOf('expired');
      const password = sasToken({ host: HOST, deviceId: 'expired', key, expiry: Math.floor(Date.now() / 1000) - 60 });
      assert.equal(await refusal(mqttJs(h, { deviceId: 'expired', key, password })), 5);
    });

    test('disabled device: refused, and a connected one is disconnected when disabled', T, async () => {
      const client = await connect('to-disable');
      const closed = closedByServer(client);
      const identity = (await h.hub.registry.get('to-disable'))!;
      await h.hub.registry.update({ deviceId: 'to-disable', status: 'disabled' });
      await closed;
      assert.equal(await refusal(mqttJs(h, { deviceId: 'to-disable', key: identity.primaryKey })), 5);
    });

    test('client id not matching the token: CONNACK Not authorized; not matching the username: Bad username or password', T, async () => {
      const keyA = await keyOf('id-a');
      const keyB = await keyOf('id-b');
      // Client id and username say id-a, the token is id-b's (validly signed with id-b's key).
      assert.equal(await refusal(mqttJs(h, { deviceId: 'id-a', key: keyA, password: sasToken({ host: HOST, deviceId: 'id-b', key: keyB }) })), 5);
      // Client id id-a, username and token id-b.
      assert.equal(
        await refusal(mqttJs(h, { deviceId: 'id-b', key: keyB, clientId: 'id-a' })),
        4,
      );
      // No password at all (X.509 is not supported here).
      assert.equal(await refusal(mqttJs(h, { deviceId: 'id-a', key: keyA, password: '' })), 4);
    });

    test("publish on another device's topic closes the connection", T, async () => {
      await h.device('victim');
      const client = await connect('intruder');
      const closed = closedByServer(client);
      client.publish('devices/victim/messages/events/', 'forged', { qos: 1 }, () => {});
      await closed;
      assert.equal((await h.hub.readTelemetry({ deviceId: 'victim' })).length, 0);
      assert.equal((await h.hub.readTelemetry({ deviceId: 'intruder' })).length, 0);
    });

    test("subscribe to another device's topic closes the connection", T, async () => {
      const client = await connect('snoop');
      const closed = closedByServer(client);
      client.subscribe('devices/bystander/messages/devicebound/#', { qos: 1 }, () => {});
      await closed;
      const wide = await connect('snoop');
      const closedToo = closedByServer(wide);
      wide.subscribe('devices/+/messages/devicebound/#', { qos: 1 }, () => {});
      await closedToo;
    });

    test('a QoS 2 publish closes the connection', T, async () => {
      const client = await connect('qos2');
      const closed = closedByServer(client);
      client.publish('devices/qos2/messages/events/', 'exactly once?', { qos: 2 }, () => {});
      await closed;
      assert.equal((await h.hub.readTelemetry({ deviceId: 'qos2' })).length, 0);
    });

    test('a message over 256 KB closes the connection; one at the limit goes through', T, async () => {
      const client = await connect('big');
      await client.publishAsync('devices/big/messages/events/', Buffer.alloc(256 * 1024 - 200, 1), { qos: 1 });
      const closed = closedByServer(client);
      client.publish('devices/big/messages/events/', Buffer.alloc(300 * 1024, 1), { qos: 1 }, () => {});
      await closed;
      assert.equal((await h.hub.readTelemetry({ deviceId: 'big' })).length, 1);
      // Far over the limit: cut off from the packet header, before the body is buffered.
      const huge = await connect('big');
      const closedToo = closedByServer(huge);
      huge.publish('devices/big/messages/events/', Buffer.alloc(8 * 1024 * 1024, 1), { qos: 1 }, () => {});
      await closedToo;
      assert.equal((await h.hub.readTelemetry({ deviceId: 'big' })).length, 1);
    });

    test('malformed packets close the connection', T, async () => {
      for (const bytes of [
        Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'),
        Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f]), // Remaining Length over four bytes
        Buffer.from([0x10, 0x04, 0x00, 0x04, 0x4d, 0x51]), // CONNECT cut short of its protocol name
        Buffer.from([0x30, 0x02, 0x00, 0x00]), // PUBLISH before CONNECT
      ]) {
        const socket = await rawTls(h.port, h.ca);
        const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
        socket.on('error', () => {});
        socket.write(bytes);
        await ended;
      }
      await until(() => h.gateway.connectionCount === clients.filter((c) => c.connected).length, 5000, 'raw connections gone');
    });

    test('a packet announcing more than the limit is cut off from its header, before its body arrives', T, async () => {
      const socket = await rawTls(h.port, h.ca);
      socket.on('error', () => {});
      const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      // PUBLISH with a Remaining Length of 128 MiB, then only a few bytes of it.
      socket.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x40, 0x00, 0x01, 0x61]));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('still open')), 3000)));
      try {
        await Promise.race([ended, timeout]);
      } finally {
        clearTimeout(timer);
        socket.destroy();
      }
    });

    test('a sixth subscription closes the connection', T, async () => {
      const client = await connect('subs');
      const granted = await client.subscribeAsync([
        'devices/subs/messages/devicebound/#',
        '$iothub/methods/POST/#',
        '$iothub/twin/res/#',
        '$iothub/twin/PATCH/properties/desired/#',
        '$iothub/methods/POST/reboot/#',
      ], { qos: 0 });
      assert.equal(granted.length, 5);
      assert.ok(granted.every((g) => g.qos === 0));
      // Subscribing again to a filter it holds is not a new subscription.
      await client.subscribeAsync('$iothub/twin/res/#', { qos: 0 });
      const closed = closedByServer(client);
      client.subscribe('$iothub/methods/POST/other/#', { qos: 0 }, () => {});
      await closed;
    });

    test('a 51st queued cloud-to-device message is refused (queue depth)', T, async () => {
      await h.device('offline');
      for (let i = 0; i < 50; i++) await h.hub.sendC2d('offline', { body: Buffer.from(String(i)), properties: {} });
      await assert.rejects(
        h.hub.sendC2d('offline', { body: Buffer.from('one too many'), properties: {} }),
        (e: Error & { code?: string }) => e.code === 'DeviceMaximumQueueDepthExceeded',
      );
      // Connected, the device drains the queue in order, and there is room again.
      const client = await connect('offline');
      const got: string[] = [];
      client.on('message', (_t, p) => got.push(p.toString()));
      await client.subscribeAsync('devices/offline/messages/devicebound/#', { qos: 1 });
      await until(() => got.length === 50, 10_000, 'all 50 messages');
      assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => String(i)));
      await until(async () => (await h.hub.registry.get('offline'))?.cloudToDeviceMessageCount === 0, 5000, 'queue drained');
      await h.hub.sendC2d('offline', { body: Buffer.from('room again'), properties: {} });
    });
  });
}
