import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engines } from '../helpers/engines.js';
import { startServer, type TestServer } from '../helpers/server.js';

const [engine] = engines(); // privileges live above the store: one engine is enough

describe('tokens, roles and service protection', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer(engine!, { settings: { 'rate-limit': '20', 'rate-limit-window-seconds': '60' } });
  });
  after(() => srv.stop());

  test('no token or a bad token is 401; $metadata and the service document are public', async () => {
    const none = await srv.fetch('msdyn_iotdevices', { token: null });
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    assert.match((await none.json()).error.message, /Authentication is required/);
    assert.equal((await srv.fetch('msdyn_iotdevices', { token: 'wrong' })).status, 401);
    assert.equal((await srv.fetch('$metadata', { token: null })).status, 200);
    assert.equal((await srv.fetch('', { token: null })).status, 200);
  });

  test('a missing privilege is 403 naming it; reads still work', async () => {
    const { token } = await srv.app.tokens.create({ role: 'readonly', name: 'viewer' });
    const denied = await srv.fetch('msdyn_iotdevices', { token, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"msdyn_name":"x"}' });
    assert.equal(denied.status, 403);
    assert.match((await denied.json()).error.message, /prvCreatemsdyn_iotdevice/);
    assert.equal((await srv.fetch('msdyn_iotdevices', { token })).status, 200);
    const { token: agent } = await srv.app.tokens.create({ role: 'agent', name: 'agent' });
    const created = await srv.fetch('msdyn_iotalerts', { token: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"msdyn_description":"by agent"}' });
    assert.equal(created.status, 204);
    const del = await srv.fetch(created.headers.get('odata-entityid')!.replace(srv.url, ''), { token: agent, method: 'DELETE' });
    assert.equal(del.status, 403);
    assert.match((await del.json()).error.message, /prvDeletemsdyn_iotalert/);
    // Creating tables needs the admin role.
    const table = await srv.fetch('EntityDefinitions', { token: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(table.status, 403);
  });

  test('revoked tokens stop working', async () => {
    const { token, info } = await srv.app.tokens.create({ role: 'readonly', name: 'temp' });
    assert.equal((await srv.fetch('accounts', { token })).status, 200);
    await srv.app.tokens.revoke(info.id);
    assert.equal((await srv.fetch('accounts', { token })).status, 401);
  });

  test('over the rate limit is 429 with Retry-After, per token', async () => {
    const { token } = await srv.app.tokens.create({ role: 'readonly', name: 'busy' });
    let limited: Response | undefined;
    for (let i = 0; i < 25 && !limited; i++) {
      const res = await srv.fetch('accounts?$top=1', { token });
      if (res.status === 429) limited = res;
      else await res.arrayBuffer();
    }
    assert.ok(limited, 'expected a 429');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.match((await limited.json()).error.message, /exceeded the limit of 20/);
    const { token: other } = await srv.app.tokens.create({ role: 'readonly', name: 'calm' });
    assert.equal((await srv.fetch('accounts?$top=1', { token: other })).status, 200);
  });
});

describe('metrics', () => {
  test('/metrics counts requests by method and status, in the Prometheus text format', async () => {
    const srv = await startServer(engine!);
    try {
      await (await srv.fetch('accounts?$top=1')).arrayBuffer();
      await (await srv.fetch('nope')).arrayBuffer();
      const res = await fetch(`${srv.url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      const text = await res.text();
      assert.match(text, /ccs_http_requests_total\{method="GET",status="200"\} [1-9]/);
      assert.match(text, /ccs_http_requests_total\{method="GET",status="404"\} 1/);
      assert.match(text, /ccs_http_request_duration_seconds_count\{method="GET"\} [2-9]/);
    } finally {
      await srv.stop();
    }
  });
});
