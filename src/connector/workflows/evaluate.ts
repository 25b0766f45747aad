/**
 * Values and conditions of a run: references resolved against the triggering record (read when the run starts),
 * the outputs of earlier steps and the run's start time.
 */
import { fromStoreValue, isGuid, isLookup, isMultiTarget, lookupTypeColumn, parseDateTime, type Table } from '../../metadata/index.js';
import type { RecordContext, RecordsService } from '../../records/index.js';
import type { Row } from '../../store/index.js';
import { parsePath, valueAt } from '../json-path.js';
import type { ConditionExpr, ValueExpr } from './steps.js';

export interface RunScope {
  readonly records: RecordsService;
  readonly ctx: RecordContext;
  readonly table: Table;
  readonly recordId: string;
  /** The triggering record as the run found it; null when it was deleted (delete triggers). */
  readonly record: Row | null;
  /** Outputs of the steps that ran, by their `as` name. */
  readonly outputs: Map<string, unknown>;
  /** The run's start time, ISO 8601. */
  readonly now: string;
  /** Related rows already read for `$record` paths, by `<table>:<id>`. */
  readonly related: Map<string, Row | null>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Resolves every reference inside `expr`; literals come back as they are. */
export async function resolveValue(expr: ValueExpr, scope: RunScope): Promise<unknown> {
  if (Array.isArray(expr)) return Promise.all(expr.map((v) => resolveValue(v, scope)));
  if (!isObject(expr)) return expr;
  if ('$record' in expr) return recordValue(String(expr['$record']), scope);
  if ('$step' in expr) return stepValue(String(expr['$step']), scope);
  if ('$now' in expr) return scope.now;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(expr)) out[k] = await resolveValue(v, scope);
  return out;
}

export async function resolveValues(exprs: Readonly<Record<string, ValueExpr>>, scope: RunScope): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(exprs)) out[k] = await resolveValue(v, scope);
  return out;
}

/** A column's JSON value; a lookup is its target's id, or `{ id, table }` when it has several targets. */
function columnValue(table: Table, row: Row, column: string): unknown {
  const def = table.column(column);
  const raw = row[column];
  if (!def || raw === undefined || raw === null) return null;
  if (isLookup(def)) return isMultiTarget(def) ? { id: raw, table: row[lookupTypeColumn(column)] ?? null } : raw;
  return fromStoreValue(def, raw);
}

/** The columns of the triggering record that `$record` references in `value` (steps, or any part of them) read. */
export function recordColumns(value: unknown, table: Table, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) recordColumns(v, table, into);
  else if (isObject(value)) {
    const path = value['$record'];
    const column = typeof path === 'string' ? path.split('.')[0]! : undefined;
    // A column the table does not have reads as null (recordValue): nothing to select.
    if (column !== undefined && table.column(column)) into.add(column);
    for (const v of Object.values(value)) recordColumns(v, table, into);
  }
  return into;
}

async function recordValue(path: string, scope: RunScope): Promise<unknown> {
  const segments = path.split('.');
  let table = scope.table;
  if (!scope.record) return segments.length === 1 && segments[0] === table.primaryIdAttribute ? scope.recordId : null;
  let row: Row = scope.record;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (i === segments.length - 1) return columnValue(table, row, segment);
    const def = table.column(segment);
    const id = row[segment];
    if (!def || !isLookup(def) || typeof id !== 'string') return null;
    const targetName: unknown = isMultiTarget(def) ? row[lookupTypeColumn(segment)] : def.targets[0];
    if (typeof targetName !== 'string') return null;
    const target = scope.records.model.table(targetName);
    if (!target) return null;
    const key = `${targetName}:${id}`;
    if (!scope.related.has(key)) scope.related.set(key, (await scope.records.retrieve(scope.ctx, targetName, id)) ?? null);
    const next: Row | null = scope.related.get(key)!;
    if (!next) return null;
    table = target;
    row = next;
  }
  return null;
}

function stepValue(path: string, scope: RunScope): unknown {
  const [first, ...rest] = parsePath(path);
  if (first?.kind !== 'name' || !scope.outputs.has(first.name)) return null;
  const value = valueAt(scope.outputs.get(first.name), rest);
  return value === undefined ? null : value;
}

function isNull(v: unknown): boolean {
  return v === null || v === undefined;
}

function equal(a: unknown, b: unknown): boolean {
  if (isNull(a) || isNull(b)) return isNull(a) && isNull(b);
  if (typeof a === 'string' && typeof b === 'string') {
    // Ids are stored lower-case; a GUID written in a step may not be.
    if (isGuid(a) && isGuid(b)) return a.toLowerCase() === b.toLowerCase();
    const ta = parseDateTime(a);
    const tb = parseDateTime(b);
    if (ta !== undefined && tb !== undefined) return ta === tb;
    return a === b;
  }
  if (typeof a === 'object' || typeof b === 'object') return JSON.stringify(a) === JSON.stringify(b);
  return a === b;
}

/** -1, 0 or 1; undefined when the two cannot be ordered (different types, null). */
function order(a: unknown, b: unknown): number | undefined {
  if (typeof a === 'number' && typeof b === 'number') return Math.sign(a - b);
  if (typeof a === 'string' && typeof b === 'string') {
    // Dates compare as times: `$now` has milliseconds, stored dates do not.
    const ta = parseDateTime(a);
    const tb = parseDateTime(b);
    if (ta !== undefined && tb !== undefined) return Math.sign(ta - tb);
    return a < b ? -1 : a > b ? 1 : 0;
  }
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  return undefined;
}

export async function evaluate(cond: ConditionExpr, scope: RunScope): Promise<boolean> {
  switch (cond.kind) {
    case 'all':
      for (const c of cond.items) if (!(await evaluate(c, scope))) return false;
      return true;
    case 'any':
      for (const c of cond.items) if (await evaluate(c, scope)) return true;
      return false;
    case 'not':
      return !(await evaluate(cond.item, scope));
    case 'null':
      return isNull(await resolveValue(cond.value, scope));
    case 'notnull':
      return !isNull(await resolveValue(cond.value, scope));
    case 'compare': {
      const left = await resolveValue(cond.left, scope);
      const right = await resolveValue(cond.right, scope);
      if (cond.op === 'eq') return equal(left, right);
      if (cond.op === 'ne') return !equal(left, right);
      const o = order(left, right);
      if (o === undefined) return false;
      return cond.op === 'gt' ? o > 0 : cond.op === 'ge' ? o >= 0 : cond.op === 'lt' ? o < 0 : o <= 0;
    }
  }
}
