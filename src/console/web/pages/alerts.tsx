import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { batchGet, formatted, lookupOf, query, type Page, type Row } from '../api';
import { Options, RecordOptions } from '../components/form';
import { DataTable, FilterSelect, FilterTime, Loaded, PAGE_SIZE, Pager, pageOf, pageUrl, setListParams } from '../components/list';
import { Badge, Empty, ErrorNote, PageHead, formatTime } from '../components/ui';
import { useAsync, usePageTitle, useRecordChanges } from '../hooks';
import { href } from '../router';

export const ALERT_TYPES = [
  { value: 192350000, label: 'Anomaly' },
  { value: 192350001, label: 'Info' },
  { value: 192350002, label: 'Preventive Maintenance' },
  { value: 192350003, label: 'Test' },
] as const;
const ALERT_STATES = [
  { value: '0', label: 'Active' },
  { value: '1', label: 'Inactive' },
  { value: 'any', label: 'Any' },
] as const;

export const ALERT_COLUMNS = 'msdyn_description,msdyn_alerttime,msdyn_alerttype,_msdyn_device_value,statecode,_msdyn_case_value,_msdyn_parentalert_value,_msdyn_lastcommandsent_value';

export interface AlertFilters {
  readonly state?: string;
  readonly type?: string;
  readonly device?: string;
  readonly from?: string;
  readonly to?: string;
  /** `top`: alerts without a parent (children under them); `all`: every alert. */
  readonly scope?: string;
}

/** The `$filter` for the list's filters. */
export function alertFilter(f: AlertFilters): string {
  const parts: string[] = [];
  if (f.scope !== 'all') parts.push('_msdyn_parentalert_value eq null');
  if (f.state === '0' || f.state === '1') parts.push(`statecode eq ${f.state}`);
  if (f.type && /^\d+$/.test(f.type)) parts.push(`msdyn_alerttype eq ${f.type}`);
  if (f.device && /^[0-9a-f-]{36}$/i.test(f.device)) parts.push(`_msdyn_device_value eq ${f.device}`);
  if (f.from) parts.push(`msdyn_alerttime ge ${f.from}`);
  if (f.to) parts.push(`msdyn_alerttime lt ${f.to}`);
  return parts.join(' and ');
}

export function alertListUrl(f: AlertFilters, page: number): string {
  const filter = alertFilter(f);
  return pageUrl(`msdyn_iotalerts?$select=${ALERT_COLUMNS}${filter ? `&$filter=${encodeURIComponent(filter)}` : ''}&$orderby=msdyn_alerttime desc`, page);
}

/** Child alert counts of the given parents: one `$count` each, all in one `$batch` request. */
export async function childCounts(ids: readonly string[]): Promise<Map<string, number>> {
  const answers = await batchGet(ids.map((id) => `msdyn_iotalerts/$count?$filter=${encodeURIComponent(`_msdyn_parentalert_value eq ${id}`)}`));
  const m = new Map<string, number>();
  answers.forEach((a, i) => {
    if (!(a instanceof Error)) m.set(ids[i]!, Number(a));
  });
  return m;
}

interface ListData {
  readonly page: Page;
  readonly counts: Map<string, number>;
}

export function stateBadge(row: Row): JSX.Element {
  return row['statecode'] === 0 ? <Badge tone="warn">Active</Badge> : <Badge tone="muted">{formatted(row, 'statecode') || 'Inactive'}</Badge>;
}

export function AlertsPage(props: { params: URLSearchParams }): JSX.Element {
  usePageTitle('Alerts');
  const p = props.params;
  const filters: AlertFilters = {
    state: p.get('state') ?? '0',
    type: p.get('type') ?? '',
    device: p.get('device') ?? '',
    from: p.get('from') ?? '',
    to: p.get('to') ?? '',
    scope: p.get('scope') ?? 'top',
  };
  const page = pageOf(p);
  const key = JSON.stringify([filters, page]);
  const seen = useRef<Set<string> | undefined>(undefined);
  const [fresh, setFresh] = useState<Set<string>>(new Set());

  const list = useAsync<ListData>(async (signal) => {
    const result = await query(alertListUrl(filters, page), { pageSize: PAGE_SIZE, signal });
    const ids = result.value.map((a) => String(a['msdyn_iotalertid']));
    const counts = filters.scope === 'all' ? new Map<string, number>() : await childCounts(ids);
    return { page: result, counts };
  }, [key]);

  useEffect(() => {
    seen.current = undefined;
    setFresh(new Set());
  }, [key]);
  useEffect(() => {
    if (!list.data) return;
    const ids = list.data.page.value.map((a) => String(a['msdyn_iotalertid']));
    if (seen.current) setFresh(new Set(ids.filter((id) => !seen.current!.has(id))));
    seen.current = new Set(ids);
  }, [list.data]);
  useRecordChanges(['msdyn_iotalert'], () => list.reload(), 700);

  const set = (change: Partial<AlertFilters> & { page?: string }) => setListParams('alerts', p, change);
  const devices = useAsync((signal) => query('msdyn_iotdevices?$select=msdyn_name&$orderby=msdyn_name&$top=1000', { signal }), []);

  return (
    <div class="page">
      <PageHead title="Alerts">
        {list.data?.page.count !== undefined && (
          <span class="muted" data-testid="alert-count">
            {list.data.page.count.toLocaleString()} {filters.scope === 'all' ? 'alerts' : 'top-level alerts'}
          </span>
        )}
      </PageHead>
      <form class="filters" aria-label="Filter alerts" onSubmit={(e) => e.preventDefault()}>
        <FilterSelect label="State" value={filters.state ?? ''} onChange={(state) => set({ state })}>
          <Options items={ALERT_STATES} />
        </FilterSelect>
        <FilterSelect label="Type" value={filters.type ?? ''} onChange={(type) => set({ type })}>
          <option value="">Any</option>
          <Options items={ALERT_TYPES} />
        </FilterSelect>
        <FilterSelect label="Device" value={filters.device ?? ''} onChange={(device) => set({ device })}>
          <option value="">Any</option>
          <RecordOptions rows={devices.data?.value} id="msdyn_iotdeviceid" />
        </FilterSelect>
        <FilterTime label="From" value={filters.from} onChange={(from) => set({ from })} />
        <FilterTime label="To" value={filters.to} onChange={(to) => set({ to })} />
        <FilterSelect label="Show" value={filters.scope ?? 'top'} onChange={(scope) => set({ scope: scope === 'top' ? undefined : scope })}>
          <option value="top">Parent alerts (children nested)</option>
          <option value="all">All alerts</option>
        </FilterSelect>
      </form>
      <Loaded state={list} what="alerts">
        {(data) => (
          <>
            {data.page.value.length === 0 ? (
              <Empty>No alerts match these filters.</Empty>
            ) : (
              <DataTable caption="Alerts, newest first" testId="alerts-table" columns={['Alert', 'Time', 'Type', 'Device', 'State', 'Case', filters.scope !== 'all' && 'Child alerts']}>
                {data.page.value.map((a) => (
                  <AlertRows key={String(a['msdyn_iotalertid'])} alert={a} childCount={data.counts.get(String(a['msdyn_iotalertid']))} nested={filters.scope !== 'all'} fresh={fresh.has(String(a['msdyn_iotalertid']))} />
                ))}
              </DataTable>
            )}
            <Pager page={page} data={data.page} onPage={(n) => set({ page: n ? String(n) : undefined })} />
          </>
        )}
      </Loaded>
    </div>
  );
}

function AlertCells(props: { alert: Row; child?: boolean; fresh?: boolean }): JSX.Element {
  const a = props.alert;
  const id = String(a['msdyn_iotalertid']);
  const device = lookupOf(a, 'msdyn_device');
  const kase = lookupOf(a, 'msdyn_case');
  return (
    <>
      <td class={props.child ? 'child-cell' : ''}>
        {props.child && <span aria-hidden="true" class="tree-line">└ </span>}
        <a href={href(`alerts/${id}`)}>{String(a['msdyn_description'] ?? '(no description)')}</a>
        {props.fresh && (
          <>
            {' '}
            <Badge tone="info">New</Badge>
          </>
        )}
      </td>
      <td>
        <time dateTime={String(a['msdyn_alerttime'] ?? '')}>{formatTime(a['msdyn_alerttime'])}</time>
      </td>
      <td>{formatted(a, 'msdyn_alerttype')}</td>
      <td>{device ? <a href={href(`devices/${device.id}`)}>{device.name}</a> : '—'}</td>
      <td>{stateBadge(a)}</td>
      <td>{kase ? <a href={href(`cases/${kase.id}`)}>{kase.name}</a> : '—'}</td>
    </>
  );
}

function AlertRows(props: { alert: Row; childCount: number | undefined; nested: boolean; fresh: boolean }): JSX.Element {
  const id = String(props.alert['msdyn_iotalertid']);
  const [open, setOpen] = useState(false);
  const [kids, setKids] = useState<Row[] | undefined>();
  const [error, setError] = useState<Error | undefined>();
  const toggle = async () => {
    const next = !open;
    setOpen(next);
    if (next && !kids) {
      try {
        const r = await query(`msdyn_iotalerts?$select=${ALERT_COLUMNS}&$filter=_msdyn_parentalert_value eq ${id}&$orderby=msdyn_alerttime desc&$top=100`);
        setKids(r.value);
      } catch (e) {
        setError(e as Error);
      }
    }
  };
  const n = props.childCount ?? 0;
  return (
    <>
      <tr class={props.fresh ? 'fresh' : ''} data-alert-id={id}>
        <AlertCells alert={props.alert} fresh={props.fresh} />
        {props.nested && (
          <td>
            {n > 0 ? (
              <button type="button" class="link" aria-expanded={open} onClick={toggle}>
                {open ? 'Hide' : 'Show'} {n.toLocaleString()} {n === 1 ? 'child' : 'children'}
              </button>
            ) : (
              <span class="muted">0</span>
            )}
          </td>
        )}
      </tr>
      {open && error && (
        <tr>
          <td colSpan={7}>
            <ErrorNote error={error} />
          </td>
        </tr>
      )}
      {open &&
        kids?.map((k) => (
          <tr key={String(k['msdyn_iotalertid'])} class="child-row">
            <AlertCells alert={k} child />
            <td />
          </tr>
        ))}
      {open && n > 100 && kids && (
        <tr class="child-row">
          <td colSpan={7}>
            <a href={href(`alerts/${id}`)}>All {n.toLocaleString()} child alerts on the alert's page</a>
          </td>
        </tr>
      )}
    </>
  );
}
