import { CcsError } from '../errors/index.js';

/** Expressions are echoed in messages, but a megabyte of client text must not end up in every log line. */
const ECHO_LIMIT = 200;

/** Longest expression or option value we parse; longer input is refused before any work is done. */
export const MAX_EXPRESSION_LENGTH = 100_000;
/** Deepest nesting of parentheses, `not`, function arguments, lambdas and `$expand` levels. */
export const MAX_DEPTH = 100;

export function echo(text: string): string {
  return text.length > ECHO_LIMIT ? `${text.slice(0, ECHO_LIMIT)}…` : text;
}

/** The wording of Microsoft.OData's own syntax errors, which Dataverse passes through; `hint` says what was wrong. */
export function syntaxError(text: string, position: number, hint?: string): never {
  throw new CcsError('InvalidQuery', `Syntax error at position ${position} in '${echo(text)}'.${hint ? ` ${hint}` : ''}`);
}

export function invalidQuery(message: string): never {
  throw new CcsError('InvalidQuery', message);
}

export function invalidValue(message: string): never {
  throw new CcsError('InvalidValue', message);
}

export function notImplemented(message: string): never {
  throw new CcsError('NotImplemented', message);
}

/** Dataverse's message for a name that is neither a column nor a navigation property of the table. */
export function unknownProperty(name: string, table: string): never {
  throw new CcsError('UnknownProperty', `Could not find a property named '${echo(name)}' on type 'Microsoft.Dynamics.CRM.${table}'.`);
}

/** A write-only column (a secret) named where a query would read it. */
export function notReadable(column: { readonly logicalName: string; readonly isValidForRead?: boolean }, table: string): void {
  if (column.isValidForRead === false) {
    throw new CcsError('InvalidQuery', `The property '${column.logicalName}' of 'Microsoft.Dynamics.CRM.${table}' is write-only: it cannot be read, selected, filtered or sorted on.`);
  }
}

export function checkLength(text: string, what: string): void {
  if (text.length > MAX_EXPRESSION_LENGTH) {
    invalidQuery(`The ${what} is too long: ${text.length} characters, at most ${MAX_EXPRESSION_LENGTH} are accepted.`);
  }
}
