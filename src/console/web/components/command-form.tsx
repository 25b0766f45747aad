import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { create, getJson, query, type Row } from '../api';
import { useAsync } from '../hooks';
import { ErrorNote, Field, fieldOfError } from './ui';

const SETTINGS_ID = '76cd1aaa-0dfd-4c17-8915-9df22ee05137';

/** msdyn_iotpropertydefinition.msdyn_type */
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
    definitions = (await query(`msdyn_iotdevicecategories(${categoryId})/msdyn_iotdevicecategorycommands?$select=msdyn_name,ccs_deliverymethod&$orderby=msdyn_name`, { signal })).value;
  }
  if (definitions.length === 0) definitions = (await query('msdyn_iotdevicecommanddefinitions?$select=msdyn_name,ccs_deliverymethod&$orderby=msdyn_name&$top=500', { signal })).value;
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
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
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

  const submit = async (e: Event) => {
    e.preventDefault();
    setFormError(undefined);
    setSent(undefined);
    let message: string;
    const errs: Record<string, string> = {};
    if (effectiveMode === 'raw') {
      try {
        JSON.parse(raw);
      } catch (err) {
        errs['raw'] = `The message is not valid JSON: ${(err as Error).message}`;
      }
      message = raw;
    } else {
      const b = build();
      Object.assign(errs, b.errors);
      message = b.message ?? '';
    }
    setErrors(errs);
    if (Object.keys(errs).length > 0) return;
    setBusy(true);
    try {
      const parsed = JSON.parse(message) as Record<string, unknown>;
      const commandName = typeof parsed[defs.data?.nameProperty ?? 'CommandName'] === 'string' ? String(parsed[defs.data?.nameProperty ?? 'CommandName']) : '';
      const values: Row = {
        msdyn_name: name.trim() || commandName || 'Command',
        msdyn_message: message,
        'msdyn_Device@odata.bind': `/msdyn_iotdevices(${props.deviceRecordId})`,
      };
      if (props.parentAlertId) values['msdyn_ParentAlert@odata.bind'] = `/msdyn_iotalerts(${props.parentAlertId})`;
      if (effectiveMode === 'definition' && definition) values['msdyn_Command@odata.bind'] = `/msdyn_iotdevicecommanddefinitions(${definitionId})`;
      const id = await create('msdyn_iotdevicecommands', values);
      setSent(id);
      props.onSent?.(id);
    } catch (err) {
      const msg = (err as Error).message;
      const field = fieldOfError(msg, ['msdyn_message', 'msdyn_name', 'msdyn_command', 'msdyn_device']);
      if (field === 'msdyn_message') setErrors({ [effectiveMode === 'raw' ? 'raw' : 'definition']: msg });
      else if (field === 'msdyn_name') setErrors({ name: msg });
      else setFormError(msg);
    } finally {
      setBusy(false);
    }
  };

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
          <Field label="Command" name="definition" error={errors['definition']}>
            {(a) => (
              <select {...a} value={definitionId} onChange={(e) => { setDefinitionId(e.currentTarget.value); setValues({}); setErrors({}); }}>
                <option value="">Choose a command…</option>
                {definitions.map((d) => (
                  <option key={String(d['msdyn_iotdevicecommanddefinitionid'])} value={String(d['msdyn_iotdevicecommanddefinitionid'])}>
                    {String(d['msdyn_name'])}
                    {d['ccs_deliverymethod'] === 192350001 ? ' (direct method)' : ''}
                  </option>
                ))}
              </select>
            )}
          </Field>
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
      <Field label="Name (optional)" name="name" error={errors['name']}>
        {(a) => <input {...a} type="text" maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
      </Field>
      <ErrorNote error={formError} />
      <button type="submit" class="primary" disabled={busy}>
        {busy ? 'Sending…' : 'Send command'}
      </button>
      {sent && (
        <p role="status" class="notice">
          Command created; its status is in the command history below.
        </p>
      )}
    </form>
  );
}
