import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { getJson, update, type Row } from '../api';
import { useSession } from '../app';
import { CheckField, SaveBar, TextField, fieldsNamed, useForm } from '../components/form';
import { ErrorNote, Loading, PageHead, Section } from '../components/ui';
import { useAsync, usePageTitle } from '../hooks';
import { can } from '../session';

const SETTINGS_ID = '76cd1aaa-0dfd-4c17-8915-9df22ee05137';
/** Alert columns an aggregation rule can match on (similar alerts are grouped under one parent). */
const AGGREGATION_COLUMNS = [
  { name: 'msdyn_device', label: 'Device' },
  { name: 'msdyn_alerttype', label: 'Alert type' },
  { name: 'msdyn_description', label: 'Description' },
  { name: 'msdyn_customerasset', label: 'Customer asset' },
  { name: 'msdyn_deviceid', label: 'Device ID (text)' },
  { name: 'msdyn_alerturl', label: 'Alert URL' },
] as const;
const FIELDS = ['msdyn_iotalertaggregationrule', 'msdyn_commandnameproperty', 'msdyn_commandparametersproperty', 'msdyn_devicedatapullfrequency', 'msdyn_scheduleddevicedatapull'];

/** The stored rule: a JSON array of column names, or a comma-separated list; empty means "same device". */
function parseRule(text: unknown): string[] {
  const t = typeof text === 'string' ? text.trim() : '';
  if (!t) return [];
  try {
    const v: unknown = JSON.parse(t);
    if (Array.isArray(v)) return v.map(String);
  } catch {
    // comma-separated
  }
  return t.split(',').map((s) => s.trim()).filter(Boolean);
}

export function SettingsPage(): JSX.Element {
  usePageTitle('Settings');
  const hello = useSession();
  const settings = useAsync((signal) => getJson(`msdyn_iotsettingses(${SETTINGS_ID})`, { signal }), []);
  if (settings.error) return <ErrorNote error={settings.error} />;
  if (!settings.data) return <Loading what="settings" />;
  return <SettingsForm initial={settings.data} editable={can(hello, 'W', 'msdyn_iotsettings')} onSaved={settings.reload} />;
}

function SettingsForm(props: { initial: Row; editable: boolean; onSaved: () => void }): JSX.Element {
  const s = props.initial;
  const [columns, setColumns] = useState<string[]>(() => parseRule(s['msdyn_iotalertaggregationrule']));
  const [nameProp, setNameProp] = useState(String(s['msdyn_commandnameproperty'] ?? ''));
  const [paramsProp, setParamsProp] = useState(String(s['msdyn_commandparametersproperty'] ?? ''));
  const [pull, setPull] = useState(s['msdyn_scheduleddevicedatapull'] === true);
  const [frequency, setFrequency] = useState(s['msdyn_devicedatapullfrequency'] === null || s['msdyn_devicedatapullfrequency'] === undefined ? '' : String(s['msdyn_devicedatapullfrequency']));
  const form = useForm(fieldsNamed(FIELDS));
  const errors = form.errors;
  useEffect(() => form.touch(), [columns, nameProp, paramsProp, pull, frequency]);
  const extra = columns.filter((c) => !AGGREGATION_COLUMNS.some((a) => a.name === c));

  const submit = form.submit(async () => {
    await update('msdyn_iotsettingses', SETTINGS_ID, {
      msdyn_iotalertaggregationrule: columns.length ? JSON.stringify(columns) : null,
      msdyn_commandnameproperty: nameProp.trim() || null,
      msdyn_commandparametersproperty: paramsProp.trim() || null,
      msdyn_scheduleddevicedatapull: pull,
      msdyn_devicedatapullfrequency: frequency.trim() === '' ? null : Number(frequency),
    });
    props.onSaved();
  });

  return (
    <div class="page">
      <PageHead title="Settings" />
      <form class="editor" onSubmit={submit} noValidate>
        <fieldset disabled={!props.editable} class="plain">
          <Section title="Alert aggregation rules">
            <p class="help">Alerts that match on every selected column, within the debounce time span of the alert workflow, are grouped under one parent alert. None selected: alerts of the same device are grouped.</p>
            <div class={`field${errors['msdyn_iotalertaggregationrule'] ? ' has-error' : ''}`} role="group" aria-labelledby="agg-label" aria-describedby={errors['msdyn_iotalertaggregationrule'] ? 'agg-error' : undefined}>
              <span id="agg-label" class="label">
                Group alerts with the same
              </span>
              {[...AGGREGATION_COLUMNS, ...extra.map((name) => ({ name, label: name }))].map((c) => (
                <label key={c.name} class="inline">
                  <input
                    type="checkbox"
                    name="aggregation"
                    value={c.name}
                    checked={columns.includes(c.name)}
                    onChange={(e) => setColumns(e.currentTarget.checked ? [...columns, c.name] : columns.filter((x) => x !== c.name))}
                  />{' '}
                  {c.label}
                </label>
              ))}
              {errors['msdyn_iotalertaggregationrule'] && (
                <p class="field-error" id="agg-error" role="alert">
                  {errors['msdyn_iotalertaggregationrule']}
                </p>
              )}
            </div>
          </Section>
          <Section title="Commands">
            <TextField label="Command name property" name="msdyn_commandnameproperty" value={nameProp} onInput={setNameProp} error={errors['msdyn_commandnameproperty']} help='Empty: "CommandName".' />
            <TextField label="Command parameters property" name="msdyn_commandparametersproperty" value={paramsProp} onInput={setParamsProp} error={errors['msdyn_commandparametersproperty']} help='Empty: "Parameters".' />
          </Section>
          <Section title="Device data pull">
            <CheckField label="Pull device data on a schedule" checked={pull} onChange={setPull} />
            <TextField label="Pull every (seconds)" name="msdyn_devicedatapullfrequency" type="number" value={frequency} onInput={setFrequency} error={errors['msdyn_devicedatapullfrequency']} input={{ min: 60, step: 1 }} help="At least 60." />
          </Section>
        </fieldset>
        {props.editable ? <SaveBar label="Save settings" busy={form.busy} saved={form.saved} error={form.formError} /> : <ErrorNote error={form.formError} />}
      </form>
    </div>
  );
}
