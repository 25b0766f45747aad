import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import common from 'azure-iot-common';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { engines } from '../helpers/engines.js';
import { dropStore, sharedBuses, sharedTls, startNode, until, type SharedBus, type SharedTls, type TestNode } from './nodes.js';

/**
 * Two nodes of one installation in this process, sharing one store and one bus, each with its own device listeners:
 * a device connected to node A is reached through node B's IoT Hub service REST (direct method, desired properties,
 * cloud-to-device message); connecting to B takes the device over from A; and once A is gone from the bus, B answers
 * "device not online" at once instead of waiting on A.
 *
 * Node A runs only the `hub` role; B runs all three. The device is the unmodified Azure IoT device SDK over MQTT/TLS.
 */

type SdkClient = InstanceType<typeof device.Client>;
type SdkMessage = InstanceType<typeof device.Message>;
const TIMEOUT = { timeout: 120_000 };

interface DeviceHandle {
  readonly client: SdkClient;
  readonly name: string;
  readonly messages: string[];
  readonly desired: unknown[];
  disconnected: boolean;
}

/** Opens the SDK on a node, answering `whoami` with its name; it does not retry, so a takeover is final. */
async function openDevice(node: TestNode, deviceId: string, key: string, tls: SharedTls, name: string): Promise<DeviceHandle> {
  const client = device.Client.fromConnectionString(node.connectionString(deviceId, key), deviceMqtt.Mqtt);
  client.setRetryPolicy(new common.NoRetry());
  await client.setOptions({ ca: tls.ca });
  const handle: DeviceHandle = { client, name, messages: [], desired: [], disconnected: false };
  client.on('disconnect', () => (handle.disconnected = true));
  client.on('error', () => undefined);
  client.on('message', (m: SdkMessage) => {
    handle.messages.push(m.getData().toString());
    void client.complete(m);
  });
  await client.open();
  client.onDeviceMethod('whoami', (request, response) => {
    void response.send(200, { name, asked: request.payload as unknown });
  });
  return handle;
}

async function closeDevice(h: DeviceHandle | undefined): Promise<void> {
  if (!h) return;
  await h.client.close().catch(() => undefined);
}

for (const engine of engines()) {
  for (const makeBus of sharedBuses()) {
    const busName = makeBus().name;
    describe(`scale-out routing (${engine.name}, ${busName} bus)`, () => {
      let bus: SharedBus;
      let tls: SharedTls;
      let a: TestNode;
      let b: TestNode;
      let key: string;
      const deviceId = 'pump-7';
      const handles: DeviceHandle[] = [];

      async function invokeThrough(node: TestNode, body: Record<string, unknown>) {
        return node.service('POST', `/twins/${deviceId}/methods?api-version=2021-04-12`, { body: JSON.stringify(body) });
      }

      before(async () => {
        bus = makeBus();
        tls = sharedTls();
        const storeUrl = engine.url();
        a = await startNode({ storeUrl, bus: await bus.connect(), tls, roles: 'hub' });
        b = await startNode({ storeUrl, bus: await bus.connect(), tls });
        // Registered through B's service REST, used on A: the registry is the shared store.
        const created = await b.service('PUT', `/devices/${deviceId}?api-version=2021-04-12`, { body: JSON.stringify({ deviceId }) });
        assert.equal(created.status, 200, created.text);
        key = created.json<{ authentication: { symmetricKey: { primaryKey: string } } }>().authentication.symmetricKey.primaryKey;
      });

      after(async () => {
        for (const h of handles) await closeDevice(h);
        await a?.stop().catch(() => undefined);
        if (b) {
          await dropStore(b.app);
          await b.stop();
        }
        await bus?.cleanup();
      });

      test('the nodes report their roles and ids', () => {
        assert.deepEqual(a.info.roles, ['hub']);
        assert.deepEqual(b.info.roles, ['api', 'hub', 'worker']);
        assert.equal(a.info.url, '', 'a hub-only node has no Web API listener');
        assert.ok(a.info.mqttsPort > 0 && b.info.mqttsPort > 0);
        assert.ok(a.info.nodeId && b.info.nodeId && a.info.nodeId !== b.info.nodeId);
      });

      test('a device on A, reached through B: direct method, desired properties, cloud-to-device message', TIMEOUT, async () => {
        const onA = await openDevice(a, deviceId, key, tls, 'on-A');
        handles.push(onA);

        // connectTimeoutInSeconds: the SDK subscribes to methods a moment after it connects.
        const invoked = await invokeThrough(b, { methodName: 'whoami', payload: { n: 1 }, responseTimeoutInSeconds: 20, connectTimeoutInSeconds: 20 });
        assert.equal(invoked.status, 200, invoked.text);
        assert.deepEqual(invoked.json(), { status: 200, payload: { name: 'on-A', asked: { n: 1 } } });

        const twin = await onA.client.getTwin();
        twin.on('properties.desired', (d: Record<string, unknown>) => onA.desired.push(d['mode']));
        // The SDK subscribes to desired patches after getTwin() resolves: patch until one arrives.
        for (let i = 0; !onA.desired.some((d) => typeof d === 'string' && d.startsWith('through-b')); i++) {
          assert.ok(i < 100, 'no desired patch sent through B reached the device on A');
          const patched = await b.service('PATCH', `/twins/${deviceId}?api-version=2021-04-12`, { body: JSON.stringify({ properties: { desired: { mode: `through-b-${i}` } } }) });
          assert.equal(patched.status, 200, patched.text);
          await new Promise((r) => setTimeout(r, 100));
        }

        // The C2D outcome is an event of node A's hub; B (the worker) hears it.
        const completed: string[] = [];
        const off = b.app.hub.on('c2d', (id, messageId, outcome) => {
          if (id === deviceId && outcome === 'completed') completed.push(messageId);
        });
        try {
          const sent = await b.service('POST', `/devices/${deviceId}/messages/deviceBound?api-version=2021-04-12`, {
            body: 'hello from B',
            headers: { 'content-type': 'text/plain', 'iothub-messageid': 'via-b-1' },
          });
          assert.equal(sent.status, 200, sent.text);
          await until(() => (onA.messages.includes('hello from B') ? true : undefined), 'the C2D message on the device');
          await until(() => (completed.includes('via-b-1') ? true : undefined), 'the completed feedback on B');
        } finally {
          off();
        }
      });

      test('a second connection on B takes the device over; A drops its connection; calls through A now reach B', TIMEOUT, async () => {
        const onA = handles.find((h) => h.name === 'on-A' && !h.disconnected) ?? (await openDevice(a, deviceId, key, tls, 'on-A'));
        if (!handles.includes(onA)) handles.push(onA);
        const onB = await openDevice(b, deviceId, key, tls, 'on-B');
        handles.push(onB);
        await until(() => (onA.disconnected ? true : undefined), 'node A dropping the older connection');
        // Through A's service REST (A is a hub node): routed to B, where the device now is.
        const viaA = await invokeThrough(a, { methodName: 'whoami', payload: null, responseTimeoutInSeconds: 20, connectTimeoutInSeconds: 20 });
        assert.equal(viaA.status, 200, viaA.text);
        assert.deepEqual(viaA.json<{ payload: unknown }>().payload, { name: 'on-B', asked: null });
        const viaB = await invokeThrough(b, { methodName: 'whoami', payload: 2, responseTimeoutInSeconds: 20 });
        assert.deepEqual(viaB.json<{ payload: unknown }>().payload, { name: 'on-B', asked: 2 });
        // A's late "Disconnected" never overwrites B's "Connected".
        const state = async () => (await b.service('GET', `/devices/${deviceId}?api-version=2021-04-12`)).json<{ connectionState: string }>().connectionState;
        await until(async () => ((await state()) === 'Connected' ? true : undefined), 'the identity showing Connected');
        for (let i = 0; i < 10; i++) {
          assert.equal(await state(), 'Connected');
          await new Promise((r) => setTimeout(r, 250));
        }
        await closeDevice(onB);
        await until(async () => ((await state()) === 'Disconnected' ? true : undefined), 'the identity showing Disconnected');
      });

      test('node A gone from the bus: B answers "device not online" at once, and the device is shown disconnected', TIMEOUT, async () => {
        const onA = await openDevice(a, deviceId, key, tls, 'on-A-again');
        handles.push(onA);
        const ok = await invokeThrough(b, { methodName: 'whoami', payload: 3, responseTimeoutInSeconds: 20, connectTimeoutInSeconds: 20 });
        assert.deepEqual(ok.json<{ payload: unknown }>().payload, { name: 'on-A-again', asked: 3 });

        // What other nodes see of a node that crashed: its bus connection is gone (no responder any more).
        await a.bus.close();
        // A 300-second response timeout: an answer here must not come from waiting on A.
        const offline = await invokeThrough(b, { methodName: 'whoami', payload: 4, responseTimeoutInSeconds: 300 });
        assert.equal(offline.status, 404, offline.text);
        assert.equal(offline.headers['iothub-errorcode'], 'DeviceNotOnline');
        assert.match(offline.json<{ Message: string }>().Message, /^ErrorCode:DeviceNotOnline;/);
        // The stale presence went with that answer: the next call does not even try A.
        const again = await invokeThrough(b, { methodName: 'whoami', payload: 5, responseTimeoutInSeconds: 300 });
        assert.equal(again.status, 404);
        const identity = async () => (await b.service('GET', `/devices/${deviceId}?api-version=2021-04-12`)).json<{ connectionState: string }>();
        await until(async () => ((await identity()).connectionState === 'Disconnected' ? true : undefined), 'the identity showing Disconnected');
        // Queuing a message and patching the twin still work: they are durable, delivered when the device is back.
        const queued = await b.service('POST', `/devices/${deviceId}/messages/deviceBound`, { body: 'later', headers: { 'content-type': 'text/plain' } });
        assert.equal(queued.status, 200, queued.text);
        const patched = await b.service('PATCH', `/twins/${deviceId}`, { body: JSON.stringify({ properties: { desired: { mode: 'while-away' } } }) });
        assert.equal(patched.status, 200, patched.text);
        // The device comes back on B: the message queued meanwhile reaches it.
        await closeDevice(onA);
        await a.stop();
        const back = await openDevice(b, deviceId, key, tls, 'back-on-B');
        handles.push(back);
        await until(() => (back.messages.includes('later') ? true : undefined), 'the message queued while the device was away');
      });
    });
  }
}
