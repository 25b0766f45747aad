import type { JSX } from 'preact';
import { formatted, getJson, lookupOf, query, update, type Row } from '../api';
import { useSession } from '../app';
import { Options } from '../components/form';
import { DataTable, FilterSelect, Loaded, Pager, pageOf, setListParams, usePage } from '../components/list';
import { ReadingsChart } from '../components/readings';
import { AlertTable } from '../components/records';
import { Badge, ErrorNote, Loading, PageHead, Section, formatTime } from '../components/ui';
import { useAction, useAsync, usePageTitle, useRecordChanges } from '../hooks';
import { href } from '../router';
import { can } from '../session';
import { IOT_TO_CASE_PROCESS_ID, ProcessStageBar } from '../components/process';

const CASE_STATES = [
  { value: '0', label: 'Active' },
  { value: '1', label: 'Resolved' },
  { value: '2', label: 'Cancelled' },
  { value: 'any', label: 'Any' },
] as const;

function caseState(row: Row): JSX.Element {
  const s = row['statecode'];
  const label = formatted(row, 'statuscode') || formatted(row, 'statecode');
  return <Badge tone={s === 0 ? 'info' : s === 1 ? 'ok' : 'muted'}>{label}</Badge>;
}

export function CasesPage(props: { params: URLSearchParams }): JSX.Element {
  usePageTitle('Cases');
  const state = props.params.get('state') ?? '0';
  const page = pageOf(props.params);
  const filter = /^[0-2]$/.test(state) ? `statecode eq ${state}` : '';
  const list = usePage(`incidents?$select=title,ticketnumber,_customerid_value,statecode,statuscode,caseorigincode,prioritycode,createdon,_msdyn_iotalert_value${filter ? `&$filter=${encodeURIComponent(filter)}` : ''}&$orderby=createdon desc`, page);
  useRecordChanges(['incident'], () => list.reload(), 800);
  return (
    <div class="page">
      <PageHead title="Cases">{list.data?.count !== undefined && <span class="muted">{list.data.count.toLocaleString()} cases</span>}</PageHead>
      <form class="filters" aria-label="Filter cases" onSubmit={(e) => e.preventDefault()}>
        <FilterSelect label="State" value={state} onChange={(v) => setListParams('cases', props.params, { state: v })}>
          <Options items={CASE_STATES} />
        </FilterSelect>
      </form>
      <Loaded state={list} what="cases" empty="No cases.">
        {(data) => (
          <>
            <DataTable caption="Cases, newest first" testId="cases-table" columns={['Case', 'Number', 'Customer', 'Origin', 'Priority', 'Status', 'Created']}>
              {data.value.map((c) => (
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
            </DataTable>
            <Pager page={page} data={data} onPage={(n) => setListParams('cases', props.params, { state, page: n ? String(n) : undefined })} />
          </>
        )}
      </Loaded>
    </div>
  );
}

interface CaseData {
  readonly incident: Row;
  readonly alert?: Row;
  readonly process?: Row;
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
  try {
    process = (await query(`msdyn_iottocaseprocesses?$select=businessprocessflowinstanceid,_activestageid_value,traversedpath,processid,statecode&$filter=_bpf_incidentid_value eq ${id}&$top=1`, { signal })).value[0];
  } catch {
    process = undefined; // no process tables, or not readable by this role
  }
  return { incident, alert, process };
}

export function CasePage(props: { id: string }): JSX.Element {
  const hello = useSession();
  const data = useAsync((signal) => loadCase(props.id, signal), [props.id]);
  useRecordChanges(['incident', 'msdyn_iottocaseprocess'], () => data.reload(), 500);
  const stateChange = useAction();
  const title = data.data ? String(data.data.incident['title'] ?? 'Case') : 'Case';
  usePageTitle(title);
  if (data.error && !data.data) return <ErrorNote error={data.error} />;
  if (!data.data) return <Loading what="the case" />;
  const { incident, alert, process } = data.data;
  const processRowId = process ? String(process['businessprocessflowinstanceid']) : undefined;
  const device = alert ? lookupOf(alert, 'msdyn_device') : undefined;
  const alertTime = alert ? Date.parse(String(alert['msdyn_alerttime'] ?? alert['createdon'] ?? '')) : Number.NaN;
  const now = Date.now();
  const from = Number.isNaN(alertTime) ? now - 86_400_000 : Math.min(alertTime - 3_600_000, now - 3_600_000);
  const setState = (statecode: number, statuscode: number) =>
    stateChange.run(async () => {
      await update('incidents', props.id, { statecode, statuscode });
      data.reload();
    });
  return (
    <div class="page">
      <PageHead title={title} parent={{ label: 'Cases', path: 'cases' }}>
        <span data-testid="case-status">{caseState(incident)}</span>
      </PageHead>
      {process && (
        <ProcessStageBar
          processId={String(process['processid'] ?? IOT_TO_CASE_PROCESS_ID)}
          current={lookupOf(process, 'activestageid')?.id}
          traversed={process['traversedpath']}
          move={
            processRowId && process['statecode'] === 0 && can(hello, 'W', 'msdyn_iottocaseprocess')
              ? async (stageId) => {
                  await update('msdyn_iottocaseprocesses', processRowId, { 'activestageid@odata.bind': `/processstages(${stageId})` });
                  data.reload();
                }
              : undefined
          }
        />
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
      <ErrorNote error={stateChange.error} />
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
