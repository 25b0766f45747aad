import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { formatted, getJson, lookupOf, query, update, type Row } from '../api';
import { useSession } from '../app';
import { ReadingsChart } from '../components/readings';
import { AlertTable } from '../components/records';
import { Badge, Empty, ErrorNote, Loading, Pager, Section, StageBar, formatTime } from '../components/ui';
import { useAsync, usePageTitle, useRecordChanges } from '../hooks';
import { href, navigate } from '../router';
import { can } from '../session';

const PAGE_SIZE = 50;

function caseState(row: Row): JSX.Element {
  const s = row['statecode'];
  const label = formatted(row, 'statuscode') || formatted(row, 'statecode');
  return <Badge tone={s === 0 ? 'info' : s === 1 ? 'ok' : 'muted'}>{label}</Badge>;
}

export function CasesPage(props: { params: URLSearchParams }): JSX.Element {
  usePageTitle('Cases');
  const state = props.params.get('state') ?? '0';
  const page = Math.max(0, Number(props.params.get('page') ?? 0) || 0);
  const filter = state === '' ? '' : `statecode eq ${Number(state)}`;
  const list = useAsync(
    (signal) =>
      query(
        `incidents?$select=title,ticketnumber,_customerid_value,statecode,statuscode,caseorigincode,prioritycode,createdon,_msdyn_iotalert_value${filter ? `&$filter=${encodeURIComponent(filter)}` : ''}&$orderby=createdon desc&$count=true${page ? `&$skip=${page * PAGE_SIZE}` : ''}`,
        { pageSize: PAGE_SIZE, signal },
      ),
    [filter, page],
  );
  useRecordChanges(['incident'], () => list.reload(), 800);
  return (
    <div class="page">
      <div class="page-head">
        <h1>Cases</h1>
        {list.data?.count !== undefined && <span class="muted">{list.data.count.toLocaleString()} cases</span>}
      </div>
      <form class="filters" aria-label="Filter cases" onSubmit={(e) => e.preventDefault()}>
        <label>
          State
          <select value={state} onChange={(e) => navigate('cases', { state: e.currentTarget.value || undefined }, { replace: true })}>
            <option value="0">Active</option>
            <option value="1">Resolved</option>
            <option value="2">Cancelled</option>
            <option value="">Any</option>
          </select>
        </label>
      </form>
      <ErrorNote error={list.error} />
      {!list.data && !list.error && <Loading what="cases" />}
      {list.data &&
        (list.data.value.length === 0 ? (
          <Empty>No cases.</Empty>
        ) : (
          <>
            <div class="table-wrap">
              <table class="data" data-testid="cases-table">
                <caption class="sr-only">Cases, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Case</th>
                    <th scope="col">Number</th>
                    <th scope="col">Customer</th>
                    <th scope="col">Origin</th>
                    <th scope="col">Priority</th>
                    <th scope="col">Status</th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {list.data.value.map((c) => (
                    <tr key={String(c['incidentid'])}>
                      <td>
                        <a href={href(`cases/${String(c['incidentid'])}`)}>{String(c['title'] ?? '(no title)')}</a>
                      </td>
                      <td>{String(c['ticketnumber'] ?? '—')}</td>
                      <td>{lookupOf(c, 'customerid')?.name ?? '—'}</td>
                      <td>{formatted(c, 'caseorigincode') || '—'}</td>
                      <td>{formatted(c, 'prioritycode') || '—'}</td>
                      <td>{caseState(c)}</td>
                      <td>{formatTime(c['createdon'])}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pager page={page} pageSize={PAGE_SIZE} total={list.data.count} hasNext={!!list.data.nextLink} onPage={(n) => navigate('cases', { state, page: n ? String(n) : undefined }, { replace: true })} />
          </>
        ))}
    </div>
  );
}

interface CaseData {
  readonly incident: Row;
  readonly alert?: Row;
  readonly process?: Row;
  readonly stages: { id: string; name: string }[];
}

async function loadCase(id: string, signal: AbortSignal): Promise<CaseData> {
  const incident = await getJson(`incidents(${id})`, { signal });
  const alertRef = lookupOf(incident, 'msdyn_iotalert');
  let alert: Row | undefined;
  if (alertRef) alert = await getJson(`msdyn_iotalerts(${alertRef.id})?$select=msdyn_description,msdyn_alerttime,_msdyn_device_value,createdon`, { signal }).catch(() => undefined);
  if (!alert) {
    // No primary alert on the case: the latest alert linked to it.
    const linked = await query(`msdyn_iotalerts?$select=msdyn_description,msdyn_alerttime,_msdyn_device_value,createdon&$filter=_msdyn_case_value eq ${id}&$orderby=msdyn_alerttime desc&$top=1`, { signal });
    alert = linked.value[0];
  }
  let process: Row | undefined;
  let stages: { id: string; name: string }[] = [];
  try {
    process = (await query(`msdyn_iottocaseprocesses?$select=_activestageid_value,traversedpath,processid,statecode&$filter=_bpf_incidentid_value eq ${id}&$top=1`, { signal })).value[0];
    if (process) {
      stages = (await query(`processstages?$select=stagename&$filter=processid eq ${String(process['processid'])}&$orderby=ccs_order`, { signal })).value.map((s) => ({ id: String(s['processstageid']), name: String(s['stagename']) }));
    }
  } catch {
    process = undefined; // no process tables, or not readable by this role
  }
  return { incident, alert, process, stages };
}

export function CasePage(props: { id: string }): JSX.Element {
  const hello = useSession();
  const data = useAsync((signal) => loadCase(props.id, signal), [props.id]);
  useRecordChanges(['incident', 'msdyn_iottocaseprocess'], () => data.reload(), 500);
  const [error, setError] = useState<string | undefined>();
  const title = data.data ? String(data.data.incident['title'] ?? 'Case') : 'Case';
  usePageTitle(title);
  if (data.error && !data.data) return <ErrorNote error={data.error} />;
  if (!data.data) return <Loading what="the case" />;
  const { incident, alert, process, stages } = data.data;
  const device = alert ? lookupOf(alert, 'msdyn_device') : undefined;
  const alertTime = alert ? Date.parse(String(alert['msdyn_alerttime'] ?? alert['createdon'] ?? '')) : Number.NaN;
  const now = Date.now();
  const from = Number.isNaN(alertTime) ? now - 86_400_000 : Math.min(alertTime - 3_600_000, now - 3_600_000);
  const setState = async (statecode: number, statuscode: number) => {
    setError(undefined);
    try {
      await update('incidents', props.id, { statecode, statuscode });
      data.reload();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <div class="page">
      <nav class="breadcrumbs" aria-label="Breadcrumb">
        <a href={href('cases')}>Cases</a> <span aria-hidden="true">›</span> <span aria-current="page">{title}</span>
      </nav>
      <div class="page-head">
        <h1>{title}</h1>
        <span data-testid="case-status">{caseState(incident)}</span>
      </div>
      {process && stages.length > 0 && (
        <StageBar stages={stages} current={lookupOf(process, 'activestageid')?.id} passed={String(process['traversedpath'] ?? '').split(',').filter(Boolean)} label="IoT Alert to Case process" />
      )}
      {can(hello, 'W', 'incident') && (
        <div class="actions-bar">
          {incident['statecode'] === 0 ? (
            <button type="button" class="primary" onClick={() => setState(1, 5)}>
              Resolve case
            </button>
          ) : (
            <button type="button" onClick={() => setState(0, 1)}>
              Reactivate case
            </button>
          )}
        </div>
      )}
      <ErrorNote error={error} />
      <div class="grid-2">
        <Section title="Details">
          <dl class="props">
            <dt>Case number</dt>
            <dd>{String(incident['ticketnumber'] ?? '—')}</dd>
            <dt>Customer</dt>
            <dd>{lookupOf(incident, 'customerid')?.name ?? '—'}</dd>
            <dt>Origin</dt>
            <dd>{formatted(incident, 'caseorigincode') || '—'}</dd>
            <dt>Priority</dt>
            <dd>{formatted(incident, 'prioritycode') || '—'}</dd>
            <dt>Created</dt>
            <dd>{formatTime(incident['createdon'])}</dd>
            <dt>IoT alert</dt>
            <dd>{lookupOf(incident, 'msdyn_iotalert') ? <a href={href(`alerts/${lookupOf(incident, 'msdyn_iotalert')!.id}`)}>{lookupOf(incident, 'msdyn_iotalert')!.name}</a> : '—'}</dd>
            <dt>Device</dt>
            <dd>{device ? <a href={href(`devices/${device.id}`)}>{device.name}</a> : '—'}</dd>
          </dl>
          {incident['description'] ? <p>{String(incident['description'])}</p> : null}
        </Section>
        <Section title="Linked alerts">
          <AlertTable filter={`_msdyn_case_value eq ${props.id}`} label="Alerts linked to this case" empty="No alerts are linked to this case." />
        </Section>
      </div>
      {device && (
        <Section title={`Readings of ${device.name}`}>
          <ReadingsChart deviceRecordId={device.id} from={from} to={now} marker={Number.isNaN(alertTime) ? undefined : alertTime} label={`Readings of ${device.name} since before the alert`} testId="case-readings" />
        </Section>
      )}
    </div>
  );
}
