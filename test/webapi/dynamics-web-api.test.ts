import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { DynamicsWebApi } from 'dynamics-web-api';
import { engines } from '../helpers/engines.js';
import { ADMIN_TOKEN, startServer, type TestServer } from '../helpers/server.js';

interface DwaError {
  status: number;
  message: string;
  code?: string;
}

for (const engine of engines()) {
  describe(`unmodified dynamics-web-api against ccs on ${engine.name}`, () => {
    let srv: TestServer;
    let api: DynamicsWebApi;
    before(async () => {
      srv = await startServer(engine);
      api = new DynamicsWebApi({ serverUrl: srv.url, onTokenRefresh: async () => ADMIN_TOKEN });
    });
    after(() => srv.stop());

    test('create with lookups, retrieve with $select, $expand and annotations', async () => {
      const catId = await api.create({ collection: 'msdyn_iotdevicecategories', data: { msdyn_name: 'Thermostats' } });
      assert.match(String(catId), /^[0-9a-f-]{36}$/);
      const accountId = await api.create({ collection: 'accounts', data: { name: 'Contoso' } });
      const devId = await api.create({
        collection: 'msdyn_iotdevices',
        data: {
          msdyn_name: 'T-1',
          msdyn_deviceid: 'dev-1',
          'msdyn_Category@odata.bind': `msdyn_iotdevicecategories(${catId})`,
          'msdyn_Account@odata.bind': `/accounts(${accountId})`,
          msdyn_registrationstatus: 192350001,
        },
      });
      const dev = await api.retrieve({
        collection: 'msdyn_iotdevices',
        key: devId,
        select: ['msdyn_name', '_msdyn_category_value', 'msdyn_registrationstatus', 'createdon'],
        expand: [{ property: 'msdyn_Category', select: ['msdyn_name'] }],
        includeAnnotations: '*',
      });
      assert.equal(dev._msdyn_category_value, catId);
      assert.equal(dev.msdyn_Category.msdyn_name, 'Thermostats');
      assert.match(dev['@odata.etag'], /^W\/"\d+"$/);
      assert.equal(dev.msdyn_registrationstatus_Formatted, 'Unregistered');
      assert.equal(dev._msdyn_category_value_Formatted, 'Thermostats');
      assert.equal(dev._msdyn_category_value_LogicalName, 'msdyn_iotdevicecategory');
      assert.ok(dev.createdon instanceof Date, 'dates come without fractional seconds so the client revives them');
      assert.equal(dev.msdyn_iotdeviceid, devId, 'the primary key comes back whatever $select says');
      // By alternate key.
      const byKey = await api.retrieve({ collection: 'msdyn_iotdevices', key: "msdyn_deviceid='dev-1'", select: ['msdyn_name'] });
      assert.equal(byKey.msdyn_name, 'T-1');
      // Collection navigation expanded from the category.
      const cat = await api.retrieve({ collection: 'msdyn_iotdevicecategories', key: catId, expand: [{ property: 'msdyn_msdyn_iotdevicecategory_msdyn_iotdevice_Category', select: ['msdyn_name'] }] });
      assert.deepEqual(cat.msdyn_msdyn_iotdevicecategory_msdyn_iotdevice_Category.map((d: { msdyn_name: string }) => d.msdyn_name), ['T-1']);
    });

    test('retrieveMultiple with $filter, $orderby, paging and count; retrieveAll; count', async () => {
      const devId = await api.create({ collection: 'msdyn_iotdevices', data: { msdyn_name: 'Pager', msdyn_deviceid: 'pager-1' } });
      for (let i = 0; i < 5; i++) {
        await api.create({
          collection: 'msdyn_iotalerts',
          data: {
            msdyn_description: `Temp high ${i}`,
            msdyn_alerttime: `2024-01-0${i + 1}T10:00:00Z`,
            msdyn_alerttype: 192350000,
            'msdyn_Device@odata.bind': `/msdyn_iotdevices(${devId})`,
          },
        });
      }
      const page1 = await api.retrieveMultiple({
        collection: 'msdyn_iotalerts',
        select: ['msdyn_description', 'msdyn_alerttime'],
        filter: `contains(msdyn_description,'TEMP') and _msdyn_device_value eq ${devId} and msdyn_alerttime ge 2024-01-02T00:00:00Z`,
        orderBy: ['msdyn_alerttime desc'],
        maxPageSize: 2,
        count: true,
      });
      assert.equal(page1.value.length, 2);
      assert.equal(page1.oDataCount, 4);
      assert.equal(page1.value[0]!.msdyn_description, 'Temp high 4');
      assert.ok(page1.oDataNextLink?.startsWith(`${srv.url}/api/data/v9.2/`));
      assert.ok(page1.value[0]!.msdyn_alerttime instanceof Date);
      const page2 = await api.retrieveMultiple({ collection: 'msdyn_iotalerts', maxPageSize: 2 }, page1.oDataNextLink);
      assert.deepEqual(page2.value.map((a) => a.msdyn_description), ['Temp high 2', 'Temp high 1']);
      const all = await api.retrieveAll({ collection: 'msdyn_iotalerts', select: ['msdyn_description'], filter: `_msdyn_device_value eq ${devId}`, maxPageSize: 2 });
      assert.equal(all.value.length, 5);
      assert.equal(await api.count({ collection: 'msdyn_iotalerts', filter: `_msdyn_device_value eq ${devId}` }), 5);
      assert.ok((await api.count({ collection: 'msdyn_iotalerts' })) >= 5); // /$count as text/plain
      const viaLookupPath = await api.retrieveMultiple({ collection: 'msdyn_iotalerts', select: ['msdyn_description'], filter: `msdyn_Device/msdyn_deviceid eq 'pager-1' and Microsoft.Dynamics.CRM.In(PropertyName='msdyn_description',PropertyValues=["Temp high 0","Temp high 3"])` });
      assert.equal(viaLookupPath.value.length, 2);
      const anyFilter = await api.retrieveMultiple({ collection: 'msdyn_iotdevices', select: ['msdyn_name'], filter: "msdyn_msdyn_iotdevice_msdyn_iotalert_Device/any(a:a/msdyn_description eq 'Temp high 3')" });
      assert.deepEqual(anyFilter.value.map((d) => d.msdyn_name), ['Pager']);
    });

    test('upsert insert-only and update-only; stale ETag; If-Match * does not create; delete', async () => {
      const newId = randomUUID();
      assert.equal(await api.upsert({ collection: 'msdyn_iotdevices', key: newId, data: { msdyn_name: 'U' } }), newId);
      assert.equal(await api.upsert({ collection: 'msdyn_iotdevices', key: newId, data: { msdyn_name: 'X' }, ifnonematch: '*' }), null);
      assert.equal(await api.upsert({ collection: 'msdyn_iotdevices', key: randomUUID(), data: { msdyn_name: 'X' }, ifmatch: '*' }), null);
      const current = await api.retrieve({ collection: 'msdyn_iotdevices', key: newId, select: ['msdyn_name'] });
      assert.equal(current.msdyn_name, 'U');
      assert.equal(await api.update({ collection: 'msdyn_iotdevices', key: newId, data: { msdyn_name: 'Y' }, ifmatch: current['@odata.etag'] }), true);
      assert.equal(await api.update({ collection: 'msdyn_iotdevices', key: newId, data: { msdyn_name: 'Z' }, ifmatch: current['@odata.etag'] }), false, 'stale ETag');
      await assert.rejects(api.update({ collection: 'msdyn_iotdevices', key: randomUUID(), data: { msdyn_name: 'Z' } }), (e: DwaError) => e.status === 404 && typeof e.message === 'string');
      assert.equal(await api.deleteRecord({ collection: 'msdyn_iotdevices', key: newId }), true);
      await assert.rejects(api.retrieve({ collection: 'msdyn_iotdevices', key: newId }), (e: DwaError) => e.status === 404);
      // Upsert by alternate key creates the record with that key.
      const byKey = await api.upsert({ collection: 'msdyn_iotdevices', key: "msdyn_deviceid='upserted'", data: { msdyn_name: 'By key' } });
      assert.match(String(byKey), /^[0-9a-f-]{36}$/);
      const again = await api.retrieve({ collection: 'msdyn_iotdevices', key: "msdyn_deviceid='upserted'", select: ['msdyn_name'] });
      assert.equal(again.msdyn_iotdeviceid, byKey);
    });

    test('associate and disassociate, collection and single-valued', async () => {
      const catId = await api.create({ collection: 'msdyn_iotdevicecategories', data: { msdyn_name: 'Pumps' } });
      const devId = await api.create({ collection: 'msdyn_iotdevices', data: { msdyn_name: 'P-1' } });
      await api.associate({ collection: 'msdyn_iotdevicecategories', primaryKey: catId, relationshipName: 'msdyn_msdyn_iotdevicecategory_msdyn_iotdevice_Category', relatedCollection: 'msdyn_iotdevices', relatedKey: devId });
      let dev = await api.retrieve({ collection: 'msdyn_iotdevices', key: devId, select: ['_msdyn_category_value'] });
      assert.equal(dev._msdyn_category_value, catId);
      await api.disassociate({ collection: 'msdyn_iotdevicecategories', primaryKey: catId, relationshipName: 'msdyn_msdyn_iotdevicecategory_msdyn_iotdevice_Category', relatedKey: devId });
      dev = await api.retrieve({ collection: 'msdyn_iotdevices', key: devId, select: ['_msdyn_category_value'] });
      assert.equal(dev._msdyn_category_value, null);
      await api.associateSingleValued({ collection: 'msdyn_iotdevices', primaryKey: devId, navigationProperty: 'msdyn_Category', relatedCollection: 'msdyn_iotdevicecategories', relatedKey: catId });
      dev = await api.retrieve({ collection: 'msdyn_iotdevices', key: devId, select: ['_msdyn_category_value'] });
      assert.equal(dev._msdyn_category_value, catId);
      await api.disassociateSingleValued({ collection: 'msdyn_iotdevices', primaryKey: devId, navigationProperty: 'msdyn_Category' });
      dev = await api.retrieve({ collection: 'msdyn_iotdevices', key: devId, select: ['_msdyn_category_value'] });
      assert.equal(dev._msdyn_category_value, null);
    });

    test('callFunction WhoAmI', async () => {
      const me = await api.callFunction<{ UserId: string; OrganizationId: string; BusinessUnitId: string }>('WhoAmI');
      assert.match(me.UserId, /^[0-9a-f-]{36}$/);
      assert.match(me.OrganizationId, /^[0-9a-f-]{36}$/);
      const user = await api.retrieve({ collection: 'systemusers', key: me.UserId, select: ['fullname'] });
      assert.equal(user.fullname, 'admin');
    });

    test('executeBatch with a change set using a Content-ID reference', async () => {
      const devId = await api.create({ collection: 'msdyn_iotdevices', data: { msdyn_name: 'T-batch' } });
      api.startBatch();
      api.retrieveMultiple({ collection: 'msdyn_iotdevices', select: ['msdyn_name'], top: 1 });
      api.create({ collection: 'msdyn_iotdevices', data: { msdyn_name: 'B-1' }, contentId: '1' });
      api.create({ collection: 'msdyn_iotalerts', data: { msdyn_description: 'batch', 'msdyn_Device@odata.bind': '$1' } });
      api.update({ collection: 'msdyn_iotdevices', key: devId, data: { msdyn_name: 'T-batch-b' } });
      const [list, bDevId, bAlertId, updated] = (await api.executeBatch()) as [{ value: unknown[] }, string, string, boolean];
      assert.equal(list.value.length, 1);
      assert.match(bDevId, /^[0-9a-f-]{36}$/);
      assert.match(bAlertId, /^[0-9a-f-]{36}$/);
      assert.equal(updated, true);
      const alert = await api.retrieve({ collection: 'msdyn_iotalerts', key: bAlertId, select: ['_msdyn_device_value'] });
      assert.equal(alert._msdyn_device_value, bDevId);
    });

    test('a failing change set leaves nothing behind', async () => {
      api.startBatch();
      api.create({ collection: 'msdyn_iotdevices', data: { msdyn_name: 'rollback-me' } });
      api.create({ collection: 'msdyn_iotalerts', data: { msdyn_description: 'x'.repeat(101) } });
      await assert.rejects(api.executeBatch(), (errs: unknown) => Array.isArray(errs) && errs.some((e: DwaError) => e?.status === 400));
      const rb = await api.retrieveMultiple({ collection: 'msdyn_iotdevices', filter: "msdyn_name eq 'rollback-me'" });
      assert.equal(rb.value.length, 0);
    });

    test('a filter longer than 2,000 characters (sent as a batch by the client)', async () => {
      const longFilter = Array.from({ length: 120 }, (_, i) => `msdyn_description eq 'v${i}'`).join(' or ');
      assert.ok(longFilter.length > 2000);
      const r = await api.retrieveMultiple({ collection: 'msdyn_iotalerts', filter: longFilter });
      assert.deepEqual(r.value, []);
      const hit = await api.retrieveMultiple({ collection: 'msdyn_iotalerts', filter: `${longFilter} or msdyn_description eq 'batch'` });
      assert.equal(hit.value.length, 1);
    });

    test('useEntityNames reads EntityDefinitions', async () => {
      const named = new DynamicsWebApi({ serverUrl: srv.url, onTokenRefresh: async () => ADMIN_TOKEN, useEntityNames: true });
      const id = await named.create({ collection: 'account', data: { name: 'Fabrikam' } });
      const a = await named.retrieve({ collection: 'account', key: id, select: ['name'] });
      assert.equal(a.name, 'Fabrikam');
    });

    test('errors surface with status and Dataverse message', async () => {
      await assert.rejects(api.retrieveMultiple({ collection: 'msdyn_iotalerts', filter: 'msdyn_nope eq 1' }), (e: DwaError) => e.status === 400 && /msdyn_nope/.test(e.message));
      await assert.rejects(api.create({ collection: 'msdyn_iotalerts', data: { msdyn_description: 'x'.repeat(101) } }), (e: DwaError) => e.status === 400 && /maximum allowed length of '100'/.test(e.message));
    });
  });
}
