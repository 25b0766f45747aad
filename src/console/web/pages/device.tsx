import { Fragment, type JSX } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { AlignedData } from 'uplot';
import { action, formatted, getJson, hasOperation, lookupOf, query, update } from '../api';
import { useSession } from '../app';
import { TimeChart } from '../components/chart';
import { CommandForm } from '../components/command-form';
import { ReadingsChart, type AggregateName } from '../components/readings';
import { AlertTable, CommandHistory } from '../components/records';
import { FieldErrors, Options, SaveBar, useForm } from '../components/form';
import { DataTable, FilterSelect, FilterTime, Loaded } from '../components/list';
import { Empty, ErrorNote, Field, JsonView, Loading, PageHead, Section, formatTime, parseJsonText, relativeTime } from '../components/ui';
import { useAction, useAsync, usePageTitle, useRecordChanges } from '../hooks';
import { href, navigate } from '../router';
import { can, getToken, openEventStream } from '../session';
import { connectionBadge, registrationBadge } from './devices';

/** Points kept in the live chart (per series). */
const LIVE_POINTS = 600;

/** Finite numbers of a JSON object, nested objects named by dotted paths (as msdyn_IoTHubQueryDeviceReadings does). */
export function measuresOf(value: unknown, prefix = '', out: Record<string, number> = {}): Record<string, number> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return out;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const name = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'number' && Number.isFinite(v)) out[name] = v;
    else if (typeof v === 'object' && v !== null && !Array.isArray(v)) measuresOf(v, name, out);
  }
  return out;
}

/** The device's telemetry as it arrives (server-sent events), in a streaming uPlot chart. */
function LiveReadings(props: { hubId: string; name: string }): JSX.Element {
  const buffer = useRef<{ times: number[]; series: Map<string, (number | null)[]> }>({ times: [], series: new Map() });
  const [view, setView] = useState<{ data: AlignedData; names: string[]; latest: Record<string, number>; count: number } | undefined>();
  const [status, setStatus] = useState<'connecting' | 'live' | 'failed'>('connecting');
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    buffer.current = { times: [], series: new Map() };
    setView(undefined);
    let frame: number | undefined;
    let count = 0;
    let latest: Record<string, number> = {};
    const flush = () => {
      frame = undefined;
      const b = buffer.current;
      const names = [...b.series.keys()];
      setView({ data: [b.times.slice(), ...names.map((n) => b.series.get(n)!.slice())] as AlignedData, names, latest: { ...latest }, count });
    };
    const token = getToken();
    if (!token) return;
    const stream = openEventStream(
      token,
      (event, data) => {
        if (event === 'hello') setStatus('live');
        else if (event === 'failed') {
          setStatus('failed');
          setError((data as { message: string }).message);
        } else if (event === 'telemetry') {
          const t = data as { enqueuedTime: number; body: unknown };
          const m = measuresOf(t.body);
          if (Object.keys(m).length === 0) return;
          const b = buffer.current;
          b.times.push(t.enqueuedTime / 1000);
          for (const name of Object.keys(m)) if (!b.series.has(name)) b.series.set(name, new Array<number | null>(b.times.length - 1).fill(null));
          for (const [name, ys] of b.series) ys.push(m[name] ?? null);
          if (b.times.length > LIVE_POINTS) {
            b.times.shift();
            for (const ys of b.series.values()) ys.shift();
          }
          count++;
          latest = { ...latest, ...m };
          frame ??= requestAnimationFrame(flush);
        }
      },
      { device: props.hubId },
    );
    return () => {
      stream.close();
      if (frame !== undefined) cancelAnimationFrame(frame);
    };
  }, [props.hubId]);

  return (
    <div data-testid="live-readings" data-readings={view?.count ?? 0}>
      <p class="muted" role="status">
        {status === 'connecting' ? 'Connecting to the live stream…' : status === 'failed' ? `Live stream unavailable: ${error}` : view ? `${view.count} readings received` : 'Waiting for readings from the device…'}
      </p>
      {view && view.names.length > 0 && (
        <>
          <TimeChart series={view.names.map((n) => ({ label: n }))} data={view.data} label={`Live readings of ${props.name}`} testId="live-chart" />
          <dl class="props latest-values" aria-label="Latest values">
            {Object.entries(view.latest).map(([k, v]) => (
              <Fragment key={k}>
                <dt>{k}</dt>
                <dd>{v}</dd>
              </Fragment>
            ))}
          </dl>
        </>
      )}
    </div>
  );
}

const RANGES = [
  { value: '1h', label: 'Last hour', ms: 3_600_000 },
  { value: '6h', label: 'Last 6 hours', ms: 6 * 3_600_000 },
  { value: '24h', label: 'Last 24 hours', ms: 86_400_000 },
  { value: '7d', label: 'Last 7 days', ms: 7 * 86_400_000 },
  { value: 'custom', label: 'Custom', ms: 0 },
] as const;
const INTERVALS = [
  { value: 'auto', label: 'Automatic' },
  { value: 'PT10S', label: '10 seconds' },
  { value: 'PT1M', label: '1 minute' },
  { value: 'PT5M', label: '5 minutes' },
  { value: 'PT15M', label: '15 minutes' },
  { value: 'PT1H', label: '1 hour' },
  { value: 'P1D', label: '1 day' },
] as const;
const AGGREGATES: readonly { value: AggregateName; label: string }[] = [
  { value: 'avg', label: 'Average' },
  { value: 'min', label: 'Minimum' },
  { value: 'max', label: 'Maximum' },
  { value: 'sum', label: 'Sum' },
  { value: 'count', label: 'Count' },
];

function ReadingsHistory(props: { deviceId: string; name: string }): JSX.Element {
  const [rangeKey, setRangeKey] = useState<string>('1h');
  const [interval, setIntervalText] = useState('auto');
  const [aggregate, setAggregate] = useState<AggregateName>('avg');
  const [custom, setCustom] = useState<{ from?: string; to?: string }>({});
  const [tick, setTick] = useState(() => Date.now());
  const range = RANGES.find((r) => r.value === rangeKey)!;
  const span = useMemo(() => {
    if (range.value === 'custom') {
      const from = custom.from ? Date.parse(custom.from) : tick - 3_600_000;
      const to = custom.to ? Date.parse(custom.to) : tick;
      return { from, to };
    }
    return { from: tick - range.ms, to: tick };
  }, [range, custom, tick]);
  return (
    <div>
      <form class="filters" aria-label="Readings history" onSubmit={(e) => { e.preventDefault(); setTick(Date.now()); }}>
        <FilterSelect label="Range" value={rangeKey} onChange={setRangeKey}>
          <Options items={RANGES} />
        </FilterSelect>
        {rangeKey === 'custom' && (
          <>
            <FilterTime label="From" value={custom.from} onChange={(from) => setCustom({ ...custom, from })} />
            <FilterTime label="To" value={custom.to} onChange={(to) => setCustom({ ...custom, to })} />
          </>
        )}
        <FilterSelect label="Interval" value={interval} onChange={setIntervalText}>
          <Options items={INTERVALS} />
        </FilterSelect>
        <FilterSelect label="Aggregation" value={aggregate} onChange={(v) => setAggregate(v as AggregateName)}>
          <Options items={AGGREGATES} />
        </FilterSelect>
        <button type="submit">Refresh</button>
      </form>
      {span.from < span.to ? (
        <ReadingsChart
          deviceRecordId={props.deviceId}
          from={span.from}
          to={span.to}
          interval={interval === 'auto' ? undefined : interval}
          aggregate={aggregate}
          label={`Readings history of ${props.name}`}
          testId="readings-history"
        />
      ) : (
        <ErrorNote error="'From' must be before 'To'." />
      )}
    </div>
  );
}

/** An editable JSON column (desired properties, tags): checked as JSON before saving; the server's refusal is shown at the field. */
function JsonColumnEditor(props: { deviceId: string; column: string; label: string; value: unknown; canEdit: boolean; onSaved: () => void; help: string }): JSX.Element {
  const initial = useMemo(() => {
    const parsed = parseJsonText(props.value);
    return parsed === null || parsed === undefined || parsed === '' ? '{}' : typeof parsed === 'string' ? parsed : JSON.stringify(parsed, null, 2);
  }, [props.value]);
  const [text, setText] = useState(initial);
  const [dirty, setDirty] = useState(false);
  // Every message of this form is about its one field.
  const form = useForm(() => props.column);
  useEffect(() => {
    if (!dirty) setText(initial);
  }, [initial]);
  const save = form.submit(async () => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new FieldErrors({ [props.column]: `Not valid JSON: ${(err as Error).message}` });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new FieldErrors({ [props.column]: 'Must be a JSON object.' });
    await update('msdyn_iotdevices', props.deviceId, { [props.column]: JSON.stringify(parsed) });
    setDirty(false);
    props.onSaved();
  });
  if (!props.canEdit) return <JsonView value={parseJsonText(props.value) ?? {}} label={props.label} />;
  return (
    <form onSubmit={save} noValidate>
      <Field label={props.label} name={props.column} error={form.errors[props.column]} help={props.help}>
        {(a) => (
          <textarea
            {...a}
            class="mono"
            rows={8}
            spellcheck={false}
            value={text}
            onInput={(e) => {
              setText(e.currentTarget.value);
              setDirty(true);
              form.touch();
            }}
          />
        )}
      </Field>
      <SaveBar label={`Save ${props.label.toLowerCase()}`} disabled={!dirty} saved={form.saved} />
    </form>
  );
}

function RegistrationHistory(props: { deviceId: string }): JSX.Element {
  const list = useAsync(
    (signal) =>
      query(
        `msdyn_iotdeviceregistrationhistories?$select=msdyn_action,ccs_registrationstatus,ccs_registrationmessage,ccs_registrationtime,ccs_deviceid,createdon&$filter=_msdyn_device_value eq ${props.deviceId}&$orderby=createdon desc&$top=50`,
        { signal },
      ),
    [props.deviceId],
  );
  useRecordChanges(['msdyn_iotdeviceregistrationhistory'], () => list.reload(), 300);
  return (
    <Loaded state={list} empty="Never registered.">
      {(data) => (
        <DataTable caption="Registration history" testId="registration-history" columns={['Time', 'Action', 'Outcome', 'Message']}>
          {data.value.map((r) => (
            <tr key={String(r['msdyn_iotdeviceregistrationhistoryid'])}>
              <td>{formatTime(r['ccs_registrationtime'] ?? r['createdon'])}</td>
              <td>{formatted(r, 'msdyn_action')}</td>
              <td>{formatted(r, 'ccs_registrationstatus')}</td>
              <td>{String(r['ccs_registrationmessage'] ?? '')}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </Loaded>
  );
}

export function DevicePage(props: { id: string }): JSX.Element {
  const hello = useSession();
  const device = useAsync((signal) => getJson(`msdyn_iotdevices(${props.id})`, { signal }), [props.id]);
  useRecordChanges(['msdyn_iotdevice'], () => device.reload(), 500, (e) => e.id === props.id);
  const act = useAction();
  const busy = act.busy;
  const [actionNote, setActionNote] = useState<string | undefined>();
  const [showCommand, setShowCommand] = useState(false);
  const testAlerts = useAsync(() => hasOperation('msdyn_IoTSendTestAlert'), []);
  const name = device.data ? String(device.data['msdyn_name'] ?? 'Device') : 'Device';
  usePageTitle(name);
  if (device.error && !device.data) return <ErrorNote error={device.error} />;
  if (!device.data) return <Loading what="the device" />;
  const d = device.data;
  const hubId = typeof d['msdyn_deviceid'] === 'string' && d['msdyn_deviceid'] !== '' ? d['msdyn_deviceid'] : undefined;
  const category = lookupOf(d, 'msdyn_category');
  const account = lookupOf(d, 'msdyn_account');
  const registered = d['msdyn_registrationstatus'] === 192350003;
  const canWrite = can(hello, 'W', 'msdyn_iotdevice');
  const run = (label: string, fn: () => Promise<unknown>, done: string) => {
    setActionNote(undefined);
    return act.run(async () => {
      await fn();
      setActionNote(done);
      device.reload();
    }, label);
  };

  return (
    <div class="page">
      <PageHead title={name} parent={{ label: 'Devices', path: 'devices' }}>
        <span data-testid="registration-status">{registrationBadge(d)}</span>
        {connectionBadge(d)}
      </PageHead>
      <div class="actions-bar">
        {canWrite && (
          <button type="button" class={registered ? '' : 'primary'} disabled={busy !== undefined} onClick={() => run('register', () => action('msdyn_RegisterIoTDevice', { IoTDeviceIds: props.id }), 'Registration requested.')}>
            {busy === 'register' ? 'Registering…' : registered ? 'Register again' : 'Register'}
          </button>
        )}
        {canWrite && (
          <button type="button" disabled={busy !== undefined || !registered} onClick={() => run('pull', () => action('msdyn_PullDataForIoTDevice', { IoTDeviceIds: props.id }), 'Device data pulled from the hub.')}>
            {busy === 'pull' ? 'Pulling…' : 'Pull device data'}
          </button>
        )}
        {can(hello, 'C', 'msdyn_iotdevicecommand') && (
          <button type="button" aria-expanded={showCommand} aria-controls="device-command" onClick={() => setShowCommand(!showCommand)}>
            Send command
          </button>
        )}
        {testAlerts.data && registered && can(hello, 'C', 'msdyn_iotalert') && (
          <button
            type="button"
            disabled={busy !== undefined}
            onClick={() =>
              run(
                'test',
                async () => {
                  const r = await action<{ IoTAlertId: string }>(`msdyn_iotdevices(${props.id})/Microsoft.Dynamics.CRM.msdyn_IoTSendTestAlert`, {});
                  if (r?.IoTAlertId) navigate(`alerts/${r.IoTAlertId}`);
                },
                'Test alert sent.',
              )
            }
          >
            {busy === 'test' ? 'Sending…' : 'Send test alert'}
          </button>
        )}
        <a class="button" href={href('alerts', { device: props.id, state: 'any', scope: 'all' })}>
          Alerts of this device
        </a>
      </div>
      <ErrorNote error={act.error} />
      {actionNote && (
        <p role="status" class="notice">
          {actionNote}
        </p>
      )}
      {showCommand && (
        <Section title="Send a command" id="device-command">
          <CommandForm deviceRecordId={props.id} categoryId={category?.id} />
        </Section>
      )}
      <div class="grid-2">
        <Section title="Details">
          <dl class="props">
            <dt>Device ID</dt>
            <dd>
              <code>{hubId ?? '—'}</code>
            </dd>
            <dt>Registration</dt>
            <dd>
              {formatted(d, 'msdyn_registrationstatus') || 'Unknown'}
              {d['msdyn_registrationmessage'] ? <div class="muted small">{String(d['msdyn_registrationmessage'])}</div> : null}
            </dd>
            <dt>Connection</dt>
            <dd>{d['msdyn_connectionstate'] === true ? 'Connected' : 'Disconnected'}</dd>
            <dt>Last activity</dt>
            <dd title={formatTime(d['msdyn_lastactivitytime'])}>{relativeTime(d['msdyn_lastactivitytime'])}</dd>
            <dt>Category</dt>
            <dd>{category ? <a href={href('devices', { category: category.id })}>{category.name}</a> : '—'}</dd>
            <dt>Account</dt>
            <dd>{account?.name ?? '—'}</dd>
          </dl>
        </Section>
        <Section title="Reported properties">
          {d['msdyn_devicereportedproperties'] ? <JsonView value={parseJsonText(d['msdyn_devicereportedproperties'])} label="Reported properties" /> : <Empty>The device has reported nothing yet.</Empty>}
        </Section>
      </div>
      <Section title="Live readings">{hubId ? <LiveReadings hubId={hubId} name={name} /> : <Empty>The device has no Device ID yet: register it first.</Empty>}</Section>
      <Section title="Readings history">
        <ReadingsHistory deviceId={props.id} name={name} />
      </Section>
      <div class="grid-2">
        <Section title="Settings">
          <JsonColumnEditor deviceId={props.id} column="msdyn_devicesettings" label="Settings" value={d['msdyn_devicesettings']} canEdit={canWrite} onSaved={device.reload} help="Desired properties sent to the device twin (JSON object)." />
        </Section>
        <Section title="Tags">
          <JsonColumnEditor deviceId={props.id} column="msdyn_tags" label="Tags" value={d['msdyn_tags']} canEdit={canWrite} onSaved={device.reload} help="Twin tags, for grouping and queries (JSON object)." />
        </Section>
      </div>
      <Section title="Command history">
        <CommandHistory filter={`_msdyn_device_value eq ${props.id}`} label="Commands sent to this device" testId="device-commands" />
      </Section>
      <Section title="Registration history">
        <RegistrationHistory deviceId={props.id} />
      </Section>
      <Section title="Alerts">
        <AlertTable filter={`_msdyn_device_value eq ${props.id}`} label="Alerts of this device" empty="This device has raised no alerts." top={20} />
      </Section>
    </div>
  );
}
