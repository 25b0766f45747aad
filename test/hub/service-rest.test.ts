import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import Fastify, { type FastifyInstance } from 'fastify';
import { createMemoryBus } from '../../src/bus/index.js';
import { registerHubRoutes } from '../../src/hub/http/index.js';
import { createHub, ensureTlsMaterial, type C2dMessage, type DeviceChannel, type HubRuntime } from '../../src/hub/index.js';
import { createMqttGateway, type MqttGateway } from '../../src/hub/mqtt/index.js';
import { createStore, PostgresStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { engines } from '../helpers/engines.js';

/**
 * IoT Hub's service REST against the unmodified `azure-iothub` SDK (Registry, twins, Client.invokeDeviceMethod).
 * The SDK dials port 443 only and trusts a private CA only through NODE_EXTRA_CA_CERTS, which Node reads at start
 * (reference/iot-hub.md §4): so the SDK runs in a child process (this same file, in "SDK mode") against the server
 * this test serves on 127.0.0.1:443, while the store, the hub and the assertions stay here.
 */

const HOST = 'localhost';
const SCENARIO_ENV = 'CCS_TEST_IOTHUB_SDK_SCENARIO';

// ---- SDK mode: what the child process runs ----------------------------------------------------------------------

type ScenarioInput =
  | { readonly kind: 'registry'; readonly owner: string; readonly registryRead: string; readonly service: string }
  | { readonly kind: 'invoke'; readonly service: string; readonly deviceId: string; readonly methodName: string; readonly payload: unknown };

interface Outcome {
  readonly ok: boolean;
  readonly value?: unknown;
  readonly error?: { name: string; message: string; status?: number; body?: string };
}

function describeError(e: unknown): NonNullable<Outcome['error']> {
  const err = e as Error & { response?: { statusCode?: number }; responseBody?: unknown };
  return {
    name: err.constructor?.name ?? 'Error',
    message: String(err.message),
    ...(err.response?.statusCode !== undefined ? { status: err.response.statusCode } : {}),
    ...(typeof err.responseBody === 'string' ? { body: err.responseBody } : {}),
  };
}

async function runScenario(input: ScenarioInput): Promise<Record<string, Outcome>> {
  const out: Record<string, Outcome> = {};
  async function step(name: string, fn: () => Promise<unknown>): Promise<unknown> {
    try {
      const value = await fn();
      out[name] = { ok: true, value: JSON.parse(JSON.stringify(value ?? null)) as unknown };
      return value;
    } catch (e) {
      out[name] = { ok: false, error: describeError(e) };
      return undefined;
    }
  }
  if (input.kind === 'invoke') {
    const client = iothub.Client.fromConnectionString(input.service);
    // connectTimeoutInSeconds: the device subscribes to methods a moment after it connects.
    const params = { methodName: input.methodName, payload: input.payload, responseTimeoutInSeconds: 10, connectTimeoutInSeconds: 10 };
    await step('invoke', async () => (await client.invokeDeviceMethod(input.deviceId, params)).result);
    return out;
  }
  const registry = iothub.Registry.fromConnectionString(input.owner);
  const created = (await step('create', async () => (await registry.create({ deviceId: 'sdk-dev' })).responseBody)) as
    | { authentication: { symmetricKey: { primaryKey: string; secondaryKey: string } } }
    | undefined;
  await step('createAgain', async () => (await registry.create({ deviceId: 'sdk-dev' })).responseBody);
  await step('get', async () => (await registry.get('sdk-dev')).responseBody);
  await step('update', async () => {
    const keys = created!.authentication.symmetricKey;
    return (await registry.update({ deviceId: 'sdk-dev', status: 'disabled', authentication: { symmetricKey: keys } })).responseBody;
  });
  await step('list', async () => (await registry.list()).responseBody.map((d) => d.deviceId));
  const twin = (await step('getTwin', async () => (await registry.getTwin('sdk-dev')).responseBody)) as InstanceType<typeof iothub.Twin> | undefined;
  const staleEtag = twin?.etag ?? '';
  await step('twinUpdate', async () => {
    const updated = (await twin!.update({ tags: { site: 'Lyon' }, properties: { desired: { interval: 5 } } })).result;
    return { etag: updated.etag, tags: updated.tags, desired: updated.properties.desired };
  });
  await step('updateTwinStale', async () => (await registry.updateTwin('sdk-dev', { tags: { site: 'Paris' } }, staleEtag)).responseBody);
  await step('getMissing', async () => (await registry.get('sdk-missing')).responseBody);

  const readOnly = iothub.Registry.fromConnectionString(input.registryRead);
  await step('readOnlyGet', async () => (await readOnly.get('sdk-dev')).responseBody.deviceId);
  await step('readOnlyCreate', async () => (await readOnly.create({ deviceId: 'sdk-not-allowed' })).responseBody);

  const client = iothub.Client.fromConnectionString(input.service);
  await step('invoke', async () => (await client.invokeDeviceMethod('sdk-method', { methodName: 'reboot', payload: { delay: 2 }, responseTimeoutInSeconds: 5 })).result);
  await step('invokeOffline', async () => (await client.invokeDeviceMethod('sdk-offline', { methodName: 'reboot', payload: null })).result);

  await step('delete', async () => (await registry.delete('sdk-dev')).responseBody);
  await step('getDeleted', async () => (await registry.get('sdk-dev')).responseBody);
  return out;
}

const scenario = process.env[SCENARIO_ENV];
if (scenario !== undefined) {
  const result = await runScenario(JSON.parse(scenario) as ScenarioInput);
  // The SDK keeps a keep-alive agent open; leave as soon as the report is out.
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
} else {
  defineTests();
}

// ---- the tests ---------------------------------------------------------------------------------------------------

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  json<T = unknown>(): T;
}

function sign(resource: string, key: string, keyName?: string, expiry = Math.floor(Date.now() / 1000) + 3600): string {
  const sr = encodeURIComponent(resource);
  const sig = createHmac('sha256', Buffer.from(key, 'base64')).update(`${sr}\n${expiry}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${expiry}${keyName ? `&skn=${keyName}` : ''}`;
}

function assertIotHubError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, r.body.toString());
  assert.equal(r.headers['iothub-errorcode'], code);
  const body = r.json<{ Message: string; ExceptionMessage: string }>();
  assert.match(body.Message, new RegExp(`^ErrorCode:${code};[^;]+$`));
  assert.equal(typeof body.ExceptionMessage, 'string');
}

/** A device connection as the hub sees it (the DeviceChannel port), answering methods as a scripted device would. */
class ScriptedDevice implements DeviceChannel {
  readonly transport = 'test';
  readonly acceptsMethods = true;
  readonly requests: { methodName: string; payload: unknown }[] = [];
  constructor(
    readonly deviceId: string,
    private readonly answer: (rid: string, methodName: string, payload: unknown) => void,
  ) {}
  async deliverC2d(_message: C2dMessage): Promise<void> {
    throw new Error('this device takes no C2D over its connection');
  }
  sendMethodRequest(rid: string, methodName: string, payload: Buffer): void {
    const parsed = JSON.parse(payload.toString()) as unknown;
    this.requests.push({ methodName, payload: parsed });
    this.answer(rid, methodName, parsed);
  }
  sendDesiredPatch(): void {}
  close(): void {}
}

/** Port 443 is shared with other suites (MQTT over WebSocket); wait for it rather than fail when run side by side. */
async function listen443(app: FastifyInstance): Promise<void> {
  const end = Date.now() + 60_000;
  for (;;) {
    try {
      await app.listen({ port: 443, host: '127.0.0.1' });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

function defineTests(): void {
  for (const engine of engines()) {
    describe(`IoT Hub service REST (${engine.name})`, () => {
      let store: Store;
      let hub: HubRuntime;
      let app: FastifyInstance;
      let gateway: MqttGateway;
      let mqttPort: number;
      let ca: string;
      let caFile: string;
      let policies: Record<string, string>;
      const errors: unknown[] = [];
      const detach: (() => void)[] = [];

      function call(method: string, path: string, opts: { headers?: Record<string, string>; body?: string | Buffer; token?: string | null } = {}): Promise<Reply> {
        const headers: Record<string, string> = { ...opts.headers };
        const token = opts.token === undefined ? policies['iothubowner'] : opts.token;
        if (token !== null && token !== undefined) headers['authorization'] = token;
        if (opts.body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json; charset=utf-8';
        return new Promise((resolve, reject) => {
          const req = request({ host: HOST, port: 443, method, path, headers, ca }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const body = Buffer.concat(chunks);
              resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: <T>() => JSON.parse(body.toString()) as T });
            });
            res.on('error', reject);
          });
          req.on('error', reject);
          req.end(opts.body);
        });
      }

      /** Runs the SDK in a child process that trusts the test CA (NODE_EXTRA_CA_CERTS); returns its report. */
      async function runSdk(input: ScenarioInput): Promise<Record<string, Outcome>> {
        const env: NodeJS.ProcessEnv = { ...process.env, NODE_EXTRA_CA_CERTS: caFile, [SCENARIO_ENV]: JSON.stringify(input) };
        delete env['NODE_TEST_CONTEXT'];
        const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
        const stdout = await new Promise<string>((resolve, reject) => {
          execFile(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], { env, cwd: root, timeout: 80_000 }, (err, out, errOut) => {
            if (err) reject(new Error(`the SDK process failed: ${err.message}\n${errOut}`));
            else resolve(out);
          });
        });
        return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, Outcome>;
      }

      async function policyToken(name: string): Promise<string> {
        const p = (await hub.registry.policy(name))!;
        return sign(HOST, p.primaryKey, name);
      }

      before(async () => {
        const tls = ensureTlsMaterial({ dataDir: mkdtempSync(join(tmpdir(), 'ccs-hub-service-')), hostNames: [HOST] });
        ca = tls.ca!;
        caFile = tls.caFile!;
        store = createStore(engine.url());
        hub = await createHub({ store, bus: createMemoryBus(), hostName: HOST, flushIntervalMs: 20 });
        policies = {};
        for (const name of ['iothubowner', 'service', 'registryRead', 'registryReadWrite', 'device']) policies[name] = await policyToken(name);
        app = Fastify({ https: { cert: tls.cert, key: tls.key }, logger: false });
        // The host as the Web API builds it: every body as a string.
        app.removeAllContentTypeParsers();
        app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
        registerHubRoutes(app, { hub, log: { error: (obj) => errors.push(obj) } });
        await listen443(app);
        const quiet = () => undefined;
        gateway = await createMqttGateway({ hub, tls: { cert: tls.cert, key: tls.key }, log: { debug: quiet, info: quiet, warn: quiet, error: quiet } });
        mqttPort = await gateway.listen(0, '127.0.0.1');
      });

      after(async () => {
        for (const d of detach) d();
        await gateway.close();
        await app.close();
        await hub.close();
        if (store instanceof PostgresStore) await store.dropSchema();
        await store.close();
        assert.deepEqual(errors, [], 'no request was answered with an unexpected error');
      });

      test('azure-iothub: Registry create/get/update/list/delete, getTwin/twin.update, invokeDeviceMethod', { timeout: 90_000 }, async () => {
        await hub.registry.create({ deviceId: 'sdk-method' });
        await hub.registry.create({ deviceId: 'sdk-offline' });
        const device = new ScriptedDevice('sdk-method', (rid, _name, payload) => {
          const delay = (payload as { delay: number }).delay;
          setTimeout(() => hub.methodResponse('sdk-method', rid, 200, Buffer.from(JSON.stringify({ rebooted: true, delay }))), 20);
        });
        detach.push(hub.attach(device));

        const r = await runSdk({
          kind: 'registry',
          owner: await hub.serviceConnectionString('iothubowner'),
          registryRead: await hub.serviceConnectionString('registryRead'),
          service: await hub.serviceConnectionString('service'),
        });
        const value = <T>(name: string): T => {
          assert.ok(r[name]?.ok, `${name}: ${JSON.stringify(r[name]?.error)}`);
          return r[name]!.value as T;
        };
        const failure = (name: string) => {
          assert.equal(r[name]?.ok, false, `${name} should have failed`);
          return r[name]!.error!;
        };

        // create: empty keys in the request (the SDK's normalisation) mean the hub generates them.
        type DeviceBody = { deviceId: string; etag: string; status: string; connectionState: string; authentication: { type: string; symmetricKey: { primaryKey: string; secondaryKey: string } } };
        const created = value<DeviceBody>('create');
        assert.equal(created.deviceId, 'sdk-dev');
        assert.equal(created.status, 'enabled');
        assert.equal(created.connectionState, 'Disconnected');
        assert.equal(created.authentication.type, 'sas');
        assert.equal(Buffer.from(created.authentication.symmetricKey.primaryKey, 'base64').length, 32);
        assert.notEqual(created.authentication.symmetricKey.primaryKey, created.authentication.symmetricKey.secondaryKey);
        assert.equal(failure('createAgain').name, 'DeviceAlreadyExistsError');

        const got = value<DeviceBody>('get');
        assert.deepEqual(got.authentication.symmetricKey, created.authentication.symmetricKey);
        assert.equal(got.etag, created.etag);
        const updated = value<DeviceBody>('update');
        assert.equal(updated.status, 'disabled');
        assert.notEqual(updated.etag, created.etag);
        assert.deepEqual(updated.authentication.symmetricKey, created.authentication.symmetricKey);
        assert.deepEqual(value<string[]>('list').sort(), ['sdk-dev', 'sdk-method', 'sdk-offline']);

        const twin = value<{ deviceId: string; etag: string; tags: object; properties: { desired: { $version: number } } }>('getTwin');
        assert.equal(twin.deviceId, 'sdk-dev');
        assert.deepEqual(twin.tags, {});
        const afterUpdate = value<{ etag: string; tags: object; desired: Record<string, unknown> }>('twinUpdate');
        assert.deepEqual(afterUpdate.tags, { site: 'Lyon' });
        assert.equal(afterUpdate.desired['interval'], 5);
        assert.equal(afterUpdate.desired['$version'], twin.properties.desired.$version + 1);
        assert.notEqual(afterUpdate.etag, twin.etag);
        // The etag read before the update no longer matches.
        const stale = failure('updateTwinStale');
        assert.equal(stale.name, 'InvalidEtagError');
        assert.equal(stale.status, 412);
        assert.equal(failure('getMissing').name, 'DeviceNotFoundError');

        assert.equal(value<string>('readOnlyGet'), 'sdk-dev');
        const denied = failure('readOnlyCreate');
        assert.equal(denied.name, 'UnauthorizedError');
        assert.equal(await hub.registry.get('sdk-not-allowed'), undefined);

        assert.deepEqual(value('invoke'), { status: 200, payload: { rebooted: true, delay: 2 } });
        assert.deepEqual(device.requests, [{ methodName: 'reboot', payload: { delay: 2 } }]);
        const offline = failure('invokeOffline');
        assert.equal(offline.status, 404);
        assert.match(offline.body ?? '', /ErrorCode:DeviceNotOnline;/);

        assert.ok(r['delete']?.ok, JSON.stringify(r['delete']));
        assert.equal(failure('getDeleted').name, 'DeviceNotFoundError');
        // What the SDK did is what the hub holds.
        assert.equal(await hub.registry.get('sdk-dev'), undefined);
      });

      test('azure-iothub invokeDeviceMethod reaches an azure-iot-device client through the MQTT gateway', { timeout: 90_000 }, async () => {
        const key = (await hub.registry.create({ deviceId: 'e2e-mqtt' })).primaryKey;
        const client = device.Client.fromConnectionString(`HostName=${HOST}:${mqttPort};DeviceId=e2e-mqtt;SharedAccessKey=${key}`, deviceMqtt.Mqtt);
        try {
          await client.setOptions({ ca });
          await client.open();
          client.onDeviceMethod('blink', (request, response) => {
            const times = (request.payload as { times: number }).times;
            response.send(200, { blinked: times }, () => undefined);
          });
          const r = await runSdk({ kind: 'invoke', service: await hub.serviceConnectionString('service'), deviceId: 'e2e-mqtt', methodName: 'blink', payload: { times: 3 } });
          assert.ok(r['invoke']?.ok, JSON.stringify(r['invoke']));
          assert.deepEqual(r['invoke']!.value, { status: 200, payload: { blinked: 3 } });
        } finally {
          client.removeAllListeners();
          await client.close().catch(() => undefined);
        }
      });

      test('authentication: missing, malformed, forged or device tokens, and missing rights, are 401', async () => {
        await hub.registry.create({ deviceId: 'auth-dev' });
        assertIotHubError(await call('GET', '/devices/auth-dev?api-version=2021-04-12', { token: null }), 401, 'IotHubUnauthorizedAccess');
        assertIotHubError(await call('GET', '/devices/auth-dev', { token: 'SharedAccessSignature nonsense' }), 401, 'IotHubUnauthorizedAccess');
        const owner = (await hub.registry.policy('iothubowner'))!;
        // Signed with the secondary key of another policy, under the owner's name.
        const forged = sign(HOST, (await hub.registry.policy('service'))!.secondaryKey, 'iothubowner');
        assertIotHubError(await call('GET', '/devices/auth-dev', { token: forged }), 401, 'IotHubUnauthorizedAccess');
        const expired = sign(HOST, owner.primaryKey, 'iothubowner', Math.floor(Date.now() / 1000) - 5);
        assertIotHubError(await call('GET', '/devices/auth-dev', { token: expired }), 401, 'IotHubUnauthorizedAccess');
        // A device's own token is no service credential.
        const device = (await hub.registry.get('auth-dev'))!;
        assertIotHubError(await call('GET', '/devices/auth-dev', { token: sign(`${HOST}/devices/auth-dev`, device.primaryKey) }), 401, 'IotHubUnauthorizedAccess');

        // registryRead reads but does not write; service (ServiceConnect) does twins but not the registry.
        assert.equal((await call('GET', '/devices/auth-dev', { token: policies['registryRead'] })).status, 200);
        assertIotHubError(await call('PUT', '/devices/auth-new', { token: policies['registryRead'], body: JSON.stringify({ deviceId: 'auth-new' }) }), 401, 'IotHubUnauthorizedAccess');
        assertIotHubError(await call('DELETE', '/devices/auth-dev', { token: policies['registryRead'], headers: { 'if-match': '"*"' } }), 401, 'IotHubUnauthorizedAccess');
        assertIotHubError(await call('GET', '/twins/auth-dev', { token: policies['registryRead'] }), 401, 'IotHubUnauthorizedAccess');
        assertIotHubError(await call('GET', '/devices/auth-dev', { token: policies['service'] }), 401, 'IotHubUnauthorizedAccess');
        assert.equal((await call('GET', '/twins/auth-dev', { token: policies['service'] })).status, 200);
        assertIotHubError(await call('GET', '/twins/auth-dev', { token: policies['device'] }), 401, 'IotHubUnauthorizedAccess');
        assert.equal((await call('PUT', '/devices/auth-new', { token: policies['registryReadWrite'], body: JSON.stringify({ deviceId: 'auth-new' }) })).status, 200);
        assert.ok(await hub.registry.get('auth-new'));
        assert.ok(await hub.registry.get('auth-dev'));
      });

      test('registry: IoT Hub device JSON, 404 DeviceNotFound, 409, If-Match, top, bad bodies', async () => {
        const put = (id: string, body: unknown, headers: Record<string, string> = {}) => call('PUT', `/devices/${encodeURIComponent(id)}?api-version=2021-04-12`, { body: JSON.stringify(body), headers });
        const keys = { primaryKey: Buffer.alloc(32, 1).toString('base64'), secondaryKey: Buffer.alloc(32, 2).toString('base64') };
        const created = await put('reg-1', { deviceId: 'reg-1', status: 'enabled', authentication: { type: 'sas', symmetricKey: keys } });
        assert.equal(created.status, 200);
        assert.match(String(created.headers['content-type']), /^application\/json/);
        const d = created.json<Record<string, unknown>>();
        assert.deepEqual(Object.keys(d).sort(), [
          'authentication', 'capabilities', 'cloudToDeviceMessageCount', 'connectionState', 'connectionStateUpdatedTime', 'deviceId', 'etag',
          'generationId', 'lastActivityTime', 'status', 'statusReason', 'statusUpdatedTime',
        ]);
        assert.deepEqual(d['authentication'], { symmetricKey: keys, x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null }, type: 'sas' });
        assert.deepEqual(d['capabilities'], { iotEdge: false });
        assert.equal(d['cloudToDeviceMessageCount'], 0);
        assert.equal(d['lastActivityTime'], '0001-01-01T00:00:00Z');
        assert.ok(!Number.isNaN(Date.parse(String(d['statusUpdatedTime']))));

        // Without If-Match a PUT creates: the id is taken.
        assertIotHubError(await put('reg-1', { deviceId: 'reg-1' }), 409, 'DeviceAlreadyExists');
        // With an etag that is not the current one: 412; with the current one, or "*": updated.
        assertIotHubError(await put('reg-1', { deviceId: 'reg-1', status: 'disabled', authentication: { symmetricKey: keys } }, { 'if-match': '"not-the-etag"' }), 412, 'PreconditionFailed');
        const ok = await put('reg-1', { deviceId: 'reg-1', status: 'disabled', statusReason: 'maintenance', authentication: { symmetricKey: keys } }, { 'if-match': `"${String(d['etag'])}"` });
        assert.equal(ok.status, 200);
        assert.equal(ok.json<{ status: string; statusReason: string }>().status, 'disabled');
        assert.equal((await hub.registry.get('reg-1'))!.status, 'disabled');
        assert.equal((await hub.registry.get('reg-1'))!.statusReason, 'maintenance');

        const missing = await call('GET', '/devices/reg-missing?api-version=2021-04-12');
        assertIotHubError(missing, 404, 'DeviceNotFound');
        assertIotHubError(await call('DELETE', '/devices/reg-missing', { headers: { 'if-match': '"*"' } }), 404, 'DeviceNotFound');
        assertIotHubError(await call('GET', '/twins/reg-missing'), 404, 'DeviceNotFound');

        assertIotHubError(await call('PUT', '/devices/reg-2', { body: '{"deviceId": "reg-2",' }), 400, 'ArgumentInvalid');
        assertIotHubError(await call('PUT', '/devices/reg-2', { body: '' }), 400, 'ArgumentInvalid');
        assertIotHubError(await put('reg-2', { deviceId: 'reg-other' }), 400, 'ArgumentInvalid');
        assertIotHubError(await put('reg-2', { deviceId: 'reg-2', status: 'paused' }), 400, 'ArgumentInvalid');
        assertIotHubError(await put('reg-2', { deviceId: 'reg-2', authentication: { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: 'AB' } } }), 400, 'ArgumentInvalid');
        assertIotHubError(await put('reg-2', { deviceId: 'reg-2', authentication: { symmetricKey: { primaryKey: 'c2hvcnQ=' } } }), 400, 'ArgumentInvalid');
        assert.equal(await hub.registry.get('reg-2'), undefined);

        const one = await call('GET', '/devices?top=1');
        assert.equal(one.status, 200);
        assert.equal(one.json<unknown[]>().length, 1);
        assertIotHubError(await call('GET', '/devices?top=0'), 400, 'ArgumentInvalid');

        assert.equal((await call('DELETE', '/devices/reg-1', { headers: { 'if-match': '"*"' } })).status, 204);
        assert.equal(await hub.registry.get('reg-1'), undefined);
      });

      test('twins: IoT Hub twin JSON, PATCH merges with If-Match, PUT replaces, reported is the device\'s', async () => {
        await hub.registry.create({ deviceId: 'twin-1' });
        await hub.patchReported('twin-1', { firmware: '1.0' });
        const got = await call('GET', '/twins/twin-1?api-version=2021-04-12');
        assert.equal(got.status, 200);
        type TwinBody = { deviceId: string; etag: string; deviceEtag: string; version: number; status: string; authenticationType: string; tags: Record<string, unknown>; properties: { desired: Record<string, unknown>; reported: Record<string, unknown> } };
        const t = got.json<TwinBody>();
        assert.equal(t.deviceId, 'twin-1');
        assert.equal(t.deviceEtag, (await hub.registry.get('twin-1'))!.etag);
        assert.equal(t.status, 'enabled');
        assert.equal(t.authenticationType, 'sas');
        assert.equal(t.properties.reported['firmware'], '1.0');
        assert.equal(typeof t.properties.reported['$version'], 'number');
        assert.equal(typeof t.properties.desired['$version'], 'number');
        assert.deepEqual(t.properties.desired['$metadata'], {});
        assert.equal(got.headers['etag'], `"${t.etag}"`);

        const patch = (body: unknown, etag?: string) => call('PATCH', '/twins/twin-1', { body: JSON.stringify(body), headers: etag ? { 'if-match': `"${etag}"` } : {} });
        const p1 = await patch({ tags: { site: 'Lyon', floor: 2 }, properties: { desired: { interval: 5, mode: 'eco' } } }, t.etag);
        assert.equal(p1.status, 200);
        const t1 = p1.json<TwinBody>();
        assert.deepEqual(t1.tags, { site: 'Lyon', floor: 2 });
        assert.equal(t1.properties.desired['interval'], 5);
        assertIotHubError(await patch({ tags: { site: 'Paris' } }, t.etag), 412, 'PreconditionFailed');
        // null deletes; no If-Match is unconditional.
        const t2 = (await patch({ tags: { floor: null }, properties: { desired: { mode: null } } })).json<TwinBody>();
        assert.deepEqual(t2.tags, { site: 'Lyon' });
        assert.equal('mode' in t2.properties.desired, false);
        assertIotHubError(await patch({ properties: { reported: { firmware: '2.0' } } }), 400, 'ArgumentInvalid');
        assertIotHubError(await call('PATCH', '/twins/twin-1', { body: '{not json' }), 400, 'ArgumentInvalid');
        assertIotHubError(await patch([1, 2]), 400, 'ArgumentInvalid');

        // PUT replaces tags and desired; a whole twin sent back (reported, $metadata, read-only fields) is accepted.
        const whole = { ...t2, tags: { owner: 'ops' }, properties: { desired: { interval: 10, $metadata: {}, $version: 3 }, reported: { firmware: 'ignored' } } };
        const replaced = await call('PUT', '/twins/twin-1', { body: JSON.stringify(whole), headers: { 'if-match': `"${t2.etag}"` } });
        assert.equal(replaced.status, 200);
        const t3 = replaced.json<TwinBody>();
        assert.deepEqual(t3.tags, { owner: 'ops' });
        assert.equal(t3.properties.desired['interval'], 10);
        assert.equal('site' in t3.tags, false);
        assert.equal(t3.properties.reported['firmware'], '1.0');
        const stored = await hub.getTwin('twin-1');
        assert.deepEqual(stored.tags, { owner: 'ops' });
        assert.equal(stored.properties.desired['interval'], 10);
      });

      test('direct methods: 200 with the device\'s status and payload, 404 DeviceNotOnline, 504 GatewayTimeout, 400', { timeout: 30_000 }, async () => {
        await hub.registry.create({ deviceId: 'm-answers' });
        await hub.registry.create({ deviceId: 'm-silent' });
        await hub.registry.create({ deviceId: 'm-away' });
        detach.push(hub.attach(new ScriptedDevice('m-answers', (rid) => hub.methodResponse('m-answers', rid, 417, Buffer.from('{"reason":"busy"}')))));
        const silent = new ScriptedDevice('m-silent', () => undefined);
        detach.push(hub.attach(silent));
        const invoke = (id: string, body: unknown, token?: string) => call('POST', `/twins/${id}/methods?api-version=2021-04-12`, { body: JSON.stringify(body), token });

        const answered = await invoke('m-answers', { methodName: 'reset', payload: { hard: true }, responseTimeoutInSeconds: 30, connectTimeoutInSeconds: 0 }, policies['service']);
        assert.equal(answered.status, 200);
        assert.deepEqual(answered.json(), { status: 417, payload: { reason: 'busy' } });
        assertIotHubError(await invoke('m-away', { methodName: 'reset', payload: {} }), 404, 'DeviceNotOnline');
        assertIotHubError(await invoke('m-missing', { methodName: 'reset', payload: {} }), 404, 'DeviceNotFound');
        assertIotHubError(await invoke('m-answers', { payload: {} }), 400, 'ArgumentInvalid');
        assertIotHubError(await invoke('m-answers', { methodName: 'reset', responseTimeoutInSeconds: 'soon' }), 400, 'ArgumentInvalid');
        assertIotHubError(await invoke('m-answers', { methodName: 'reset', responseTimeoutInSeconds: 1 }), 400, 'ArgumentInvalid');
        assertIotHubError(await invoke('m-answers', { methodName: 'reset' }, policies['registryReadWrite']), 401, 'IotHubUnauthorizedAccess');

        const started = Date.now();
        assertIotHubError(await invoke('m-silent', { methodName: 'reset', payload: null, responseTimeoutInSeconds: 5 }), 504, 'GatewayTimeout');
        assert.ok(Date.now() - started >= 4900, 'answered at the timeout, not before');
        assert.equal(silent.requests.length, 1);
      });

      test('cloud-to-device over REST: queued with its properties, then received by the device over HTTPS', async () => {
        const key = (await hub.registry.create({ deviceId: 'c2d-1' })).primaryKey;
        const send = (token: string | undefined, body = 'on') =>
          call('POST', '/devices/c2d-1/messages/deviceBound?api-version=2021-04-12', {
            token,
            body,
            headers: { 'content-type': 'text/plain', 'iothub-messageid': 'cmd-1', 'iothub-correlationid': 'corr-9', 'iothub-app-command': 'Switch' },
          });
        assertIotHubError(await send(sign(`${HOST}/devices/c2d-1`, key)), 401, 'IotHubUnauthorizedAccess');
        assertIotHubError(await send(policies['registryReadWrite']), 401, 'IotHubUnauthorizedAccess');
        assertIotHubError(await send(policies['service'], 'x'.repeat(65 * 1024)), 413, 'MessageTooLarge');
        const sent = await send(policies['service']);
        assert.equal(sent.status, 200);
        const queued = sent.json<{ messageId: string; enqueuedTimeUtc: string; expiryTimeUtc: string }>();
        assert.equal(queued.messageId, 'cmd-1');
        assert.ok(Date.parse(queued.expiryTimeUtc) > Date.parse(queued.enqueuedTimeUtc));

        const received = await call('GET', '/devices/c2d-1/messages/deviceBound', { token: sign(`${HOST}/devices/c2d-1`, key) });
        assert.equal(received.status, 200);
        assert.equal(received.body.toString(), 'on');
        assert.equal(received.headers['iothub-messageid'], 'cmd-1');
        assert.equal(received.headers['iothub-correlationid'], 'corr-9');
        assert.equal(received.headers['iothub-app-command'], 'Switch');
        assert.equal(received.headers['content-type'], 'text/plain');
        assertIotHubError(await call('POST', '/devices/c2d-missing/messages/deviceBound', { token: policies['service'], body: 'x' }), 404, 'DeviceNotFound');

        // `iothub-expiry` sets the message's absolute expiry; a value that is no date is refused.
        const expiry = new Date(Date.now() + 10 * 60_000);
        expiry.setMilliseconds(0);
        const timed = await call('POST', '/devices/c2d-1/messages/deviceBound', { token: policies['service'], body: 'x', headers: { 'iothub-expiry': expiry.toISOString() } });
        assert.equal(timed.json<{ expiryTimeUtc: string }>().expiryTimeUtc, expiry.toISOString());
        assertIotHubError(await call('POST', '/devices/c2d-1/messages/deviceBound', { token: policies['service'], body: 'x', headers: { 'iothub-expiry': 'tomorrow' } }), 400, 'ArgumentInvalid');
      });
    });
  }
}
