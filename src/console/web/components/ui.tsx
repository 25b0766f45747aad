import type { ComponentChildren, JSX } from 'preact';
import { useState } from 'preact/hooks';
import { href } from '../router';

let nextId = 0;
export function useId(prefix: string): string {
  const [id] = useState(() => `${prefix}-${++nextId}`);
  return id;
}

/**
 * A labelled form control with its help text and its error. The error is the Web API's message as it came back,
 * tied to the control with aria-describedby and aria-invalid so assistive technology reads it with the field.
 */
export function Field(props: {
  label: string;
  error?: string;
  help?: ComponentChildren;
  children: (attrs: { id: string; 'aria-describedby'?: string; 'aria-invalid'?: 'true' }) => ComponentChildren;
  name?: string;
}): JSX.Element {
  const id = useId(props.name ?? 'field');
  const described = [props.help ? `${id}-help` : '', props.error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return (
    <div class={`field${props.error ? ' has-error' : ''}`} data-field={props.name}>
      <label for={id}>{props.label}</label>
      {props.children({ id, ...(described ? { 'aria-describedby': described } : {}), ...(props.error ? { 'aria-invalid': 'true' as const } : {}) })}
      {props.help && (
        <p class="help" id={`${id}-help`}>
          {props.help}
        </p>
      )}
      {props.error && (
        <p class="field-error" id={`${id}-error`} role="alert">
          {props.error}
        </p>
      )}
    </div>
  );
}

/**
 * Which field a Web API error message is about: the first of `fields` (logical names) it mentions. Validation
 * messages name the column (`ccs_condition: 'op' must be one of …`, `Invalid value for lookup 'ccs_device'`).
 */
export function fieldOfError(message: string, fields: readonly string[]): string | undefined {
  let best: { field: string; at: number } | undefined;
  for (const f of fields) {
    const re = new RegExp(`(^|[^A-Za-z0-9_])${f}([^A-Za-z0-9_]|$)`, 'i');
    const m = re.exec(message);
    if (m && (!best || m.index < best.at)) best = { field: f, at: m.index };
  }
  return best?.field;
}

export function ErrorNote(props: { error?: Error | string; title?: string }): JSX.Element | null {
  if (!props.error) return null;
  const message = typeof props.error === 'string' ? props.error : props.error.message;
  return (
    <div class="error-note" role="alert">
      {props.title && <strong>{props.title}: </strong>}
      {message}
    </div>
  );
}

export function Loading(props: { what?: string }): JSX.Element {
  return (
    <p class="loading" role="status">
      Loading{props.what ? ` ${props.what}` : ''}…
    </p>
  );
}

export function Empty(props: { children: ComponentChildren }): JSX.Element {
  return <p class="empty">{props.children}</p>;
}

export function Badge(props: { tone?: 'ok' | 'warn' | 'bad' | 'info' | 'muted'; children: ComponentChildren }): JSX.Element {
  return <span class={`badge ${props.tone ?? 'muted'}`}>{props.children}</span>;
}

export function Section(props: { title: string; id?: string; actions?: ComponentChildren; children: ComponentChildren; class?: string }): JSX.Element {
  const id = props.id ?? `sec-${props.title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return (
    <section class={`card ${props.class ?? ''}`} aria-labelledby={id}>
      <div class="card-head">
        <h2 id={id}>{props.title}</h2>
        {props.actions && <div class="card-actions">{props.actions}</div>}
      </div>
      {props.children}
    </section>
  );
}

/** A collapsible, keyboard-operable JSON tree (native details/summary). */
export function JsonView(props: { value: unknown; label?: string }): JSX.Element {
  return (
    <div class="json-view" aria-label={props.label ?? 'JSON'} role="group">
      <JsonNode value={props.value} name={undefined} depth={0} />
    </div>
  );
}

function JsonNode(props: { value: unknown; name: string | undefined; depth: number }): JSX.Element {
  const { value, name, depth } = props;
  const key = name !== undefined ? <span class="json-key">{JSON.stringify(name)}: </span> : null;
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value as Record<string, unknown>);
    const open = Array.isArray(value) ? '[' : '{';
    const close = Array.isArray(value) ? ']' : '}';
    if (entries.length === 0) {
      return (
        <div class="json-line">
          {key}
          <span class="json-punct">{open + close}</span>
        </div>
      );
    }
    return (
      <details open={depth < 2} class="json-node">
        <summary>
          {key}
          <span class="json-punct">{open}</span>
          <span class="json-summary"> {entries.length} {Array.isArray(value) ? 'items' : 'keys'} </span>
        </summary>
        <div class="json-children">
          {entries.map(([k, v]) => (
            <JsonNode key={k} value={v} name={Array.isArray(value) ? undefined : k} depth={depth + 1} />
          ))}
        </div>
        <span class="json-punct">{close}</span>
      </details>
    );
  }
  const cls = value === null ? 'json-null' : typeof value === 'string' ? 'json-string' : typeof value === 'number' ? 'json-number' : 'json-bool';
  return (
    <div class="json-line">
      {key}
      <span class={cls}>{JSON.stringify(value)}</span>
    </div>
  );
}

/** Parses JSON text for display; text that is not JSON is shown as it is. */
export function parseJsonText(text: unknown): unknown {
  if (typeof text !== 'string' || text.trim() === '') return text ?? null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function formatTime(value: unknown): string {
  if (typeof value !== 'string' || value === '') return '';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? value : d.toLocaleString();
}

export function relativeTime(value: unknown, now = Date.now()): string {
  if (typeof value !== 'string' || value === '') return '—';
  const t = Date.parse(value);
  if (Number.isNaN(t)) return value;
  const s = Math.round((now - t) / 1000);
  if (s < 60) return `${Math.max(0, s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString();
}

/**
 * A process stage bar: the stages in order, those passed marked, the current one announced. With `onMove`, every
 * other stage is a button that moves the process there; which moves are allowed is the server's to say (one stage
 * forward or any number back), and its refusal is shown by the page.
 */
export function StageBar(props: {
  stages: readonly { id: string; name: string }[];
  current?: string;
  passed: readonly string[];
  label?: string;
  onMove?: (stageId: string) => void;
  busy?: boolean;
  testId?: string;
}): JSX.Element {
  return (
    <ol class="stage-bar" aria-label={props.label ?? 'Process stages'} data-testid={props.testId}>
      {props.stages.map((s, i) => {
        const isCurrent = s.id === props.current;
        const done = !isCurrent && props.passed.includes(s.id);
        const content = (
          <>
            <span class="stage-num" aria-hidden="true">
              {done ? '✓' : i + 1}
            </span>
            <span>{s.name}</span>
            {isCurrent && <span class="sr-only"> (current stage)</span>}
            {done && <span class="sr-only"> (completed)</span>}
          </>
        );
        return (
          <li key={s.id} class={isCurrent ? 'current' : done ? 'done' : ''} aria-current={isCurrent ? 'step' : undefined} data-stage-id={s.id}>
            {props.onMove && !isCurrent ? (
              <button type="button" class="stage-button" disabled={props.busy} aria-label={`Move to ${s.name}${done ? ' (completed)' : ''}`} onClick={() => props.onMove!(s.id)}>
                {content}
              </button>
            ) : (
              content
            )}
          </li>
        );
      })}
    </ol>
  );
}

/** The page's heading, with the way back (breadcrumbs) when it is the page of one record, and what stands beside the heading. */
export function PageHead(props: { title: string; parent?: { label: string; path: string }; crumb?: string; children?: ComponentChildren }): JSX.Element {
  return (
    <>
      {props.parent && (
        <nav class="breadcrumbs" aria-label="Breadcrumb">
          <a href={href(props.parent.path)}>{props.parent.label}</a> <span aria-hidden="true">›</span> <span aria-current="page">{props.crumb ?? props.title}</span>
        </nav>
      )}
      <div class="page-head">
        <h1>{props.title}</h1>
        {props.children}
      </div>
    </>
  );
}
