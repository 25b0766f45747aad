import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { create, getJson, query, type Row } from '../api';
import { useAsync } from '../hooks';
import { FieldErrors, SaveBar, SelectField, TextField, fieldsNamed, useForm } from './form';
import { ErrorNote, Field } from './ui';

const SETTINGS_ID = '76cd1aaa-0dfd-4c17-8915-9df22ee05137';

/** msdyn_iotpropertydefinition.msdyn_type */
/** msdyn_iotdevicecommanddefinition.ccs_deliverymethod */
const DIRECT_METHOD = 192350001;
const TYPE = { String: 192350000, Object: 192350001, DateTime: 192350002, Boolean: 192350003, Whole: 192350004, Decimal: 192350005 } as const;

interface Param {
  readonly id: string;
  readonly name: string;
  readonly type: number;
  readonly unit?: string;
}

async function loadDefinitions(categoryId: string | undefined, signal: AbortSignal): Promise<{ definitions: Row[]; nameProperty: string; paramsProperty: string }> {
  // The category's commands when it has any; otherwise every definition.
  let definitions: Row[] = [];
  if (categoryId) {
    definitions = (await query(`msdyn_iotdevicecategories(${categoryId})/msdyn_iotdevicecategorycommands?$select=msdyn_name,ccs_deliverymethod,ccs_methodname&$orderby=msdyn_name`, { signal })).value;
  }
  if (definitions.length === 0) definitions = (await query('msdyn_iotdevicecommanddefinitions?$select=msdyn_name,ccs_deliverymethod,ccs_methodname&$orderby=msdyn_name&$top=500', { signal })).value;
  let nameProperty = 'CommandName';
  let paramsProperty = 'Parameters';
  try {
    const s = await getJson(`msdyn_iotsettingses(${SETTINGS_ID})?$select=msdyn_commandnameproperty,msdyn_commandparametersproperty`, { signal });
    if (typeof s['msdyn_commandnameproperty'] === 'string' && s['msdyn_commandnameproperty'].trim()) nameProperty = s['msdyn_commandnameproperty'].trim();
    if (typeof s['msdyn_commandparametersproperty'] === 'string' && s['msdyn_commandparametersproperty'].trim()) paramsProperty = s['msdyn_commandparametersproperty'].trim();
  } catch {
    // settings not readable: the defaults hold
  }
  return { definitions, nameProperty, paramsProperty };
}

/**
 * Sends a command to a device: built from a command definition (one typed field per parameter) or written as raw
 * JSON. The message is checked as JSON here, before anything is sent, so a typo is shown next to the field with the
 * user's text kept; what the server refuses comes back next to the field it names.
 */
export function CommandForm(props: { deviceRecordId: string; categoryId?: string; parentAlertId?: string; onSent?: (commandId: string) => void }): JSX.Element {
  const defs = useAsync((signal) => loadDefinitions(props.categoryId, signal), [props.categoryId]);
  const [mode, setMode] = useState<'definition' | 'raw'>('definition');
  const [definitionId, setDefinitionId] = useState('');
  const [values, setValues] = useState<Record<string, string | boolean>>({});
  const [raw, setRaw] = useState('{\n  "CommandName": "",\n  "Parameters": {}\n}');
  const [name, setName] = useState('');
  const [ttl, setTtl] = useState('');
  const [sent, setSent] = useState<string | undefined>();
  const params = useAsync<Param[]>(
    async (signal) => {
      if (!definitionId) return [];
      const r = await query(`msdyn_iotdevicecommanddefinitions(${definitionId})/msdyn_iotdevicecommandparameters?$select=msdyn_name,msdyn_type,msdyn_unit,_msdyn_parentproperty_value`, { signal });
      return r.value
        .filter((p) => !p['_msdyn_parentproperty_value'])
        .map((p) => ({ id: String(p['msdyn_iotpropertydefinitionid']), name: String(p['msdyn_name']), type: Number(p['msdyn_type'] ?? TYPE.String), unit: (p['msdyn_unit'] as string) ?? undefined }));
    },
    [definitionId],
  );
  const definitions = defs.data?.definitions ?? [];
  const definition = definitions.find((d) => String(d['msdyn_iotdevicecommanddefinitionid']) === definitionId);
  const noDefinitions = defs.data !== undefined && definitions.length === 0;
  const effectiveMode = noDefinitions ? 'raw' : mode;
  const direct = effectiveMode === 'definition' && definition?.['ccs_deliverymethod'] === DIRECT_METHOD;
  // What the server refuses comes back next to the field it names; the message is the definition's, or the raw JSON.
  const form = useForm(fieldsNamed(['msdyn_message', 'msdyn_name', 'ccs_timetolive', 'msdyn_command', 'msdyn_device'], { msdyn_message: effectiveMode === 'raw' ? 'raw' : 'definition', msdyn_name: 'name', msdyn_command: '', msdyn_device: '' }));
  const errors = form.errors;

  /** The message from the definition's fields; errors per parameter name. */
  const build = (): { message?: string; errors: Record<string, string> } => {
    const errs: Record<string, string> = {};
    if (!definition) return { errors: { definition: 'Choose a command.' } };
    const parameters: Record<string, unknown> = {};
    for (const p of params.data ?? []) {
      const v = values[p.name];
      if (v === undefined || v === '') continue;
      switch (p.type) {
        case TYPE.Boolean:
          parameters[p.name] = v === true;
          break;
        case TYPE.Whole: {
          const n = Number(v);
          if (!Number.isInteger(n)) errs[`p:${p.name}`] = `${p.name} must be a whole number.`;
          else parameters[p.name] = n;
          break;
        }
        case TYPE.Decimal: {
          const n = Number(v);
          if (!Number.isFinite(n)) errs[`p:${p.name}`] = `${p.name} must be a number.`;
          else parameters[p.name] = n;
          break;
        }
        case TYPE.Object:
          try {
            const o: unknown = JSON.parse(String(v));
            if (typeof o !== 'object' || o === null || Array.isArray(o)) errs[`p:${p.name}`] = `${p.name} must be a JSON object.`;
            else parameters[p.name] = o;
          } catch (e) {
            errs[`p:${p.name}`] = `${p.name} is not valid JSON: ${(e as Error).message}`;
          }
          break;
        case TYPE.DateTime: {
          const d = new Date(String(v));
          if (Number.isNaN(d.getTime())) errs[`p:${p.name}`] = `${p.name} must be a date and time.`;
          else parameters[p.name] = d.toISOString();
          break;
        }
        default:
          parameters[p.name] = String(v);
      }
    }
    const np = defs.data?.nameProperty ?? 'CommandName';
    const pp = defs.data?.paramsProperty ?? 'Parameters';
    return { message: JSON.stringify({ [np]: String(definition['msdyn_name']), [pp]: parameters }), errors: errs };
  };

  const submit = form.submit(async () => {
    setSent(undefined);
    let message: string;
    if (effectiveMode === 'raw') {
      try {
        JSON.parse(raw);
      } catch (err) {
        throw new FieldErrors({ raw: `The message is not valid JSON: ${(err as Error).message}` });
      }
      message = raw;
    } else {
      const b = build();
      if (Object.keys(b.errors).length > 0) throw new FieldErrors(b.errors);
      message = b.message ?? '';
    }
    const parsed = JSON.parse(message) as Record<string, unknown>;
    const commandName = typeof parsed[defs.data?.nameProperty ?? 'CommandName'] === 'string' ? String(parsed[defs.data?.nameProperty ?? 'CommandName']) : '';
    const values: Row = {
      msdyn_name: name.trim() || commandName || 'Command',
      msdyn_message: message,
      'msdyn_Device@odata.bind': `/msdyn_iotdevices(${props.deviceRecordId})`,
    };
    if (ttl.trim() !== '') values['ccs_timetolive'] = Number(ttl);
    if (props.parentAlertId) values['msdyn_ParentAlert@odata.bind'] = `/msdyn_iotalerts(${props.parentAlertId})`;
    if (effectiveMode === 'definition' && definition) values['msdyn_Command@odata.bind'] = `/msdyn_iotdevicecommanddefinitions(${definitionId})`;
    const id = await create('msdyn_iotdevicecommands', values);
    setSent(direct ? 'Command created: the device\'s method is being called; its answer will be in the command history below.' : 'Command created; its status is in the command history below.');
    props.onSent?.(id);
  });

  return (
    <form class="command-form" onSubmit={submit} noValidate aria-label="Send a command">
      {!noDefinitions && (
        <fieldset class="segmented">
          <legend>Write the command</legend>
          <label>
            <input type="radio" name="mode" value="definition" checked={mode === 'definition'} onChange={() => setMode('definition')} /> From a command definition
          </label>
          <label>
            <input type="radio" name="mode" value="raw" checked={mode === 'raw'} onChange={() => setMode('raw')} /> Raw JSON
          </label>
        </fieldset>
      )}
      <ErrorNote error={defs.error} />
      {effectiveMode === 'definition' ? (
        <>
          <SelectField
            label="Command"
            name="definition"
            value={definitionId}
            onChange={(v) => {
              setDefinitionId(v);
              setValues({});
            }}
            error={errors['definition']}
            help={
              direct
                ? `Called as the direct method ${String(definition?.['ccs_methodname'] || definition?.['msdyn_name'])}: the device must be connected, and its answer shows in the command history.`
                : undefined
            }
          >
            <option value="">Choose a command…</option>
            {definitions.map((d) => (
              <option key={String(d['msdyn_iotdevicecommanddefinitionid'])} value={String(d['msdyn_iotdevicecommanddefinitionid'])}>
                {String(d['msdyn_name'])}
                {d['ccs_deliverymethod'] === DIRECT_METHOD ? ' (direct method)' : ''}
              </option>
            ))}
          </SelectField>
          {params.data?.map((p) => (
            <Field key={p.id} label={`${p.name}${p.unit ? ` (${p.unit})` : ''}`} name={`p:${p.name}`} error={errors[`p:${p.name}`]}>
              {(a) =>
                p.type === TYPE.Boolean ? (
                  <input {...a} type="checkbox" checked={values[p.name] === true} onChange={(e) => setValues({ ...values, [p.name]: e.currentTarget.checked })} />
                ) : p.type === TYPE.Object ? (
                  <textarea {...a} rows={3} class="mono" value={String(values[p.name] ?? '')} onInput={(e) => setValues({ ...values, [p.name]: e.currentTarget.value })} />
                ) : (
                  <input
                    {...a}
                    {...({ type: p.type === TYPE.Whole || p.type === TYPE.Decimal ? 'number' : p.type === TYPE.DateTime ? 'datetime-local' : 'text' } as { type: 'text' })}
                    step={p.type === TYPE.Whole ? '1' : p.type === TYPE.Decimal ? 'any' : undefined}
                    value={String(values[p.name] ?? '')}
                    onInput={(e) => setValues({ ...values, [p.name]: e.currentTarget.value })}
                  />
                )
              }
            </Field>
          ))}
          {definition && params.data?.length === 0 && <p class="help">This command has no parameters.</p>}
        </>
      ) : (
        <Field label="Message (JSON)" name="raw" error={errors['raw']} help="Sent to the device as the message body.">
          {(a) => <textarea {...a} rows={6} class="mono" spellcheck={false} value={raw} onInput={(e) => setRaw(e.currentTarget.value)} />}
        </Field>
      )}
      <TextField label="Name (optional)" name="name" value={name} onInput={setName} error={errors['name']} />
      <TextField
        label={direct ? 'Wait for the answer (seconds, optional)' : 'Time to live (seconds, optional)'}
        name="ccs_timetolive"
        type="number"
        value={ttl}
        onInput={setTtl}
        error={errors['ccs_timetolive']}
        input={direct ? { min: 5, max: 300, step: 1 } : { min: 1, max: 172800, step: 1 }}
        help={direct ? 'From 5 to 300. Empty: 30.' : 'How long the hub keeps the message for a device that is offline. Empty: 3600.'}
      />
      <SaveBar label="Send command" busy={form.busy} busyLabel="Sending…" error={form.formError} />
      {sent && (
        <p role="status" class="notice">
          {sent}
        </p>
      )}
    </form>
  );
}
