import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { isChoice, isLookup, lookupValueProperty, Model, physicalSchema, toStoreValue } from '../../src/metadata/index.js';
import {
  CONNECTED_DEVICE_ROLE_ID,
  IOT_SETTINGS_ID,
  standardManyToMany,
  standardSeedRows,
  standardTables,
} from '../../src/metadata/standard/index.js';

const model = new Model(standardTables, standardManyToMany);

function table(name: string) {
  const t = model.table(name);
  assert.ok(t, `table ${name}`);
  return t;
}

describe('standard tables', () => {
  it('has every table of the IoT solution and the core tables, under Microsoft entity set names', () => {
    const sets: Record<string, string> = {
      account: 'accounts',
      contact: 'contacts',
      systemuser: 'systemusers',
      incident: 'incidents',
      msdyn_customerasset: 'msdyn_customerassets',
      connection: 'connections',
      connectionrole: 'connectionroles',
      msdyn_iotalert: 'msdyn_iotalerts',
      msdyn_iotdevice: 'msdyn_iotdevices',
      msdyn_iotdevicecategory: 'msdyn_iotdevicecategories',
      msdyn_iotdevicecommand: 'msdyn_iotdevicecommands',
      msdyn_iotdevicecommanddefinition: 'msdyn_iotdevicecommanddefinitions',
      msdyn_iotpropertydefinition: 'msdyn_iotpropertydefinitions',
      msdyn_iotdeviceproperty: 'msdyn_iotdeviceproperties',
      msdyn_iotdeviceregistrationhistory: 'msdyn_iotdeviceregistrationhistories',
      msdyn_iotdevicedatahistory: 'msdyn_iotdevicedatahistory',
      msdyn_iotprovider: 'msdyn_iotproviders',
      msdyn_iotproviderinstance: 'msdyn_iotproviderinstances',
      msdyn_iotsettings: 'msdyn_iotsettingses',
      msdyn_iotfieldmapping: 'msdyn_iotfieldmappings',
      ccs_iotrule: 'ccs_iotrules',
      annotation: 'annotations',
      processstage: 'processstages',
      msdyn_iottocaseprocess: 'msdyn_iottocaseprocesses',
      ccs_webhook: 'ccs_webhooks',
      ccs_webhookdelivery: 'ccs_webhookdeliveries',
      workflow: 'workflows',
      asyncoperation: 'asyncoperations',
    };
    assert.deepEqual(model.tables().map((t) => t.logicalName).sort(), Object.keys(sets).sort());
    for (const [name, set] of Object.entries(sets)) assert.equal(model.tableBySet(set)?.logicalName, name);
  });

  it('resolves the navigation properties clients bind to, case-sensitively', () => {
    const expectSingle = (t: string, nav: string, target: string, relationship: string, partner = relationship) => {
      const n = table(t).navigation(nav);
      assert.ok(n, `${t}.${nav}`);
      assert.equal(n.kind, 'single');
      assert.equal(n.target, target);
      assert.equal(n.relationship.schemaName, relationship);
      const back = table(target).navigation(partner);
      assert.ok(back, `${target}.${partner}`);
      assert.equal(back.kind, 'collection');
      assert.equal(back.target, t);
    };
    expectSingle('msdyn_iotalert', 'msdyn_Device', 'msdyn_iotdevice', 'msdyn_msdyn_iotdevice_msdyn_iotalert_Device');
    expectSingle('msdyn_iotalert', 'msdyn_ParentAlert', 'msdyn_iotalert', 'msdyn_iotalert_msdyn_iotalert');
    expectSingle('msdyn_iotalert', 'msdyn_CustomerAsset', 'msdyn_customerasset', 'msdyn_msdyn_customerasset_msdyn_iotalert_CustomerAsset');
    expectSingle('msdyn_iotalert', 'msdyn_LastCommandSent', 'msdyn_iotdevicecommand', 'msdyn_msdyn_iotdevicecommand_msdyn_iotalert_LastCommandSent');
    expectSingle('msdyn_iotalert', 'msdyn_Case', 'incident', 'msdyn_incident_msdyn_iotalert_Case');
    expectSingle('msdyn_iotdevicecommand', 'msdyn_Device', 'msdyn_iotdevice', 'msdyn_msdyn_iotdevice_msdyn_iotdevicecommand_Device');
    expectSingle('msdyn_iotdevicecommand', 'msdyn_ParentAlert', 'msdyn_iotalert', 'msdyn_msdyn_iotalert_msdyn_iotdevicecommand_ParentAlert');
    expectSingle('msdyn_iotdevicecommand', 'msdyn_Command', 'msdyn_iotdevicecommanddefinition',
      'msdyn_msdyn_iotdevicecommanddefinition_msdyn_iotdevicecommand_Command');
    expectSingle('msdyn_iotdeviceregistrationhistory', 'msdyn_Device', 'msdyn_iotdevice',
      'msdyn_msdyn_iotdevice_msdyn_iotdeviceregistrationhistory_Device');
    expectSingle('msdyn_iotdevice', 'msdyn_Account', 'account', 'msdyn_account_msdyn_iotdevice_Account');
    expectSingle('msdyn_iotdevice', 'msdyn_Category', 'msdyn_iotdevicecategory', 'msdyn_msdyn_iotdevicecategory_msdyn_iotdevice_Category');
    expectSingle('msdyn_iotsettings', 'msdyn_DefaultIoTProviderInstance', 'msdyn_iotproviderinstance',
      'msdyn_msdyn_iotproviderinstance_msdyn_iotsettings_DefaultIoTProviderInstance');
    expectSingle('incident', 'msdyn_IoTAlert', 'msdyn_iotalert', 'msdyn_msdyn_iotalert_incident_IoTAlert');
    expectSingle('connection', 'record2roleid', 'connectionrole', 'connection_role_connections2');

    // Several-target lookups: one navigation property per target.
    assert.equal(table('incident').navigation('customerid_account')?.target, 'account');
    assert.equal(table('incident').navigation('customerid_contact')?.target, 'contact');
    assert.equal(table('connection').navigation('record2id_msdyn_iotdevice')?.target, 'msdyn_iotdevice');
    assert.equal(table('connection').navigation('record1id_msdyn_customerasset')?.target, 'msdyn_customerasset');

    const nn = table('incident').navigation('msdyn_incident_msdyn_customerasset');
    assert.equal(nn?.kind, 'manyToMany');
    assert.equal(nn?.target, 'msdyn_customerasset');
    assert.equal(table('msdyn_customerasset').navigation('msdyn_incident_msdyn_customerasset')?.target, 'incident');
  });

  it('gives every table distinct property and navigation names, even ignoring case', () => {
    for (const t of model.tables()) {
      const names = [
        ...t.columns.map((c) => (isLookup(c) ? lookupValueProperty(c.logicalName) : c.logicalName)),
        ...t.navigations.map((n) => n.name),
      ];
      const seen = new Map<string, string>();
      for (const n of names) {
        const key = n.toLowerCase();
        assert.ok(!seen.has(key), `${t.logicalName}: '${n}' clashes with '${seen.get(key)}'`);
        seen.set(key, n);
      }
    }
  });

  it('maps to a physical schema with unique table and column names and indexes on existing columns', () => {
    const schema = physicalSchema(model);
    const tableNames = schema.map((t) => t.name);
    assert.equal(new Set(tableNames).size, tableNames.length);
    for (const t of schema) {
      const cols = t.columns.map((c) => c.name);
      assert.equal(new Set(cols).size, cols.length, `duplicate column in ${t.name}`);
      assert.ok(cols.includes(t.primaryKey), `${t.name} primary key`);
      for (const idx of t.indexes) for (const c of idx.columns) assert.ok(cols.includes(c), `${t.name} index on ${c}`);
      // PostgreSQL truncates identifiers beyond 63 bytes.
      for (const c of [t.name, ...cols]) assert.ok(c.length <= 63, c);
    }
  });

  it('points every lookup at an existing table and keeps option values unique', () => {
    for (const t of model.tables()) {
      assert.ok(t.column(t.primaryNameAttribute), `${t.logicalName} primary name`);
      assert.equal(t.column(t.primaryIdAttribute)?.type, 'primarykey');
      for (const c of t.columns) {
        if (isLookup(c)) {
          assert.ok(c.targets.length > 0);
          for (const target of c.targets) {
            if (target !== '*') assert.ok(model.table(target), `${t.logicalName}.${c.logicalName} → ${target}`);
          }
        }
        if (isChoice(c)) {
          const values = c.optionSet.options.map((o) => o.value);
          assert.equal(new Set(values).size, values.length, `${t.logicalName}.${c.logicalName} option values`);
          if (c.defaultValue !== undefined) assert.ok(values.includes(c.defaultValue));
          if (c.type === 'status') {
            const state = t.column('statecode');
            assert.ok(state && isChoice(state));
            for (const o of c.optionSet.options) {
              assert.ok(state.optionSet.options.some((s) => s.value === o.state), `${t.logicalName} status ${o.value} state`);
            }
          }
        }
      }
    }
  });

  it('uses Microsoft option values where clients depend on them', () => {
    const values = (t: string, c: string) => {
      const col = table(t).column(c);
      assert.ok(col && isChoice(col));
      return col.optionSet.options.map((o) => o.value);
    };
    assert.ok(values('incident', 'caseorigincode').includes(700610000));
    assert.deepEqual(values('incident', 'statecode'), [0, 1, 2]);
    assert.deepEqual(values('msdyn_iotalert', 'msdyn_alerttype'), [192350000, 192350001, 192350002, 192350003]);
    assert.deepEqual(values('msdyn_iotdevicecommand', 'msdyn_commandstatus').slice(0, 3), [192350000, 192350001, 192350002]);
    assert.deepEqual(values('msdyn_iotdevice', 'msdyn_registrationstatus'), [192350000, 192350001, 192350002, 192350003, 192350004]);
    assert.equal(table('systemuser').column('statecode'), undefined);
    assert.equal(table('connectionrole').column('ownerid'), undefined);
    assert.ok(table('connectionrole').column('statecode'));
  });

  it('has seed rows whose values the tables accept', () => {
    const ids = standardSeedRows.map((s) => s.id);
    assert.ok(ids.includes(CONNECTED_DEVICE_ROLE_ID));
    assert.ok(ids.includes(IOT_SETTINGS_ID));
    for (const id of ids) assert.equal(id, id.toLowerCase());
    const created = new Set<string>();
    for (const seed of standardSeedRows) {
      const t = table(seed.table);
      for (const [name, value] of Object.entries(seed.row)) {
        const column = t.column(name);
        assert.ok(column, `${seed.table}.${name}`);
        toStoreValue(column, value);
        // Lookups point at rows seeded earlier.
        if (isLookup(column)) assert.ok(created.has(String(value)), `${seed.table}.${name} → ${String(value)}`);
      }
      created.add(seed.id);
    }
    const provider = standardSeedRows.find((s) => s.table === 'msdyn_iotprovider');
    assert.equal(provider?.row.msdyn_name, 'IoT Hub');
  });
});
