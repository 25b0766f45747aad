import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CcsError } from '../../src/errors/index.js';
import {
  ALERT_TYPE,
  DEFAULT_DESCRIPTION,
  RULE_SCOPE,
  createEvaluator,
  importDeviceRules,
  ruleFromRecord,
  validateRuleRecord,
} from '../../src/rules/index.js';
import { Device } from './helpers.js';

const id = '6f1c2a9e-1b2c-4d3e-8f40-000000000001';
const category = '6f1c2a9e-1b2c-4d3e-8f40-0000000000ca';
const condition = '{"measure":"Temperature","op":"gt","value":70}';

function refused(row: Record<string, unknown>, message: string): void {
  assert.throws(() => validateRuleRecord(row), (e: unknown) => {
    assert.ok(e instanceof CcsError);
    assert.equal(e.code, 'InvalidValue');
    assert.ok(e.message.startsWith(message), `got ${e.message}`);
    return true;
  });
}

describe('ruleFromRecord', () => {
  it('applies the defaults the metadata cannot carry', () => {
    const r = ruleFromRecord({ ccs_iotruleid: id.toUpperCase(), ccs_name: 'Hot', ccs_condition: condition });
    assert.equal(r.id, id, 'ids compare lower-case');
    assert.deepEqual(r.scope, { kind: 'all' });
    assert.equal(r.alertType, ALERT_TYPE.Anomaly);
    assert.equal(r.description, DEFAULT_DESCRIPTION);
    assert.equal(r.suppressSeconds, 60);
    assert.equal(r.ruleOutput, null);
    assert.equal(r.active, true);
    assert.ok(Object.isFrozen(r));
  });

  it('reads store rows and Web API rows (lookups as _x_value) alike', () => {
    const store = ruleFromRecord({ ccs_iotruleid: id, ccs_name: 'a', ccs_condition: condition, ccs_scope: RULE_SCOPE.Category, ccs_category: category });
    const web = ruleFromRecord({ ccs_iotruleid: id, ccs_name: 'a', ccs_condition: condition, ccs_scope: RULE_SCOPE.Category, _ccs_category_value: category });
    assert.deepEqual(store.scope, { kind: 'category', categoryId: category });
    assert.deepEqual(web.scope, store.scope);
  });

  it('takes an unset scope from the lookup that is set', () => {
    assert.deepEqual(ruleFromRecord({ ccs_iotruleid: id, ccs_name: 'a', ccs_condition: condition, ccs_device: category }).scope, { kind: 'device', deviceId: category });
    assert.deepEqual(ruleFromRecord({ ccs_iotruleid: id, ccs_name: 'a', ccs_condition: condition, ccs_category: category }).scope, { kind: 'category', categoryId: category });
  });

  it('reads the state: inactive rules are kept but marked', () => {
    assert.equal(ruleFromRecord({ ccs_iotruleid: id, ccs_name: 'a', ccs_condition: condition, statecode: 1 }).active, false);
  });

  it('refuses invalid values with the column name, for the Web API to answer 400', () => {
    const base = { ccs_name: 'Hot', ccs_condition: condition };
    refused({ ccs_condition: condition }, 'ccs_name: is required');
    refused({ ...base, ccs_name: 'x'.repeat(101) }, 'ccs_name: must be at most 100 characters');
    refused({ ccs_name: 'a' }, 'ccs_condition: is required');
    refused({ ...base, ccs_condition: { measure: 'a' } }, 'ccs_condition: must be a JSON string');
    refused({ ...base, ccs_condition: '{"measure":"a","op":"gt","value":"x"}' }, "ccs_condition: 'value' must be a number");
    refused({ ...base, ccs_scope: RULE_SCOPE.Category }, 'ccs_category: is required when ccs_scope is Category (192350001)');
    refused({ ...base, ccs_scope: RULE_SCOPE.Device }, 'ccs_device: is required when ccs_scope is Device (192350002)');
    refused({ ...base, ccs_scope: 5 }, 'ccs_scope: must be one of 192350000, 192350001, 192350002');
    refused({ ...base, ccs_alerttype: 1 }, 'ccs_alerttype: must be one of 192350000, 192350001, 192350002, 192350003');
    refused({ ...base, ccs_suppressseconds: 86_401 }, 'ccs_suppressseconds: must be between 0 and 86400');
    refused({ ...base, ccs_suppressseconds: 1.5 }, 'ccs_suppressseconds: must be a whole number');
    refused({ ...base, ccs_description: 'x'.repeat(501) }, 'ccs_description: must be at most 500 characters');
    assert.throws(() => ruleFromRecord(base), /ccs_iotruleid: is required/);
  });
});

describe('importDeviceRules (devicerules.json)', () => {
  const reference = '[{"DeviceType":"Thermostat","Temperature":70.0,"Humidity":null,"TemperatureRuleOutput":"AlarmTemp","HumidityRuleOutput":null}]';

  it('turns the ARM template\'s reference rule into the equivalent rule', () => {
    const [imported, ...rest] = importDeviceRules(reference);
    assert.equal(rest.length, 0, 'a null threshold is no rule');
    assert.equal(imported.categoryName, 'Thermostat');
    assert.equal(imported.deviceId, null);
    assert.deepEqual(imported.values, {
      ccs_name: 'Thermostat: Temperature > 70',
      ccs_scope: RULE_SCOPE.Category,
      ccs_condition: '{"measure":"Temperature","op":"gt","value":70}',
      ccs_alerttype: ALERT_TYPE.Anomaly,
      ccs_ruleoutput: 'AlarmTemp',
      ccs_description: DEFAULT_DESCRIPTION,
      ccs_suppressseconds: 60,
    });
  });

  it('imports every measure, the older per-device format, and evaluates like Stream Analytics', () => {
    const rules = importDeviceRules([
      { DeviceType: 'Thermostat', Temperature: 70, Humidity: 48, TemperatureRuleOutput: 'TemperatureAlert', HumidityRuleOutput: 'HumidityAlert' },
      { DeviceID: 'pump-1', 'flow.rate': 12.5 },
      { Pressure: 1050 },
    ]);
    assert.deepEqual(rules.map((r) => [r.values.ccs_name, r.values.ccs_scope, r.categoryName, r.deviceId, r.values.ccs_ruleoutput]), [
      ['Thermostat: Temperature > 70', RULE_SCOPE.Category, 'Thermostat', null, 'TemperatureAlert'],
      ['Thermostat: Humidity > 48', RULE_SCOPE.Category, 'Thermostat', null, 'HumidityAlert'],
      ['pump-1: flow.rate > 12.5', RULE_SCOPE.Device, null, 'pump-1', null],
      ['All devices: Pressure > 1050', RULE_SCOPE.AllDevices, null, null, null],
    ]);
    // The caller resolves the names; here the category and device ids are stand-ins.
    const defs = rules.map((r, i) => ruleFromRecord({
      ...r.values,
      ccs_iotruleid: `imported-${i}`,
      ccs_category: r.categoryName === null ? null : category,
      ccs_device: r.deviceId === null ? null : id,
    }));
    const d = new Device(createEvaluator(defs), 'thermostat-1');
    const fired = d.send(0, { Temperature: 71, Humidity: 40, 'flow.rate': 99, Pressure: 900 }, { device: { categoryId: category } });
    assert.deepEqual(fired.map((f) => [f.readingType, f.reading, f.threshold, f.ruleOutput, f.description]), [
      ['Temperature', 71, 70, 'TemperatureAlert', 'Temperature reading of 71 exceeded a threshold of 70'],
    ]);
    const pump = new Device(createEvaluator(defs), 'pump-1');
    assert.deepEqual(pump.send(0, { 'flow.rate': 13 }, { device: { recordId: id } }).map((f) => f.readingType), ['["flow.rate"]']);
  });

  it('refuses what is not a rule file, naming where', () => {
    const cases: [unknown, string][] = [
      ['[{', 'devicerules.json: is not valid JSON'],
      ['[1]', 'devicerules.json: each rule entry must be an object (at $[0])'],
      ['[{"DeviceType":"T","Temperature":"70"}]', "devicerules.json: 'Temperature' must be a number (the threshold) or null (at $[0].Temperature)"],
      ['[{"DeviceType":7,"Temperature":70}]', "devicerules.json: 'DeviceType' must be a string or null (at $[0].DeviceType)"],
      ['[{"Temperature":70,"TemperatureRuleOutput":5}]', "devicerules.json: 'TemperatureRuleOutput' must be a string or null (at $[0].TemperatureRuleOutput)"],
    ];
    for (const [input, message] of cases) {
      assert.throws(() => importDeviceRules(input), (e: unknown) => e instanceof CcsError && e.message.startsWith(message), message);
    }
  });

  it('reads a file with a byte-order mark, and a single object', () => {
    assert.equal(importDeviceRules(`\uFEFF${reference}`).length, 1);
    assert.equal(importDeviceRules({ DeviceType: 'Thermostat', Temperature: 70 }).length, 1);
  });
});
