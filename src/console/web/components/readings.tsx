import type { JSX } from 'preact';
import { useMemo } from 'preact/hooks';
import type { AlignedData } from 'uplot';
import { action } from '../api';
import { useAsync } from '../hooks';
import { TimeChart } from './chart';
import { ErrorNote, Loading } from './ui';

export type AggregateName = 'avg' | 'min' | 'max' | 'sum' | 'count';
interface Aggregate {
  min: number;
  max: number;
  avg: number;
  sum: number;
  count: number;
}
/** measure → bucket ISO → aggregate */
export type Readings = Record<string, Record<string, Aggregate>>;

/** `msdyn_IoTHubQueryDeviceReadings` for one device; the device-name level of the answer is unwrapped. */
export async function queryReadings(deviceRecordId: string, from: number, to: number, interval: string): Promise<Readings> {
  const r = await action<{ AggregatedDeviceReadings: string }>('msdyn_IoTHubQueryDeviceReadings', {
    From: new Date(from).toISOString(),
    To: new Date(to).toISOString(),
    IoTDeviceId: deviceRecordId,
    Interval: interval,
  });
  const parsed = JSON.parse(r?.AggregatedDeviceReadings ?? '{}') as Record<string, Readings>;
  return Object.values(parsed)[0] ?? {};
}

/** Readings as uPlot data: one time axis (seconds), one series per measure, gaps as null. */
export function toAligned(readings: Readings, aggregate: AggregateName, measures?: readonly string[]): { data: AlignedData; names: string[] } {
  const names = (measures ?? Object.keys(readings)).filter((m) => readings[m]);
  const times = new Set<number>();
  for (const m of names) for (const t of Object.keys(readings[m]!)) times.add(Date.parse(t));
  const xs = [...times].sort((a, b) => a - b);
  const index = new Map(xs.map((t, i) => [t, i]));
  const series = names.map((m) => {
    const ys: (number | null)[] = new Array<number | null>(xs.length).fill(null);
    for (const [t, a] of Object.entries(readings[m]!)) ys[index.get(Date.parse(t))!] = a[aggregate];
    return ys;
  });
  return { data: [xs.map((t) => t / 1000), ...series] as AlignedData, names };
}

/** Picks a bucket size that gives at most ~300 points over the range. */
export function autoInterval(rangeMs: number): string {
  const steps: [number, string][] = [
    [1_000, 'PT1S'], [5_000, 'PT5S'], [10_000, 'PT10S'], [30_000, 'PT30S'], [60_000, 'PT1M'], [300_000, 'PT5M'],
    [900_000, 'PT15M'], [3_600_000, 'PT1H'], [6 * 3_600_000, 'PT6H'], [86_400_000, 'P1D'],
  ];
  for (const [ms, iso] of steps) if (rangeMs / ms <= 300) return iso;
  return 'P1D';
}

export function ReadingsChart(props: { deviceRecordId: string; from: number; to: number; interval?: string; aggregate?: AggregateName; marker?: number; label: string; testId?: string }): JSX.Element {
  const interval = props.interval ?? autoInterval(props.to - props.from);
  const aggregate = props.aggregate ?? 'avg';
  const readings = useAsync(() => queryReadings(props.deviceRecordId, props.from, props.to, interval), [props.deviceRecordId, props.from, props.to, interval]);
  const view = useMemo(() => (readings.data ? toAligned(readings.data, aggregate) : undefined), [readings.data, aggregate]);
  if (readings.error) return <ErrorNote error={readings.error} title="Readings" />;
  if (!view) return <Loading what="readings" />;
  if (view.names.length === 0) return <p class="empty">No readings from this device between {new Date(props.from).toLocaleString()} and {new Date(props.to).toLocaleString()}.</p>;
  const points = view.data[0]!.length;
  return (
    <TimeChart
      series={view.names.map((n) => ({ label: `${n} (${aggregate})` }))}
      data={view.data}
      marker={props.marker !== undefined ? props.marker / 1000 : undefined}
      xRange={[props.from / 1000, props.to / 1000]}
      label={props.label}
      summary={`${view.names.join(', ')}: ${points} points, ${aggregate} per ${interval}.`}
      testId={props.testId}
    />
  );
}
