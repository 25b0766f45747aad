import { parseDateTime } from '../metadata/index.js';
import type { Condition, Operand, StoreValue } from '../store/types.js';
import type { Expr, Literal } from './ast.js';
import type { ColumnRef } from './compile-filter.js';
import { and, compare, inList, negate, value } from './conditions.js';
import { echo, invalidQuery, invalidValue, notImplemented } from './errors.js';
import { categoryOf, edmTypeOfColumn, literalValue, looseToStore } from './literals.js';

/**
 * Dataverse's query functions: `Microsoft.Dynamics.CRM.<Name>(PropertyName='col', PropertyValue(s)=…)`, the
 * Web API face of FetchXML's condition operators. Dates are computed in UTC: Dataverse uses the caller's time zone,
 * which a token-less local server does not know.
 */

export interface QueryFunctionHost {
  property(name: string): ColumnRef;
  readonly clock: () => Date;
}

const NAMESPACE = 'Microsoft.Dynamics.CRM.';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

interface Call {
  readonly name: string;
  readonly ref: ColumnRef;
  readonly now: number;
  /** PropertyValue, or PropertyValues' items. */
  readonly values: readonly unknown[];
}

type Arity = 'none' | 'value' | 'values';
interface QueryFunction {
  readonly arity: Arity;
  readonly dates?: boolean;
  compile(call: Call): Condition;
}

function startOfDay(ms: number): number {
  return Math.floor(ms / DAY) * DAY;
}
function addMonths(ms: number, months: number): number {
  const d = new Date(ms);
  d.setUTCMonth(d.getUTCMonth() + months);
  return d.getTime();
}
function startOfMonth(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}
function startOfYear(ms: number): number {
  return Date.UTC(new Date(ms).getUTCFullYear(), 0, 1);
}
/** Weeks start on Sunday, Dataverse's default. */
function startOfWeek(ms: number): number {
  const day = startOfDay(ms);
  return day - new Date(day).getUTCDay() * DAY;
}

/** `from <= operand < to`, or `<= to` when `inclusive`; either bound may be open. */
function range(operand: Operand, from: number | undefined, to: number | undefined, inclusive = false): Condition {
  for (const bound of [from, to]) {
    if (bound !== undefined && !Number.isFinite(bound)) invalidValue('The date range is out of the supported range of dates.');
  }
  const items: Condition[] = [];
  if (from !== undefined) items.push(compare('ge', operand, value(from)));
  if (to !== undefined) items.push(compare(inclusive ? 'le' : 'lt', operand, value(to)));
  return and(items);
}

/** The X of LastXDays and friends. */
function count(call: Call): number {
  const raw = call.values[0];
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    invalidValue(`The function '${call.name}' needs a whole number of 0 or more as PropertyValue; got '${echo(String(raw))}'.`);
  }
  return n;
}

/** The day of On, OnOrAfter, OnOrBefore: a date or date-time, of which only the (UTC) day counts. */
function day(call: Call): number {
  const raw = call.values[0];
  const ms = typeof raw === 'string' ? parseDateTime(raw) : undefined;
  if (ms === undefined) invalidValue(`The function '${call.name}' needs a date as PropertyValue, such as '2024-01-31'.`);
  return startOfDay(ms);
}

function storeValues(call: Call): StoreValue[] {
  return call.values.map((v) => looseToStore(call.ref.column, v));
}

function between(call: Call): Condition {
  const [low, high] = storeValues(call);
  if (call.values.length !== 2 || low === null || high === null || low === undefined || high === undefined) {
    return invalidValue(`The function '${call.name}' needs two non-null values in PropertyValues.`);
  }
  return and([compare('ge', call.ref.operand, value(low)), compare('le', call.ref.operand, value(high))]);
}

const lastX = (unit: (now: number, x: number) => number): QueryFunction => ({
  arity: 'value',
  dates: true,
  compile: (c) => range(c.ref.operand, unit(c.now, count(c)), c.now, true),
});
const nextX = (unit: (now: number, x: number) => number): QueryFunction => ({
  arity: 'value',
  dates: true,
  compile: (c) => range(c.ref.operand, c.now, unit(c.now, count(c))),
});
const olderThanX = (unit: (now: number, x: number) => number): QueryFunction => ({
  arity: 'value',
  dates: true,
  compile: (c) => range(c.ref.operand, undefined, unit(c.now, count(c))),
});
const period = (bounds: (now: number) => [number, number]): QueryFunction => ({
  arity: 'none',
  dates: true,
  compile: (c) => range(c.ref.operand, ...bounds(c.now)),
});

const FUNCTIONS = new Map<string, QueryFunction>(Object.entries({
  In: { arity: 'values', compile: (c) => inList(c.ref.operand, storeValues(c)) },
  NotIn: { arity: 'values', compile: (c) => negate(inList(c.ref.operand, storeValues(c))) },
  Between: { arity: 'values', compile: between },
  NotBetween: { arity: 'values', compile: (c) => negate(between(c)) },
  On: { arity: 'value', dates: true, compile: (c) => range(c.ref.operand, day(c), day(c) + DAY) },
  NotOn: { arity: 'value', dates: true, compile: (c) => negate(range(c.ref.operand, day(c), day(c) + DAY)) },
  OnOrAfter: { arity: 'value', dates: true, compile: (c) => range(c.ref.operand, day(c), undefined) },
  OnOrBefore: { arity: 'value', dates: true, compile: (c) => range(c.ref.operand, undefined, day(c) + DAY) },
  Today: period((now) => [startOfDay(now), startOfDay(now) + DAY]),
  Yesterday: period((now) => [startOfDay(now) - DAY, startOfDay(now)]),
  Tomorrow: period((now) => [startOfDay(now) + DAY, startOfDay(now) + 2 * DAY]),
  Last7Days: { arity: 'none', dates: true, compile: (c) => range(c.ref.operand, startOfDay(c.now) - 7 * DAY, c.now, true) },
  Next7Days: { arity: 'none', dates: true, compile: (c) => range(c.ref.operand, c.now, startOfDay(c.now) + 8 * DAY) },
  ThisWeek: period((now) => [startOfWeek(now), startOfWeek(now) + 7 * DAY]),
  LastWeek: period((now) => [startOfWeek(now) - 7 * DAY, startOfWeek(now)]),
  NextWeek: period((now) => [startOfWeek(now) + 7 * DAY, startOfWeek(now) + 14 * DAY]),
  ThisMonth: period((now) => [startOfMonth(now), addMonths(startOfMonth(now), 1)]),
  LastMonth: period((now) => [addMonths(startOfMonth(now), -1), startOfMonth(now)]),
  NextMonth: period((now) => [addMonths(startOfMonth(now), 1), addMonths(startOfMonth(now), 2)]),
  ThisYear: period((now) => [startOfYear(now), addMonths(startOfYear(now), 12)]),
  LastYear: period((now) => [addMonths(startOfYear(now), -12), startOfYear(now)]),
  NextYear: period((now) => [addMonths(startOfYear(now), 12), addMonths(startOfYear(now), 24)]),
  LastXHours: lastX((now, x) => now - x * HOUR),
  LastXDays: lastX((now, x) => startOfDay(now) - x * DAY),
  LastXWeeks: lastX((now, x) => startOfDay(now) - 7 * x * DAY),
  LastXMonths: lastX((now, x) => addMonths(startOfDay(now), -x)),
  LastXYears: lastX((now, x) => addMonths(startOfDay(now), -12 * x)),
  NextXHours: nextX((now, x) => now + x * HOUR),
  NextXDays: nextX((now, x) => startOfDay(now) + (x + 1) * DAY),
  NextXWeeks: nextX((now, x) => startOfDay(now) + (7 * x + 1) * DAY),
  NextXMonths: nextX((now, x) => addMonths(startOfDay(now) + DAY, x)),
  NextXYears: nextX((now, x) => addMonths(startOfDay(now) + DAY, 12 * x)),
  OlderThanXMinutes: olderThanX((now, x) => now - x * MINUTE),
  OlderThanXHours: olderThanX((now, x) => now - x * HOUR),
  OlderThanXDays: olderThanX((now, x) => startOfDay(now) - x * DAY),
  OlderThanXWeeks: olderThanX((now, x) => startOfDay(now) - 7 * x * DAY),
  OlderThanXMonths: olderThanX((now, x) => addMonths(startOfDay(now), -x)),
  OlderThanXYears: olderThanX((now, x) => addMonths(startOfDay(now), -12 * x)),
} satisfies Record<string, QueryFunction>));

/** Dataverse functions we know but do not implement (users, teams, hierarchies, fiscal periods, multi-select). */
const NOT_IMPLEMENTED = new Set<string>([
  'Above', 'AboveOrEqual', 'Under', 'UnderOrEqual', 'NotUnder', 'ContainValues', 'DoesNotContainValues',
  'EqualBusinessId', 'NotBusinessId', 'EqualRoleBusinessId', 'EqualUserId', 'NotUserId', 'EqualUserLanguage',
  'EqualUserOrUserHierarchy', 'EqualUserOrUserHierarchyAndTeams', 'EqualUserOrUserTeams', 'EqualUserTeams',
  'InFiscalPeriod', 'InFiscalPeriodAndYear', 'InFiscalYear', 'InOrAfterFiscalPeriodAndYear',
  'InOrBeforeFiscalPeriodAndYear', 'LastFiscalPeriod', 'LastFiscalYear', 'LastXFiscalPeriods', 'LastXFiscalYears',
  'NextFiscalPeriod', 'NextFiscalYear', 'NextXFiscalPeriods', 'NextXFiscalYears', 'ThisFiscalPeriod',
  'ThisFiscalYear',
]);

const PARAMETERS: Record<Arity, readonly string[]> = {
  none: ['PropertyName'],
  value: ['PropertyName', 'PropertyValue'],
  values: ['PropertyName', 'PropertyValues'],
};

function literalOf(name: string, parameter: string, e: Expr | undefined): Literal {
  if (e === undefined) return invalidQuery(`The function '${name}' needs the parameter '${parameter}'.`);
  if (e.kind !== 'literal') return invalidQuery(`The parameter '${parameter}' of '${name}' must be a literal value.`);
  return e.literal;
}

export function compileQueryFunction(name: string, args: ReadonlyMap<string, Expr>, host: QueryFunctionHost): Condition {
  const short = name.startsWith(NAMESPACE) ? name.slice(NAMESPACE.length) : undefined;
  const fn = short === undefined ? undefined : FUNCTIONS.get(short);
  if (short !== undefined && NOT_IMPLEMENTED.has(short)) notImplemented(`The function '${name}' is not supported.`);
  if (!fn) return invalidQuery(`An unknown function with name '${echo(name)}' was found.`);

  const allowed = PARAMETERS[fn.arity];
  for (const key of args.keys()) {
    if (!allowed.includes(key)) invalidQuery(`The function '${name}' has no parameter named '${key}'.`);
  }
  const property = literalOf(name, 'PropertyName', args.get('PropertyName'));
  if (property.type !== 'string') return invalidQuery(`The parameter 'PropertyName' of '${name}' must be a column name in quotes.`);
  const ref = host.property(property.value);
  if (fn.dates && categoryOf(ref.column) !== 'datetime') {
    invalidQuery(`The function '${name}' needs a date and time column; '${ref.column.logicalName}' is ${edmTypeOfColumn(ref.column)}.`);
  }

  let values: readonly unknown[] = [];
  if (fn.arity === 'value') {
    values = [literalValue(literalOf(name, 'PropertyValue', args.get('PropertyValue')))];
  } else if (fn.arity === 'values') {
    const list = literalValue(literalOf(name, 'PropertyValues', args.get('PropertyValues')));
    if (!Array.isArray(list)) return invalidValue(`The parameter 'PropertyValues' of '${name}' must be a JSON array such as ["a","b"].`);
    values = list;
  }
  return fn.compile({ name, ref, now: host.clock().getTime(), values });
}
