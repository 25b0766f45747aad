/**
 * `msdyn_IoTHubQueryDeviceReadings` (ms-connected-service.md §1.6): the Device Readings chart's data. In: `From`, `To`
 * (Edm.DateTimeOffset; From inclusive, To exclusive), `IoTDeviceId` (the `msdyn_iotdevice` record, Edm.Guid),
 * `Interval` (bucket size). Out: `AggregatedDeviceReadings`, JSON text
 * `{ "<device name>": { "<measure>": { "<bucket start ISO>": { min, max, avg, sum, count } } } }`.
 *
 * Decisions where the reference is silent: buckets start at `From` and step by `Interval`; `Interval` is an ISO 8601
 * duration of weeks, days, hours, minutes and seconds (`PT5M`, `PT1H`, `P1D`; years and months have no fixed length
 * and are refused) or a plain number of minutes (`5`); at most 10,000 buckets. Measures are the finite numbers of a
 * JSON object body, nested objects named by dotted paths (`readings.temp`); arrays, strings, booleans and bodies that
 * are not JSON objects are skipped. The device name is `msdyn_name`, else its Device ID, else the record id. A device
 * without a Device ID has no telemetry: its entry is empty. Empty buckets are left out.
 *
 * The aggregation runs in the database (Store.aggregateJsonNumbers: the engine's JSON functions over the telemetry
 * log's text bodies, grouped by bucket), over the range in adaptive slices (aggregateDeviceTelemetry); only the
 * finished buckets come back.
 */
import { CcsError } from '../../errors/index.js';
// The telemetry log's own query (the hub's public surface does not carry it yet).
import { aggregateDeviceTelemetry, type ReadingAggregates } from '../../hub/index.js';
import { notFound } from '../../records/index.js';
import type { Operation } from '../../webapi/index.js';
import type { ConnectorDeps } from '../deps.js';
import { DEVICE, DEVICE_ID, HUB_ID } from '../devices.js';

export const QUERY_DEVICE_READINGS = 'msdyn_IoTHubQueryDeviceReadings';
export const MAX_BUCKETS = 10_000;

export interface Aggregate {
  min: number;
  max: number;
  avg: number;
  sum: number;
  count: number;
}

function invalid(param: string, message: string): CcsError {
  return new CcsError('InvalidValue', `Parameter '${param}' of '${QUERY_DEVICE_READINGS}' ${message}`);
}

function instant(params: Readonly<Record<string, unknown>>, name: string): number {
  const value = params[name];
  const ms = typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) throw invalid(name, 'must be a date and time such as 2024-05-01T00:00:00Z.');
  return ms;
}

const DURATION = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d{1,3})?)S)?)?$/;

/** Milliseconds of an ISO 8601 duration without years and months (`PT5M`, `P1DT12H`), or of a plain number of minutes. */
export function parseInterval(value: string): number | undefined {
  const text = value.trim().toUpperCase();
  if (/^\d+(?:\.\d+)?$/.test(text)) {
    const ms = Math.round(Number(text) * 60_000);
    return ms > 0 ? ms : undefined;
  }
  const m = DURATION.exec(text);
  if (!m || text === 'P' || text.endsWith('T')) return undefined;
  const [w, d, h, min, s] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x))) as [number, number, number, number, number];
  const ms = Math.round((((w * 7 + d) * 24 + h) * 60 + min) * 60_000 + s * 1000);
  return ms > 0 ? ms : undefined;
}

export function createQueryDeviceReadings(deps: ConnectorDeps): Operation {
  return {
    def: {
      name: QUERY_DEVICE_READINGS,
      kind: 'action',
      parameters: [
        { name: 'From', type: 'Edm.DateTimeOffset', nullable: false },
        { name: 'To', type: 'Edm.DateTimeOffset', nullable: false },
        { name: 'IoTDeviceId', type: 'Edm.Guid', nullable: false },
        { name: 'Interval', type: 'Edm.String', nullable: false },
      ],
      returns: { properties: [{ name: 'AggregatedDeviceReadings', type: 'Edm.String', nullable: false }] },
    },
    invoke: async (ctx, params) => {
      const from = instant(params, 'From');
      const to = instant(params, 'To');
      if (from >= to) throw invalid('From', "must be before 'To'.");
      const interval = parseInterval(String(params['Interval']));
      if (interval === undefined) throw invalid('Interval', 'must be an ISO 8601 duration such as PT5M or PT1H, or a number of minutes.');
      const buckets = Math.ceil((to - from) / interval);
      if (buckets > MAX_BUCKETS) throw invalid('Interval', `gives ${buckets} buckets between 'From' and 'To'; at most ${MAX_BUCKETS} are allowed.`);

      const id = String(params['IoTDeviceId']).toLowerCase();
      const device = await ctx.records.retrieve(ctx.record, DEVICE, id, [DEVICE_ID, HUB_ID, 'msdyn_name']);
      if (!device) throw notFound(ctx.records.table(DEVICE), id);
      const hubId = typeof device[HUB_ID] === 'string' && device[HUB_ID] !== '' ? device[HUB_ID] : undefined;
      const name = typeof device['msdyn_name'] === 'string' && device['msdyn_name'] !== '' ? device['msdyn_name'] : (hubId ?? id);

      const byMeasure: ReadingAggregates = hubId === undefined ? new Map() : await aggregateDeviceTelemetry(deps.store, hubId, { from, to, interval });

      const out: Record<string, Record<string, Aggregate>> = {};
      for (const measure of [...byMeasure.keys()].sort()) {
        const series: Record<string, Aggregate> = {};
        for (const [bucket, a] of [...byMeasure.get(measure)!].sort((x, y) => x[0] - y[0])) {
          series[new Date(from + bucket * interval).toISOString()] = { min: a.min, max: a.max, avg: a.sum / a.count, sum: a.sum, count: a.count };
        }
        Object.defineProperty(out, measure, { value: series, enumerable: true, writable: true, configurable: true });
      }
      return { AggregatedDeviceReadings: JSON.stringify({ [name]: out }) };
    },
  };
}
