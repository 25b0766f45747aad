/**
 * Counters and histograms in the Prometheus text exposition format (version 0.0.4), served at `/metrics`. Small on
 * purpose: labels are a fixed list per metric, values are kept in maps keyed by the label values.
 */

type Labels = Readonly<Record<string, string>>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const pairs = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? '')}"`);
  if (extra) pairs.push(`${extra[0]}="${extra[1]}"`);
  return pairs.length ? `{${pairs.join(',')}}` : '';
}

export interface Counter {
  inc(labels?: Labels, by?: number): void;
}

export interface Gauge {
  set(value: number, labels?: Labels): void;
}

export interface Histogram {
  /** Records one observation, in the metric's unit (seconds for durations). */
  observe(value: number, labels?: Labels): void;
}

interface Metric {
  render(): string;
}

export interface Metrics {
  counter(name: string, help: string, labelNames?: readonly string[]): Counter;
  gauge(name: string, help: string, labelNames?: readonly string[]): Gauge;
  histogram(name: string, help: string, buckets: readonly number[], labelNames?: readonly string[]): Histogram;
  /** The exposition text of every metric. */
  render(): string;
}

/** Default buckets for request and processing durations, in seconds. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export function createMetrics(): Metrics {
  const metrics = new Map<string, Metric>();
  const key = (names: readonly string[], labels: Labels | undefined) => names.map((n) => labels?.[n] ?? '').join('\u0000');
  const register = <T extends Metric>(name: string, make: () => T): T => {
    const existing = metrics.get(name);
    if (existing) return existing as T;
    const m = make();
    metrics.set(name, m);
    return m;
  };

  return {
    counter(name, help, labelNames = []) {
      return register(name, () => {
        const values = new Map<string, { labels: string[]; value: number }>();
        return {
          inc(labels?: Labels, by = 1) {
            const k = key(labelNames, labels);
            const v = values.get(k) ?? { labels: labelNames.map((n) => labels?.[n] ?? ''), value: 0 };
            v.value += by;
            values.set(k, v);
          },
          render() {
            const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} counter`];
            for (const v of values.values()) lines.push(`${name}${labelText(labelNames, v.labels)} ${v.value}`);
            return lines.join('\n');
          },
        };
      });
    },
    gauge(name, help, labelNames = []) {
      return register(name, () => {
        const values = new Map<string, { labels: string[]; value: number }>();
        return {
          set(value: number, labels?: Labels) {
            values.set(key(labelNames, labels), { labels: labelNames.map((n) => labels?.[n] ?? ''), value });
          },
          render() {
            const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`];
            for (const v of values.values()) lines.push(`${name}${labelText(labelNames, v.labels)} ${v.value}`);
            return lines.join('\n');
          },
        };
      });
    },
    histogram(name, help, buckets, labelNames = []) {
      return register(name, () => {
        const series = new Map<string, { labels: string[]; counts: number[]; sum: number; count: number }>();
        return {
          observe(value: number, labels?: Labels) {
            const k = key(labelNames, labels);
            let s = series.get(k);
            if (!s) {
              s = { labels: labelNames.map((n) => labels?.[n] ?? ''), counts: buckets.map(() => 0), sum: 0, count: 0 };
              series.set(k, s);
            }
            for (let i = 0; i < buckets.length; i++) if (value <= buckets[i]!) s.counts[i]!++;
            s.sum += value;
            s.count++;
          },
          render() {
            const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
            for (const s of series.values()) {
              buckets.forEach((b, i) => lines.push(`${name}_bucket${labelText(labelNames, s.labels, ['le', String(b)])} ${s.counts[i]}`));
              lines.push(`${name}_bucket${labelText(labelNames, s.labels, ['le', '+Inf'])} ${s.count}`);
              lines.push(`${name}_sum${labelText(labelNames, s.labels)} ${s.sum}`);
              lines.push(`${name}_count${labelText(labelNames, s.labels)} ${s.count}`);
            }
            return lines.join('\n');
          },
        };
      });
    },
    render() {
      return `${[...metrics.values()].map((m) => m.render()).join('\n')}\n`;
    },
  };
}
