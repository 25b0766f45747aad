import { CcsError } from '../../errors/index.js';

/** At most this many problems are listed: a template that is wrong everywhere is wrong for one reason. */
const MAX_LISTED = 50;

/**
 * A template that cannot be deployed, with every problem found (each names the section, the item and the field).
 * Nothing has been written when it is thrown by validation.
 */
export class TemplateError extends CcsError {
  constructor(readonly problems: readonly string[]) {
    const listed = problems.slice(0, MAX_LISTED);
    const more = problems.length > MAX_LISTED ? `\n- … and ${problems.length - MAX_LISTED} more` : '';
    super(
      'BadRequest',
      problems.length === 1
        ? `The template is not valid: ${problems[0]}`
        : `The template is not valid (${problems.length} problems):\n${listed.map((p) => `- ${p}`).join('\n')}${more}`,
    );
  }
}

/** Collects problems while a template is checked, so that all of them are reported at once. */
export class Problems {
  readonly list: string[] = [];

  add(where: string, message: string): void {
    this.list.push(`${where}: ${message}`);
  }

  /** Runs `fn`, recording a CcsError it throws as a problem of `where`; other errors propagate. */
  guard<T>(where: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (e) {
      if (e instanceof CcsError) {
        this.add(where, e.message);
        return undefined;
      }
      throw e;
    }
  }

  throwIfAny(): void {
    if (this.list.length > 0) throw new TemplateError(this.list);
  }
}

export type Json = Record<string, unknown>;

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Structural equality of JSON values (object member order does not matter). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

/** The JSON object or array a text column holds, or undefined when it holds something else. */
export function parseJsonText(value: unknown): Json | unknown[] | undefined {
  if (typeof value !== 'string') return undefined;
  const t = value.trimStart();
  if (!t.startsWith('{') && !t.startsWith('[')) return undefined;
  try {
    const parsed: unknown = JSON.parse(value);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Json | unknown[]) : undefined;
  } catch {
    return undefined;
  }
}
