import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { formatted, lookupOf, query, update, type Row } from '../api';
import { useSession } from '../app';
import { FieldErrors, SaveBar, TextField, useForm } from '../components/form';
import { DataTable, Loaded } from '../components/list';
import { Badge, ErrorNote, Field, PageHead, Section, formatTime } from '../components/ui';
import { useAction, useAsync, usePageTitle, useRecordChanges } from '../hooks';
import { href } from '../router';
import { can } from '../session';

/** A literal action parameter in a workflow's steps: where it is and its value. */
interface Parameter {
  readonly path: (string | number)[];
  readonly action: string;
  readonly name: string;
  readonly value: string | number | boolean;
}

/** Literal parameters of action steps (`{"action": …, "parameters": {"TimespanSeconds": 60}}`), nested steps too. */
export function parametersOf(steps: unknown, path: (string | number)[] = []): Parameter[] {
  const out: Parameter[] = [];
  if (!Array.isArray(steps)) return out;
  steps.forEach((step: unknown, i) => {
    if (typeof step !== 'object' || step === null) return;
    const s = step as Record<string, unknown>;
    if (typeof s['action'] === 'string' && typeof s['parameters'] === 'object' && s['parameters'] !== null) {
      for (const [name, value] of Object.entries(s['parameters'] as Record<string, unknown>)) {
        if (typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean') out.push({ path: [...path, i, 'parameters', name], action: s['action'], name, value });
      }
    }
    for (const branch of ['then', 'else'] as const) out.push(...parametersOf(s[branch], [...path, i, branch]));
  });
  return out;
}

function setAt(root: unknown, path: (string | number)[], value: unknown): void {
  let o = root as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  o[path[path.length - 1]!] = value;
}

/** A parameter's place as the Web API names it in its messages: `ccs_steps[0].then[1].parameters.TimespanSeconds`. */
export function stepPath(path: readonly (string | number)[]): string {
  return `ccs_steps${path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('')}`;
}

/** Where a refusal of the steps belongs: the parameter whose path (or, failing that, whose name) it mentions. */
function parameterOf(params: readonly Parameter[], message: string): string | undefined {
  const byPath = params.filter((p) => message.includes(stepPath(p.path))).sort((a, b) => stepPath(b.path).length - stepPath(a.path).length)[0];
  const p = byPath ?? params.find((x) => new RegExp(`\\b${x.name}\\b`).test(message));
  return p ? p.path.join('.') : undefined;
}

const RUN_STATUS_TONE: Record<number, 'ok' | 'bad' | 'warn' | 'info' | 'muted'> = { 30: 'ok', 31: 'bad', 32: 'muted', 20: 'info', 10: 'warn', 0: 'warn' };

export function WorkflowsPage(): JSX.Element {
  usePageTitle('Workflows');
  const list = useAsync(
    (signal) =>
      query('workflows?$select=name,description,primaryentity,statecode,statuscode,triggeroncreate,triggeronupdateattributelist,triggerondelete,ccs_steps,rank,category&$filter=category eq 0&$orderby=rank,name&$top=500', { signal }),
    [],
  );
  useRecordChanges(['workflow'], () => list.reload(), 500);
  return (
    <div class="page">
      <PageHead title="Workflows" />
      <p class="help">Background processes that run when records are created, updated or deleted: debouncing alerts, creating cases, notifying systems.</p>
      <Loaded state={list} what="workflows" empty="No workflows.">
        {(data) => data.value.map((w) => <WorkflowCard key={String(w['workflowid'])} workflow={w} onChange={list.reload} />)}
      </Loaded>
    </div>
  );
}

function WorkflowCard(props: { workflow: Row; onChange: () => void }): JSX.Element {
  const hello = useSession();
  const w = props.workflow;
  const id = String(w['workflowid']);
  const name = String(w['name']);
  const active = w['statecode'] === 1;
  const editable = can(hello, 'W', 'workflow');
  let steps: unknown;
  try {
    steps = JSON.parse(String(w['ccs_steps'] ?? '[]'));
  } catch {
    steps = undefined;
  }
  const params = parametersOf(steps);
  const [values, setValues] = useState<Record<string, string | boolean>>(() => Object.fromEntries(params.map((p) => [p.path.join('.'), typeof p.value === 'boolean' ? p.value : String(p.value)])));
  const toggling = useAction();
  // The server names the step path (ccs_steps[0].parameters.TimespanSeconds) or the parameter: shown at that field.
  const form = useForm((message) => parameterOf(params, message));
  const triggers = [w['triggeroncreate'] ? 'create' : '', w['triggeronupdateattributelist'] ? `update of ${String(w['triggeronupdateattributelist'])}` : '', w['triggerondelete'] ? 'delete' : ''].filter(Boolean);

  const toggle = () =>
    toggling.run(async () => {
      await update('workflows', id, active ? { statecode: 0, statuscode: 1 } : { statecode: 1, statuscode: 2 });
      props.onChange();
    });
  const save = form.submit(async () => {
    const next = JSON.parse(JSON.stringify(steps)) as unknown;
    const errs: Record<string, string> = {};
    for (const p of params) {
      const key = p.path.join('.');
      const v = values[key];
      if (typeof p.value === 'number') {
        const n = Number(v);
        if (String(v).trim() === '' || !Number.isFinite(n)) errs[key] = `${p.name} must be a number.`;
        else setAt(next, p.path, n);
      } else if (typeof p.value === 'boolean') setAt(next, p.path, v === true);
      else setAt(next, p.path, String(v));
    }
    if (Object.keys(errs).length) throw new FieldErrors(errs);
    await update('workflows', id, { ccs_steps: JSON.stringify(next) });
    props.onChange();
  });
  return (
    <Section title={name} actions={<Badge tone={active ? 'ok' : 'muted'}>{active ? 'Activated' : 'Draft'}</Badge>}>
      <div class="workflow" data-workflow={name}>
        {w['description'] ? <p>{String(w['description'])}</p> : null}
        <p class="muted">
          On {formatted(w, 'primaryentity') || String(w['primaryentity'])}: {triggers.join(', ') || 'no trigger'} · rank {String(w['rank'] ?? 0)}
        </p>
        {editable && (
          <div class="button-row">
            <button type="button" class={active ? '' : 'primary'} disabled={toggling.busy !== undefined} onClick={toggle} aria-label={`${active ? 'Deactivate' : 'Activate'} ${name}`}>
              {active ? 'Deactivate' : 'Activate'}
            </button>
          </div>
        )}
        <ErrorNote error={toggling.error} />
        {params.length > 0 && (
          <form onSubmit={save} noValidate class="editor" aria-label={`Parameters of ${name}`}>
            <fieldset disabled={!editable}>
              <legend>Parameters</legend>
              {params.map((p) => {
                const key = p.path.join('.');
                const label = `${p.name} (${p.action})`;
                const error = form.errors[key];
                return typeof p.value === 'boolean' ? (
                  <Field key={key} label={label} name={key} error={error}>
                    {(a) => <input {...a} type="checkbox" checked={values[key] === true} onChange={(e) => setValues({ ...values, [key]: e.currentTarget.checked })} />}
                  </Field>
                ) : (
                  <TextField key={key} label={label} name={key} type={typeof p.value === 'number' ? 'number' : 'text'} value={String(values[key])} onInput={(v) => setValues({ ...values, [key]: v })} error={error} input={{ maxLength: undefined }} />
                );
              })}
              {editable && <SaveBar label="Save parameters" busy={form.busy} saved={form.saved} error={form.formError} />}
            </fieldset>
          </form>
        )}
        <h3 class="subhead">Recent runs</h3>
        <Runs workflowId={id} primaryEntity={String(w['primaryentity'] ?? '')} />
      </div>
    </Section>
  );
}

/** Where a run's triggering record is shown in the console, when it is. */
const RECORD_PAGES: Record<string, string> = { msdyn_iotalert: 'alerts', msdyn_iotdevice: 'devices', incident: 'cases', ccs_iotrule: 'rules' };

function Runs(props: { workflowId: string; primaryEntity: string }): JSX.Element {
  const runs = useAsync(
    (signal) =>
      query(
        `asyncoperations?$select=name,statecode,statuscode,startedon,completedon,message,friendlymessage,retrycount,createdon,_regardingobjectid_value&$filter=_workflowactivationid_value eq ${props.workflowId}&$orderby=createdon desc&$top=5`,
        { signal },
      ),
    [props.workflowId],
  );
  useRecordChanges(['asyncoperation'], () => runs.reload(), 1000);
  const page = RECORD_PAGES[props.primaryEntity];
  return (
    <Loaded state={runs} what="runs" empty="No runs yet.">
      {(data) => (
        <DataTable caption="Recent runs" testId={`runs-${props.workflowId}`} columns={['Started', 'Record', 'Status', 'Attempts', 'Message']}>
          {data.value.map((r) => {
            const record = lookupOf(r, 'regardingobjectid');
            const status = Number(r['statuscode']);
            return (
              <tr key={String(r['asyncoperationid'])}>
                <td>{formatTime(r['startedon'] ?? r['createdon'])}</td>
                <td>{record ? page ? <a href={href(`${page}/${record.id}`)}>{record.name}</a> : record.name : '—'}</td>
                <td>
                  <Badge tone={RUN_STATUS_TONE[status] ?? 'muted'}>{formatted(r, 'statuscode') || String(r['statuscode'] ?? '')}</Badge>
                </td>
                <td>{Number(r['retrycount'] ?? 0) + 1}</td>
                <td>{String(r['friendlymessage'] ?? r['message'] ?? '')}</td>
              </tr>
            );
          })}
        </DataTable>
      )}
    </Loaded>
  );
}
