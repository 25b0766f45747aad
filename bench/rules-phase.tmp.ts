import { createEvaluator, ruleFromRecord, type DeviceState } from '../src/rules/index.js';
const conditions: Record<string, unknown>[] = [
  { measure: 'Temperature', op: 'gt', value: 70 },
  { measure: 'Humidity', op: 'outside', min: 20, max: 80 },
  { measure: 'Temperature', op: 'gt', value: 75, for: 'PT1M' },
  { measure: 'Temperature', aggregate: 'avg', window: 'PT5M', op: 'gt', value: 72 },
  { measure: 'readings.pressure', aggregate: 'max', window: 'PT1M', op: 'gt', value: 1050 },
  { measure: 'Temperature', rateOfChange: 'PT1M', op: 'gt', value: 30 },
  { noDataFor: 'PT10M' },
  { measure: 'Temperature', op: 'gt', value: { property: 'maxTemp', default: 80 } },
  { any: [{ measure: 'readings.vibration', op: 'gt', value: 8 }, { measure: 'readings.pressure', op: 'lt', value: 950 }] },
  { all: [{ measure: 'Temperature', op: 'gt', value: 60 }, { measure: 'Humidity', aggregate: 'count', window: 'PT1M', op: 'gt', value: 50 }] },
];
const only = process.argv[2] === undefined ? null : Number(process.argv[2]);
const ev = createEvaluator(conditions.filter((_, i) => only === null || i === only).map((c, i) => ruleFromRecord({ ccs_iotruleid: `r${i}`, ccs_name: 'x', ccs_condition: JSON.stringify(c) })));
const states: (DeviceState | undefined)[] = new Array(1000).fill(undefined);
const body = { Temperature: 65, Humidity: 50, readings: { pressure: 1000, vibration: 1 } };
let round = 0;
for (let seg = 0; seg < 12; seg++) {
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < 100; r++, round++) {
    for (let d = 0; d < 1000; d++) states[d] = ev.evaluate(states[d], { deviceId: `d${d}`, time: round * 1000 + d, body, messageId: 'm', reported: { maxTemp: 78 } }).state;
    for (let d = 0; d < 1000; d++) ev.tick(states[d]!, round * 1000 + 999);
  }
  const sec = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`rounds ${seg * 100}-${seg * 100 + 99}: ${Math.round(100000 / sec)} readings/s`);
}
