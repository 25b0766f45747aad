import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { action, create, formatted, getJson, hasOperation, lookupOf, query, update, type Row } from '../api';
import { useSession } from '../app';
import { CommandForm } from '../components/command-form';
import { AlertTable, CommandHistory } from '../components/records';
import { ReadingsChart } from '../components/readings';
import { ErrorNote, Field, JsonView, Loading, Section, StageBar, fieldOfError, formatTime, parseJsonText } from '../components/ui';
import { useAsync, usePageTitle, useRecordChanges } from '../hooks';
import { href, navigate } from '../router';
import { can } from '../session';
import { stateBadge } from './alerts';

const IOT_TO_CASE_PROCESS_ID = '006c4c42-2abe-4b61-9149-56df5b9625f9';
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

function ProcessStages(props: { alert: Row }): JSX.Element | null {
  const processId = typeof props.alert['processid'] === 'string' ? props.alert['processid'] : IOT_TO_CASE_PROCESS_ID;
  const stages = useAsync(async (signal) => {
    try {
      return (await query(`processstages?$select=stagename,ccs_order&$filter=processid eq ${processId}&$orderby=ccs_order`, { signal })).value;
    } catch {
      return []; // no process stages in this model
    }
  }, [processId]);
  if (!stages.data || stages.data.length === 0) return null;
  const list = stages.data.map((s) => ({ id: String(s['processstageid']), name: String(s['stagename']) }));
  const traversed = String(props.alert['traversedpath'] ?? '').split(',').filter(Boolean);
  let current = typeof props.alert['stageid'] === 'string' ? props.alert['stageid'] : undefined;
  // Before the process has started on this alert, it is at its first stage.
  if (!current && traversed.length === 0) current = list[0]?.id;
  return <StageBar stages={list} current={current} passed={traversed} label="IoT Alert to Case process" />;
}

function CreateCase(props: { alert: Row; device?: Row; onCreated: (id: string) => void }): JSX.Element {
  const [open, setOpen] = useState(false);
  const [title, setTitle] = useState(String(props.alert['msdyn_description'] ?? ''));
  const accountRef = props.device ? lookupOf(props.device, 'msdyn_account') : undefined;
  const [customer, setCustomer] = useState(accountRef?.id ?? '');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const accounts = useAsync((signal) => (open ? query('accounts?$select=name&$orderby=name&$top=500', { signal }) : Promise.resolve(undefined)), [open]);
  const id = String(props.alert['msdyn_iotalertid']);

  const submit = async (e: Event) => {
    e.preventDefault();
    setErrors({});
    setFormError(undefined);
    setBusy(true);
    try {
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
    } catch (err) {
      const msg = (err as Error).message;
      const field = fieldOfError(msg, ['Title', 'title', 'CustomerId', 'customerid']);
      if (field === 'Title' || field === 'title') setErrors({ title: msg });
      else if (field === 'CustomerId' || field === 'customerid') setErrors({ customer: msg });
      else setFormError(msg);
    } finally {
      setBusy(false);
    }
  };

  if (!open) {
    return (
      <button type="button" class="primary" onClick={() => setOpen(true)}>
        Create case
      </button>
    );
  }
  return (
    <form onSubmit={submit} noValidate aria-label="Create a case" class="inline-form">
      <Field label="Case title" name="title" error={errors['title']}>
        {(a) => <input {...a} type="text" maxLength={200} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />}
      </Field>
      <Field label="Customer (account)" name="customer" error={errors['customer']} help={accountRef ? `Default: the device's account, ${accountRef.name}.` : 'The device has no account: choose one.'}>
        {(a) => (
          <select {...a} value={customer} onChange={(e) => setCustomer(e.currentTarget.value)}>
            <option value="">{accountRef ? `${accountRef.name} (device's account)` : 'Choose an account…'}</option>
            {accounts.data?.value
              .filter((acc) => String(acc['accountid']) !== accountRef?.id)
              .map((acc) => (
                <option key={String(acc['accountid'])} value={String(acc['accountid'])}>
                  {String(acc['name'])}
                </option>
              ))}
          </select>
        )}
      </Field>
      <ErrorNote error={formError} />
      <div class="button-row">
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create case'}
        </button>
        <button type="button" onClick={() => setOpen(false)}>
          Cancel
        </button>
      </div>
    </form>
  );
}

export function AlertPage(props: { id: string }): JSX.Element {
  const hello = useSession();
  const data = useAsync((signal) => loadAlert(props.id, signal), [props.id]);
  useRecordChanges(['msdyn_iotalert'], () => data.reload(), 300, (e) => e.id === props.id);
  const [showCommand, setShowCommand] = useState(false);
  const [stateError, setStateError] = useState<string | undefined>();
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
  const toggleState = async () => {
    setStateError(undefined);
    try {
      await update('msdyn_iotalerts', props.id, { statecode: alert['statecode'] === 0 ? 1 : 0 });
      data.reload();
    } catch (e) {
      setStateError((e as Error).message);
    }
  };

  return (
    <div class="page">
      <nav class="breadcrumbs" aria-label="Breadcrumb">
        <a href={href('alerts')}>Alerts</a> <span aria-hidden="true">›</span> <span aria-current="page">{title}</span>
      </nav>
      <div class="page-head">
        <h1>{title}</h1>
        {stateBadge(alert)}
      </div>
      <ProcessStages alert={alert} />
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
      <ErrorNote error={stateError} />
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
