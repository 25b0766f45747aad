import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { action, create, formatted, getJson, hasOperation, lookupOf, query, update, type Row } from '../api';
import { useSession } from '../app';
import { CommandForm } from '../components/command-form';
import { RecordOptions, SaveBar, SelectField, TextField, fieldsNamed, useForm } from '../components/form';
import { IOT_TO_CASE_PROCESS_ID, ProcessStageBar } from '../components/process';
import { AlertTable, CommandHistory } from '../components/records';
import { ReadingsChart } from '../components/readings';
import { ErrorNote, JsonView, Loading, PageHead, Section, formatTime, parseJsonText } from '../components/ui';
import { useAction, useAsync, usePageTitle, useRecordChanges } from '../hooks';
import { href, navigate } from '../router';
import { can } from '../session';
import { stateBadge } from './alerts';

const CASE_ORIGIN_IOT = 700610000;
/** Readings shown around the alert time. */
const WINDOW_MS = 30 * 60_000;

interface AlertData {
  readonly alert: Row;
  readonly device?: Row;
}

async function loadAlert(id: string, signal: AbortSignal): Promise<AlertData> {
  const alert = await getJson(`msdyn_iotalerts(${id})`, { signal });
  const deviceRef = lookupOf(alert, 'msdyn_device');
  let device: Row | undefined;
  if (deviceRef) {
    try {
      device = await getJson(`msdyn_iotdevices(${deviceRef.id})?$select=msdyn_name,msdyn_deviceid,_msdyn_category_value,_msdyn_account_value,msdyn_connectionstate,msdyn_registrationstatus`, { signal });
    } catch {
      device = undefined; // not readable by this role: the alert still shows
    }
  }
  return { alert, device };
}

/**
 * The alert's place in the IoT Alert to Case process. An alert created as a child has no process of its own: its
 * parent's process stands for the group.
 */
function AlertProcess(props: { alert: Row; canMove: boolean; onMoved: () => void }): JSX.Element | null {
  const a = props.alert;
  const id = String(a['msdyn_iotalertid']);
  const processId = typeof a['processid'] === 'string' ? a['processid'] : undefined;
  const parent = lookupOf(a, 'msdyn_parentalert');
  if (!processId && parent) {
    return (
      <p class="muted" data-testid="stage-bar-parent">
        This alert is part of <a href={href(`alerts/${parent.id}`)}>{parent.name}</a>: that alert's process covers both.
      </p>
    );
  }
  return (
    <ProcessStageBar
      processId={processId ?? IOT_TO_CASE_PROCESS_ID}
      current={typeof a['stageid'] === 'string' ? a['stageid'] : undefined}
      traversed={a['traversedpath']}
      move={
        props.canMove && processId && a['statecode'] === 0
          ? async (stageId) => {
              await update('msdyn_iotalerts', id, { stageid: stageId });
              props.onMoved();
            }
          : undefined
      }
    />
  );
}

function CreateCase(props: { alert: Row; device?: Row; onCreated: (id: string) => void }): JSX.Element {
  const [open, setOpen] = useState(false);
  const [title, setTitle] = useState(String(props.alert['msdyn_description'] ?? ''));
  const accountRef = props.device ? lookupOf(props.device, 'msdyn_account') : undefined;
  const [customer, setCustomer] = useState(accountRef?.id ?? '');
  const form = useForm(fieldsNamed(['Title', 'title', 'CustomerId', 'customerid'], { Title: 'title', CustomerId: 'customer', customerid: 'customer' }));
  const accounts = useAsync((signal) => (open ? query('accounts?$select=name&$orderby=name&$top=500', { signal }) : Promise.resolve(undefined)), [open]);
  const id = String(props.alert['msdyn_iotalertid']);

  const submit = form.submit(async () => {
    let incidentId: string;
    if (await hasOperation('ccs_CreateCaseFromIoTAlert')) {
      const r = await action<{ IncidentId: string }>(`msdyn_iotalerts(${id})/Microsoft.Dynamics.CRM.ccs_CreateCaseFromIoTAlert`, {
        ...(title.trim() ? { Title: title.trim() } : {}),
        ...(customer ? { CustomerId: customer } : {}),
      });
      incidentId = r!.IncidentId;
    } else {
      const values: Row = { title: title.trim(), caseorigincode: CASE_ORIGIN_IOT, 'msdyn_IoTAlert@odata.bind': `/msdyn_iotalerts(${id})` };
      if (customer) values['customerid_account@odata.bind'] = `/accounts(${customer})`;
      incidentId = await create('incidents', values);
      await update('msdyn_iotalerts', id, { 'msdyn_Case@odata.bind': `/incidents(${incidentId})` });
    }
    props.onCreated(incidentId);
  });

  if (!open) {
    return (
      <button type="button" class="primary" onClick={() => setOpen(true)}>
        Create case
      </button>
    );
  }
  return (
    <form onSubmit={submit} noValidate aria-label="Create a case" class="inline-form">
      <TextField label="Case title" name="title" value={title} onInput={setTitle} error={form.errors['title']} input={{ maxLength: 200 }} />
      <SelectField label="Customer (account)" name="customer" value={customer} onChange={setCustomer} error={form.errors['customer']} help={accountRef ? `Default: the device's account, ${accountRef.name}.` : 'The device has no account: choose one.'}>
        <option value="">{accountRef ? `${accountRef.name} (device's account)` : 'Choose an account…'}</option>
        <RecordOptions rows={accounts.data?.value} id="accountid" name="name" except={accountRef?.id} />
      </SelectField>
      <SaveBar label="Create case" busy={form.busy} busyLabel="Creating…" error={form.formError} onCancel={() => setOpen(false)} />
    </form>
  );
}

export function AlertPage(props: { id: string }): JSX.Element {
  const hello = useSession();
  const data = useAsync((signal) => loadAlert(props.id, signal), [props.id]);
  useRecordChanges(['msdyn_iotalert'], () => data.reload(), 300, (e) => e.id === props.id);
  const [showCommand, setShowCommand] = useState(false);
  const stateChange = useAction();
  const title = data.data ? String(data.data.alert['msdyn_description'] ?? 'Alert') : 'Alert';
  usePageTitle(title);

  if (data.error && !data.data) return <ErrorNote error={data.error} />;
  if (!data.data) return <Loading what="the alert" />;
  const { alert, device } = data.data;
  const deviceRef = lookupOf(alert, 'msdyn_device');
  const caseRef = lookupOf(alert, 'msdyn_case');
  const parentRef = lookupOf(alert, 'msdyn_parentalert');
  const time = Date.parse(String(alert['msdyn_alerttime'] ?? alert['createdon'] ?? ''));
  const alertData = parseJsonText(alert['msdyn_alertdata']);
  const toggleState = () =>
    stateChange.run(async () => {
      await update('msdyn_iotalerts', props.id, { statecode: alert['statecode'] === 0 ? 1 : 0 });
      data.reload();
    });

  return (
    <div class="page">
      <PageHead title={title} parent={{ label: 'Alerts', path: 'alerts' }}>
        {stateBadge(alert)}
      </PageHead>
      <AlertProcess alert={alert} canMove={can(hello, 'W', 'msdyn_iotalert')} onMoved={data.reload} />
      <div class="actions-bar">
        {caseRef ? (
          <a class="button" href={href(`cases/${caseRef.id}`)}>
            Open case {caseRef.name}
          </a>
        ) : (
          can(hello, 'C', 'incident') && <CreateCase alert={alert} device={device} onCreated={(id) => { data.reload(); navigate(`cases/${id}`); }} />
        )}
        {deviceRef && can(hello, 'C', 'msdyn_iotdevicecommand') && (
          <button type="button" aria-expanded={showCommand} aria-controls="send-command" onClick={() => setShowCommand(!showCommand)}>
            Send command
          </button>
        )}
        {can(hello, 'W', 'msdyn_iotalert') && (
          <button type="button" onClick={toggleState}>
            {alert['statecode'] === 0 ? 'Deactivate alert' : 'Reactivate alert'}
          </button>
        )}
      </div>
      <ErrorNote error={stateChange.error} />
      {showCommand && deviceRef && (
        <Section title="Send a command" id="send-command">
          <CommandForm deviceRecordId={deviceRef.id} categoryId={device ? lookupOf(device, 'msdyn_category')?.id : undefined} parentAlertId={props.id} />
        </Section>
      )}
      <div class="grid-2">
        <Section title="Details">
          <dl class="props">
            <dt>Time</dt>
            <dd>{formatTime(alert['msdyn_alerttime'])}</dd>
            <dt>Type</dt>
            <dd>{formatted(alert, 'msdyn_alerttype') || '—'}</dd>
            <dt>Device</dt>
            <dd>
              {deviceRef ? <a href={href(`devices/${deviceRef.id}`)}>{deviceRef.name}</a> : String(alert['msdyn_deviceid'] ?? '—')}
              {device && (
                <span class="muted"> · {device['msdyn_connectionstate'] ? 'Connected' : 'Disconnected'} · {formatted(device, 'msdyn_registrationstatus')}</span>
              )}
            </dd>
            <dt>Case</dt>
            <dd>{caseRef ? <a href={href(`cases/${caseRef.id}`)}>{caseRef.name}</a> : '—'}</dd>
            {parentRef && (
              <>
                <dt>Parent alert</dt>
                <dd>
                  <a href={href(`alerts/${parentRef.id}`)}>{parentRef.name}</a>
                </dd>
              </>
            )}
            <dt>Priority</dt>
            <dd>{formatted(alert, 'msdyn_suggestedpriority') || '—'}</dd>
            <dt>Alert token</dt>
            <dd>
              <code>{String(alert['msdyn_alerttoken'] ?? '—')}</code>
            </dd>
          </dl>
        </Section>
        <Section title="Alert data">
          {alertData === null || alertData === undefined || alertData === '' ? <p class="empty">No alert data.</p> : <JsonView value={alertData} label="Alert data" />}
        </Section>
      </div>
      {deviceRef && !Number.isNaN(time) && (
        <Section title="Readings around the alert">
          <ReadingsChart deviceRecordId={deviceRef.id} from={time - WINDOW_MS} to={time + WINDOW_MS} marker={time} label={`Readings of ${deviceRef.name} from 30 minutes before to 30 minutes after the alert`} testId="alert-readings" />
        </Section>
      )}
      <Section title="Commands sent">
        <CommandHistory filter={`_msdyn_parentalert_value eq ${props.id}`} label="Commands sent for this alert" testId="alert-commands" />
      </Section>
      <Section title="Child alerts">
        <AlertTable filter={`_msdyn_parentalert_value eq ${props.id}`} label="Child alerts" empty="This alert has no child alerts." />
      </Section>
    </div>
  );
}
