import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { create, formatted, lookupOf, query, remove, update, type Row } from '../api';
import { useSession } from '../app';
import { CheckField, Options, RecordOptions, SaveBar, TextField, fieldsNamed, useForm } from '../components/form';
import { DataTable, FilterSelect, Loaded } from '../components/list';
import { Badge, ErrorNote, PageHead, Section, formatTime } from '../components/ui';
import { useAction, useAsync, usePageTitle, useRecordChanges } from '../hooks';
import { can } from '../session';

/** ccs_webhookdelivery.ccs_status */
const DELIVERY_STATUS = [
  { value: 192350000, label: 'Pending', tone: 'info' },
  { value: 192350001, label: 'Delivered', tone: 'ok' },
  { value: 192350002, label: 'Retrying', tone: 'warn' },
  { value: 192350003, label: 'Failed', tone: 'bad' },
] as const;
const MESSAGES = ['create', 'update', 'delete'] as const;
const FIELDS = ['ccs_name', 'ccs_url', 'ccs_secret', 'ccs_table', 'ccs_messages', 'ccs_filter', 'ccs_maxattempts'];

/**
 * Webhooks (admins): the `ccs_webhook` records that post record events to HTTP endpoints, and their deliveries
 * (`ccs_webhookdelivery`) with the outcome of each attempt. docs/case-process-and-webhooks.md describes both.
 */
export function WebhooksPage(): JSX.Element {
  usePageTitle('Webhooks');
  const hello = useSession();
  const list = useAsync((signal) => query('ccs_webhooks?$select=ccs_name,ccs_url,ccs_table,ccs_messages,ccs_filter,ccs_maxattempts,statecode&$orderby=ccs_name&$top=500', { signal }), []);
  useRecordChanges(['ccs_webhook'], () => list.reload(), 500);
  const [adding, setAdding] = useState(false);
  return (
    <div class="page">
      <PageHead title="Webhooks">
        {can(hello, 'C', 'ccs_webhook') && (
          <button type="button" class="primary" aria-expanded={adding} onClick={() => setAdding(!adding)}>
            New webhook
          </button>
        )}
      </PageHead>
      <p class="help">A webhook posts the create, update and delete events of one table to an HTTP endpoint, signed with its secret. Every event is a delivery, retried until the endpoint accepts it.</p>
      {adding && (
        <NewWebhook
          onDone={() => {
            setAdding(false);
            list.reload();
          }}
          onCancel={() => setAdding(false)}
        />
      )}
      <Loaded state={list} what="webhooks" empty="No webhooks.">
        {(data) => (
          <DataTable caption="Webhooks" testId="webhooks-table" columns={['Webhook', 'Table', 'Events', 'URL', 'State', { label: 'Actions', hidden: true }]}>
            {data.value.map((w) => (
              <WebhookRow key={String(w['ccs_webhookid'])} webhook={w} onChange={list.reload} />
            ))}
          </DataTable>
        )}
      </Loaded>
      <Section title="Recent deliveries">
        <Deliveries webhooks={list.data?.value ?? []} />
      </Section>
    </div>
  );
}

function WebhookRow(props: { webhook: Row; onChange: () => void }): JSX.Element {
  const hello = useSession();
  const w = props.webhook;
  const id = String(w['ccs_webhookid']);
  const name = String(w['ccs_name'] ?? '');
  const active = w['statecode'] === 0;
  const action = useAction();
  const run = (work: () => Promise<void>) =>
    action.run(async () => {
      await work();
      props.onChange();
    });
  return (
    <tr>
      <td>
        {name}
        {w['ccs_filter'] ? <div class="muted small">Where {String(w['ccs_filter'])}</div> : null}
        <ErrorNote error={action.error} />
      </td>
      <td>
        <code>{String(w['ccs_table'] ?? '')}</code>
      </td>
      <td>{String(w['ccs_messages'] ?? '')}</td>
      <td>
        <code class="clip">{String(w['ccs_url'] ?? '')}</code>
      </td>
      <td>{active ? <Badge tone="ok">Active</Badge> : <Badge>Inactive</Badge>}</td>
      <td>
        <div class="button-row">
          {can(hello, 'W', 'ccs_webhook') && (
            <button type="button" onClick={() => run(() => update('ccs_webhooks', id, active ? { statecode: 1, statuscode: 2 } : { statecode: 0, statuscode: 1 }))} aria-label={`${active ? 'Deactivate' : 'Activate'} ${name}`}>
              {active ? 'Deactivate' : 'Activate'}
            </button>
          )}
          {can(hello, 'D', 'ccs_webhook') && (
            <button type="button" class="danger" aria-label={`Delete ${name}`} onClick={() => confirm(`Delete the webhook "${name}"? Its deliveries stay.`) && run(() => remove('ccs_webhooks', id))}>
              Delete
            </button>
          )}
        </div>
      </td>
    </tr>
  );
}

function NewWebhook(props: { onDone: () => void; onCancel: () => void }): JSX.Element {
  const [values, setValues] = useState({ name: '', url: '', secret: '', table: 'msdyn_iotalert', filter: '', maxAttempts: '' });
  const [messages, setMessages] = useState<string[]>(['create', 'update']);
  const form = useForm(fieldsNamed(FIELDS));
  const errors = form.errors;
  const set = (change: Partial<typeof values>) => setValues({ ...values, ...change });
  const submit = form.submit(async () => {
    const row: Row = {
      ccs_name: values.name.trim(),
      ccs_url: values.url.trim(),
      ccs_secret: values.secret,
      ccs_table: values.table.trim(),
      ccs_messages: messages.join(','),
    };
    if (values.filter.trim()) row['ccs_filter'] = values.filter.trim();
    if (values.maxAttempts.trim()) row['ccs_maxattempts'] = Number(values.maxAttempts);
    await create('ccs_webhooks', row);
    props.onDone();
  });
  return (
    <section class="card" aria-labelledby="new-webhook-title">
      <h2 id="new-webhook-title">New webhook</h2>
      <form class="editor" onSubmit={submit} noValidate aria-label="New webhook">
        <TextField label="Name" name="ccs_name" value={values.name} onInput={(name) => set({ name })} error={errors['ccs_name']} />
        <TextField label="URL" name="ccs_url" type="url" value={values.url} onInput={(url) => set({ url })} error={errors['ccs_url']} input={{ maxLength: 2000, placeholder: 'https://example.com/hooks/ccs' }} />
        <TextField
          label="Secret"
          name="ccs_secret"
          type="password"
          value={values.secret}
          onInput={(secret) => set({ secret })}
          error={errors['ccs_secret']}
          input={{ maxLength: 500, autocomplete: 'new-password' }}
          help="The key of the x-ccs-signature header (HMAC-SHA256 of the body). It is never shown again."
        />
        <TextField label="Table" name="ccs_table" value={values.table} onInput={(table) => set({ table })} error={errors['ccs_table']} help="Logical name of the table, such as msdyn_iotalert, incident or msdyn_iotdevice." />
        <fieldset class={errors['ccs_messages'] ? 'has-error' : ''} aria-describedby={errors['ccs_messages'] ? 'webhook-messages-error' : undefined}>
          <legend>Events</legend>
          {MESSAGES.map((m) => (
            <CheckField key={m} label={m} checked={messages.includes(m)} onChange={(on) => setMessages(on ? MESSAGES.filter((x) => x === m || messages.includes(x)) : messages.filter((x) => x !== m))} />
          ))}
          {errors['ccs_messages'] && (
            <p class="field-error" id="webhook-messages-error" role="alert">
              {errors['ccs_messages']}
            </p>
          )}
        </fieldset>
        <TextField label="Filter (optional)" name="ccs_filter" value={values.filter} onInput={(filter) => set({ filter })} error={errors['ccs_filter']} input={{ maxLength: 4000, placeholder: 'statecode eq 0' }} help="An OData $filter the record must match after the change." />
        <TextField label="Attempts (optional)" name="ccs_maxattempts" type="number" value={values.maxAttempts} onInput={(maxAttempts) => set({ maxAttempts })} error={errors['ccs_maxattempts']} input={{ min: 1, max: 100, step: 1 }} help="Per delivery, from 1 to 100. Empty: 8." />
        <SaveBar label="Create webhook" busy={form.busy} busyLabel="Creating…" error={form.formError} onCancel={props.onCancel} />
      </form>
    </section>
  );
}

function Deliveries(props: { webhooks: readonly Row[] }): JSX.Element {
  const [webhook, setWebhook] = useState('');
  const [status, setStatus] = useState('');
  const filter = [webhook ? `_ccs_webhook_value eq ${webhook}` : '', status ? `ccs_status eq ${status}` : ''].filter(Boolean).join(' and ');
  const list = useAsync(
    (signal) =>
      query(
        `ccs_webhookdeliveries?$select=ccs_name,_ccs_webhook_value,ccs_table,ccs_message,ccs_recordid,ccs_status,ccs_attempts,ccs_laststatuscode,ccs_lasterror,ccs_nextattempton,ccs_deliveredon,createdon${filter ? `&$filter=${encodeURIComponent(filter)}` : ''}&$orderby=createdon desc&$top=50`,
        { signal },
      ),
    [filter],
  );
  useRecordChanges(['ccs_webhookdelivery'], () => list.reload(), 1000);
  return (
    <>
      <form class="filters" aria-label="Filter deliveries" onSubmit={(e) => e.preventDefault()}>
        <FilterSelect label="Webhook" value={webhook} onChange={setWebhook}>
          <option value="">Any</option>
          <RecordOptions rows={props.webhooks} id="ccs_webhookid" name="ccs_name" />
        </FilterSelect>
        <FilterSelect label="Status" value={status} onChange={setStatus}>
          <option value="">Any</option>
          <Options items={DELIVERY_STATUS} />
        </FilterSelect>
      </form>
      <Loaded state={list} what="deliveries" empty="No deliveries.">
        {(data) => (
          <DataTable caption="Recent deliveries, newest first" testId="webhook-deliveries" columns={['Event', 'Webhook', 'Status', 'Attempts', 'Last answer', 'Delivered or next attempt']}>
            {data.value.map((d) => {
              const s = DELIVERY_STATUS.find((x) => x.value === d['ccs_status']);
              return (
                <tr key={String(d['ccs_webhookdeliveryid'])}>
                  <td>
                    {String(d['ccs_table'] ?? '')}.{String(d['ccs_message'] ?? '')}
                    <div class="muted small">
                      {formatTime(d['createdon'])} · <code>{String(d['ccs_recordid'] ?? '')}</code>
                    </div>
                  </td>
                  <td>{lookupOf(d, 'ccs_webhook')?.name ?? '—'}</td>
                  <td>
                    <Badge tone={s?.tone ?? 'muted'}>{s?.label ?? formatted(d, 'ccs_status')}</Badge>
                  </td>
                  <td>{String(d['ccs_attempts'] ?? 0)}</td>
                  <td>
                    {d['ccs_laststatuscode'] !== null && d['ccs_laststatuscode'] !== undefined ? `HTTP ${String(d['ccs_laststatuscode'])}` : '—'}
                    {d['ccs_lasterror'] ? <div class="muted small">{String(d['ccs_lasterror'])}</div> : null}
                  </td>
                  <td>{d['ccs_deliveredon'] ? formatTime(d['ccs_deliveredon']) : d['ccs_nextattempton'] ? `Next ${formatTime(d['ccs_nextattempton'])}` : '—'}</td>
                </tr>
              );
            })}
          </DataTable>
        )}
      </Loaded>
    </>
  );
}
