import type { JSX } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { batchGet, count, formatted, lookupOf, query, type Row } from '../api';
import { BarList, TimeChart } from '../components/chart';
import { Options } from '../components/form';
import { FilterSelect } from '../components/list';
import { Empty, ErrorNote, Loading, PageHead, Section, formatTime, relativeTime } from '../components/ui';
import { useAsync, usePageTitle, useRecordChanges } from '../hooks';
import { href } from '../router';
import { ALERT_TYPES } from './alerts';

const RANGES = [
  { value: '24h', label: 'Last 24 hours', ms: 86_400_000, bucket: 3_600_000 },
  { value: '7d', label: 'Last 7 days', ms: 7 * 86_400_000, bucket: 6 * 3_600_000 },
  { value: '30d', label: 'Last 30 days', ms: 30 * 86_400_000, bucket: 86_400_000 },
] as const;
/** The dashboard aggregates at most this many alerts of the period in the browser (the Web API has no $apply). */
const SAMPLE = 5000;

interface Stats {
  readonly active: number;
  readonly inRange: number;
  readonly actioned: number;
  readonly alerts: Row[];
  readonly categories: Map<string, { id: string; name: string } | undefined>;
  readonly actionedList: Row[];
  readonly since: number;
}

async function loadStats(rangeMs: number, signal: AbortSignal): Promise<Stats> {
  const since = Date.now() - rangeMs;
  const sinceIso = new Date(since).toISOString();
  const period = `msdyn_alerttime ge ${sinceIso}`;
  const actionedFilter = `${period} and (_msdyn_case_value ne null or _msdyn_lastcommandsent_value ne null)`;
  const [active, inRange, actioned, page, actionedPage] = await Promise.all([
    count('msdyn_iotalerts/$count?$filter=statecode eq 0', signal),
    count(`msdyn_iotalerts/$count?$filter=${encodeURIComponent(period)}`, signal),
    count(`msdyn_iotalerts/$count?$filter=${encodeURIComponent(actionedFilter)}`, signal),
    query(
      `msdyn_iotalerts?$select=msdyn_alerttime,msdyn_alerttype,_msdyn_device_value,_msdyn_case_value,_msdyn_lastcommandsent_value&$filter=${encodeURIComponent(period)}&$orderby=msdyn_alerttime desc`,
      { pageSize: SAMPLE, signal },
    ),
    query(
      `msdyn_iotalerts?$select=msdyn_description,msdyn_alerttime,_msdyn_device_value,_msdyn_case_value,_msdyn_lastcommandsent_value&$filter=${encodeURIComponent(actionedFilter)}&$orderby=msdyn_alerttime desc&$top=8`,
      { signal },
    ),
  ]);
  // Categories of the devices that raised alerts, 40 devices per request, all in one $batch.
  const deviceIds = [...new Set(page.value.map((a) => lookupOf(a, 'msdyn_device')?.id).filter((x): x is string => !!x))];
  const chunks: string[] = [];
  for (let i = 0; i < deviceIds.length; i += 40) {
    const ids = deviceIds.slice(i, i + 40);
    chunks.push(`msdyn_iotdevices?$select=_msdyn_category_value&$filter=${encodeURIComponent(ids.map((id) => `msdyn_iotdeviceid eq ${id}`).join(' or '))}`);
  }
  const categories = new Map<string, { id: string; name: string } | undefined>();
  for (const r of await batchGet(chunks)) {
    if (r instanceof Error) continue;
    for (const d of (r as { value: Row[] }).value) categories.set(String(d['msdyn_iotdeviceid']), lookupOf(d, 'msdyn_category'));
  }
  return { active, inRange, actioned, alerts: page.value, categories, actionedList: actionedPage.value, since };
}

function tally<K>(rows: readonly Row[], keyOf: (r: Row) => K | undefined): Map<K, number> {
  const m = new Map<K, number>();
  for (const r of rows) {
    const k = keyOf(r);
    if (k !== undefined) m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

export function Dashboard(): JSX.Element {
  usePageTitle('Dashboard');
  const [rangeKey, setRangeKey] = useState<(typeof RANGES)[number]['value']>('24h');
  const range = RANGES.find((r) => r.value === rangeKey)!;
  const stats = useAsync((signal) => loadStats(range.ms, signal), [rangeKey]);
  const latest = useAsync(
    (signal) =>
      query(
        'msdyn_iotalerts?$select=msdyn_description,msdyn_alerttime,msdyn_alerttype,_msdyn_device_value,statecode&$orderby=msdyn_alerttime desc,createdon desc&$top=8',
        { signal },
      ),
    [],
  );
  useRecordChanges(['msdyn_iotalert'], () => {
    stats.reload();
    latest.reload();
  }, 1000);

  const s = stats.data;
  const views = useMemo(() => {
    if (!s) return undefined;
    const buckets = Math.ceil(range.ms / range.bucket);
    const start = Math.floor(s.since / range.bucket) * range.bucket;
    const xs: number[] = [];
    const ys: number[] = [];
    for (let i = 0; i <= buckets; i++) {
      xs.push((start + i * range.bucket) / 1000);
      ys.push(0);
    }
    for (const a of s.alerts) {
      const t = Date.parse(String(a['msdyn_alerttime']));
      const i = Math.floor((t - start) / range.bucket);
      if (i >= 0 && i < ys.length) ys[i]!++;
    }
    const byType = [...tally(s.alerts, (a) => formatted(a, 'msdyn_alerttype') || 'No type')].map(([label, value]) => ({ label, value }));
    const devices = new Map<string, { name: string; value: number }>();
    for (const a of s.alerts) {
      const d = lookupOf(a, 'msdyn_device');
      const k = d?.id ?? '';
      const e = devices.get(k) ?? { name: d?.name ?? 'No device', value: 0 };
      e.value++;
      devices.set(k, e);
    }
    const byDevice = [...devices].map(([id, e]) => ({ label: e.name, value: e.value, href: id ? href(`devices/${id}`) : undefined }));
    const byCategory = [...tally(s.alerts, (a) => {
      const d = lookupOf(a, 'msdyn_device');
      return (d && s.categories.get(d.id)?.name) || 'No category';
    })].map(([label, value]) => ({ label, value }));
    const sort = <T extends { value: number }>(x: T[]): T[] => x.sort((a, b) => b.value - a.value);
    return { xs, ys, byType: sort(byType), byDevice: sort(byDevice), byCategory: sort(byCategory) };
  }, [s, range]);

  return (
    <div class="page">
      <PageHead title="Dashboard">
        <FilterSelect class="inline" label="Period" value={rangeKey} onChange={(v) => setRangeKey(v as typeof rangeKey)}>
          <Options items={RANGES} />
        </FilterSelect>
      </PageHead>
      <ErrorNote error={stats.error} />
      {!s && !stats.error && <Loading what="the dashboard" />}
      {s && views && (
        <>
          <div class="kpis">
            <a class="kpi" href={href('alerts', { state: '0' })} data-testid="kpi-active">
              <span class="kpi-value">{s.active.toLocaleString()}</span>
              <span class="kpi-label">Active alerts</span>
            </a>
            <a class="kpi" href={href('alerts', { from: new Date(s.since).toISOString(), scope: 'all', state: 'any' })}>
              <span class="kpi-value">{s.inRange.toLocaleString()}</span>
              <span class="kpi-label">Alerts, {range.label.toLowerCase()}</span>
            </a>
            <div class="kpi" data-testid="kpi-actioned">
              <span class="kpi-value">{s.actioned.toLocaleString()}</span>
              <span class="kpi-label">With an action taken (case or command)</span>
            </div>
          </div>
          <div class="grid-2">
            <Section title="Alerts over time" class="span-2">
              <TimeChart
                series={[{ label: 'Alerts' }]}
                data={[views.xs, views.ys]}
                bars
                height={200}
                xRange={[views.xs[0]! - range.bucket / 2000, views.xs[views.xs.length - 1]! + range.bucket / 2000]}
                label={`Alerts over time, ${range.label.toLowerCase()}`}
                summary={`${s.inRange.toLocaleString()} ${s.inRange === 1 ? 'alert' : 'alerts'} ${range.label.toLowerCase()}${s.alerts.length < s.inRange ? ` (chart and breakdowns from the latest ${s.alerts.length.toLocaleString()})` : ''}.`}
              />
            </Section>
            <Section title="By type">
              <BarList items={views.byType} label="Alerts by type" />
            </Section>
            <Section title="By device">
              <BarList items={views.byDevice} label="Alerts by device" />
            </Section>
            <Section title="By category">
              <BarList items={views.byCategory} label="Alerts by category" />
            </Section>
            <Section title="Action taken">
              {s.actionedList.length === 0 ? (
                <Empty>No alert of this period has a case or a command yet.</Empty>
              ) : (
                <ul class="plain-list">
                  {s.actionedList.map((a) => (
                    <li key={String(a['msdyn_iotalertid'])}>
                      <a href={href(`alerts/${String(a['msdyn_iotalertid'])}`)}>{String(a['msdyn_description'] ?? '(no description)')}</a>{' '}
                      <span class="muted">
                        {[lookupOf(a, 'msdyn_case') ? 'case' : '', lookupOf(a, 'msdyn_lastcommandsent') ? 'command' : ''].filter(Boolean).join(' + ')} ·{' '}
                        {relativeTime(a['msdyn_alerttime'])}
                      </span>
                    </li>
                  ))}
                </ul>
              )}
            </Section>
          </div>
        </>
      )}
      <Section title="Latest alerts" actions={<a href={href('alerts')}>All alerts</a>}>
        {latest.data ? (
          latest.data.value.length === 0 ? (
            <Empty>No alerts yet.</Empty>
          ) : (
            <ul class="plain-list" aria-live="polite" data-testid="latest-alerts">
              {latest.data.value.map((a) => (
                <li key={String(a['msdyn_iotalertid'])}>
                  <a href={href(`alerts/${String(a['msdyn_iotalertid'])}`)}>{String(a['msdyn_description'] ?? '(no description)')}</a>{' '}
                  <span class="muted">
                    {lookupOf(a, 'msdyn_device')?.name ?? 'no device'} · {ALERT_TYPES.find((t) => t.value === a['msdyn_alerttype'])?.label ?? '—'} ·{' '}
                    <time dateTime={String(a['msdyn_alerttime'] ?? '')} title={formatTime(a['msdyn_alerttime'])}>
                      {relativeTime(a['msdyn_alerttime'])}
                    </time>
                  </span>
                </li>
              ))}
            </ul>
          )
        ) : (
          <Loading />
        )}
      </Section>
    </div>
  );
}
