import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { createMemoryBus } from '../../src/bus/index.js';
import { createHub, ensureTlsMaterial, type HubRuntime } from '../../src/hub/index.js';
import { registerHubRoutes } from '../../src/hub/http/index.js';
import { createStore, PostgresStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { engines } from '../helpers/engines.js';

/**
 * IoT Hub's HTTPS device API (telemetry, C2D receive / complete / reject / abandon) over real TLS sockets, signed
 * with hand-built SAS tokens (azure-iot-device-http is not installed): what a device without MQTT speaks.
 */

const HOST = 'localhost';

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** A device SAS token built as iot-hub-dev-guide-sas says, independently of the hub's own signer. */
function deviceToken(deviceId: string, key: string, expiry = Math.floor(Date.now() / 1000) + 3600): string {
  const sr = encodeURIComponent(`${HOST}/devices/${deviceId}`);
  const sig = createHmac('sha256', Buffer.from(key, 'base64')).update(`${sr}\n${expiry}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${expiry}`;
}

function policyToken(keyName: string, key: string, resource = HOST): string {
  const expiry = Math.floor(Date.now() / 1000) + 3600;
  const sr = encodeURIComponent(resource);
  const sig = createHmac('sha256', Buffer.from(key, 'base64')).update(`${sr}\n${expiry}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${expiry}&skn=${keyName}`;
}

/** Answers of IoT Hub's error shape: `{"Message":"ErrorCode:<code>;…"}` and the `iothub-errorcode` header. */
function assertIotHubError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, r.body.toString());
  assert.equal(r.headers['iothub-errorcode'], code);
  const body = JSON.parse(r.body.toString()) as { Message: string; ExceptionMessage: string };
  assert.match(body.Message, new RegExp(`^ErrorCode:${code};.+`));
  assert.equal(typeof body.ExceptionMessage, 'string');
}

for (const engine of engines()) {
  describe(`hub HTTPS device surface (${engine.name})`, () => {
    let store: Store;
    let hub: HubRuntime;
    let app: FastifyInstance;
    let port: number;
    let ca: string;
    const errors: unknown[] = [];

    function call(method: string, path: string, opts: { headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<Reply> {
      return new Promise((resolve, reject) => {
        const req = request({ host: HOST, port, method, path, headers: opts.headers ?? {}, ca }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(opts.body);
      });
    }

    async function device(deviceId: string): Promise<string> {
      return (await hub.registry.create({ deviceId })).primaryKey;
    }

    before(async () => {
      const tls = ensureTlsMaterial({ dataDir: mkdtempSync(join(tmpdir(), 'ccs-hub-http-')), hostNames: [HOST] });
      ca = tls.ca!;
      store = createStore(engine.url());
      // A long group-commit linger: a 204 sent before the write committed would show as a missing record.
      hub = await createHub({ store, bus: createMemoryBus(), hostName: HOST, flushIntervalMs: 20, telemetryLingerMs: 100 });
      app = Fastify({ https: { cert: tls.cert, key: tls.key }, logger: false });
      // The host as the Web API builds it: every body as a string, its own routes under /api/data/.
      app.removeAllContentTypeParsers();
      app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
      app.post('/api/data/*', async (req) => ({ echoed: req.body }));
      registerHubRoutes(app, { hub, log: { error: (obj) => errors.push(obj) } });
      await app.listen({ port: 0, host: '127.0.0.1' });
      port = (app.server.address() as AddressInfo).port;
    });

    after(async () => {
      await app.close();
      await hub.close();
      if (store instanceof PostgresStore) await store.dropSchema();
      await store.close();
      assert.deepEqual(errors, [], 'no request was answered with an unexpected error');
    });

    test('telemetry: 204 once durable, with application and system properties from the headers', async () => {
      const key = await device('h-telemetry');
      const body = JSON.stringify({ temperature: 21.5 });
      const r = await call('POST', '/devices/h-telemetry/messages/events?api-version=2021-04-12', {
        headers: {
          authorization: deviceToken('h-telemetry', key),
          'content-type': 'application/json',
          'content-encoding': 'utf-8',
          'iothub-messageid': 'm-1',
          'iothub-correlationid': 'c-1',
          'iothub-app-Alert': 'hot',
          'iothub-app-unit': 'C',
        },
        body,
      });
      assert.equal(r.status, 204);
      assert.equal(r.body.length, 0);
      // Read straight after the 204: no waiting, it must already be in the telemetry log.
      const [record, extra] = await hub.readTelemetry({ deviceId: 'h-telemetry' });
      assert.ok(record);
      assert.equal(extra, undefined);
      assert.equal(record.transport, 'https');
      assert.equal(Buffer.from(record.message.body).toString(), body);
      assert.deepEqual(record.message.properties, { Alert: 'hot', unit: 'C' });
      assert.equal(record.message.messageId, 'm-1');
      assert.equal(record.message.correlationId, 'c-1');
      assert.equal(record.message.contentType, 'application/json');
      assert.equal(record.message.contentEncoding, 'utf-8');
    });

    test('telemetry: a binary body without content type arrives byte for byte; a batch arrives as its messages', async () => {
      const key = await device('h-binary');
      const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x80]);
      assert.equal((await call('POST', '/devices/h-binary/messages/events', { headers: { authorization: deviceToken('h-binary', key) }, body: bytes })).status, 204);
      const batch = [
        { body: Buffer.from('one').toString('base64'), base64Encoded: true, properties: { 'iothub-app-n': '1', 'iothub-messageid': 'b-1' } },
        { body: Buffer.from('two').toString('base64'), properties: { 'iothub-app-n': '2' } },
      ];
      const r = await call('POST', '/devices/h-binary/messages/events', {
        headers: { authorization: deviceToken('h-binary', key), 'content-type': 'application/vnd.microsoft.iothub.json' },
        body: JSON.stringify(batch),
      });
      assert.equal(r.status, 204);
      const records = await hub.readTelemetry({ deviceId: 'h-binary' });
      assert.deepEqual(Buffer.from(records[0]!.message.body), bytes);
      assert.equal(records[0]!.message.contentType, undefined);
      assert.deepEqual(records.slice(1).map((x) => [Buffer.from(x.message.body).toString(), x.message.properties, x.message.messageId]), [
        ['one', { n: '1' }, 'b-1'],
        ['two', { n: '2' }, undefined],
      ]);
    });

    test('telemetry over 256 KB is refused with 413 MessageTooLarge and not stored', async () => {
      const key = await device('h-large');
      const headers = { authorization: deviceToken('h-large', key), 'content-type': 'application/octet-stream' };
      assertIotHubError(await call('POST', '/devices/h-large/messages/events', { headers, body: Buffer.alloc(257 * 1024, 1) }), 413, 'MessageTooLarge');
      // Far beyond the limit: the server stops reading and answers the same way.
      assertIotHubError(await call('POST', '/devices/h-large/messages/events', { headers, body: Buffer.alloc(2 * 1024 * 1024, 1) }), 413, 'MessageTooLarge');
      // A batch whose messages add up to more than 256 KB is refused whole.
      const half = Buffer.alloc(130 * 1024, 2).toString('base64');
      const r = await call('POST', '/devices/h-large/messages/events', {
        headers: { ...headers, 'content-type': 'application/vnd.microsoft.iothub.json' },
        body: JSON.stringify([{ body: half }, { body: half }]),
      });
      assertIotHubError(r, 413, 'MessageTooLarge');
      // Exactly at the limit is fine.
      assert.equal((await call('POST', '/devices/h-large/messages/events', { headers: { authorization: headers.authorization }, body: Buffer.alloc(256 * 1024, 3) })).status, 204);
      const stored = await hub.readTelemetry({ deviceId: 'h-large' });
      assert.deepEqual(stored.map((x) => x.message.body.length), [256 * 1024]);
    });

    test('authentication: refused tokens get 401 IotHubUnauthorizedAccess and store nothing', async () => {
      const key = await device('h-auth');
      const otherKey = await device('h-auth-other');
      const path = '/devices/h-auth/messages/events';
      const post = (authorization?: string) => call('POST', path, { headers: authorization ? { authorization } : {}, body: 'x' });
      assertIotHubError(await post(), 401, 'IotHubUnauthorizedAccess');
      assertIotHubError(await post('Bearer abc'), 401, 'IotHubUnauthorizedAccess');
      // Signed with a key that is not the device's.
      assertIotHubError(await post(deviceToken('h-auth', otherKey)), 401, 'IotHubUnauthorizedAccess');
      // Expired.
      assertIotHubError(await post(deviceToken('h-auth', key, Math.floor(Date.now() / 1000) - 10)), 401, 'IotHubUnauthorizedAccess');
      // Another device's valid token on this device's path.
      assertIotHubError(await post(deviceToken('h-auth-other', otherKey)), 401, 'IotHubUnauthorizedAccess');
      // A service policy without DeviceConnect.
      const service = (await hub.registry.policy('service'))!;
      assertIotHubError(await post(policyToken('service', service.primaryKey)), 401, 'IotHubUnauthorizedAccess');
      assert.deepEqual(await hub.readTelemetry({ deviceId: 'h-auth' }), []);

      // The `device` policy (DeviceConnect) may act for any device; the device's own token works too.
      const devicePolicy = (await hub.registry.policy('device'))!;
      assert.equal((await post(policyToken('device', devicePolicy.primaryKey))).status, 204);
      assert.equal((await post(deviceToken('h-auth', key))).status, 204);
      assert.equal((await hub.readTelemetry({ deviceId: 'h-auth' })).length, 2);

      // A disabled device is refused, even with its own key.
      const d = (await hub.registry.get('h-auth'))!;
      await hub.registry.update({ deviceId: 'h-auth', status: 'disabled', primaryKey: d.primaryKey, secondaryKey: d.secondaryKey });
      assertIotHubError(await post(deviceToken('h-auth', key)), 401, 'IotHubUnauthorizedAccess');
      assertIotHubError(await call('GET', '/devices/h-auth/messages/deviceBound', { headers: { authorization: deviceToken('h-auth', key) } }), 401, 'IotHubUnauthorizedAccess');
    });

    test('C2D: receive with its properties as headers, complete; then nothing is pending', async () => {
      const key = await device('h-c2d');
      const auth = { authorization: deviceToken('h-c2d', key) };
      assert.equal((await call('GET', '/devices/h-c2d/messages/deviceBound?api-version=2021-04-12', { headers: auth })).status, 204);
      const completed = new Promise<string>((resolve) => {
        const off = hub.on('c2d', (deviceId, messageId, outcome) => {
          if (deviceId === 'h-c2d' && outcome === 'completed') {
            off();
            resolve(messageId);
          }
        });
      });
      await hub.sendC2d('h-c2d', { body: Buffer.from('reboot'), properties: { command: 'Reset' }, messageId: 'c2d-1', correlationId: 'corr-1', contentType: 'text/plain' });

      const r = await call('GET', '/devices/h-c2d/messages/deviceBound', { headers: auth });
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'reboot');
      assert.equal(r.headers['iothub-messageid'], 'c2d-1');
      assert.equal(r.headers['iothub-correlationid'], 'corr-1');
      assert.equal(r.headers['iothub-app-command'], 'Reset');
      assert.equal(r.headers['iothub-deliverycount'], '1');
      assert.equal(r.headers['content-type'], 'text/plain');
      assert.ok(!Number.isNaN(Date.parse(String(r.headers['iothub-enqueuedtime']))));
      const etag = String(r.headers['etag']);
      assert.match(etag, /^".+"$/);
      // The Node and C SDKs spell the path `devicebound` and send the lock token without its quotes.
      const done = await call('DELETE', `/devices/h-c2d/messages/devicebound/${encodeURIComponent(etag.slice(1, -1))}?api-version=2021-04-12`, { headers: { ...auth, 'if-match': etag } });
      assert.equal(done.status, 204);
      assert.equal(await completed, 'c2d-1');
      assert.equal((await call('GET', '/devices/h-c2d/messages/devicebound', { headers: auth })).status, 204);
      // Completing it again: the lock is gone.
      assertIotHubError(await call('DELETE', `/devices/h-c2d/messages/deviceBound/${encodeURIComponent(etag.slice(1, -1))}`, { headers: auth }), 412, 'DeviceMessageLockLost');
    });

    test('C2D: reject removes the message; abandon puts it back for another delivery', async () => {
      const key = await device('h-settle');
      const auth = { authorization: deviceToken('h-settle', key) };
      const outcomes: string[] = [];
      const off = hub.on('c2d', (deviceId, messageId, outcome) => {
        if (deviceId === 'h-settle') outcomes.push(`${messageId}:${outcome}`);
      });
      try {
        await hub.sendC2d('h-settle', { body: Buffer.from('a'), properties: {}, messageId: 'to-reject' });
        const first = await call('GET', '/devices/h-settle/messages/deviceBound', { headers: auth });
        assert.equal(first.headers['iothub-messageid'], 'to-reject');
        const lock = String(first.headers['etag']).slice(1, -1);
        assert.equal((await call('DELETE', `/devices/h-settle/messages/deviceBound/${encodeURIComponent(lock)}?reject`, { headers: auth })).status, 204);
        assert.deepEqual(outcomes, ['to-reject:rejected']);
        assert.equal((await call('GET', '/devices/h-settle/messages/deviceBound', { headers: auth })).status, 204);

        await hub.sendC2d('h-settle', { body: Buffer.from('b'), properties: {}, messageId: 'to-abandon' });
        const taken = await call('GET', '/devices/h-settle/messages/deviceBound', { headers: auth });
        const lock2 = String(taken.headers['etag']).slice(1, -1);
        // While locked, another receive does not see it.
        assert.equal((await call('GET', '/devices/h-settle/messages/deviceBound', { headers: auth })).status, 204);
        assert.equal((await call('POST', `/devices/h-settle/messages/deviceBound/${encodeURIComponent(lock2)}/abandon`, { headers: auth })).status, 204);
        const again = await call('GET', '/devices/h-settle/messages/deviceBound', { headers: auth });
        assert.equal(again.status, 200);
        assert.equal(again.headers['iothub-messageid'], 'to-abandon');
        assert.equal(again.headers['iothub-deliverycount'], '2');
        assert.notEqual(again.headers['etag'], taken.headers['etag']);
        assert.deepEqual(outcomes, ['to-reject:rejected']);
      } finally {
        off();
      }
    });

    test('C2D: a device cannot read or settle another device\'s queue', async () => {
      await device('h-victim');
      const thiefKey = await device('h-thief');
      await hub.sendC2d('h-victim', { body: Buffer.from('secret'), properties: {}, messageId: 'v-1' });
      const thief = { authorization: deviceToken('h-thief', thiefKey) };
      assertIotHubError(await call('GET', '/devices/h-victim/messages/deviceBound', { headers: thief }), 401, 'IotHubUnauthorizedAccess');
      assertIotHubError(await call('DELETE', '/devices/h-victim/messages/deviceBound/anything', { headers: thief }), 401, 'IotHubUnauthorizedAccess');
      assertIotHubError(await call('POST', '/devices/h-victim/messages/deviceBound/anything/abandon', { headers: thief }), 401, 'IotHubUnauthorizedAccess');
      assert.equal((await hub.registry.get('h-victim'))!.cloudToDeviceMessageCount, 1);
    });

    test('the host app keeps its own routes and string bodies', async () => {
      const r = await call('POST', '/api/data/v9.2/things', { headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body.toString()), { echoed: '{"a":1}' });
    });
  });
}
