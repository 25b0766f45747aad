import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { formatted, query, update, type Row } from '../api';
import { useSession } from '../app';
import { Badge, Empty, ErrorNote, Field, Loading, Section, fieldOfError, formatTime } from '../components/ui';
import { useAsync, usePageTitle, useRecordChanges } from '../hooks';
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
      <h1>Workflows</h1>
      <p class="help">Background processes that run when records are created, updated or deleted: debouncing alerts, creating cases, notifying systems.</p>
      <ErrorNote error={list.error} />
      {!list.data && !list.error && <Loading what="workflows" />}
      {list.data && (list.data.value.length === 0 ? <Empty>No workflows.</Empty> : list.data.value.map((w) => <WorkflowCard key={String(w['workflowid'])} workflow={w} onChange={list.reload} />))}
    </div>
  );
}

function WorkflowCard(props: { workflow: Row; onChange: () => void }): JSX.Element {
  const hello = useSession();
  const w = props.workflow;
  const id = String(w['workflowid']);
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
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | undefined>();
  const [saved, setSaved] = useState(false);
  const [showRuns, setShowRuns] = useState(false);
  const triggers = [w['triggeroncreate'] ? 'create' : '', w['triggeronupdateattributelist'] ? `update of ${String(w['triggeronupdateattributelist'])}` : '', w['triggerondelete'] ? 'delete' : ''].filter(Boolean);

  const toggle = async () => {
    setError(undefined);
    try {
      await update('workflows', id, active ? { statecode: 0, statuscode: 1 } : { statecode: 1, statuscode: 2 });
      props.onChange();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const save = async (e: Event) => {
    e.preventDefault();
    setErrors({});
    setError(undefined);
    setSaved(false);
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
    if (Object.keys(errs).length) {
      setErrors(errs);
      return;
    }
    try {
      await update('workflows', id, { ccs_steps: JSON.stringify(next) });
      setSaved(true);
      props.onChange();
    } catch (err) {
      const msg = (err as Error).message;
      // The server names the step path (ccs_steps[0].parameters…) or the parameter: show it at that field.
      const p = params.find((x) => msg.includes(x.name));
      if (p) setErrors({ [p.path.join('.')]: msg });
      else if (fieldOfError(msg, ['ccs_steps'])) setError(msg);
      else setError(msg);
    }
  };
  return (
    <Section title={String(w['name'])} actions={<Badge tone={active ? 'ok' : 'muted'}>{active ? 'Activated' : 'Draft'}</Badge>}>
      {w['description'] ? <p>{String(w['description'])}</p> : null}
      <p class="muted">
        On {formatted(w, 'primaryentity') || String(w['primaryentity'])}: {triggers.join(', ') || 'no trigger'} · rank {String(w['rank'] ?? 0)}
      </p>
      {editable && (
        <div class="button-row">
          <button type="button" class={active ? '' : 'primary'} onClick={toggle} aria-label={`${active ? 'Deactivate' : 'Activate'} ${String(w['name'])}`}>
            {active ? 'Deactivate' : 'Activate'}
          </button>
          <button type="button" aria-expanded={showRuns} onClick={() => setShowRuns(!showRuns)}>
            Recent runs
          </button>
        </div>
      )}
      <ErrorNote error={error} />
      {params.length > 0 && (
        <form onSubmit={save} noValidate class="editor" aria-label={`Parameters of ${String(w['name'])}`}>
          <fieldset disabled={!editable}>
            <legend>Parameters</legend>
            {params.map((p) => {
              const key = p.path.join('.');
              return (
                <Field key={key} label={`${p.name} (${p.action})`} name={key} error={errors[key]}>
                  {(a) =>
                    typeof p.value === 'boolean' ? (
                      <input {...a} type="checkbox" checked={values[key] === true} onChange={(e) => setValues({ ...values, [key]: e.currentTarget.checked })} />
                    ) : typeof p.value === 'number' ? (
                      <input {...a} type="number" value={String(values[key])} onInput={(e) => setValues({ ...values, [key]: e.currentTarget.value })} />
                    ) : (
                      <input {...a} type="text" value={String(values[key])} onInput={(e) => setValues({ ...values, [key]: e.currentTarget.value })} />
                    )
                  }
                </Field>
              );
            })}
            {editable && (
              <div class="button-row">
                <button type="submit" class="primary">
                  Save parameters
                </button>
                {saved && (
                  <span role="status" class="muted">
                    Saved.
                  </span>
                )}
              </div>
            )}
          </fieldset>
        </form>
      )}
      {showRuns && <Runs workflowId={id} />}
    </Section>
  );
}

function Runs(props: { workflowId: string }): JSX.Element {
  const runs = useAsync(
    (signal) =>
      query(`asyncoperations?$select=name,statecode,statuscode,startedon,completedon,message,retrycount,createdon&$filter=_workflowactivationid_value eq ${props.workflowId}&$orderby=createdon desc&$top=10`, { signal }),
    [props.workflowId],
  );
  useRecordChanges(['asyncoperation'], () => runs.reload(), 1000);
  if (runs.error) return <ErrorNote error={runs.error} />;
  if (!runs.data) return <Loading what="runs" />;
  if (runs.data.value.length === 0) return <Empty>No runs yet.</Empty>;
  return (
    <table class="data">
      <caption class="sr-only">Recent runs</caption>
      <thead>
        <tr>
          <th scope="col">Started</th>
          <th scope="col">Status</th>
          <th scope="col">Message</th>
        </tr>
      </thead>
      <tbody>
        {runs.data.value.map((r) => (
          <tr key={String(r['asyncoperationid'])}>
            <td>{formatTime(r['startedon'] ?? r['createdon'])}</td>
            <td>{formatted(r, 'statuscode')}</td>
            <td>{String(r['message'] ?? '')}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
