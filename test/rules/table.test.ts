import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { renderCsdl } from '../../src/metadata/csdl.js';
import { isChoice, Model } from '../../src/metadata/index.js';
import { standardManyToMany, standardTables } from '../../src/metadata/standard/index.js';
import { ALERT_TYPE, RULE_SCOPE } from '../../src/rules/index.js';

const model = new Model(standardTables, standardManyToMany);

function table() {
  const t = model.table('ccs_iotrule');
  assert.ok(t, 'ccs_iotrule is a standard table');
  return t;
}

describe('ccs_iotrule table', () => {
  it('is in the standard model under its set name, with its primary name', () => {
    assert.equal(model.tableBySet('ccs_iotrules')?.logicalName, 'ccs_iotrule');
    assert.equal(table().primaryIdAttribute, 'ccs_iotruleid');
    assert.equal(table().primaryNameAttribute, 'ccs_name');
  });

  it('has the columns of the rule, with their types and limits', () => {
    const t = table();
    const expect: [string, string, Record<string, unknown>][] = [
      ['ccs_name', 'string', { maxLength: 100, requiredLevel: 'ApplicationRequired' }],
      ['ccs_scope', 'picklist', { defaultValue: RULE_SCOPE.AllDevices }],
      ['ccs_category', 'lookup', { targets: ['msdyn_iotdevicecategory'] }],
      ['ccs_device', 'lookup', { targets: ['msdyn_iotdevice'] }],
      ['ccs_condition', 'memo', { maxLength: 8000, requiredLevel: 'ApplicationRequired' }],
      ['ccs_alerttype', 'picklist', { defaultValue: ALERT_TYPE.Anomaly }],
      ['ccs_description', 'string', { maxLength: 500 }],
      ['ccs_ruleoutput', 'string', { maxLength: 100 }],
      ['ccs_suppressseconds', 'integer', { minValue: 0, maxValue: 86400 }],
      ['statecode', 'state', {}],
      ['statuscode', 'status', {}],
    ];
    for (const [name, type, props] of expect) {
      const c = t.column(name);
      assert.ok(c, name);
      assert.equal(c.type, type, name);
      for (const [k, v] of Object.entries(props)) assert.deepEqual((c as unknown as Record<string, unknown>)[k], v, `${name}.${k}`);
    }
  });

  it('has option values that are the rules module\'s, and Microsoft\'s alert types', () => {
    const values = (name: string) => {
      const c = table().column(name);
      assert.ok(c && isChoice(c));
      return Object.fromEntries(c.optionSet.options.map((o) => [o.value, o.label]));
    };
    assert.deepEqual(values('ccs_scope'), {
      [RULE_SCOPE.AllDevices]: 'All devices',
      [RULE_SCOPE.Category]: 'Category',
      [RULE_SCOPE.Device]: 'Device',
    });
    const alertTypes = model.table('msdyn_iotalert')?.column('msdyn_alerttype');
    assert.ok(alertTypes && isChoice(alertTypes));
    assert.deepEqual(values('ccs_alerttype'), Object.fromEntries(alertTypes.optionSet.options.map((o) => [o.value, o.label])));
    assert.deepEqual(Object.keys(values('ccs_alerttype')).map(Number), Object.values(ALERT_TYPE));
  });

  it('exposes the ccs_Category and ccs_Device navigation properties, and their partners', () => {
    for (const [nav, target, relationship] of [
      ['ccs_Category', 'msdyn_iotdevicecategory', 'ccs_msdyn_iotdevicecategory_ccs_iotrule_Category'],
      ['ccs_Device', 'msdyn_iotdevice', 'ccs_msdyn_iotdevice_ccs_iotrule_Device'],
    ] as const) {
      const n = table().navigation(nav);
      assert.ok(n, nav);
      assert.equal(n.kind, 'single');
      assert.equal(n.target, target);
      assert.equal(n.relationship.schemaName, relationship);
      const back = model.table(target)?.navigation(relationship);
      assert.ok(back, `${target}.${relationship}`);
      assert.equal(back.kind, 'collection');
      assert.equal(back.target, 'ccs_iotrule');
    }
  });

  it('appears in $metadata with its navigation properties', () => {
    const csdl = renderCsdl(model, []);
    const start = csdl.indexOf('<EntityType Name="ccs_iotrule"');
    assert.ok(start >= 0);
    const entity = csdl.slice(start, csdl.indexOf('</EntityType>', start));
    assert.match(entity, /<NavigationProperty Name="ccs_Category" Type="Microsoft\.Dynamics\.CRM\.msdyn_iotdevicecategory"/);
    assert.match(entity, /<NavigationProperty Name="ccs_Device" Type="Microsoft\.Dynamics\.CRM\.msdyn_iotdevice"/);
    assert.match(entity, /<Property Name="_ccs_category_value" Type="Edm\.Guid"/);
    assert.match(csdl, /<EntitySet Name="ccs_iotrules" EntityType="Microsoft\.Dynamics\.CRM\.ccs_iotrule"/);
  });
});
