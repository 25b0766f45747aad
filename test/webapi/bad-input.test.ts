import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { engines } from '../helpers/engines.js';
import { startServer, type TestServer } from '../helpers/server.js';

interface ErrorBody {
  error: { code: string; message: string };
}

async function expectError(res: Response, status: number, message?: RegExp): Promise<ErrorBody> {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(res.headers.get('odata-version'), '4.0');
  const body = JSON.parse(text) as ErrorBody;
  assert.equal(typeof body.error.code, 'string');
  assert.equal(typeof body.error.message, 'string');
  if (message) assert.match(body.error.message, message);
  return body;
}

const json = (body: unknown, extra: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...extra },
  body: JSON.stringify(body),
});

for (const engine of engines()) {
  describe(`bad input gets a precise error on ${engine.name}`, () => {
    let srv: TestServer;
    let deviceId: string;
    before(async () => {
      srv = await startServer(engine);
      const res = await srv.fetch('msdyn_iotdevices', json({ msdyn_name: 'Victim', msdyn_deviceid: 'victim' }));
      deviceId = /\(([0-9a-f-]{36})\)$/.exec(res.headers.get('odata-entityid')!)![1]!;
      for (let i = 0; i < 3; i++) {
        await srv.fetch('msdyn_iotalerts', json({ msdyn_description: `a${i}`, 'msdyn_Device@odata.bind': `/msdyn_iotdevices(${deviceId})` }));
      }
    });
    after(() => srv.stop());

    test('invalid $filter syntax', async () => {
      await expectError(await srv.fetch('msdyn_iotalerts?$filter=msdyn_description eq'), 400, /syntax|position/i);
      await expectError(await srv.fetch("msdyn_iotalerts?$filter=(msdyn_description eq 'a'"), 400);
    });
    test('unknown column in $select, $filter and $orderby, and in a body', async () => {
      await expectError(await srv.fetch('msdyn_iotalerts?$select=nope'), 400, /Could not find a property named 'nope'/);
      await expectError(await srv.fetch('msdyn_iotalerts?$filter=nope eq 1'), 400, /nope/);
      await expectError(await srv.fetch('msdyn_iotalerts?$orderby=nope desc'), 400, /nope/);
      await expectError(await srv.fetch('msdyn_iotalerts', json({ nope: 1 })), 400, /Could not find a property named 'nope'/);
    });
    test('wrong value type', async () => {
      await expectError(await srv.fetch("msdyn_iotalerts?$filter=msdyn_alerttype eq 'abc'"), 400);
      await expectError(await srv.fetch('msdyn_iotalerts', json({ msdyn_description: 42 })), 400, /msdyn_description/);
      await expectError(await srv.fetch('msdyn_iotalerts', json({ msdyn_alerttype: 5 })), 400, /not a valid value/);
      await expectError(await srv.fetch('msdyn_iotalerts', json({ msdyn_alerttime: 'yesterday' })), 400, /msdyn_alerttime/);
    });
    test('MaxLength exceeded', async () => {
      await expectError(await srv.fetch('msdyn_iotalerts', json({ msdyn_description: 'x'.repeat(101) })), 400, /maximum allowed length of '100'/);
    });
    test('malformed JSON', async () => {
      const res = await srv.fetch('msdyn_iotalerts', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"msdyn_description": ' });
      await expectError(res, 400, /Invalid JSON/);
      await expectError(await srv.fetch('msdyn_iotalerts', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1,2]' }), 400, /JSON object/);
    });
    test('unknown entity set, unknown key, bad key, unknown version', async () => {
      await expectError(await srv.fetch('nopes'), 404, /Resource not found for the segment 'nopes'/);
      await expectError(await srv.fetch('msdyn_iotalerts(00000000-0000-0000-0000-000000000001)'), 404, /Does Not Exist/);
      await expectError(await srv.fetch('msdyn_iotalerts(not-a-guid)'), 400);
      await expectError(await srv.fetch('/api/data/v7.0/msdyn_iotalerts'), 404, /version/);
    });
    test('injection attempts in $filter, keys and $orderby stay values', async () => {
      const attempts = [
        "msdyn_iotalerts?$filter=msdyn_description eq 'x'' OR 1=1 --'",
        "msdyn_iotalerts?$filter=msdyn_description eq 'a0'; DROP TABLE msdyn_iotalert;--",
        "msdyn_iotalerts?$orderby=msdyn_description; DROP TABLE msdyn_iotalert",
        "msdyn_iotalerts?$orderby=(SELECT 1)",
        "msdyn_iotdevices(msdyn_deviceid='x'' OR ''1''=''1')",
        "msdyn_iotdevices(msdyn_deviceid='victim';DROP TABLE msdyn_iotdevice)",
        'msdyn_iotalerts?$select=msdyn_description,"msdyn_iotalert" --',
      ];
      for (const path of attempts) {
        const res = await srv.fetch(path.replace(/ /g, '%20'));
        const text = await res.text();
        assert.ok(res.status < 500, `${path} gave ${res.status}`);
        if (res.status === 200) assert.equal(JSON.parse(text).value?.length ?? 0, 0, `${path} matched rows`);
      }
      const check = await (await srv.fetch(`msdyn_iotalerts?$filter=_msdyn_device_value eq ${deviceId}&$count=true`)).json();
      assert.equal(check['@odata.count'], 3);
    });
    test('a 10 MB body is refused with 413, and the server keeps serving', async () => {
      const big = JSON.stringify({ msdyn_description: 'x'.repeat(10 * 1024 * 1024) });
      await expectError(await srv.fetch('msdyn_iotalerts', { method: 'POST', headers: { 'content-type': 'application/json' }, body: big }), 413, /larger than the limit/);
      assert.equal((await srv.fetch('msdyn_iotalerts?$top=1')).status, 200);
    });
    test('methods, ETags and preconditions', async () => {
      await expectError(await srv.fetch(`msdyn_iotdevices(${deviceId})`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' }), 405);
      await expectError(await srv.fetch('msdyn_iotdevices', { method: 'PATCH', body: '{}' }), 405);
      await expectError(await srv.fetch(`msdyn_iotdevices(${deviceId})`, { method: 'PATCH', headers: { 'content-type': 'application/json', 'if-match': 'W/"999"' }, body: '{"msdyn_name":"x"}' }), 412, /version/i);
      await expectError(await srv.fetch(`msdyn_iotdevices(${deviceId})`, { method: 'PATCH', headers: { 'content-type': 'application/json', 'if-none-match': '*' }, body: '{"msdyn_name":"x"}' }), 412, /already exists/);
      await expectError(await srv.fetch(`msdyn_iotdevices(${deviceId})`, { method: 'DELETE', headers: { 'if-match': 'W/"999"' } }), 412);
      const res = await srv.fetch(`msdyn_iotdevices(${deviceId})?$select=msdyn_name`);
      const etag = res.headers.get('etag')!;
      assert.equal((await srv.fetch(`msdyn_iotdevices(${deviceId})?$select=msdyn_name`, { headers: { 'if-none-match': etag } })).status, 304);
    });
    test('bound operations need the namespace; unknown operations are 404', async () => {
      await expectError(await srv.fetch('NoSuchAction', json({})), 404);
      await expectError(await srv.fetch('WhoAmI()', json({})), 405);
    });
    test('lookups: binding to a missing record, to the wrong table, or writing _x_value', async () => {
      await expectError(await srv.fetch('msdyn_iotalerts', json({ 'msdyn_Device@odata.bind': '/msdyn_iotdevices(00000000-0000-0000-0000-000000000002)' })), 404, /Does Not Exist/);
      await expectError(await srv.fetch('msdyn_iotalerts', json({ 'msdyn_Device@odata.bind': `/accounts(${deviceId})` })), 400);
      await expectError(await srv.fetch('msdyn_iotalerts', json({ _msdyn_device_value: deviceId })), 400, /read-only/);
    });
    test('thousands of random and mutated $filter strings: never a 5xx, data unchanged', async () => {
      const seeds = [
        "msdyn_description eq 'a0'",
        `_msdyn_device_value eq ${deviceId} and msdyn_alerttime ge 2024-01-01T00:00:00Z`,
        "contains(msdyn_description,'a') or not startswith(msdyn_description,'b')",
        "msdyn_Device/msdyn_name eq 'Victim'",
        "Microsoft.Dynamics.CRM.In(PropertyName='msdyn_description',PropertyValues=['a0','a1'])",
        'msdyn_alerttype eq 192350000 and (statecode eq 0 or statuscode ne 2)',
      ];
      const mutated = fc
        .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.nat(3), fc.string({ maxLength: 4 })), { maxLength: 4 }))
        .map(([s, edits]) => {
          let out = s;
          for (const [pos, kind, text] of edits) {
            const i = pos % (out.length + 1);
            out = kind === 0 ? out.slice(0, i) + out.slice(i + 1) : kind === 1 ? out.slice(0, i) + text + out.slice(i) : out.slice(0, i) + text + out.slice(i + text.length);
          }
          return out;
        });
      const filter = fc.oneof(mutated, fc.string({ maxLength: 60 }), fc.constantFrom("'; DROP TABLE msdyn_iotalert; --", '(((((((((', "msdyn_description eq '\u0000'", 'a/any(x:x/b/any(y:y eq 1))'));
      await fc.assert(
        fc.asyncProperty(filter, async (f) => {
          const res = await srv.fetch(`msdyn_iotalerts?$filter=${encodeURIComponent(f)}&$select=msdyn_description`);
          await res.arrayBuffer();
          return res.status < 500;
        }),
        { numRuns: 2000 },
      );
      const check = await (await srv.fetch(`msdyn_iotalerts?$filter=_msdyn_device_value eq ${deviceId}&$count=true`)).json();
      assert.equal(check['@odata.count'], 3);
    });
  });
}
