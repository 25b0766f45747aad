import type { JSX } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { AlignedData } from 'uplot';
import { create, formatted, getJson, lookupOf, query, remove, update, type Row } from '../api';
import { useSession } from '../app';
import { TimeChart } from '../components/chart';
import { queryReadings } from '../components/readings';
import { CheckField, Options, RecordOptions, SaveBar, SelectField, TextField, fieldsNamed, useForm } from '../components/form';
import { DataTable, FilterSelect, Loaded } from '../components/list';
import { Badge, Empty, ErrorNote, Field, Loading, PageHead, Section, formatTime } from '../components/ui';
import { useAsync, usePageTitle, useRecordChanges } from '../hooks';
import { href, navigate } from '../router';
import { can } from '../session';
// The rules evaluator is pure (no I/O, no clock): the preview runs the very code the pipeline runs.
import { createEvaluator, ruleFromRecord, type Firing } from '../../../rules/index.js';
import type { DeviceState } from '../../../rules/evaluator.js';
import { ALERT_TYPES } from './alerts';

const SCOPE = { All: 192350000, Category: 192350001, Device: 192350002 } as const;
const SCOPES = [
  { value: SCOPE.All, label: 'All devices' },
  { value: SCOPE.Category, label: 'Devices of a category' },
  { value: SCOPE.Device, label: 'One device' },
] as const;
const FIELDS = ['ccs_name', 'ccs_scope', 'ccs_category', 'ccs_device', 'ccs_condition', 'ccs_alerttype', 'ccs_description', 'ccs_ruleoutput', 'ccs_suppressseconds', 'statecode'];
const EXAMPLE = '{ "measure": "Temperature", "op": "gt", "value": 70 }';

export function RulesPage(): JSX.Element {
  usePageTitle('Rules');
  const hello = useSession();
  const list = useAsync(
    (signal) => query('ccs_iotrules?$select=ccs_name,ccs_scope,_ccs_category_value,_ccs_device_value,ccs_condition,ccs_alerttype,statecode,modifiedon&$orderby=ccs_name&$top=500', { signal }),
    [],
  );
  useRecordChanges(['ccs_iotrule'], () => list.reload(), 500);
  return (
    <div class="page">
      <PageHead title="Rules">
        {can(hello, 'C', 'ccs_iotrule') && (
          <a class="button primary-link" href={href('rules/new')}>
            New rule
          </a>
        )}
      </PageHead>
      <p class="help">A rule raises an IoT alert when its condition on a device's readings becomes true.</p>
      <Loaded state={list} what="rules" empty="No rules yet.">
        {(data) => (
          <DataTable caption="Rules" columns={['Rule', 'Applies to', 'Condition', 'Alert type', 'State']}>
            {data.value.map((r) => (
              <tr key={String(r['ccs_iotruleid'])}>
                <td>
                  <a href={href(`rules/${String(r['ccs_iotruleid'])}`)}>{String(r['ccs_name'])}</a>
                </td>
                <td>
                  {formatted(r, 'ccs_scope')}
                  {lookupOf(r, 'ccs_category') ? `: ${lookupOf(r, 'ccs_category')!.name}` : ''}
                  {lookupOf(r, 'ccs_device') ? `: ${lookupOf(r, 'ccs_device')!.name}` : ''}
                </td>
                <td>
                  <code class="clip">{String(r['ccs_condition'] ?? '')}</code>
                </td>
                <td>{formatted(r, 'ccs_alerttype')}</td>
                <td>{r['statecode'] === 0 ? <Badge tone="ok">Active</Badge> : <Badge>Inactive</Badge>}</td>
              </tr>
            ))}
          </DataTable>
        )}
      </Loaded>
    </div>
  );
}

interface RuleForm {
  ccs_name: string;
  ccs_scope: number;
  ccs_category: string;
  ccs_device: string;
  ccs_condition: string;
  ccs_alerttype: number;
  ccs_description: string;
  ccs_ruleoutput: string;
  ccs_suppressseconds: string;
  active: boolean;
}

function formOf(r: Row | undefined): RuleForm {
  let condition = EXAMPLE;
  if (r && typeof r['ccs_condition'] === 'string') {
    try {
      condition = JSON.stringify(JSON.parse(r['ccs_condition']), null, 2);
    } catch {
      condition = r['ccs_condition'];
    }
  }
  return {
    ccs_name: String(r?.['ccs_name'] ?? ''),
    ccs_scope: Number(r?.['ccs_scope'] ?? SCOPE.All),
    ccs_category: lookupOf(r ?? {}, 'ccs_category')?.id ?? '',
    ccs_device: lookupOf(r ?? {}, 'ccs_device')?.id ?? '',
    ccs_condition: condition,
    ccs_alerttype: Number(r?.['ccs_alerttype'] ?? 192350000),
    ccs_description: String(r?.['ccs_description'] ?? ''),
    ccs_ruleoutput: String(r?.['ccs_ruleoutput'] ?? ''),
    ccs_suppressseconds: r?.['ccs_suppressseconds'] === null || r?.['ccs_suppressseconds'] === undefined ? '' : String(r['ccs_suppressseconds']),
    active: r ? r['statecode'] === 0 : true,
  };
}

/** What the rule does, as columns: the saved record and the preview are made of the same. */
function behaviourOf(f: RuleForm): Row {
  return {
    ccs_condition: f.ccs_condition,
    ccs_alerttype: f.ccs_alerttype,
    ccs_description: f.ccs_description.trim() || null,
    ccs_ruleoutput: f.ccs_ruleoutput.trim() || null,
    ccs_suppressseconds: f.ccs_suppressseconds.trim() === '' ? null : Number(f.ccs_suppressseconds),
  };
}

/** The Web API body for the form. The condition goes as the user wrote it: the server's check is the one that counts. */
function bodyOf(f: RuleForm, creating: boolean): Row {
  const body: Row = {
    ccs_name: f.ccs_name.trim(),
    ccs_scope: f.ccs_scope,
    ...behaviourOf(f),
    'ccs_Category@odata.bind': f.ccs_scope === SCOPE.Category && f.ccs_category ? `/msdyn_iotdevicecategories(${f.ccs_category})` : null,
    'ccs_Device@odata.bind': f.ccs_scope === SCOPE.Device && f.ccs_device ? `/msdyn_iotdevices(${f.ccs_device})` : null,
  };
  if (creating) {
    for (const k of Object.keys(body)) if (body[k] === null) delete body[k];
  }
  if (!creating || !f.active) body['statecode'] = f.active ? 0 : 1;
  return body;
}

export function RulePage(props: { id: string }): JSX.Element {
  const creating = props.id === 'new';
  const rule = useAsync((signal) => (creating ? Promise.resolve(undefined) : getJson(`ccs_iotrules(${props.id})`, { signal })), [props.id]);
  if (rule.error) return <ErrorNote error={rule.error} />;
  if (!creating && !rule.data) return <Loading what="the rule" />;
  return <RuleEditor key={props.id} id={creating ? undefined : props.id} initial={rule.data} />;
}

function RuleEditor(props: { id?: string; initial?: Row }): JSX.Element {
  const hello = useSession();
  const editable = props.id ? can(hello, 'W', 'ccs_iotrule') : can(hello, 'C', 'ccs_iotrule');
  const [form, setForm] = useState<RuleForm>(() => formOf(props.initial));
  // Keep everything the user typed; show the server's message at the field it names.
  const state = useForm(fieldsNamed(FIELDS));
  const errors = state.errors;
  usePageTitle(props.id ? `Rule ${form.ccs_name}` : 'New rule');
  const categories = useAsync((signal) => query('msdyn_iotdevicecategories?$select=msdyn_name&$orderby=msdyn_name&$top=500', { signal }), []);
  const devices = useAsync((signal) => query('msdyn_iotdevices?$select=msdyn_name,msdyn_deviceid,_msdyn_category_value&$orderby=msdyn_name&$top=1000', { signal }), []);
  const set = <K extends keyof RuleForm>(k: K, v: RuleForm[K]) => {
    setForm({ ...form, [k]: v });
    state.touch();
  };

  const submit = state.submit(async () => {
    if (props.id) {
      await update('ccs_iotrules', props.id, bodyOf(form, false));
    } else {
      const id = await create('ccs_iotrules', bodyOf(form, true));
      navigate(`rules/${id}`, undefined, { replace: true });
    }
  });
  const del = async () => {
    if (!props.id || !confirm(`Delete the rule "${form.ccs_name}"?`)) return;
    try {
      await remove('ccs_iotrules', props.id);
      navigate('rules');
    } catch (err) {
      state.fail(err);
    }
  };

  return (
    <div class="page">
      <PageHead title={props.id ? `Rule: ${form.ccs_name}` : 'New rule'} parent={{ label: 'Rules', path: 'rules' }} crumb={props.id ? form.ccs_name || 'Rule' : 'New rule'} />
      <div class="grid-2">
        <Section title="Definition">
          <form class="editor" onSubmit={submit} noValidate aria-label="Rule">
            <fieldset disabled={!editable} class="plain">
              <TextField label="Name" name="ccs_name" value={form.ccs_name} onInput={(v) => set('ccs_name', v)} error={errors['ccs_name']} />
              <SelectField label="Applies to" name="ccs_scope" value={String(form.ccs_scope)} onChange={(v) => set('ccs_scope', Number(v))} error={errors['ccs_scope']}>
                <Options items={SCOPES} />
              </SelectField>
              {form.ccs_scope === SCOPE.Category && (
                <SelectField label="Category" name="ccs_category" value={form.ccs_category} onChange={(v) => set('ccs_category', v)} error={errors['ccs_category']}>
                  <option value="">Choose a category…</option>
                  <RecordOptions rows={categories.data?.value} id="msdyn_iotdevicecategoryid" />
                </SelectField>
              )}
              {form.ccs_scope === SCOPE.Device && (
                <SelectField label="Device" name="ccs_device" value={form.ccs_device} onChange={(v) => set('ccs_device', v)} error={errors['ccs_device']}>
                  <option value="">Choose a device…</option>
                  <RecordOptions rows={devices.data?.value} id="msdyn_iotdeviceid" />
                </SelectField>
              )}
              <Field
                label="Condition (JSON)"
                name="ccs_condition"
                error={errors['ccs_condition']}
                help={
                  <>
                    For example <code>{EXAMPLE}</code>. Operators: gt, ge, lt, le, eq, ne, outside, between; with <code>for</code>, <code>aggregate</code>+<code>window</code>,{' '}
                    <code>rateOfChange</code>, <code>noDataFor</code>, <code>all</code>/<code>any</code>.
                  </>
                }
              >
                {(a) => <textarea {...a} class="mono" rows={8} spellcheck={false} value={form.ccs_condition} onInput={(e) => set('ccs_condition', e.currentTarget.value)} />}
              </Field>
              <SelectField label="Alert type" name="ccs_alerttype" value={String(form.ccs_alerttype)} onChange={(v) => set('ccs_alerttype', Number(v))} error={errors['ccs_alerttype']}>
                <Options items={ALERT_TYPES} />
              </SelectField>
              <TextField
                label="Alert description"
                name="ccs_description"
                value={form.ccs_description}
                onInput={(v) => set('ccs_description', v)}
                error={errors['ccs_description']}
                input={{ maxLength: 500 }}
                help="Placeholders: {readingtype}, {reading}, {threshold}, {ruleoutput}, {deviceid}, {rulename}. Empty: the standard description."
              />
              <TextField label="Rule output" name="ccs_ruleoutput" value={form.ccs_ruleoutput} onInput={(v) => set('ccs_ruleoutput', v)} error={errors['ccs_ruleoutput']} />
              <TextField
                label="Suppress repeats for (seconds)"
                name="ccs_suppressseconds"
                type="number"
                value={form.ccs_suppressseconds}
                onInput={(v) => set('ccs_suppressseconds', v)}
                error={errors['ccs_suppressseconds']}
                input={{ min: 0, max: 86400, step: 1 }}
                help="Empty: 60."
              />
              <CheckField label="Active" checked={form.active} onChange={(v) => set('active', v)} />
            </fieldset>
            {!editable && <ErrorNote error={state.formError} />}
            {editable && (
              <SaveBar label={props.id ? 'Save rule' : 'Create rule'} busy={state.busy} busyLabel="Saving…" saved={state.saved && !!props.id} error={state.formError}>
                {props.id && can(hello, 'D', 'ccs_iotrule') && (
                  <button type="button" class="danger" onClick={del}>
                    Delete
                  </button>
                )}
              </SaveBar>
            )}
          </form>
        </Section>
        <Section title="Preview">
          <RulePreview form={form} devices={devices.data?.value ?? []} />
        </Section>
      </div>
    </div>
  );
}

interface PreviewResult {
  readonly firings: Firing[];
  readonly data: AlignedData;
  readonly names: string[];
  readonly readings: number;
  readonly from: number;
  readonly to: number;
}

function setPath(target: Record<string, unknown>, path: string, value: number): void {
  const parts = path.split('.');
  let o = target;
  for (const p of parts.slice(0, -1)) {
    if (typeof o[p] !== 'object' || o[p] === null) o[p] = {};
    o = o[p] as Record<string, unknown>;
  }
  o[parts[parts.length - 1]!] = value;
}

/**
 * Runs the rule as it is in the form over the last hour of one device's readings, with the pipeline's own
 * evaluator. The readings come from msdyn_IoTHubQueryDeviceReadings in 10-second buckets (their averages), so the
 * preview shows when the rule would fire, not every single alert it would raise.
 */
function RulePreview(props: { form: RuleForm; devices: Row[] }): JSX.Element {
  const f = props.form;
  const candidates = useMemo(
    () =>
      props.devices.filter((d) =>
        f.ccs_scope === SCOPE.Device ? String(d['msdyn_iotdeviceid']) === f.ccs_device : f.ccs_scope === SCOPE.Category ? lookupOf(d, 'msdyn_category')?.id === f.ccs_category : true,
      ),
    [props.devices, f.ccs_scope, f.ccs_device, f.ccs_category],
  );
  const [deviceId, setDeviceId] = useState('');
  const chosen = candidates.find((d) => String(d['msdyn_iotdeviceid']) === deviceId) ?? candidates[0];
  const [result, setResult] = useState<PreviewResult | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  const run = async () => {
    setError(undefined);
    setResult(undefined);
    if (!chosen) return;
    let rule;
    try {
      rule = ruleFromRecord({
        ccs_iotruleid: 'preview',
        ccs_name: f.ccs_name.trim() || 'Preview',
        ccs_scope: SCOPE.All,
        ...behaviourOf(f),
        statecode: 0,
      });
    } catch (e) {
      setError((e as Error).message);
      return;
    }
    setBusy(true);
    try {
      const to = Date.now();
      const from = to - 3_600_000;
      const readings = await queryReadings(String(chosen['msdyn_iotdeviceid']), from, to, 'PT10S');
      const byTime = new Map<number, Record<string, unknown>>();
      for (const [measure, buckets] of Object.entries(readings)) {
        for (const [t, a] of Object.entries(buckets)) {
          const time = Date.parse(t);
          const body = byTime.get(time) ?? {};
          setPath(body, measure, a.avg);
          byTime.set(time, body);
        }
      }
      const evaluator = createEvaluator([rule]);
      const hubId = String(chosen['msdyn_deviceid'] ?? chosen['msdyn_iotdeviceid']);
      let state: DeviceState | undefined;
      const firings: Firing[] = [];
      const times = [...byTime.keys()].sort((a, b) => a - b);
      for (const time of times) {
        const out = evaluator.evaluate(state, { deviceId: hubId, time, body: byTime.get(time) });
        state = out.state;
        firings.push(...out.firings);
      }
      if (state) firings.push(...evaluator.tick(state, to).firings);
      const names = Object.keys(readings);
      const data = [times.map((t) => t / 1000), ...names.map((n) => times.map((t) => readings[n]![new Date(t).toISOString()]?.avg ?? null))] as AlignedData;
      setResult({ firings, data, names, readings: times.length, from, to });
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };

  if (props.devices.length === 0) return <Empty>No devices to preview the rule on.</Empty>;
  return (
    <div>
      <p class="help">Runs the rule as written above over the last hour of a device's readings (10-second averages), without saving it.</p>
      <div class="filters">
        <FilterSelect label="Device" value={chosen ? String(chosen['msdyn_iotdeviceid']) : ''} onChange={setDeviceId}>
          <RecordOptions rows={candidates} id="msdyn_iotdeviceid" />
        </FilterSelect>
        <button type="button" onClick={run} disabled={busy || !chosen}>
          {busy ? 'Running…' : 'Preview on the last hour'}
        </button>
      </div>
      {candidates.length === 0 && <Empty>No device is in the rule's scope.</Empty>}
      {error && <ErrorNote error={error} title="The rule cannot run" />}
      {result && (
        <div data-testid="rule-preview">
          <p role="status">
            {result.readings === 0
              ? 'The device sent no readings in the last hour.'
              : `${result.firings.length === 0 ? 'No alert' : result.firings.length === 1 ? '1 alert' : `${result.firings.length} alerts`} in the last hour (${result.readings} readings checked).`}
          </p>
          {result.names.length > 0 && <TimeChart series={result.names.map((n) => ({ label: n }))} data={result.data} height={180} xRange={[result.from / 1000, result.to / 1000]} label="Readings of the last hour used by the preview" />}
          {result.firings.length > 0 && (
            <ul class="plain-list">
              {result.firings.slice(0, 20).map((x) => (
                <li key={`${x.time}-${x.eventToken}`}>
                  {formatTime(new Date(x.time).toISOString())}: {x.description}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </div>
  );
}
