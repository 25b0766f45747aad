/**
 * Round trip with the real client: DynamicsWebApi 2.5.0 builds the `$batch` request and parses our response with its
 * own (unexported) parseBatchResponse. The server here is a bare node:http wrapper around `executeBatch` with an
 * in-memory table store behind the handler port, so the test covers the batch module only.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DynamicsWebApi } from 'dynamics-web-api';
import { executeBatch, type Handler, type InnerRequest, type InnerResponse } from '../../src/webapi/batch/index.js';

// DynamicsWebApi routes localhost through http_proxy when it is set (reference/odata.md §2.1).
delete process.env.http_proxy;
delete process.env.https_proxy;

type Row = Record<string, unknown>;
type Tables = Map<string, Map<string, Row>>;

const JSON_TYPE = { 'content-type': 'application/json; odata.metadata=minimal', 'odata-version': '4.0' };

function error(status: number, message: string): InnerResponse {
  return { status, headers: JSON_TYPE, body: JSON.stringify({ error: { code: '0x80040217', message } }) };
}

/** A toy Web API over `tables`: enough of create, query, update and one action to exercise every batch path. */
function handlerFor(tables: Tables, root: string): Handler {
  return async (req: InnerRequest): Promise<InnerResponse> => {
    const [path = '', query = ''] = req.url.split('?');
    const set = /^(\w+)(?:\(([0-9a-f-]{36})\))?$/.exec(path);
    if (req.method === 'POST' && path === 'msdyn_RegisterIoTDevice') {
      const { IoTDeviceIds } = JSON.parse(req.body) as { IoTDeviceIds: string };
      return { status: 200, headers: JSON_TYPE, body: JSON.stringify({ Registered: IoTDeviceIds.split(',').length }) };
    }
    if (!set) return error(404, `Resource not found for the segment '${path}'.`);
    const [, name = '', key] = set;
    const table = tables.get(name) ?? new Map<string, Row>();
    tables.set(name, table);
    if (req.method === 'POST' && key === undefined) {
      const id = randomUUID();
      const row: Row = {};
      for (const [k, v] of Object.entries(JSON.parse(req.body) as Row)) {
        // Store a bind as the _x_value GUID, as the records service would.
        const bind = /^(\w+)@odata\.bind$/.exec(k);
        if (bind) row[`_${bind[1]!.toLowerCase()}_value`] = /\(([0-9a-f-]{36})\)$/.exec(String(v))?.[1];
        else row[k] = v;
      }
      table.set(id, { ...row, [`${name.replace(/s$/, '')}id`]: id });
      const entity = `${root}${name}(${id})`;
      return { status: 204, headers: { 'odata-version': '4.0', location: entity, 'odata-entityid': entity }, body: '' };
    }
    if (req.method === 'PATCH' && key !== undefined) {
      const row = table.get(key);
      if (!row) return error(404, `${name} With Id = ${key} Does Not Exist`);
      Object.assign(row, JSON.parse(req.body) as Row);
      return { status: 204, headers: { 'odata-version': '4.0', 'odata-entityid': `${root}${name}(${key})` }, body: '' };
    }
    if (req.method === 'GET' && key === undefined) {
      const top = /(?:^|&)\$top=(\d+)/.exec(query);
      const rows = [...table.values()].slice(0, top ? Number(top[1]) : undefined);
      return { status: 200, headers: JSON_TYPE, body: JSON.stringify({ '@odata.context': `${root}$metadata#${name}`, value: rows }) };
    }
    return error(405, `Method ${req.method} is not allowed on '${path}'.`);
  };
}

describe('$batch round trip with DynamicsWebApi 2.5.0', () => {
  let server: Server;
  let api: DynamicsWebApi;
  let tables: Tables;
  const seen: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        const { port } = server.address() as AddressInfo;
        const root = `http://127.0.0.1:${port}/api/data/v9.2/`;
        seen.push(`${req.method} ${req.url}`);
        const handle = handlerFor(tables, root);
        executeBatch({
          contentType: req.headers['content-type'] ?? '',
          body,
          serviceRoot: root,
          continueOnError: /odata\.continue-on-error/.test(req.headers.prefer ?? ''),
          handle,
          async changeSet(fn) {
            // Copy-on-write transaction: the change set works on a copy that replaces the tables only on success.
            const saved = tables;
            tables = new Map([...saved].map(([k, t]) => [k, new Map([...t].map(([id, r]) => [id, { ...r }]))]));
            try {
              const result = await fn(handlerFor(tables, root));
              return result;
            } catch (e) {
              tables = saved;
              throw e;
            }
          },
        }).then(
          (out) => res.writeHead(out.status, out.headers).end(out.body),
          (e: unknown) => res.writeHead(500).end(String(e)),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    api = new DynamicsWebApi({ serverUrl: `http://127.0.0.1:${port}` });
  });

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  beforeEach(() => {
    tables = new Map();
    seen.length = 0;
  });

  function seedDevice(): string {
    const id = randomUUID();
    tables.set('msdyn_iotdevices', new Map([[id, { msdyn_iotdeviceid: id, msdyn_name: 'seed' }]]));
    return id;
  }

  it('parses results of GETs, change-set creates with $1 binds, updates and an action', async () => {
    const seeded = seedDevice();
    api.startBatch();
    void api.retrieveMultiple({ collection: 'msdyn_iotdevices', select: ['msdyn_name'], top: 1 });
    void api.create({ collection: 'msdyn_iotdevices', data: { msdyn_name: 'batch dev' }, contentId: '1' });
    void api.create({ collection: 'msdyn_iotalerts', data: { msdyn_description: 'batch alert', 'msdyn_Device@odata.bind': '$1' } });
    void api.update({ contentId: '$1', data: { msdyn_name: 'renamed in batch' } });
    void api.update({ collection: 'msdyn_iotdevices', key: seeded, data: { msdyn_name: 'seed updated' } });
    void api.callAction({ actionName: 'msdyn_RegisterIoTDevice', action: { IoTDeviceIds: seeded }, inChangeSet: false });
    const results = await api.executeBatch();

    assert.deepEqual(seen, ['POST /api/data/v9.2/$batch']);
    assert.equal(results.length, 6);
    assert.deepEqual(results[0].value, [{ msdyn_iotdeviceid: seeded, msdyn_name: 'seed' }]);
    const [deviceId, alertId] = [results[1] as string, results[2] as string];
    assert.match(deviceId, /^[0-9a-f-]{36}$/);
    assert.match(alertId, /^[0-9a-f-]{36}$/);
    assert.equal(results[3], true);
    assert.equal(results[4], true);
    assert.equal(results[5].Registered, 1);

    assert.equal(tables.get('msdyn_iotdevices')?.get(deviceId)?.msdyn_name, 'renamed in batch');
    assert.equal(tables.get('msdyn_iotdevices')?.get(seeded)?.msdyn_name, 'seed updated');
    assert.equal(tables.get('msdyn_iotalerts')?.get(alertId)?._msdyn_device_value, deviceId);
  });

  it('rejects with the failing part only, and the change set is rolled back', async () => {
    api.startBatch();
    void api.retrieveMultiple({ collection: 'msdyn_iotdevices' });
    void api.create({ collection: 'msdyn_iotdevices', data: { msdyn_name: 'never kept' } });
    void api.update({ collection: 'msdyn_iotdevices', key: randomUUID(), data: { msdyn_name: 'x' } });
    const failure: unknown = await api.executeBatch().then(
      () => assert.fail('the batch should reject'),
      (e: unknown) => e,
    );
    assert.ok(Array.isArray(failure), 'DynamicsWebApi rejects a non-2xx batch with the array of parts');
    assert.equal(failure.length, 1);
    const err = failure[0] as Error & { status: number; error: { message: string } };
    assert.ok(err instanceof Error);
    assert.equal(err.status, 404);
    assert.match(err.error.message, /Does Not Exist/);
    assert.equal(tables.get('msdyn_iotdevices')?.size ?? 0, 0);
  });

  it('with continueOnError resolves every part, the failed one as an Error', async () => {
    const seeded = seedDevice();
    api.startBatch();
    void api.update({ collection: 'msdyn_iotdevices', key: randomUUID(), data: { msdyn_name: 'x' } });
    void api.retrieveMultiple({ collection: 'nosuch-set' });
    void api.update({ collection: 'msdyn_iotdevices', key: seeded, data: { msdyn_name: 'kept' } });
    const results = await api.executeBatch({ continueOnError: true });
    assert.equal(results.length, 3);
    assert.ok(results[0] instanceof Error);
    assert.equal((results[0] as Error & { status: number }).status, 404);
    assert.ok(results[1] instanceof Error);
    assert.equal((results[1] as Error & { status: number }).status, 404);
    assert.equal(results[2], true);
    assert.equal(tables.get('msdyn_iotdevices')?.get(seeded)?.msdyn_name, 'kept');
  });

  it('answers the one-part batch DynamicsWebApi makes of a GET longer than 2000 characters (§0.5)', async () => {
    seedDevice();
    const filter = Array.from({ length: 80 }, (_, i) => `msdyn_name ne 'device number ${i}'`).join(' and ');
    const result = await api.retrieveMultiple({ collection: 'msdyn_iotdevices', filter, top: 5 });
    assert.deepEqual(seen, ['POST /api/data/v9.2/$batch']);
    assert.equal(result.value.length, 1);
  });
});
