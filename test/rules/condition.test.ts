import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { isCcsError } from '../../src/errors/index.js';
import {
  conditionLeaves,
  conditionToJson,
  formatIsoDuration,
  parseCondition,
  parseIsoDuration,
  parsePath,
  resolvePath,
  type ComparisonCondition,
} from '../../src/rules/index.js';

/** The message of the CcsError('InvalidValue') that parsing `input` throws. */
function refusal(input: unknown): string {
  try {
    parseCondition(typeof input === 'string' ? input : JSON.stringify(input));
  } catch (e) {
    assert.ok(isCcsError(e), `a CcsError, not ${String(e)}`);
    assert.equal(e.code, 'InvalidValue');
    return e.message;
  }
  assert.fail(`accepted ${JSON.stringify(input)}`);
}

describe('parseCondition', () => {
  it('parses every kind into a frozen AST', () => {
    const c = parseCondition(JSON.stringify({
      all: [
        { measure: 'Temperature', op: 'gt', value: 70, for: 'PT5M' },
        { measure: 'h', op: 'outside', min: 10, max: 90 },
        { measure: 'h', op: 'between', min: { property: 'lo' }, max: { property: 'hi', default: 5 } },
        { measure: 'readings.temp', aggregate: 'avg', window: 'PT5M', op: 'ge', value: { property: 'limits.avg' } },
        { aggregate: 'count', window: 'PT1M', op: 'gt', value: 100 },
        { measure: 'a[0].b', rateOfChange: 'PT1M', op: 'lt', value: -5 },
        { any: [{ noDataFor: 'PT10M' }, { noDataFor: 'PT1H', measure: 'gps' }, { measure: 'door', op: 'eq', value: 'open' }] },
      ],
    }));
    assert.ok(Object.isFrozen(c));
    const leaves = conditionLeaves(c);
    assert.equal(leaves.length, 9);
    assert.ok(leaves.every((l) => Object.isFrozen(l)));
    assert.deepEqual(leaves[0], {
      kind: 'comparison',
      measure: 'Temperature',
      source: { kind: 'value' },
      test: { op: 'gt', value: { kind: 'constant', value: 70 } },
      forMs: 300_000,
    });
    assert.deepEqual((leaves[3] as ComparisonCondition).source, { kind: 'aggregate', aggregate: 'avg', windowMs: 300_000 });
    assert.equal((leaves[4] as ComparisonCondition).measure, null);
    assert.deepEqual((leaves[5] as ComparisonCondition).source, { kind: 'rate', periodMs: 60_000 });
    assert.deepEqual(leaves[7], { kind: 'noData', afterMs: 3_600_000, measure: 'gps' });
    assert.deepEqual((leaves[2] as ComparisonCondition).test, {
      op: 'between',
      min: { kind: 'property', path: 'lo', default: null },
      max: { kind: 'property', path: 'hi', default: 5 },
    });
  });

  it('accepts an already parsed value, and writes a condition back as equivalent JSON', () => {
    const json = { any: [{ measure: 'x', aggregate: 'max', window: 'PT90S', op: 'gt', value: 1, for: 'P1D' }, { noDataFor: 'PT0.5M' }] };
    const c = parseCondition(json);
    assert.deepEqual(conditionToJson(c), {
      any: [{ measure: 'x', aggregate: 'max', window: 'PT1M30S', op: 'gt', value: 1, for: 'P1D' }, { noDataFor: 'PT30S' }],
    });
    assert.deepEqual(parseCondition(conditionToJson(c)), c);
  });

  it('names the field and the JSON path of every refusal', () => {
    const cases: [unknown, string][] = [
      ['{"measure":', "ccs_condition: is not valid JSON"],
      [[1], "ccs_condition: a condition must be a JSON object (at $)"],
      [{}, "ccs_condition: a condition must have exactly one of 'measure', 'all', 'any', 'noDataFor' (at $)"],
      [{ all: [], any: [] }, "ccs_condition: a condition must have exactly one of 'measure', 'all', 'any', 'noDataFor' (found 'all', 'any') (at $)"],
      [{ all: [] }, "ccs_condition: 'all' must be a non-empty array of conditions (at $.all)"],
      [
        { all: [{ measure: 'a', op: 'gt', value: 1 }, { measure: 'b', op: 'greater', value: 1 }] },
        "ccs_condition: 'op' must be one of gt, ge, lt, le, eq, ne, outside, between (at $.all[1].op)",
      ],
      [{ measure: 'a', value: 1 }, "ccs_condition: 'op' is required (at $.op)"],
      [{ measure: 'a', op: 'gt' }, "ccs_condition: 'value' is required with op 'gt' (at $.value)"],
      [{ measure: 'a', op: 'gt', valu: 1 }, "ccs_condition: unknown property 'valu' (expected 'measure', 'op', 'value', 'min', 'max', 'for', 'aggregate', 'window', 'rateOfChange') (at $.valu)"],
      [{ measure: 'a', op: 'gt', value: '70' }, `ccs_condition: 'value' must be a number or {"property":"<path>"} (at $.value)`],
      [{ measure: 'a', op: 'eq', value: null }, `ccs_condition: 'value' must be a number, a string, true, false or {"property":"<path>"} (at $.value)`],
      [{ measure: 'a', op: 'gt', value: 1e101 }, "ccs_condition: 'value' must be a number between -1e+100 and 1e+100 (at $.value)"],
      [{ measure: 'a', op: 'gt', value: { prop: 'x' } }, "ccs_condition: unknown property 'prop' (expected 'property', 'default') (at $.value.prop)"],
      [{ measure: 'a', op: 'gt', value: { property: '' } }, "ccs_condition: 'property' must not be empty (at $.value.property)"],
      [{ measure: 'a', op: 'outside', min: 1 }, "ccs_condition: 'max' is required with op 'outside' (at $.max)"],
      [{ measure: 'a', op: 'outside', value: 1 }, "ccs_condition: 'value' is not allowed with op 'outside' (use 'min' and 'max') (at $.value)"],
      [{ measure: 'a', op: 'between', min: 5, max: 1 }, "ccs_condition: 'min' must not be greater than 'max' (at $.min)"],
      [{ measure: 'a', op: 'gt', value: 1, min: 0 }, "ccs_condition: 'min' is only allowed with op 'outside' or 'between' (at $.min)"],
      [{ measure: 'a..b', op: 'gt', value: 1 }, "ccs_condition: 'measure' has an empty segment at character 3 (at $.measure)"],
      [{ measure: 'a[x]', op: 'gt', value: 1 }, `ccs_condition: 'measure' must have a number or a quoted key between "[" and "]" at character 2 (at $.measure)`],
      [{ measure: 7, op: 'gt', value: 1 }, `ccs_condition: 'measure' must be a path into the message body, such as "Temperature" or "readings.temp" (at $.measure)`],
      [{ op: 'gt', value: 1 }, "ccs_condition: a condition must have exactly one of 'measure', 'all', 'any', 'noDataFor' (at $)"],
      [{ measure: 'a', op: 'gt', value: 1, for: '5 minutes' }, `ccs_condition: 'for' must be an ISO 8601 duration such as "PT5M", "PT1H30M" or "P1D" (at $.for)`],
      [{ measure: 'a', op: 'gt', value: 1, for: 'P1M' }, "ccs_condition: 'for' must not use years or months (their length varies); use days, hours, minutes or seconds (at $.for)"],
      [{ measure: 'a', op: 'gt', value: 1, for: 'PT0.5S' }, "ccs_condition: 'for' must be at least PT1S (at $.for)"],
      [{ measure: 'a', aggregate: 'median', window: 'PT1M', op: 'gt', value: 1 }, "ccs_condition: 'aggregate' must be one of avg, min, max, sum, count (at $.aggregate)"],
      [{ measure: 'a', aggregate: 'avg', op: 'gt', value: 1 }, `ccs_condition: 'window' is required with 'aggregate' (an ISO 8601 duration such as "PT5M") (at $.window)`],
      [{ measure: 'a', aggregate: 'avg', window: 'P2D', op: 'gt', value: 1 }, "ccs_condition: 'window' must be at most P1D (at $.window)"],
      [{ measure: 'a', window: 'PT1M', op: 'gt', value: 1 }, "ccs_condition: 'window' is only allowed with 'aggregate' (at $.window)"],
      [{ aggregate: 'avg', window: 'PT1M', op: 'gt', value: 1 }, "ccs_condition: 'measure' is required (at $.measure)"],
      [{ measure: 'a', aggregate: 'avg', window: 'PT1M', op: 'eq', value: 'x' }, `ccs_condition: 'value' must be a number or {"property":"<path>"} (at $.value)`],
      [{ measure: 'a', aggregate: 'avg', window: 'PT1M', rateOfChange: 'PT1M', op: 'gt', value: 1 }, "ccs_condition: 'aggregate' and 'rateOfChange' cannot be combined (at $.rateOfChange)"],
      [{ measure: 'a', rateOfChange: 'P2D', op: 'gt', value: 1 }, "ccs_condition: 'rateOfChange' must be at most P1D (at $.rateOfChange)"],
      [{ noDataFor: 'P31D' }, "ccs_condition: 'noDataFor' must be at most P30D (at $.noDataFor)"],
      [{ noDataFor: 'PT1M', op: 'gt' }, "ccs_condition: unknown property 'op' (expected 'noDataFor', 'measure') (at $.op)"],
      [{ any: [{ all: [{ any: [{ all: [{ any: [{ all: [{ noDataFor: 'PT1M' }] }] }] }] }] }] }, "ccs_condition: conditions must not nest deeper than 6 levels (at $.any[0].all[0].any[0].all[0].any[0].all[0])"],
      [{ any: Array.from({ length: 40 }, () => ({ noDataFor: 'PT1M' })) }, "ccs_condition: a rule must have at most 32 conditions (at $.any[31])"],
      [{ any: Array.from({ length: 9 }, () => ({ measure: 'a', aggregate: 'avg', window: 'PT1M', op: 'gt', value: 1 })) }, "ccs_condition: a rule must have at most 8 windows (at $.any[8].window)"],
      ['x'.repeat(8001), 'ccs_condition: must be at most 8000 characters (at $)'],
    ];
    for (const [input, message] of cases) {
      const got = refusal(input);
      assert.ok(got.startsWith(message), `${JSON.stringify(input).slice(0, 80)}\n  got:      ${got}\n  expected: ${message}`);
    }
  });

  it('uses the field name it is given', () => {
    assert.throws(() => parseCondition('{}', 'Condition'), /^CcsError: Condition: /);
  });
});

describe('durations', () => {
  it('reads ISO 8601 durations with days, hours, minutes, seconds and fractions', () => {
    const cases: [string, number][] = [['PT5M', 300_000], ['PT1H30M', 5_400_000], ['P1D', 86_400_000], ['P1W', 604_800_000],
      ['PT0.5S', 500], ['PT1,5S', 1500], ['P1DT2H', 93_600_000], ['pt10m', 600_000], ['PT90S', 90_000]];
    for (const [text, ms] of cases) assert.equal(parseIsoDuration(text), ms, text);
    for (const text of ['P', 'PT', 'P1DT', '5M', 'PT5', 'P1Y', 'P2M', 'PT-5M', '']) assert.equal(typeof parseIsoDuration(text), 'object', text);
  });

  it('writes the shortest form', () => {
    assert.equal(formatIsoDuration(300_000), 'PT5M');
    assert.equal(formatIsoDuration(86_400_000), 'P1D');
    assert.equal(formatIsoDuration(93_600_000 + 1500), 'P1DT2H1.5S');
    assert.equal(formatIsoDuration(0), 'PT0S');
  });
});

describe('paths', () => {
  it('parses dots, indexes and quoted keys', () => {
    const cases: [string, string[]][] = [
      ['Temperature', ['Temperature']],
      ['readings.temp', ['readings', 'temp']],
      ['a.0.b', ['a', '0', 'b']],
      ['a[0].b', ['a', '0', 'b']],
      ['a[10][2]', ['a', '10', '2']],
      ['[0].x', ['0', 'x']],
      ['a["x.y"].z', ['a', 'x.y', 'z']],
      ["a['q\\'s']", ['a', "q's"]],
      ['temp C', ['temp C']],
    ];
    for (const [text, segments] of cases) {
      const p = parsePath(text);
      assert.ok(!('error' in p), `${text}: ${'error' in p ? p.error : ''}`);
      assert.deepEqual(p.segments, segments, text);
    }
    for (const text of ['', '.a', 'a.', 'a..b', 'a[', 'a[x]', 'a]', 'a[0]b', 'a["x]', 'x'.repeat(201), Array(18).fill('a').join('.')]) {
      assert.ok('error' in parsePath(text), text);
    }
  });

  it('reads arrays by index and objects by key, own properties only', () => {
    const body = { a: [{ b: 1 }, { b: 2 }], o: { 0: 'zero' }, s: 'text' };
    const at = (text: string): unknown => {
      const p = parsePath(text);
      assert.ok(!('error' in p));
      return resolvePath(body, p);
    };
    assert.equal(at('a.1.b'), 2);
    assert.equal(at('a[0].b'), 1);
    assert.equal(at('o.0'), 'zero');
    assert.equal(at('a.x'), undefined);
    assert.equal(at('a.01.b'), undefined, 'not a canonical index');
    assert.equal(at('s.length'), undefined);
    assert.equal(at('a.length'), undefined);
    assert.equal(at('toString'), undefined);
    assert.equal(at('o.constructor'), undefined);
  });
});
