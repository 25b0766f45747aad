import type { JSX } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot, { type AlignedData, type Options } from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** Colour-blind-safe palette (Okabe–Ito), each with at least 3:1 contrast on white. */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#8a6d00', '#56B4E9', '#000000'];

export interface SeriesSpec {
  readonly label: string;
  readonly color?: string;
}

/**
 * A uPlot time-series chart that fills its container's width. `data[0]` are times in seconds; each further array a
 * series. New data is applied with setData (no rebuild), so a streaming chart only redraws. The chart is a picture
 * for sighted users; `summary` gives the same facts as text for everyone else.
 */
export function TimeChart(props: {
  series: readonly SeriesSpec[];
  data: AlignedData;
  height?: number;
  label: string;
  summary?: string;
  bars?: boolean;
  /** A vertical marker (seconds), e.g. the alert time. */
  marker?: number;
  /** The time axis' extent (seconds): a chart of a fixed window shows the whole window, however few points it has. */
  xRange?: readonly [number, number];
  testId?: string;
}): JSX.Element {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const key = props.series.map((s) => s.label).join('|') + (props.bars ? ':bars' : '') + (props.marker ?? '') + (props.xRange?.join('-') ?? '');

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const width = Math.max(200, el.clientWidth);
    const marker = props.marker;
    const opts: Options = {
      width,
      height: props.height ?? 240,
      series: [
        {},
        ...props.series.map((s, i) => ({
          label: s.label,
          stroke: s.color ?? PALETTE[i % PALETTE.length],
          width: 2,
          ...(props.bars ? { fill: `${s.color ?? PALETTE[i % PALETTE.length]}99`, paths: uPlot.paths.bars!({ size: [0.8, 40] }), points: { show: false } } : {}),
        })),
      ],
      axes: [{ stroke: '#333' }, { stroke: '#333', size: 60 }],
      ...(props.xRange ? { scales: { x: { time: true, range: [props.xRange[0], props.xRange[1]] as [number, number] } } } : {}),
      legend: { show: true },
      cursor: { drag: { x: true, y: false } },
      hooks: marker !== undefined
        ? {
            draw: [
              (u: uPlot) => {
                const x = u.valToPos(marker, 'x', true);
                const ctx = u.ctx;
                ctx.save();
                ctx.strokeStyle = '#b00020';
                ctx.setLineDash([6, 4]);
                ctx.lineWidth = 2;
                ctx.beginPath();
                ctx.moveTo(x, u.bbox.top);
                ctx.lineTo(x, u.bbox.top + u.bbox.height);
                ctx.stroke();
                ctx.restore();
              },
            ],
          }
        : {},
    };
    const u = new uPlot(opts, props.data, el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (Math.abs(w - u.width) > 2) u.setSize({ width: w, height: props.height ?? 240 });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);

  useEffect(() => {
    plot.current?.setData(props.data);
  }, [props.data]);

  const points = props.data[0]?.length ?? 0;
  return (
    <figure class="chart" data-testid={props.testId} data-points={points}>
      <div ref={host} role="img" aria-label={props.label} />
      <figcaption class={props.summary ? '' : 'sr-only'}>{props.summary ?? props.label}</figcaption>
    </figure>
  );
}

/** A horizontal bar list (counts by type, device, category): plain HTML, readable without the picture. */
export function BarList(props: { items: readonly { label: string; value: number; href?: string }[]; label: string; max?: number }): JSX.Element {
  const max = Math.max(1, ...props.items.map((i) => i.value));
  const items = props.items.slice(0, props.max ?? 8);
  if (items.length === 0) return <p class="empty">No alerts in this period.</p>;
  return (
    <ul class="bar-list" aria-label={props.label}>
      {items.map((i) => (
        <li key={i.label}>
          <span class="bar-label">{i.href ? <a href={i.href}>{i.label}</a> : i.label}</span>
          <span class="bar-track" aria-hidden="true">
            <span class="bar-fill" style={{ width: `${(i.value / max) * 100}%` }} />
          </span>
          <span class="bar-value">{i.value.toLocaleString()}</span>
        </li>
      ))}
    </ul>
  );
}
