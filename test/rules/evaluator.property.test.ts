import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { isCcsError } from '../../src/errors/index.js';
import {
  conditionToJson,
  createEvaluator,
  parseCondition,
  restoreState,
  ruleFromRecord,
  type DeviceState,
  type Firing,
  type RuleDefinition,
} from '../../src/rules/index.js';
import { T0 } from './helpers.js';

/**
 * Whatever devices send, in whatever order, the evaluator never throws, its state stays plain JSON and small, and a
 * restart from that JSON at any point changes nothing in what fires.
 */

const MEASURES = ['Temperature', 'Humidity', 'readings.temp', 'readings.list[1]', 'Status'];
const DURATIONS = ['PT1S', 'PT10S', 'PT1M', 'PT5M', 'PT1H'];

const number = fc.oneof(fc.integer({ min: -100, max: 200 }), fc.double({ min: -1e3, max: 1e3, noNaN: true }));
const operand = fc.oneof(
  { weight: 4, arbitrary: number },
  { weight: 1, arbitrary: fc.record({ property: fc.constantFrom('maxTemp', 'limits.lo', 'missing') }, { requiredKeys: ['property'] }) },
  { weight: 1, arbitrary: fc.record({ property: fc.constant('maxTemp'), default: number }) },
);

/** Valid conditions of every kind, nested. */
const condition: fc.Arbitrary<unknown> = fc.letrec<{ node: unknown; leaf: unknown }>((tie) => ({
  leaf: fc.oneof(
    fc.record({ measure: fc.constantFrom(...MEASURES), op: fc.constantFrom('gt', 'ge', 'lt', 'le', 'eq', 'ne'), value: operand }),
    fc.record({ measure: fc.constantFrom(...MEASURES), op: fc.constantFrom('gt', 'lt'), value: number, for: fc.constantFrom(...DURATIONS) }),
    fc.tuple(fc.constantFrom(...MEASURES), fc.constantFrom('outside', 'between'), number, number)
      .map(([measure, op, a, b]) => ({ measure, op, min: Math.min(a, b), max: Math.max(a, b) })),
    fc.record({
      measure: fc.constantFrom(...MEASURES),
      aggregate: fc.constantFrom('avg', 'min', 'max', 'sum', 'count'),
      window: fc.constantFrom(...DURATIONS),
      op: fc.constantFrom('gt', 'lt'),
      value: number,
    }),
    fc.record({ aggregate: fc.constant('count'), window: fc.constantFrom(...DURATIONS), op: fc.constantFrom('gt', 'lt'), value: fc.integer({ min: 0, max: 20 }) }),
    fc.record({ measure: fc.constantFrom(...MEASURES), rateOfChange: fc.constantFrom(...DURATIONS), op: fc.constantFrom('gt', 'lt'), value: number }),
    fc.record({ noDataFor: fc.constantFrom(...DURATIONS), measure: fc.constantFrom(...MEASURES) }, { requiredKeys: ['noDataFor'] }),
  ),
  // Within the grammar's limits: at most 1 + 2 + 4 + 8 conditions, 8 of them windows, 4 levels.
  node: fc.oneof(
    { maxDepth: 3, withCrossShrink: true },
    tie('leaf'),
    fc.record({ all: fc.array(tie('node'), { minLength: 1, maxLength: 2 }) }),
    fc.record({ any: fc.array(tie('node'), { minLength: 1, maxLength: 2 }) }),
  ),
})).node;

const value = fc.oneof(
  { weight: 6, arbitrary: number },
  { weight: 1, arbitrary: fc.string({ maxLength: 5 }) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constantFrom(null, 1e200, -1e200, Number.MAX_VALUE, Infinity, -Infinity, Number.NaN, -0) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);
const body = fc.oneof(
  { weight: 6, arbitrary: fc.record({
    Temperature: value,
    Humidity: value,
    readings: fc.oneof(fc.record({ temp: value, list: fc.array(value, { maxLength: 3 }) }, { requiredKeys: [] }), value),
    Status: fc.constantFrom('ok', 'fault', 3),
  }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: fc.constantFrom(undefined, null, 'not json', 42, [], [1, 2]) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

type Step =
  | { readonly kind: 'reading'; readonly dt: number; readonly body: unknown; readonly reported: unknown; readonly restart: boolean }
  | { readonly kind: 'tick'; readonly dt: number; readonly restart: boolean };

const dt = fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: -5000, max: 0 }), fc.integer({ min: 0, max: 2 * 3600_000 }));
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({
    kind: fc.constant('reading' as const),
    dt,
    body,
    reported: fc.oneof(fc.constant(undefined), fc.record({ maxTemp: value, limits: fc.record({ lo: value }) }, { requiredKeys: [] })),
    restart: fc.boolean(),
  }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tick' as const), dt, restart: fc.boolean() }) },
);

const FIXED: unknown[] = [
  { measure: 'Temperature', op: 'gt', value: 70 },
  { measure: 'Temperature', op: 'gt', value: 70, for: 'PT1M' },
  { measure: 'readings.temp', aggregate: 'avg', window: 'PT5M', op: 'gt', value: 50 },
  { measure: 'Humidity', aggregate: 'max', window: 'PT1M', op: 'gt', value: 50 },
  { measure: 'Temperature', rateOfChange: 'PT1M', op: 'gt', value: 10 },
  { noDataFor: 'PT10M' },
  { measure: 'Temperature', op: 'gt', value: { property: 'maxTemp', default: 80 } },
  { any: [{ measure: 'Status', op: 'eq', value: 'fault' }, { all: [{ measure: 'Humidity', op: 'outside', min: 0, max: 100 }, { aggregate: 'count', window: 'PT10S', op: 'gt', value: 3 }] }] },
];

function rules(conditions: readonly unknown[]): RuleDefinition[] {
  return conditions.map((c, i) => ruleFromRecord({
    ccs_iotruleid: `rule-${i}`,
    ccs_name: `rule ${i}`,
    ccs_condition: JSON.stringify(c),
    ccs_suppressseconds: i % 3 === 0 ? 0 : 60,
  }));
}

/** Plain JSON: no undefined, NaN, Infinity, functions or class instances anywhere. */
function assertPlainJson(v: unknown, path = '$'): void {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    assert.ok(Number.isFinite(v), `${path} is ${v}`);
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((x, i) => assertPlainJson(x, `${path}[${i}]`));
    return;
  }
  assert.ok(typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype, `${path} is not a plain object`);
  for (const [k, x] of Object.entries(v as object)) assertPlainJson(x, `${path}.${k}`);
}

function assertBounded(s: DeviceState): void {
  for (const rs of s.rules) {
    assert.ok(rs.sup.length <= 8, 'suppression list');
    for (const ls of rs.leaves) assert.ok(ls.b === null || ls.b.length <= 61 * 5, `window of ${ls.b?.length}`);
  }
  assert.ok(JSON.stringify(s).length < 64_000, 'state size');
}

describe('evaluator properties', () => {
  it('random readings never throw; the state stays plain, bounded JSON; restarts change nothing', () => {
    fc.assert(
      fc.property(fc.array(condition, { maxLength: 3 }), fc.array(step, { minLength: 1, maxLength: 60 }), (random, steps) => {
        const defs = rules([...FIXED, ...random]);
        const live = createEvaluator(defs);
        let a: DeviceState | undefined;
        let b: DeviceState | undefined;
        let restarted = createEvaluator(defs);
        const firedA: Firing[] = [];
        const firedB: Firing[] = [];
        let time = T0;
        for (const s of steps) {
          time += s.dt;
          if (s.kind === 'reading') {
            const reading = {
              deviceId: 'd',
              time,
              body: s.body,
              messageId: `m${time}`,
              ...(s.reported === undefined ? {} : { reported: s.reported as Record<string, unknown> }),
            };
            const ra = live.evaluate(a, reading);
            a = ra.state;
            firedA.push(...ra.firings);
            const rb = restarted.evaluate(b, reading);
            b = rb.state;
            firedB.push(...rb.firings);
          } else if (a !== undefined && b !== undefined) {
            firedA.push(...live.tick(a, time).firings);
            firedB.push(...restarted.tick(b, time).firings);
          }
          if (b !== undefined) {
            assertPlainJson(b);
            assertBounded(b);
            if (s.restart) {
              b = restoreState(JSON.parse(JSON.stringify(b)));
              assert.ok(b);
              restarted = createEvaluator(defs);
            }
          }
        }
        assert.equal(JSON.stringify(firedB), JSON.stringify(firedA));
      }),
      { numRuns: 300 },
    );
  });

  it('every generated condition parses, and writes back as JSON that parses to the same AST', () => {
    fc.assert(
      fc.property(condition, (c) => {
        const ast = parseCondition(JSON.stringify(c));
        assert.deepEqual(parseCondition(JSON.stringify(conditionToJson(ast))), ast);
      }),
      { numRuns: 500 },
    );
  });

  it('parseCondition refuses anything else with a CcsError that names ccs_condition, never another error', () => {
    const keys = fc.constantFrom('measure', 'op', 'value', 'min', 'max', 'for', 'aggregate', 'window', 'rateOfChange', 'noDataFor', 'all', 'any', 'property', 'default');
    const scalar = fc.oneof(fc.constantFrom('gt', 'outside', 'avg', 'PT5M', 'P1M', 'a.b', 'a[', '', 'count'), fc.double(), fc.boolean(), fc.constant(null));
    const nearlyValid: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        scalar,
        fc.array(tie('v'), { maxLength: 3 }),
        fc.dictionary(keys, tie('v'), { maxKeys: 5 }),
      ),
    })).v;
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.string(), nearlyValid), (input) => {
        try {
          parseCondition(input);
        } catch (e) {
          assert.ok(isCcsError(e), String(e));
          assert.equal(e.code, 'InvalidValue');
          assert.match(e.message, /^ccs_condition: .* \(at \$[^ ]*\)$/s);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
