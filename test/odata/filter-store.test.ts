import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { physicalSchema, type Table } from '../../src/metadata/index.js';
import { compileQuery } from '../../src/odata/index.js';
import { createStore, PostgresStore, type Store } from '../../src/store/index.js';
import { engines } from '../helpers/engines.js';
import { accounts, alerts, clock, contacts, devices, model } from './fixtures.js';

/**
 * Compiled queries run on the real store adapters: what a filter means (null handling, lambdas, `all`, lookup
 * paths, N:N hops, case-insensitivity, literal wildcards) is checked on rows, not only on the tree's shape.
 */

const id = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const A = id(1), B = id(2), C = id(3), D = id(4), E = id(5), P = id(6);
const JOE = id(11), ANN = id(12);
const DEV1 = id(21), DEV2 = id(22);
const AL1 = id(31), AL2 = id(32);

for (const engine of engines()) {
  describe(`compiled queries on ${engine.name}`, () => {
    let store: Store;

    before(async () => {
      store = createStore(engine.url());
      await store.syncSchema(physicalSchema(model));
      const rows: [string, Record<string, string | number | null>][] = [
        ['contact', { contactid: JOE, fullname: 'Joe Bloggs', firstname: 'Joe', parentcustomerid: A, parentcustomerid_type: 'account' }],
        ['contact', { contactid: ANN, fullname: 'Ann Other', firstname: 'Ann' }],
        ['account', { accountid: A, name: 'Contoso', numberofemployees: 10, primarycontactid: JOE, statecode: 0 }],
        ['account', { accountid: B, name: 'Fabrikam', numberofemployees: null, parentaccountid: A, statecode: 0 }],
        ['account', { accountid: C, name: 'Adventure Works', numberofemployees: 50, parentaccountid: A, statecode: 1 }],
        ['account', { accountid: D, name: 'Zed', numberofemployees: null, parentaccountid: B, statecode: 0 }],
        ['account', { accountid: E, name: null, numberofemployees: 5, statecode: 0 }],
        ['account', { accountid: P, name: '100% Co_op', numberofemployees: 7, statecode: 0 }],
        ['msdyn_iotdevice', { msdyn_iotdeviceid: DEV1, msdyn_name: 'dev1', msdyn_account: A }],
        ['msdyn_iotdevice', { msdyn_iotdeviceid: DEV2, msdyn_name: 'dev2', msdyn_account: C }],
        ['msdyn_iotalert', { msdyn_iotalertid: AL1, msdyn_device: DEV1, msdyn_alerttype: 192350000, msdyn_alerttime: Date.UTC(2024, 4, 15, 10) }],
        ['msdyn_iotalert', { msdyn_iotalertid: AL2, msdyn_device: DEV1, msdyn_alerttype: 192350001, msdyn_alerttime: Date.UTC(2024, 4, 1) }],
        ['ccs_contact_msdyn_iotdevice', { ccs_contact_msdyn_iotdeviceid: id(41), contactid: JOE, msdyn_iotdeviceid: DEV1 }],
      ];
      for (const [table, row] of rows) await store.insert(table, row);
    });

    after(async () => {
      if (store instanceof PostgresStore) await store.dropSchema();
      await store.close();
    });

    async function ids(table: Table, qs: string): Promise<string[]> {
      const q = compileQuery(new URLSearchParams(qs), table, model, clock);
      const rows = await store.select({ table: table.logicalName, where: q.where, columns: [table.primaryIdAttribute] });
      return rows.map((r) => String(r[table.primaryIdAttribute])).sort();
    }
    const f = (filter: string): string => `$filter=${encodeURIComponent(filter)}`;

    test('not keeps rows whose column is null (two-valued logic)', async () => {
      assert.deepEqual(await ids(accounts, f('not (numberofemployees gt 20)')), [A, B, D, E, P]);
      assert.deepEqual(await ids(accounts, f('numberofemployees ne 10')), [B, C, D, E, P]);
      assert.deepEqual(await ids(accounts, f("not contains(name,'o')")), [B, D, E]);
    });

    test('text comparisons ignore case and treat % and _ literally', async () => {
      assert.deepEqual(await ids(accounts, f("name eq 'CONTOSO'")), [A]);
      assert.deepEqual(await ids(accounts, f("contains(name,'% co_')")), [P]);
      assert.deepEqual(await ids(accounts, f("startswith(name,'_')")), []);
    });

    test('lookup paths, one and two hops', async () => {
      assert.deepEqual(await ids(accounts, f("primarycontactid/fullname eq 'joe bloggs'")), [A]);
      assert.deepEqual(await ids(alerts, f("msdyn_Device/msdyn_Account/name eq 'Contoso'")), [AL1, AL2]);
      assert.deepEqual(await ids(contacts, f("parentcustomerid_account/name eq 'Contoso'")), [JOE]);
    });

    test('any, any() and all over a 1:N navigation', async () => {
      assert.deepEqual(await ids(accounts, f('account_parent_account/any()')), [A, B]);
      assert.deepEqual(await ids(accounts, f('account_parent_account/any(a:a/statecode eq 1)')), [A]);
      // A's child B has no employee count, so not all of A's children have more than 20; C, D, E, P have no children.
      assert.deepEqual(await ids(accounts, f('account_parent_account/all(a:a/numberofemployees gt 20)')), [C, D, E, P]);
      assert.deepEqual(await ids(accounts, f('account_parent_account/any(a:a/account_parent_account/any(b:b/name eq \'Zed\'))')), [A]);
    });

    test('any over an N:N navigation', async () => {
      assert.deepEqual(await ids(contacts, f("ccs_contact_msdyn_iotdevice/any(d:d/msdyn_name eq 'dev1')")), [JOE]);
      assert.deepEqual(await ids(devices, f("ccs_msdyn_iotdevice_contact/any(c:c/firstname eq 'Joe')")), [DEV1]);
      assert.deepEqual(await ids(devices, f('not ccs_msdyn_iotdevice_contact/any()')), [DEV2]);
    });

    test('Dataverse query functions', async () => {
      assert.deepEqual(await ids(alerts, f("Microsoft.Dynamics.CRM.Today(PropertyName='msdyn_alerttime')")), [AL1]);
      assert.deepEqual(await ids(alerts, f("Microsoft.Dynamics.CRM.LastXDays(PropertyName='msdyn_alerttime',PropertyValue=30)")), [AL1, AL2]);
      assert.deepEqual(await ids(accounts, f('Microsoft.Dynamics.CRM.NotIn(PropertyName=\'name\',PropertyValues=["contoso","Zed"])')), [B, C, E, P]);
      assert.deepEqual(await ids(accounts, f('Microsoft.Dynamics.CRM.Between(PropertyName=\'numberofemployees\',PropertyValues=["5","10"])')), [A, E, P]);
    });
  });
}
