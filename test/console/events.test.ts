import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import Fastify from 'fastify';
import { registerEventRoutes } from '../../src/console/index.js';
import { DEFAULT_ROLES } from '../../src/security/index.js';
import { engines } from '../helpers/engines.js';
import { ADMIN_TOKEN, startServer, type TestServer } from '../helpers/server.js';

interface SseEvent {
  readonly event: string;
  readonly data: Record<string, unknown>;
}

/** A server-sent event stream read with fetch: events arrive in `events`; `next` waits for a matching one. */
class Stream {
  readonly events: SseEvent[] = [];
  readonly #controller = new AbortController();
  #waiters: (() => void)[] = [];
  ended = false;
  readonly response: Promise<Response>;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.response = fetch(url, { headers, signal: this.#controller.signal });
    void this.response.then(async (res) => {
      if (!res.ok || !res.body) return;
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for await (const chunk of res.body) {
          buffer += decoder.decode(chunk as Uint8Array, { stream: true });
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event && data) this.events.push({ event, data: JSON.parse(data) as Record<string, unknown> });
            for (const w of this.#waiters) w();
          }
        }
      } catch {
        // aborted
      }
      this.ended = true;
      for (const w of this.#waiters) w();
    }, () => undefined);
  }

  async next(match: (e: SseEvent) => boolean, ms = 10_000, what = 'event'): Promise<SseEvent> {
    const end = Date.now() + ms;
    for (;;) {
      const found = this.events.find(match);
      if (found) return found;
      if (this.ended) throw new Error(`stream ended before ${what}`);
      if (Date.now() > end) throw new Error(`${what} not received within ${ms} ms; got ${JSON.stringify(this.events.map((e) => e.event))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
      this.#waiters = [];
    }
  }

  close(): void {
    this.#controller.abort();
  }
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

for (const engine of engines()) {
  describe(`live events at /api/events on ${engine.name}`, () => {
    let srv: TestServer;
    let rolesFile: string;
    const streams: Stream[] = [];
    const open = (query = '', headers: Record<string, string> = bearer(ADMIN_TOKEN)) => {
      const s = new Stream(`${srv.url}/api/events${query}`, headers);
      streams.push(s);
      return s;
    };
    const post = async (path: string, body: unknown, token = ADMIN_TOKEN) => {
      const res = await srv.fetch(path, { method: 'POST', token, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
      assert.ok(res.ok, `${path}: ${res.status} ${await res.clone().text()}`);
      return /\(([0-9a-f-]{36})\)/.exec(res.headers.get('odata-entityid') ?? '')?.[1] ?? '';
    };

    before(async () => {
      rolesFile = join(mkdtempSync(join(tmpdir(), 'ccs-roles-')), 'roles.json');
      // A role that reads devices only: it must not hear about alerts.
      writeFileSync(rolesFile, JSON.stringify({ ...DEFAULT_ROLES, devicesonly: { msdyn_iotdevice: { Read: true, Write: true } }, nothing: {} }));
      srv = await startServer(engine, { settings: { 'roles-file': rolesFile, 'rate-limit': '0' } });
    });
    after(async () => {
      for (const s of streams) s.close();
      await srv.stop();
    });

    test('without a valid token the stream is refused with the Dataverse error body, and the server keeps serving', async () => {
      const none = await fetch(`${srv.url}/api/events`);
      assert.equal(none.status, 401);
      assert.match(((await none.json()) as { error: { message: string } }).error.message, /Authentication is required/);
      const bad = await fetch(`${srv.url}/api/events`, { headers: bearer('nope') });
      assert.equal(bad.status, 401);
      assert.match(((await bad.json()) as { error: { message: string } }).error.message, /not valid or has been revoked/);
      const badQuery = await fetch(`${srv.url}/api/events?token=nope`);
      assert.equal(badQuery.status, 401);
      const malformed = await fetch(`${srv.url}/api/events`, { headers: { authorization: 'Basic abc' } });
      assert.equal(malformed.status, 401);
      assert.match(((await malformed.json()) as { error: { message: string } }).error.message, /must be "Bearer <token>"/);
      assert.equal((await srv.fetch('WhoAmI()')).status, 200);
    });

    test('hello names the user, the role and the privileges per table; ?token= works for EventSource', async () => {
      const admin = open();
      const hello = await admin.next((e) => e.event === 'hello', 10_000, 'hello');
      assert.equal(hello.data['role'], 'admin');
      assert.equal((hello.data['access'] as Record<string, string>)['msdyn_iotalert'], 'RCWD');
      assert.match(String(hello.data['userId']), /^[0-9a-f-]{36}$/);
      assert.equal((await admin.response).headers.get('content-type'), 'text/event-stream; charset=utf-8');

      const { token } = await srv.app.tokens.create({ role: 'agent', name: 'Agent Smith' });
      const agent = open(`?token=${encodeURIComponent(token)}`, {});
      const agentHello = await agent.next((e) => e.event === 'hello', 10_000, 'agent hello');
      assert.equal(agentHello.data['role'], 'agent');
      assert.equal(agentHello.data['name'], 'Agent Smith');
      const access = agentHello.data['access'] as Record<string, string>;
      assert.equal(access['msdyn_iotalert'], 'RCW', 'agents may not delete alerts');
      assert.equal(access['ccs_iotrule'], 'R', 'agents read rules only');
    });

    test('record events reach principals that may read the table, and only them', async () => {
      const { token } = await srv.app.tokens.create({ role: 'devicesonly', name: 'device watcher' });
      const admin = open();
      const watcher = open('', bearer(token));
      await admin.next((e) => e.event === 'hello');
      await watcher.next((e) => e.event === 'hello');
      const alert = await post('msdyn_iotalerts', { msdyn_description: 'Too hot' });
      const created = await admin.next((e) => e.event === 'record' && e.data['id'] === alert, 10_000, 'alert created');
      assert.deepEqual({ ...created.data, columns: undefined }, { type: 'created', table: 'msdyn_iotalert', id: alert, columns: undefined });
      assert.ok((created.data['columns'] as string[]).includes('msdyn_description'));
      const dev = await post('msdyn_iotdevices', { msdyn_name: 'Thermostat' });
      await watcher.next((e) => e.event === 'record' && e.data['id'] === dev, 10_000, 'device created');
      // The device event came after the alert's: had the alert been sent to the watcher, it would be here by now.
      assert.equal(watcher.events.filter((e) => e.data['table'] === 'msdyn_iotalert').length, 0);
      const patch = await srv.fetch(`msdyn_iotdevices(${dev})`, { method: 'PATCH', body: JSON.stringify({ msdyn_name: 'Renamed' }), headers: { 'content-type': 'application/json' } });
      assert.equal(patch.status, 204);
      const updated = await watcher.next((e) => e.event === 'record' && e.data['type'] === 'updated' && e.data['id'] === dev, 10_000, 'device updated');
      assert.deepEqual(updated.data['columns'], ['msdyn_name']);
    });

    test('?device= streams that device’s telemetry from the real device SDK, and only that device’s', async () => {
      const dev = await post('msdyn_iotdevices', { msdyn_name: 'Streamer', msdyn_deviceid: 'streamer-1' });
      await srv.fetch('msdyn_RegisterIoTDevice', { method: 'POST', body: JSON.stringify({ IoTDeviceIds: dev }), headers: { 'content-type': 'application/json' } });
      await srv.app.hub.registry.create({ deviceId: 'other-1' }).catch(() => undefined);
      const stream = open('?device=streamer-1');
      const hello = await stream.next((e) => e.event === 'hello', 10_000, 'hello');
      assert.equal(hello.data['device'], 'streamer-1');
      const client = device.Client.fromConnectionString(await srv.app.hub.deviceConnectionString('streamer-1'), deviceMqtt.Mqtt);
      await client.setOptions({ ca: srv.app.tls().ca });
      await client.open();
      try {
        await srv.app.hub.ingest('other-1', { body: Buffer.from('{"Temperature":1}'), properties: {} }, 'https');
        await client.sendEvent(new device.Message(JSON.stringify({ Temperature: 71.5, Humidity: 40 })));
        await client.sendEvent(new device.Message('not json'));
        const reading = await stream.next((e) => e.event === 'telemetry', 10_000, 'telemetry');
        assert.equal(reading.data['deviceId'], 'streamer-1');
        assert.deepEqual(reading.data['body'], { Temperature: 71.5, Humidity: 40 });
        assert.equal(typeof reading.data['enqueuedTime'], 'number');
        const text = await stream.next((e) => e.event === 'telemetry' && typeof e.data['body'] === 'string', 10_000, 'text telemetry');
        assert.equal(text.data['body'], 'not json');
        assert.ok(stream.events.filter((e) => e.event === 'telemetry').every((e) => e.data['deviceId'] === 'streamer-1'));
      } finally {
        await client.close();
      }
    });

    test('?device= needs read access to devices, and a device id', async () => {
      const { token } = await srv.app.tokens.create({ role: 'nothing', name: 'no access' });
      const refused = await fetch(`${srv.url}/api/events?device=streamer-1`, { headers: bearer(token) });
      assert.equal(refused.status, 403);
      assert.match(((await refused.json()) as { error: { message: string } }).error.message, /missing prvReadmsdyn_iotdevice privilege/);
      const empty = await fetch(`${srv.url}/api/events?device=`, { headers: bearer(ADMIN_TOKEN) });
      assert.equal(empty.status, 400);
      assert.match(((await empty.json()) as { error: { message: string } }).error.message, /'device' must be an IoT Hub device id/);
    });

    test('a revoked token gets no new stream', async () => {
      const { token, info } = await srv.app.tokens.create({ role: 'agent', name: 'short-lived' });
      const ok = open('', bearer(token));
      await ok.next((e) => e.event === 'hello');
      await srv.app.tokens.revoke(info.id);
      const res = await fetch(`${srv.url}/api/events`, { headers: bearer(token) });
      assert.equal(res.status, 401);
    });
  });
}

test('stopping the server ends open streams instead of waiting for them', async () => {
  const srv = await startServer(engines()[0]!);
  const stream = new Stream(`${srv.url}/api/events`, bearer(ADMIN_TOKEN));
  await stream.next((e) => e.event === 'hello');
  await srv.stop();
  await stream.next(() => false, 10_000, 'the end of the stream').catch((e: Error) => assert.match(e.message, /stream ended/));
  assert.equal(stream.ended, true);
});

test('an idle stream gets keep-alive comments, so proxies do not close it', async () => {
  const srv = await startServer(engines()[0]!);
  const app = Fastify();
  registerEventRoutes(app, { tokens: srv.app.tokens, records: srv.app.records, bus: srv.app.bus, heartbeatMs: 50 });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  const controller = new AbortController();
  try {
    const res = await fetch(`${address}/api/events`, { headers: bearer(ADMIN_TOKEN), signal: controller.signal });
    assert.equal(res.status, 200);
    const decoder = new TextDecoder();
    let text = '';
    for await (const chunk of res.body!) {
      text += decoder.decode(chunk as Uint8Array, { stream: true });
      if ((text.match(/^: keep-alive$/gm) ?? []).length >= 2) break;
    }
    assert.match(text, /^event: hello$/m);
    assert.ok((text.match(/^: keep-alive$/gm) ?? []).length >= 2);
  } finally {
    controller.abort();
    await app.close();
    await srv.stop();
  }
});
