import { CcsError } from '../errors/index.js';
import type { Model, Navigation, Table } from '../metadata/index.js';

export const NAMESPACE = 'Microsoft.Dynamics.CRM.';

/** What a request path (relative to the service root) addresses. Keys are raw text, parsed later. */
export type Resource =
  | { readonly kind: 'service' }
  | { readonly kind: 'metadata' }
  | { readonly kind: 'batch' }
  | { readonly kind: 'entityDefinitions'; readonly key?: string; readonly attributes: boolean; readonly attributeKey?: string }
  | { readonly kind: 'collection'; readonly table: Table; readonly count: boolean }
  | { readonly kind: 'entity'; readonly table: Table; readonly key: string }
  | { readonly kind: 'property'; readonly table: Table; readonly key: string; readonly column: string }
  | {
      readonly kind: 'navigation';
      readonly table: Table;
      readonly key: string;
      readonly navigation: Navigation;
      readonly relatedKey?: string;
      readonly ref: boolean;
      readonly count: boolean;
    }
  | {
      readonly kind: 'operation';
      readonly name: string;
      /** Text between the parentheses of a function call, if any. */
      readonly args?: string;
      readonly bound?: { readonly table: Table; readonly key?: string };
    };

/** Splits on `/` outside quotes and parentheses (alternate-key values and function arguments may contain `/`). */
function segments(path: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < path.length; i++) {
    const ch = path[i];
    if (ch === "'") quoted = !quoted;
    else if (!quoted && ch === '(') depth++;
    else if (!quoted && ch === ')') depth--;
    else if (!quoted && depth === 0 && ch === '/') {
      out.push(path.slice(start, i));
      start = i + 1;
    }
  }
  out.push(path.slice(start));
  return out;
}

/** `name(inner)` → [name, inner]; `name` → [name, undefined]. */
function splitKey(segment: string): [string, string | undefined] {
  const open = segment.indexOf('(');
  if (open < 0) return [segment, undefined];
  if (!segment.endsWith(')')) throw new CcsError('BadRequest', `Bad request - Error in query syntax: unbalanced parentheses in '${segment}'.`);
  return [segment.slice(0, open), segment.slice(open + 1, -1)];
}

function notFound(segment: string): CcsError {
  return new CcsError('ResourceNotFound', `Resource not found for the segment '${segment}'.`);
}

export function parseResourcePath(path: string, model: Model, isOperation: (name: string, boundTo?: string) => boolean): Resource {
  const trimmed = path.replace(/\/+$/, '');
  if (trimmed === '') return { kind: 'service' };
  const segs = segments(trimmed);
  const [first, firstKey] = splitKey(segs[0]!);
  if (segs.length === 1 && first === '$metadata') return { kind: 'metadata' };
  if (segs.length === 1 && first === '$batch') return { kind: 'batch' };
  if (first === 'EntityDefinitions') {
    if (segs.length === 1) return { kind: 'entityDefinitions', key: firstKey, attributes: false };
    const [second, secondKey] = splitKey(segs[1]!);
    if (segs.length === 2 && second === 'Attributes' && firstKey !== undefined) {
      return { kind: 'entityDefinitions', key: firstKey, attributes: true, attributeKey: secondKey };
    }
    throw notFound(segs[1]!);
  }
  const table = model.tableBySet(first);
  if (!table) {
    if (segs.length === 1 && isOperation(first)) return { kind: 'operation', name: first, args: firstKey };
    throw notFound(first);
  }
  if (segs.length === 1) {
    return firstKey === undefined ? { kind: 'collection', table, count: false } : { kind: 'entity', table, key: firstKey };
  }
  const [second, secondKey] = splitKey(segs[1]!);
  if (firstKey === undefined) {
    if (segs.length === 2 && second === '$count') return { kind: 'collection', table, count: true };
    if (segs.length === 2 && second.startsWith(NAMESPACE)) {
      return { kind: 'operation', name: second.slice(NAMESPACE.length), args: secondKey, bound: { table } };
    }
    throw notFound(segs[1]!);
  }
  if (second.startsWith(NAMESPACE) && segs.length === 2) {
    return { kind: 'operation', name: second.slice(NAMESPACE.length), args: secondKey, bound: { table, key: firstKey } };
  }
  if (table.column(second) && segs.length === 2 && secondKey === undefined) {
    return { kind: 'property', table, key: firstKey, column: second };
  }
  const navigation = table.navigation(second);
  if (navigation) {
    const rest = segs.slice(2);
    if (rest.length === 0) return { kind: 'navigation', table, key: firstKey, navigation, relatedKey: secondKey, ref: false, count: false };
    if (rest.length === 1 && rest[0] === '$ref') return { kind: 'navigation', table, key: firstKey, navigation, relatedKey: secondKey, ref: true, count: false };
    if (rest.length === 1 && rest[0] === '$count' && secondKey === undefined) return { kind: 'navigation', table, key: firstKey, navigation, ref: false, count: true };
    throw notFound(rest[0]!);
  }
  if (isOperation(second, table.logicalName)) {
    // Dataverse requires the namespace on bound operations.
    throw new CcsError('UnresolvedParameters', `Request message has unresolved parameters. Call bound operations as '${NAMESPACE}${second}'.`);
  }
  if (table.lookupByValueProperty(second)) {
    return { kind: 'property', table, key: firstKey, column: table.lookupByValueProperty(second)!.logicalName };
  }
  throw new CcsError('UnknownProperty', `Could not find a property named '${second}' on type '${NAMESPACE}${table.logicalName}'.`);
}

/**
 * Resolves an entity URL as used in `@odata.bind` and `@odata.id`: relative (`set(id)`), root-relative
 * (`/set(id)` or `/api/data/v9.2/set(id)`) or absolute.
 */
export function parseEntityUrl(url: string, model: Model): { table: Table; key: string } {
  let path = url;
  const abs = /^https?:\/\/[^/]+(\/.*)$/i.exec(path);
  if (abs) path = abs[1]!;
  path = path.replace(/^\/?(api\/data\/v\d+(\.\d+)?\/)?/i, '').replace(/^\//, '');
  const segs = segments(path);
  const [set, key] = splitKey(segs[0] ?? '');
  const table = model.tableBySet(set);
  if (!table || key === undefined || segs.length !== 1) {
    throw new CcsError('BadRequest', `The entity reference '${url}' is not a valid entity URL such as '/msdyn_iotdevices(<id>)'.`);
  }
  return { table, key };
}
