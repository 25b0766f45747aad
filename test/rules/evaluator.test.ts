import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { createEvaluator, restoreState, toAlertData, type DeviceState } from '../../src/rules/index.js';
import { Device, M, S, T0, device, rule, times } from './helpers.js';

const hot = { measure: 'Temperature', op: 'gt', value: 70 };

describe('comparison', () => {
  it('fires when a reading crosses the threshold, and not below it', () => {
    const d = device(rule(hot));
    assert.deepEqual(d.send(0, { Temperature: 65 }), []);
    assert.deepEqual(d.send(0, { Temperature: 70 }), [], 'gt is strict');
    const [f] = d.send(1 * S, { Temperature: 71 });
    assert.equal(f.reading, 71);
    assert.equal(f.threshold, 70);
    assert.equal(f.readingType, 'Temperature');
  });

  it('applies each operator with its own boundary', () => {
    const cases: [string, number, number[]][] = [
      ['gt', 70, [71]],
      ['ge', 70, [70, 71]],
      ['lt', 70, [69]],
      ['le', 70, [69, 70]],
      ['eq', 70, [70]],
      ['ne', 70, [69, 71]],
    ];
    for (const [op, value, firing] of cases) {
      for (const reading of [69, 70, 71]) {
        const d = device(rule({ measure: 't', op, value }));
        const fired = d.send(0, { t: reading }).length === 1;
        assert.equal(fired, firing.includes(reading), `${reading} ${op} ${value}`);
      }
    }
  });

  it('compares strings and booleans with eq and ne', () => {
    const door = device(rule({ measure: 'door', op: 'eq', value: 'open' }));
    assert.equal(door.send(0, { door: 'closed' }).length, 0);
    assert.equal(door.send(S, { door: 'open' })[0].reading, 'open');
    const alarm = device(rule({ measure: 'alarm', op: 'eq', value: true }));
    assert.equal(alarm.send(0, { alarm: false }).length, 0);
    assert.equal(alarm.send(0, { alarm: 1 }).length, 0, 'a number is not true');
    assert.equal(alarm.send(S, { alarm: true }).length, 1);
  });

  it('reads nested measures through dotted and bracketed paths', () => {
    const d = device([
      rule({ measure: 'readings.temp', op: 'gt', value: 70 }, { ccs_name: 'dotted' }),
      rule({ measure: 'sensors.0.value', op: 'gt', value: 70 }, { ccs_name: 'index' }),
      rule({ measure: 'sensors[1].value', op: 'gt', value: 70 }, { ccs_name: 'bracket' }),
      rule({ measure: '["a.b"]', op: 'gt', value: 70 }, { ccs_name: 'quoted' }),
    ]);
    const fired = d.send(0, { readings: { temp: 71 }, sensors: [{ value: 80 }, { value: 90 }], 'a.b': 75 });
    assert.deepEqual(fired.map((f) => [f.ruleName, f.reading]), [['dotted', 71], ['index', 80], ['bracket', 90], ['quoted', 75]]);
    assert.equal(fired[1].readingType, 'sensors.0.value');
  });
});

describe('edge triggering', () => {
  it('fires once while the condition stays true and again after it was false', () => {
    const d = device(rule(hot, { ccs_suppressseconds: 0 }));
    assert.equal(d.send(0, { Temperature: 75 }).length, 1);
    assert.equal(d.send(S, { Temperature: 80 }).length, 0, 'still true: no second alert');
    assert.equal(d.send(2 * S, { Temperature: 90 }).length, 0);
    assert.equal(d.send(3 * S, { Temperature: 60 }).length, 0, 'false: re-armed');
    assert.equal(d.send(4 * S, { Temperature: 75 }).length, 1, 'true again: fires');
  });

  it('neither fires nor re-arms on a message without the measure', () => {
    const d = device(rule(hot, { ccs_suppressseconds: 0 }));
    assert.equal(d.send(0, { Temperature: 75 }).length, 1);
    assert.equal(d.send(S, { Humidity: 40 }).length, 0);
    assert.equal(d.send(2 * S, { Temperature: 76 }).length, 0, 'a humidity message must not re-arm a temperature rule');
    assert.equal(d.send(3 * S, { Temperature: 60 }).length, 0);
    assert.equal(d.send(4 * S, { Humidity: 90 }).length, 0, 'nor fire it');
    assert.equal(d.send(5 * S, { Temperature: 80 }).length, 1);
  });

  it('does not re-arm while the condition is unknown (a threshold property that went away)', () => {
    const d = device(rule({ measure: 'Temperature', op: 'gt', value: { property: 'maxTemp' } }, { ccs_suppressseconds: 0 }));
    assert.equal(d.send(0, { Temperature: 75 }, { reported: { maxTemp: 70 } }).length, 1);
    assert.equal(d.send(S, { Temperature: 75 }, { reported: {} }).length, 0);
    assert.equal(d.send(2 * S, { Temperature: 75 }, { reported: { maxTemp: 70 } }).length, 0, 'still the same episode');
    assert.equal(d.send(3 * S, { Temperature: 75 }, { reported: { maxTemp: 80 } }).length, 0);
    assert.equal(d.send(4 * S, { Temperature: 75 }, { reported: { maxTemp: 70 } }).length, 1);
  });
});

describe('suppression', () => {
  it('suppresses an identical reading within ccs_suppressseconds (default 60), as Stream Analytics does', () => {
    const d = device(rule(hot));
    assert.equal(d.send(0, { Temperature: 71 }).length, 1);
    d.send(10 * S, { Temperature: 60 });
    assert.equal(d.send(20 * S, { Temperature: 71 }).length, 0, 'same value 20 s later');
    assert.equal(d.suppressed, 1);
    d.send(25 * S, { Temperature: 60 });
    assert.equal(d.send(30 * S, { Temperature: 72 }).length, 1, 'another value fires');
    d.send(35 * S, { Temperature: 60 });
    assert.equal(d.send(20 * S + 61 * S, { Temperature: 71 }).length, 1, 'same value after the window (from its last repeat) fires');
  });

  it('slides the window with each suppressed repeat, so flapping stays quiet', () => {
    const d = device(rule(hot));
    let alerts = 0;
    for (let i = 0; i < 20; i++) alerts += d.send(i * 20 * S, { Temperature: i % 2 === 0 ? 71 : 60 }).length;
    assert.equal(alerts, 1);
    assert.equal(d.suppressed, 9);
  });

  it('keeps the suppression per device', () => {
    const evaluator = createEvaluator([rule(hot)]);
    const a = new Device(evaluator, 'a');
    const b = new Device(evaluator, 'b');
    assert.equal(a.send(0, { Temperature: 71 }).length, 1);
    assert.equal(b.send(S, { Temperature: 71 }).length, 1);
  });

  it('is off with ccs_suppressseconds 0', () => {
    const d = device(rule(hot, { ccs_suppressseconds: 0 }));
    let alerts = 0;
    for (let i = 0; i < 6; i++) alerts += d.send(i * S, { Temperature: i % 2 === 0 ? 71 : 60 }).length;
    assert.equal(alerts, 3);
  });
});

describe('for: duration', () => {
  const sustained = { measure: 'Temperature', op: 'gt', value: 70, for: 'PT5M' };

  it('fires when the condition has held for the whole duration, at the exact time, from a tick', () => {
    const d = device(rule(sustained));
    assert.equal(d.send(0, { Temperature: 75 }).length, 0);
    assert.equal(d.send(2 * M, { Temperature: 76 }).length, 0);
    assert.deepEqual(d.tick(4 * M + 59 * S), []);
    const fired = d.tick(7 * M);
    assert.deepEqual(times(fired), [5 * M]);
    assert.equal(fired[0].trigger, 'tick');
    assert.equal(fired[0].reading, 76);
    assert.equal(fired[0].eventToken, `tick:device-1:${T0 + 5 * M}`);
    assert.equal(fired[0].messageId, null);
  });

  it('completes at the next reading when no tick came, with the completion time', () => {
    const d = device(rule(sustained));
    d.send(0, { Temperature: 75 });
    const fired = d.send(6 * M, { Temperature: 77 });
    assert.deepEqual(times(fired), [5 * M]);
    assert.equal(fired[0].reading, 75, 'the value that held at completion');
  });

  it('does not fire when the condition breaks before the duration, and restarts the count', () => {
    const d = device(rule(sustained));
    d.send(0, { Temperature: 75 });
    d.send(4 * M, { Temperature: 65 });
    d.send(6 * M, { Temperature: 75 });
    assert.deepEqual(d.tick(10 * M + 59 * S), []);
    assert.deepEqual(times(d.tick(11 * M)), [11 * M]);
  });

  it('does not fire when a false reading comes exactly at the end of the duration', () => {
    const d = device(rule(sustained));
    d.send(0, { Temperature: 75 });
    assert.deepEqual(d.send(5 * M, { Temperature: 60 }), []);
    assert.deepEqual(d.tick(20 * M), []);
  });

  it('applies to aggregates too', () => {
    const d = device(rule({ measure: 't', aggregate: 'avg', window: 'PT1M', op: 'gt', value: 70, for: 'PT2M' }));
    const fired = [];
    for (let i = 0; i <= 150; i += 10) fired.push(...d.send(i * S, { t: 80 }));
    fired.push(...d.tick(3 * M));
    assert.deepEqual(times(fired), [2 * M]);
  });
});

describe('window aggregates', () => {
  const w = (aggregate: string, op: string, value: number, window = 'PT1M') => rule({ measure: 't', aggregate, window, op, value });

  it('avg fires when the average crosses, not when one reading does', () => {
    const yes = device(w('avg', 'gt', 70, 'PT5M'));
    yes.send(0, { t: 60 });
    yes.send(M, { t: 80 });
    const [f] = yes.send(2 * M, { t: 75 });
    assert.equal(Math.round((f.reading as number) * 100) / 100, 71.67);
    assert.equal(f.description, 't reading of 71.6667 exceeded a threshold of 70');
    const no = device(w('avg', 'gt', 70, 'PT5M'));
    no.send(0, { t: 60 });
    no.send(M, { t: 80 });
    assert.deepEqual(no.send(2 * M, { t: 65 }), []);
  });

  it('min fires when the lowest reading in the window is below, and not above it', () => {
    const yes = device(w('min', 'lt', 10));
    yes.send(0, { t: 20 });
    assert.equal(yes.send(10 * S, { t: 5 })[0].reading, 5);
    const no = device(w('min', 'lt', 10));
    no.send(0, { t: 20 });
    assert.deepEqual(no.send(10 * S, { t: 15 }), []);
  });

  it('min re-arms once the low reading has left the window', () => {
    const d = device(rule({ measure: 't', aggregate: 'min', window: 'PT1M', op: 'lt', value: 10 }, { ccs_suppressseconds: 0 }));
    assert.equal(d.send(0, { t: 5 }).length, 1);
    assert.deepEqual(d.send(30 * S, { t: 20 }), [], 'still in the window');
    assert.deepEqual(d.send(70 * S, { t: 20 }), [], '5 left: min is 20, re-armed');
    assert.equal(d.send(80 * S, { t: 5 }).length, 1);
  });

  it('max fires when the highest reading is above, and re-arms when it leaves the window', () => {
    const d = device(w('max', 'gt', 100));
    d.send(0, { t: 90 });
    assert.equal(d.send(10 * S, { t: 101 })[0].reading, 101);
    d.send(30 * S, { t: 95 });
    d.send(80 * S, { t: 95 }); // 101 (10 s) left the window at 71 s
    assert.equal(d.state?.rules[0].on, false);
    const no = device(w('max', 'gt', 100));
    no.send(0, { t: 90 });
    assert.deepEqual(no.send(10 * S, { t: 99 }), []);
  });

  it('sum fires over the window, and not when the readings are spread beyond it', () => {
    const yes = device(w('sum', 'gt', 100));
    yes.send(0, { t: 40 });
    yes.send(10 * S, { t: 40 });
    assert.equal(yes.send(20 * S, { t: 30 })[0].reading, 110);
    const no = device(w('sum', 'gt', 100));
    no.send(0, { t: 40 });
    no.send(30 * S, { t: 40 });
    assert.deepEqual(no.send(2 * M, { t: 30 }), []);
  });

  it('count counts messages (without a measure) or messages carrying the measure', () => {
    const burst = device(rule({ aggregate: 'count', window: 'PT1M', op: 'gt', value: 3 }));
    for (let i = 0; i < 3; i++) assert.deepEqual(burst.send(i * S, { anything: i }), []);
    const [f] = burst.send(3 * S, 'not even JSON');
    assert.equal(f.reading, 4);
    assert.equal(f.readingType, 'messages');
    const spread = device(rule({ aggregate: 'count', window: 'PT1M', op: 'gt', value: 3 }));
    for (let i = 0; i < 5; i++) assert.deepEqual(spread.send(i * M, {}), []);
    const measured = device(rule({ measure: 'err', aggregate: 'count', window: 'PT1M', op: 'ge', value: 2 }));
    measured.send(0, { err: 'E1' });
    assert.deepEqual(measured.send(S, { ok: 1 }), []);
    assert.equal(measured.send(2 * S, { err: 'E2' }).length, 1);
  });

  it('slides on ticks: a window that empties changes the condition without a reading', () => {
    const d = device(rule({ aggregate: 'count', window: 'PT1M', op: 'lt', value: 1 }));
    assert.deepEqual(d.send(0, {}), []);
    assert.deepEqual(d.tick(60 * S), [], 'the reading counts for at least the window');
    const fired = d.tick(5 * M);
    assert.deepEqual(times(fired), [61 * S], 'and at most one bucket (window / 60) more');
    assert.equal(fired[0].reading, 0);
  });

  it('ignores non-numeric values', () => {
    const d = device(w('avg', 'gt', 70));
    d.send(0, { t: 80 });
    d.send(S, { t: 'high' });
    d.send(2 * S, { t: null });
    d.send(3 * S, { t: 1e300 });
    assert.equal(d.state?.rules[0].leaves[0].n, 1);
  });
});

describe('rate of change', () => {
  it('fires when the change per period between consecutive readings exceeds the threshold', () => {
    const d = device(rule({ measure: 't', rateOfChange: 'PT1M', op: 'gt', value: 5 }));
    assert.deepEqual(d.send(0, { t: 20 }), [], 'one reading has no rate');
    const [f] = d.send(M, { t: 30 });
    assert.equal(f.reading, 10);
    assert.equal(f.threshold, 5);
  });

  it('scales the change to the period', () => {
    const d = device(rule({ measure: 't', rateOfChange: 'PT1M', op: 'gt', value: 5 }));
    d.send(0, { t: 20 });
    assert.equal(d.send(10 * S, { t: 22 })[0].reading, 12, '2 in 10 s is 12 per minute');
  });

  it('does not fire on a slow change', () => {
    const d = device(rule({ measure: 't', rateOfChange: 'PT1M', op: 'gt', value: 5 }));
    d.send(0, { t: 20 });
    assert.deepEqual(d.send(3 * M, { t: 30 }), []);
  });

  it('is signed: a fall is negative', () => {
    const falling = device(rule({ measure: 't', rateOfChange: 'PT1M', op: 'lt', value: -5 }));
    falling.send(0, { t: 30 });
    assert.equal(falling.send(M, { t: 20 })[0].reading, -10);
    const rising = device(rule({ measure: 't', rateOfChange: 'PT1M', op: 'lt', value: -5 }));
    rising.send(0, { t: 20 });
    assert.deepEqual(rising.send(M, { t: 30 }), []);
  });
});

describe('noDataFor', () => {
  it('fires from a tick once the device has been silent that long, at the exact time', () => {
    const d = device(rule({ noDataFor: 'PT10M' }));
    d.send(0, {});
    assert.deepEqual(d.tick(9 * M + 59 * S), []);
    const fired = d.tick(12 * M);
    assert.deepEqual(times(fired), [10 * M]);
    assert.equal(fired[0].readingType, 'noData');
    assert.equal(fired[0].reading, 600);
    assert.equal(fired[0].threshold, 600);
  });

  it('does not fire while messages keep coming, whatever they hold', () => {
    const d = device(rule({ noDataFor: 'PT10M' }));
    for (let i = 0; i <= 60; i += 5) {
      d.send(i * M, i % 2 === 0 ? 'garbage' : {});
      assert.deepEqual(d.tick(i * M + 4 * M), []);
    }
  });

  it('re-arms with the next message and fires after the next silence', () => {
    const d = device(rule({ noDataFor: 'PT10M' }));
    d.send(0, {});
    assert.equal(d.tick(11 * M).length, 1);
    d.send(20 * M, {});
    assert.deepEqual(times(d.tick(40 * M)), [30 * M]);
  });

  it('is processed before a late message, even without ticks', () => {
    const d = device(rule({ noDataFor: 'PT10M' }));
    d.send(0, {});
    const fired = d.send(15 * M, {});
    assert.deepEqual(times(fired), [10 * M]);
    assert.equal(fired[0].trigger, 'tick');
  });

  it('with a measure, only messages carrying it count', () => {
    const d = device(rule({ noDataFor: 'PT10M', measure: 'temp' }));
    d.send(0, { temp: 20 });
    d.send(5 * M, { humidity: 40 });
    assert.deepEqual(times(d.tick(11 * M)), [10 * M]);
  });

  it('never fires for a device that never sent anything', () => {
    const evaluator = createEvaluator([rule({ noDataFor: 'PT10M' })]);
    const r = evaluator.tick(evaluator.createState('ghost'), T0 + 60 * M);
    assert.deepEqual(r.firings, []);
  });
});

describe('threshold from a reported property', () => {
  const limit = { measure: 'Temperature', op: 'gt', value: { property: 'limits.maxTemp' } };

  it('fires above the reported threshold and not below it', () => {
    const d = device(rule(limit));
    assert.deepEqual(d.send(0, { Temperature: 75 }, { reported: { limits: { maxTemp: 80 } } }), []);
    const [f] = d.send(S, { Temperature: 81 }, { reported: { limits: { maxTemp: 80 } } });
    assert.equal(f.threshold, 80);
  });

  it('keeps the last reported value when a reading comes without properties', () => {
    const d = device(rule(limit));
    d.send(0, { Temperature: 60 }, { reported: { limits: { maxTemp: 70 } } });
    assert.equal(d.send(S, { Temperature: 75 }).length, 1);
  });

  it('re-evaluates when the property changes, without a new value of the measure', () => {
    const d = device(rule(limit));
    d.send(0, { Temperature: 75 }, { reported: { limits: { maxTemp: 80 } } });
    const [f] = d.send(S, { Humidity: 40 }, { reported: { limits: { maxTemp: 70 } } });
    assert.equal(f.reading, 75);
    assert.equal(f.threshold, 70);
  });

  it('is unknown without the property, unless a default is given', () => {
    const none = device(rule(limit));
    assert.deepEqual(none.send(0, { Temperature: 1000 }, { reported: {} }), []);
    assert.deepEqual(none.send(S, { Temperature: 1000 }, { reported: { limits: { maxTemp: 'high' } } }), []);
    const withDefault = device(rule({ measure: 'Temperature', op: 'gt', value: { property: 'maxTemp', default: 90 } }));
    assert.deepEqual(withDefault.send(0, { Temperature: 85 }), []);
    assert.equal(withDefault.send(S, { Temperature: 95 })[0].threshold, 90);
  });

  it('works for range bounds', () => {
    const d = device(rule({ measure: 't', op: 'outside', min: { property: 'lo' }, max: { property: 'hi' } }));
    assert.deepEqual(d.send(0, { t: 15 }, { reported: { lo: 10, hi: 20 } }), []);
    assert.equal(d.send(S, { t: 25 })[0].threshold, 20);
  });
});

describe('outside and between', () => {
  it('outside fires below min and above max, with the bound crossed as the threshold', () => {
    const rules = rule({ measure: 'h', op: 'outside', min: 20, max: 80 }, { ccs_suppressseconds: 0 });
    const d = device(rules);
    assert.deepEqual(d.send(0, { h: 20 }), [], 'the bounds are inside');
    assert.deepEqual(d.send(S, { h: 80 }), []);
    assert.equal(d.send(2 * S, { h: 19 })[0].threshold, 20);
    d.send(3 * S, { h: 50 });
    assert.equal(d.send(4 * S, { h: 81 })[0].threshold, 80);
  });

  it('between fires inside the bounds only', () => {
    const d = device(rule({ measure: 'h', op: 'between', min: 20, max: 80 }));
    assert.deepEqual(d.send(0, { h: 19 }), []);
    const [f] = d.send(S, { h: 20 });
    assert.equal(f.threshold, '20..80');
  });
});

describe('all and any', () => {
  const hotAndHumid = { all: [hot, { measure: 'Humidity', op: 'gt', value: 80 }] };

  it('all fires when every part is true, across messages that carry one measure each', () => {
    const d = device(rule(hotAndHumid));
    assert.deepEqual(d.send(0, { Temperature: 75 }), []);
    const [f] = d.send(S, { Humidity: 85 });
    assert.equal(f.readingType, 'Humidity', 'the part that made the rule true');
    assert.deepEqual(f.readings.map((r) => [r.readingType, r.reading]), [['Temperature', 75], ['Humidity', 85]]);
  });

  it('all does not fire when one part is false or unknown', () => {
    const d = device(rule(hotAndHumid));
    assert.deepEqual(d.send(0, { Temperature: 75 }), [], 'humidity unknown');
    assert.deepEqual(d.send(S, { Humidity: 50 }), []);
    assert.deepEqual(d.send(2 * S, { Temperature: 60, Humidity: 90 }), []);
  });

  it('any fires when one part is true, and not when none is', () => {
    const d = device(rule({ any: [hot, { measure: 'Pressure', op: 'lt', value: 950 }] }));
    assert.deepEqual(d.send(0, { Temperature: 60, Pressure: 1000 }), []);
    const [f] = d.send(S, { Pressure: 940 });
    assert.equal(f.readingType, 'Pressure');
    assert.equal(d.send(2 * S, { Temperature: 75 }).length, 0, 'still true: no second alert');
  });

  it('nests, and mixes kinds', () => {
    const d = device(rule({
      any: [
        { all: [hot, { measure: 'Temperature', rateOfChange: 'PT1M', op: 'gt', value: 5 }] },
        { noDataFor: 'PT10M' },
      ],
    }));
    d.send(0, { Temperature: 72 });
    const [f] = d.send(30 * S, { Temperature: 75 });
    assert.equal(f.reading, 6);
    assert.equal(f.readingType, 'Temperature');
  });
});

describe('bad telemetry', () => {
  const oddBodies: unknown[] = [
    undefined,
    null,
    'not json',
    42,
    [],
    [1, 2, 3],
    { Temperature: 'hot' },
    { Temperature: null },
    { Temperature: Infinity },
    { Temperature: -Infinity },
    { Temperature: Number.NaN },
    { Temperature: 1e200 },
    { Temperature: { value: 80 } },
    { Temperature: [80] },
    { Temperature: true },
    JSON.parse('{"__proto__": {"Temperature": 99}, "constructor": 5}'),
    { readings: 'flat' },
  ];

  it('never throws, never fires, and never breaks the other rules', () => {
    const d = device([
      rule(hot, { ccs_name: 'temperature' }),
      rule({ measure: 'readings.temp', aggregate: 'avg', window: 'PT5M', op: 'gt', value: 70 }, { ccs_name: 'avg' }),
      rule({ measure: 'Temperature', rateOfChange: 'PT1M', op: 'gt', value: 1 }, { ccs_name: 'rate' }),
      rule({ measure: 'Status', op: 'eq', value: 'fault' }, { ccs_name: 'status' }),
    ]);
    let at = 0;
    for (const body of oddBodies) assert.deepEqual(d.send((at += S), body), [], JSON.stringify(body) ?? 'undefined');
    const fired = d.send((at += S), { Temperature: 'n/a', Status: 'fault' });
    assert.deepEqual(fired.map((f) => f.ruleName), ['status']);
    assert.deepEqual(d.send((at += S), { Temperature: 75 }).map((f) => f.ruleName), ['temperature']);
    JSON.stringify(d.state);
  });

  it('does not read inherited properties', () => {
    const d = device(rule({ measure: 'constructor.length', op: 'ge', value: 0 }));
    assert.deepEqual(d.send(0, {}), []);
  });
});

describe('state', () => {
  it('is JSON: a duration half-way through when restarted fires at the right time afterwards', () => {
    const rules = [rule({ measure: 'Temperature', op: 'gt', value: 70, for: 'PT5M' })];
    const before = device(rules);
    before.send(0, { Temperature: 75 });
    before.send(2 * M, { Temperature: 76 });
    assert.deepEqual(before.tick(2 * M + 30 * S), []);
    // Restart: a new evaluator for the same rules, the state read back from its JSON checkpoint.
    const after = before.restart(createEvaluator(rules));
    assert.deepEqual(after.tick(4 * M), []);
    const fired = after.tick(5 * M);
    assert.deepEqual(times(fired), [5 * M]);
    assert.deepEqual(fired, before.tick(5 * M), 'the same firing as without the restart');
  });

  it('keeps windows, rates, timers and suppression through a restart', () => {
    const rules = [
      rule({ measure: 't', aggregate: 'avg', window: 'PT5M', op: 'gt', value: 70 }),
      rule({ measure: 't', rateOfChange: 'PT1M', op: 'gt', value: 100 }),
      rule({ noDataFor: 'PT10M' }),
      rule(hot),
    ];
    const a = device(rules);
    assert.equal(a.send(0, { t: 60, Temperature: 71 }).length, 1);
    a.send(10 * S, { t: 70, Temperature: 60 });
    const b = a.restart(createEvaluator(rules));
    for (const d of [a, b]) {
      assert.deepEqual(d.send(20 * S, { Temperature: 71 }), [], 'suppressed: the same reading 20 s after the alert');
      assert.equal(d.suppressed, 1);
      const fired = d.send(M, { t: 200 });
      assert.deepEqual(fired.map((f) => Math.round(f.reading as number)), [110, 156], 'avg of 60, 70, 200; 130 in 50 s per minute');
      assert.deepEqual(times(d.tick(20 * M)), [11 * M]);
    }
  });

  it('restoreState refuses what is not a state, and keeps what still fits the rules', () => {
    assert.equal(restoreState(null), undefined);
    assert.equal(restoreState({ format: 2, deviceId: 'x', rules: [] }), undefined);
    assert.equal(restoreState({ format: 1, deviceId: 'x', now: 'soon', rules: [] }), undefined);
    const rules = [rule({ measure: 't', op: 'gt', value: 1, for: 'PT1M' })];
    const d = device(rules);
    d.send(0, { t: 5 });
    const json = JSON.parse(JSON.stringify(d.state)) as DeviceState;
    json.rules[0].leaves[0].b = [1, 2, 3];
    const broken = restoreState(json);
    assert.ok(broken);
    const r = createEvaluator(rules).evaluate(broken, { deviceId: 'device-1', time: T0 + 2 * M, body: { t: 5 } });
    assert.deepEqual(r.firings, [], 'a rule state of the wrong shape starts afresh');
  });

  it('keeps the state of unchanged rules when the rule set changes, and resets a changed condition', () => {
    const kept = rule({ measure: 't', op: 'gt', value: 1, for: 'PT5M' });
    const d = device(kept);
    d.send(0, { t: 5 });
    const added = rule({ measure: 'u', op: 'gt', value: 1 });
    const grown = d.restart(createEvaluator([added, kept]));
    assert.deepEqual(times(grown.tick(6 * M)), [5 * M], 'the duration kept counting');
    const changed = d.restart(createEvaluator([{ ...kept, condition: rule({ measure: 't', op: 'gt', value: 2, for: 'PT5M' }).condition }]));
    assert.deepEqual(changed.tick(6 * M), [], 'another condition starts afresh');
  });

  it('stays small: windows keep at most 61 buckets whatever the message rate', () => {
    const d = device([
      rule({ measure: 't', aggregate: 'max', window: 'PT1M', op: 'gt', value: 1000 }),
      rule({ measure: 't', aggregate: 'avg', window: 'P1D', op: 'gt', value: 1000 }),
    ]);
    for (let i = 0; i < 20_000; i++) d.send(i * 250, { t: i % 100 });
    for (const rs of d.state?.rules ?? []) assert.ok((rs.leaves[0].b?.length ?? 0) <= 61 * 5, `${rs.leaves[0].b?.length}`);
    assert.ok(JSON.stringify(d.state).length < 10_000);
  });

  it('is the same device state for readings that arrive out of order (time never runs backwards)', () => {
    const d = device(rule({ measure: 't', rateOfChange: 'PT1M', op: 'gt', value: 5 }));
    d.send(M, { t: 10 });
    assert.deepEqual(d.send(0, { t: 100 }), [], 'an older reading is taken at the latest time: no rate');
    assert.equal(d.state?.now, T0 + M);
  });
});

describe('scope', () => {
  const category = '0b5c1d0e-0000-4000-8000-000000000001';
  const other = '0b5c1d0e-0000-4000-8000-000000000002';
  const record = '0b5c1d0e-0000-4000-8000-0000000000aa';
  const rules = [
    rule(hot, { ccs_name: 'all' }),
    rule(hot, { ccs_name: 'category', ccs_scope: 192350001, ccs_category: category }),
    rule(hot, { ccs_name: 'device', ccs_scope: 192350002, _ccs_device_value: record }),
  ];

  it('applies rules for all devices, the device category and the device itself', () => {
    const evaluator = createEvaluator(rules);
    assert.deepEqual(evaluator.rulesFor().map((r) => r.name), ['all']);
    assert.deepEqual(evaluator.rulesFor({ categoryId: category.toUpperCase() }).map((r) => r.name), ['all', 'category']);
    assert.deepEqual(evaluator.rulesFor({ categoryId: other, recordId: record }).map((r) => r.name), ['all', 'device']);
    const d = new Device(evaluator);
    const fired = d.send(0, { Temperature: 75 }, { device: { categoryId: category, recordId: record } });
    assert.deepEqual(fired.map((f) => f.ruleName), ['all', 'category', 'device']);
    assert.equal(fired[2].deviceRecordId, record);
  });

  it('remembers the device ids for later readings and ticks, and follows a change of category', () => {
    const evaluator = createEvaluator([...rules, rule({ noDataFor: 'PT1M' }, { ccs_name: 'silent', ccs_scope: 192350001, ccs_category: category })]);
    const d = new Device(evaluator);
    d.send(0, { Temperature: 60 }, { device: { categoryId: category } });
    assert.deepEqual(d.tick(2 * M).map((f) => f.ruleName), ['silent']);
    assert.deepEqual(d.send(3 * M, { Temperature: 75 }).map((f) => f.ruleName), ['all', 'category']);
    d.send(4 * M, { Temperature: 60 }, { device: { categoryId: other } });
    assert.deepEqual(d.send(5 * M, { Temperature: 80 }).map((f) => f.ruleName), ['all']);
    assert.deepEqual(d.tick(60 * M), []);
  });

  it('leaves inactive rules out', () => {
    const evaluator = createEvaluator([rule(hot, { statecode: 1 }), rule(hot, { ccs_name: 'on', statecode: 0 })]);
    assert.deepEqual(evaluator.rules.map((r) => r.name), ['on']);
  });
});

describe('firing', () => {
  it('carries everything the alert writer needs for Microsoft\'s mapping', () => {
    const d = device(rule(hot, {
      ccs_name: 'Hot',
      ccs_ruleoutput: 'AlarmTemp',
      ccs_alerttype: 192350002,
      ccs_description: '{ReadingType} at {deviceid}: {reading} > {threshold} ({ruleoutput}, {rulename}) {unknown}',
    }), 'thermostat-7');
    const [f] = d.send(5 * S, { Temperature: 71.5 }, { messageId: 'abc-123' });
    assert.equal(f.deviceId, 'thermostat-7');
    assert.equal(f.ruleName, 'Hot');
    assert.equal(f.ruleOutput, 'AlarmTemp');
    assert.equal(f.alertType, 192350002);
    assert.equal(f.time, T0 + 5 * S);
    assert.equal(f.trigger, 'reading');
    assert.equal(f.messageId, 'abc-123');
    assert.equal(f.eventToken, 'abc-123');
    assert.equal(f.description, 'Temperature at thermostat-7: 71.5 > 70 (AlarmTemp, Hot) {unknown}');
    assert.deepEqual(toAlertData(f), {
      deviceid: 'thermostat-7',
      readingtype: 'Temperature',
      reading: 71.5,
      threshold: 70,
      ruleoutput: 'AlarmTemp',
      time: '2024-01-01T00:00:05.000Z',
      eventtoken: 'abc-123',
    });
  });

  it('uses Microsoft\'s description by default and keeps it within msdyn_description (100)', () => {
    const d = device(rule(hot));
    assert.equal(d.send(0, { Temperature: 71 })[0].description, 'Temperature reading of 71 exceeded a threshold of 70');
    const long = device(rule(hot, { ccs_description: `${'x'.repeat(120)} {reading}` }));
    assert.equal(long.send(0, { Temperature: 71 })[0].description.length, 100);
  });
});
