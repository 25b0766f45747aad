import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseAggregationRule } from '../../src/connector/index.js';
import { Model, standardManyToMany, standardTables } from '../../src/metadata/index.js';

const alert = new Model(standardTables, standardManyToMany).table('msdyn_iotalert')!;

describe('IoT Settings alert aggregation rule', () => {
  test('empty means the default rule; a JSON array or a comma-separated list names the match columns', () => {
    assert.equal(parseAggregationRule(null, alert), undefined);
    assert.equal(parseAggregationRule('  ', alert), undefined);
    assert.equal(parseAggregationRule('[]', alert), undefined);
    assert.deepEqual(parseAggregationRule('["msdyn_device", "msdyn_alerttype"]', alert), ['msdyn_device', 'msdyn_alerttype']);
    assert.deepEqual(parseAggregationRule('msdyn_CustomerAsset, msdyn_alerttype,,msdyn_alerttype', alert), ['msdyn_customerasset', 'msdyn_alerttype']);
  });

  test('unknown, platform and hierarchy columns and malformed JSON are rejected with the setting\'s name', () => {
    for (const bad of ['msdyn_nope', 'createdon', 'msdyn_iotalertid', 'msdyn_parentalert', 'msdyn_parentalerttoken', '[1]', '["msdyn_device"', '{"a":1}']) {
      assert.throws(() => parseAggregationRule(bad, alert), (e: Error) => /msdyn_iotalertaggregationrule/.test(e.message), bad);
    }
  });
});
