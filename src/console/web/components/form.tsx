/**
 * What every editor repeats: fields with their inline error, option lists, the submit row with its "Saved." status,
 * and the state of a form whose refusals (the Web API's, or a check made in the browser first) are shown next to the
 * field they are about, with everything the user typed kept.
 */
import type { ComponentChildren, JSX } from 'preact';
import { useState } from 'preact/hooks';
import type { Row } from '../api';
import { ErrorNote, Field, fieldOfError } from './ui';

/** Thrown by a form's work to show messages at fields (a check made in the browser before anything is sent). */
export class FieldErrors extends Error {
  constructor(readonly errors: Record<string, string>) {
    super(Object.values(errors).join(' '));
  }
}

export interface FormState {
  /** Messages by field name. */
  readonly errors: Record<string, string>;
  /** A message that names no field, shown under the form. */
  readonly formError: string | undefined;
  readonly busy: boolean;
  /** Whether the last submit saved (cleared by the next submit or by `touch`). */
  readonly saved: boolean;
  /**
   * A submit handler: clears the messages and runs `work` while busy; a FieldErrors goes to its fields, any other
   * error to the field its message names, else under the form. `work` returning false means "not saved".
   */
  submit(work: () => Promise<unknown>): (e: Event) => Promise<void>;
  /** Shows an error the way a failed submit does. */
  fail(error: unknown): void;
  /** The form changed since it was saved. */
  touch(): void;
}

/**
 * Form state. `fieldOf` says which field a message is about (see `fieldsNamed`); messages it places nowhere are
 * shown under the form.
 */
export function useForm(fieldOf: (message: string) => string | undefined = () => undefined): FormState {
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  const fail = (error: unknown) => {
    if (error instanceof FieldErrors) {
      setErrors(error.errors);
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    const field = fieldOf(message);
    if (field) setErrors({ [field]: message });
    else setFormError(message);
  };
  return {
    errors,
    formError,
    busy,
    saved,
    fail,
    touch: () => setSaved(false),
    submit: (work) => async (e: Event) => {
      e.preventDefault();
      setErrors({});
      setFormError(undefined);
      setSaved(false);
      setBusy(true);
      try {
        if ((await work()) !== false) setSaved(true);
      } catch (err) {
        fail(err);
      } finally {
        setBusy(false);
      }
    },
  };
}

/**
 * `fieldOf` for useForm: the first of `fields` (logical names) a message mentions, mapped through `alias` to the
 * form's field name. Validation messages name the column (`ccs_condition: 'op' must be one of …`).
 */
export function fieldsNamed(fields: readonly string[], alias: Record<string, string> = {}): (message: string) => string | undefined {
  return (message) => {
    const field = fieldOfError(message, fields);
    return field === undefined ? undefined : (alias[field] ?? field);
  };
}

/**
 * The end of a form: its error that names no field, the submit button, Cancel (with `onCancel`), the form's other
 * buttons, and "Saved." once it saved.
 */
export function SaveBar(props: {
  label: string;
  busy?: boolean;
  busyLabel?: string;
  disabled?: boolean;
  saved?: boolean;
  error?: string;
  onCancel?: () => void;
  children?: ComponentChildren;
}): JSX.Element {
  return (
    <>
      <ErrorNote error={props.error} />
      <div class="button-row">
        <button type="submit" class="primary" disabled={props.disabled || props.busy}>
          {props.busy && props.busyLabel ? props.busyLabel : props.label}
        </button>
        {props.onCancel && (
          <button type="button" onClick={props.onCancel}>
            Cancel
          </button>
        )}
        {props.children}
        {props.saved && (
          <span role="status" class="muted">
            Saved.
          </span>
        )}
      </div>
    </>
  );
}

type InputProps = { maxLength?: number; min?: number; max?: number; step?: number | string; placeholder?: string; autocomplete?: string };

/** A labelled one-line text (or number, or URL) input with its help and its inline error. */
export function TextField(props: {
  label: string;
  name: string;
  value: string;
  onInput: (value: string) => void;
  error?: string;
  help?: ComponentChildren;
  type?: 'text' | 'number' | 'url' | 'password';
  input?: InputProps;
}): JSX.Element {
  const type = props.type ?? 'text';
  return (
    <Field label={props.label} name={props.name} error={props.error} help={props.help}>
      {(a) => (
        <input
          {...a}
          {...({ type } as { type: 'text' })}
          maxLength={type === 'text' || type === 'url' ? 100 : undefined}
          {...props.input}
          value={props.value}
          onInput={(e) => props.onInput(e.currentTarget.value)}
        />
      )}
    </Field>
  );
}

/** A labelled select with its help and its inline error. */
export function SelectField(props: { label: string; name: string; value: string; onChange: (value: string) => void; error?: string; help?: ComponentChildren; children: ComponentChildren }): JSX.Element {
  return (
    <Field label={props.label} name={props.name} error={props.error} help={props.help}>
      {(a) => (
        <select {...a} value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
          {props.children}
        </select>
      )}
    </Field>
  );
}

/** A labelled checkbox whose text follows the box. */
export function CheckField(props: { label: string; checked: boolean; onChange: (checked: boolean) => void }): JSX.Element {
  return (
    <label class="inline">
      <input type="checkbox" checked={props.checked} onChange={(e) => props.onChange(e.currentTarget.checked)} /> {props.label}
    </label>
  );
}

/** The options of a fixed list. */
export function Options(props: { items: readonly { readonly value: string | number; readonly label: string }[] }): JSX.Element {
  return (
    <>
      {props.items.map((i) => (
        <option key={i.value} value={String(i.value)}>
          {i.label}
        </option>
      ))}
    </>
  );
}

/** The options of records: their primary id as the value, `name` (default `msdyn_name`) as the text. */
export function RecordOptions(props: { rows: readonly Row[] | undefined; id: string; name?: string; except?: string }): JSX.Element {
  const name = props.name ?? 'msdyn_name';
  return (
    <>
      {props.rows
        ?.filter((r) => String(r[props.id]) !== props.except)
        .map((r) => (
          <option key={String(r[props.id])} value={String(r[props.id])}>
            {String(r[name] ?? r[props.id])}
          </option>
        ))}
    </>
  );
}
