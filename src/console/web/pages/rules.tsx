import type { JSX } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { AlignedData } from 'uplot';
import { create, formatted, getJson, lookupOf, query, remove, update, type Row } from '../api';
import { useSession } from '../app';
import { TimeChart } from '../components/chart';
import { queryReadings } from '../components/readings';
import { Badge, Empty, ErrorNote, Field, Loading, Section, fieldOfError, formatTime } from '../components/ui';
import { useAsync, usePageTitle, useRecordChanges } from '../hooks';
import { href, navigate } from '../router';
import { can } from '../session';
// The rules evaluator is pure (no I/O, no clock): the preview runs the very code the pipeline runs.
import { createEvaluator, ruleFromRecord, type Firing } from '../../../rules/index.js';
import type { DeviceState } from '../../../rules/evaluator.js';
import { ALERT_TYPES } from './alerts';

const SCOPE = { All: 192350000, Category: 192350001, Device: 192350002 } as const;
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
      <div class="page-head">
        <h1>Rules</h1>
        {can(hello, 'C', 'ccs_iotrule') && (
          <a class="button primary-link" href={href('rules/new')}>
            New rule
          </a>
        )}
      </div>
      <p class="help">A rule raises an IoT alert when its condition on a device's readings becomes true.</p>
      <ErrorNote error={list.error} />
      {!list.data && !list.error && <Loading what="rules" />}
      {list.data &&
        (list.data.value.length === 0 ? (
          <Empty>No rules yet.</Empty>
        ) : (
          <div class="table-wrap">
            <table class="data">
              <caption class="sr-only">Rules</caption>
              <thead>
                <tr>
                  <th scope="col">Rule</th>
                  <th scope="col">Applies to</th>
                  <th scope="col">Condition</th>
                  <th scope="col">Alert type</th>
                  <th scope="col">State</th>
                </tr>
              </thead>
              <tbody>
                {list.data.value.map((r) => (
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
              </tbody>
            </table>
          </div>
        ))}
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

/** The Web API body for the form. The condition goes as the user wrote it: the server's check is the one that counts. */
function bodyOf(f: RuleForm, creating: boolean): Row {
  const body: Row = {
    ccs_name: f.ccs_name.trim(),
    ccs_scope: f.ccs_scope,
    ccs_condition: f.ccs_condition,
    ccs_alerttype: f.ccs_alerttype,
    ccs_description: f.ccs_description.trim() || null,
    ccs_ruleoutput: f.ccs_ruleoutput.trim() || null,
    ccs_suppressseconds: f.ccs_suppressseconds.trim() === '' ? null : Number(f.ccs_suppressseconds),
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
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  usePageTitle(props.id ? `Rule ${form.ccs_name}` : 'New rule');
  const categories = useAsync((signal) => query('msdyn_iotdevicecategories?$select=msdyn_name&$orderby=msdyn_name&$top=500', { signal }), []);
  const devices = useAsync((signal) => query('msdyn_iotdevices?$select=msdyn_name,msdyn_deviceid,_msdyn_category_value&$orderby=msdyn_name&$top=1000', { signal }), []);
  const set = <K extends keyof RuleForm>(k: K, v: RuleForm[K]) => {
    setForm({ ...form, [k]: v });
    setSaved(false);
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    setErrors({});
    setFormError(undefined);
    setSaved(false);
    setBusy(true);
    try {
      if (props.id) {
        await update('ccs_iotrules', props.id, bodyOf(form, false));
        setSaved(true);
      } else {
        const id = await create('ccs_iotrules', bodyOf(form, true));
        navigate(`rules/${id}`, undefined, { replace: true });
      }
    } catch (err) {
      // Keep everything the user typed; show the server's message at the field it names.
      const msg = (err as Error).message;
      const field = fieldOfError(msg, FIELDS);
      if (field) setErrors({ [field]: msg });
      else setFormError(msg);
    } finally {
      setBusy(false);
    }
  };
  const del = async () => {
    if (!props.id || !confirm(`Delete the rule "${form.ccs_name}"?`)) return;
    try {
      await remove('ccs_iotrules', props.id);
      navigate('rules');
    } catch (err) {
      setFormError((err as Error).message);
    }
  };

  return (
    <div class="page">
      <nav class="breadcrumbs" aria-label="Breadcrumb">
        <a href={href('rules')}>Rules</a> <span aria-hidden="true">›</span> <span aria-current="page">{props.id ? form.ccs_name || 'Rule' : 'New rule'}</span>
      </nav>
      <h1>{props.id ? `Rule: ${form.ccs_name}` : 'New rule'}</h1>
      <div class="grid-2">
        <Section title="Definition">
          <form class="editor" onSubmit={submit} noValidate aria-label="Rule">
            <fieldset disabled={!editable} class="plain">
              <Field label="Name" name="ccs_name" error={errors['ccs_name']}>
                {(a) => <input {...a} type="text" maxLength={100} value={form.ccs_name} onInput={(e) => set('ccs_name', e.currentTarget.value)} />}
              </Field>
              <Field label="Applies to" name="ccs_scope" error={errors['ccs_scope']}>
                {(a) => (
                  <select {...a} value={String(form.ccs_scope)} onChange={(e) => set('ccs_scope', Number(e.currentTarget.value))}>
                    <option value={String(SCOPE.All)}>All devices</option>
                    <option value={String(SCOPE.Category)}>Devices of a category</option>
                    <option value={String(SCOPE.Device)}>One device</option>
                  </select>
                )}
              </Field>
              {form.ccs_scope === SCOPE.Category && (
                <Field label="Category" name="ccs_category" error={errors['ccs_category']}>
                  {(a) => (
                    <select {...a} value={form.ccs_category} onChange={(e) => set('ccs_category', e.currentTarget.value)}>
                      <option value="">Choose a category…</option>
                      {categories.data?.value.map((c) => (
                        <option key={String(c['msdyn_iotdevicecategoryid'])} value={String(c['msdyn_iotdevicecategoryid'])}>
                          {String(c['msdyn_name'])}
                        </option>
                      ))}
                    </select>
                  )}
                </Field>
              )}
              {form.ccs_scope === SCOPE.Device && (
                <Field label="Device" name="ccs_device" error={errors['ccs_device']}>
                  {(a) => (
                    <select {...a} value={form.ccs_device} onChange={(e) => set('ccs_device', e.currentTarget.value)}>
                      <option value="">Choose a device…</option>
                      {devices.data?.value.map((d) => (
                        <option key={String(d['msdyn_iotdeviceid'])} value={String(d['msdyn_iotdeviceid'])}>
                          {String(d['msdyn_name'])}
                        </option>
                      ))}
                    </select>
                  )}
                </Field>
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
              <Field label="Alert type" name="ccs_alerttype" error={errors['ccs_alerttype']}>
                {(a) => (
                  <select {...a} value={String(form.ccs_alerttype)} onChange={(e) => set('ccs_alerttype', Number(e.currentTarget.value))}>
                    {ALERT_TYPES.map((t) => (
                      <option key={t.value} value={String(t.value)}>
                        {t.label}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
              <Field label="Alert description" name="ccs_description" error={errors['ccs_description']} help="Placeholders: {readingtype}, {reading}, {threshold}, {ruleoutput}, {deviceid}, {rulename}. Empty: the standard description.">
                {(a) => <input {...a} type="text" maxLength={500} value={form.ccs_description} onInput={(e) => set('ccs_description', e.currentTarget.value)} />}
              </Field>
              <Field label="Rule output" name="ccs_ruleoutput" error={errors['ccs_ruleoutput']}>
                {(a) => <input {...a} type="text" maxLength={100} value={form.ccs_ruleoutput} onInput={(e) => set('ccs_ruleoutput', e.currentTarget.value)} />}
              </Field>
              <Field label="Suppress repeats for (seconds)" name="ccs_suppressseconds" error={errors['ccs_suppressseconds']} help="Empty: 60.">
                {(a) => <input {...a} type="number" min={0} max={86400} step={1} value={form.ccs_suppressseconds} onInput={(e) => set('ccs_suppressseconds', e.currentTarget.value)} />}
              </Field>
              <label class="inline">
                <input type="checkbox" checked={form.active} onChange={(e) => set('active', e.currentTarget.checked)} /> Active
              </label>
            </fieldset>
            <ErrorNote error={formError} />
            {editable && (
              <div class="button-row">
                <button type="submit" class="primary" disabled={busy}>
                  {busy ? 'Saving…' : props.id ? 'Save rule' : 'Create rule'}
                </button>
                {props.id && can(hello, 'D', 'ccs_iotrule') && (
                  <button type="button" class="danger" onClick={del}>
                    Delete
                  </button>
                )}
                {saved && (
                  <span role="status" class="muted">
                    Saved.
                  </span>
                )}
              </div>
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
        ccs_condition: f.ccs_condition,
        ccs_alerttype: f.ccs_alerttype,
        ccs_description: f.ccs_description.trim() || null,
        ccs_ruleoutput: f.ccs_ruleoutput.trim() || null,
        ccs_suppressseconds: f.ccs_suppressseconds.trim() === '' ? null : Number(f.ccs_suppressseconds),
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
        <label>
          Device
          <select value={chosen ? String(chosen['msdyn_iotdeviceid']) : ''} onChange={(e) => setDeviceId(e.currentTarget.value)}>
            {candidates.map((d) => (
              <option key={String(d['msdyn_iotdeviceid'])} value={String(d['msdyn_iotdeviceid'])}>
                {String(d['msdyn_name'])}
              </option>
            ))}
          </select>
        </label>
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
