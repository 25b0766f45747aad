/**
 * `ccs_condition`: the JSON a rule is written in, parsed into a frozen AST. Every refusal is a
 * `CcsError('InvalidValue')` that names the column and the JSON path of the offending field, because the Web API
 * answers it as a 400 to whoever typed the rule.
 *
 * Grammar (one object per condition):
 *
 *   {"measure":"Temperature","op":"gt","value":70}                 ops gt ge lt le eq ne
 *   {"measure":"Temperature","op":"outside","min":10,"max":70}     below min or above max (strict)
 *   {"measure":"Temperature","op":"between","min":10,"max":70}     min ≤ reading ≤ max
 *   "value":{"property":"limits.maxTemp","default":80}             threshold from the device's reported properties
 *   "for":"PT5M"                                                   must hold continuously that long (any comparison)
 *   {"measure":…,"aggregate":"avg|min|max|sum|count","window":"PT5M","op":…,"value":…}   sliding window
 *   {"aggregate":"count","window":"PT1M","op":"gt","value":100}    count of messages (measure optional for count)
 *   {"measure":…,"rateOfChange":"PT1M","op":…,"value":…}          change per PT1M between consecutive readings
 *   {"noDataFor":"PT10M"}  /  {"noDataFor":"PT10M","measure":"temp"}   no message (carrying the measure) for that long
 *   {"all":[…]}  {"any":[…]}
 *
 * `measure` and `property` are paths (path.ts). `eq` and `ne` also compare strings and booleans on a plain reading;
 * every other test is numeric.
 */
import { CcsError } from '../errors/index.js';
import { DAY, SECOND, formatIsoDuration, parseIsoDuration } from './duration.js';
import { parsePath } from './path.js';

export const COMPARE_OPS = ['gt', 'ge', 'lt', 'le', 'eq', 'ne'] as const;
export const RANGE_OPS = ['outside', 'between'] as const;
export const AGGREGATES = ['avg', 'min', 'max', 'sum', 'count'] as const;

export type CompareOp = (typeof COMPARE_OPS)[number];
export type RangeOp = (typeof RANGE_OPS)[number];
export type Aggregate = (typeof AGGREGATES)[number];
export type Scalar = number | string | boolean;

/**
 * Limits that keep a rule's per-device state small and its evaluation cheap, whatever is typed into it: a window
 * holds at most 61 buckets, so memory depends on the number of windows, never on the message rate.
 */
export const CONDITION_LIMITS = Object.freeze({
  maxLength: 8000,
  maxDepth: 6,
  maxNodes: 32,
  maxWindows: 8,
  minDurationMs: SECOND,
  maxWindowMs: DAY,
  maxRatePeriodMs: DAY,
  maxForMs: 7 * DAY,
  maxNoDataMs: 30 * DAY,
  maxStringLength: 256,
  /** Readings and thresholds beyond this magnitude are not numbers to us: sums of them stay finite, so JSON-exact. */
  maxMagnitude: 1e100,
});

export type Operand =
  | { readonly kind: 'constant'; readonly value: Scalar }
  | { readonly kind: 'property'; readonly path: string; readonly default: Scalar | null };

export type Test =
  | { readonly op: CompareOp; readonly value: Operand }
  | { readonly op: RangeOp; readonly min: Operand; readonly max: Operand };

export type Source =
  | { readonly kind: 'value' }
  | { readonly kind: 'aggregate'; readonly aggregate: Aggregate; readonly windowMs: number }
  /** Change per `periodMs` between two consecutive readings of the measure: (v₂ − v₁) × periodMs / (t₂ − t₁). */
  | { readonly kind: 'rate'; readonly periodMs: number };

export interface ComparisonCondition {
  readonly kind: 'comparison';
  /** Path into the message body; null only for a `count` of messages. */
  readonly measure: string | null;
  readonly source: Source;
  readonly test: Test;
  /** 0 when the comparison fires as soon as it is true. */
  readonly forMs: number;
}

export interface NoDataCondition {
  readonly kind: 'noData';
  readonly afterMs: number;
  /** When set, only messages carrying this measure count as data. */
  readonly measure: string | null;
}

export interface GroupCondition {
  readonly kind: 'all' | 'any';
  readonly conditions: readonly RuleCondition[];
}

export type RuleCondition = ComparisonCondition | NoDataCondition | GroupCondition;

export function isGroupCondition(c: RuleCondition): c is GroupCondition {
  return c.kind === 'all' || c.kind === 'any';
}

/** A condition that reads telemetry (not a group). */
export type LeafCondition = ComparisonCondition | NoDataCondition;

type Json = unknown;

class ConditionParser {
  nodes = 0;
  windows = 0;

  constructor(readonly field: string) {}

  fail(message: string, path: string): never {
    throw new CcsError('InvalidValue', `${this.field}: ${message} (at ${path})`);
  }

  node(value: Json, path: string, depth: number): RuleCondition {
    if (depth > CONDITION_LIMITS.maxDepth) this.fail(`conditions must not nest deeper than ${CONDITION_LIMITS.maxDepth} levels`, path);
    if (++this.nodes > CONDITION_LIMITS.maxNodes) this.fail(`a rule must have at most ${CONDITION_LIMITS.maxNodes} conditions`, path);
    if (!isObject(value)) this.fail('a condition must be a JSON object', path);
    const kinds = ['all', 'any', 'noDataFor', 'measure', 'aggregate'].filter((k) => Object.hasOwn(value, k));
    if (kinds.includes('all') || kinds.includes('any')) {
      if (kinds.length !== 1) {
        this.fail(`a condition must have exactly one of 'measure', 'all', 'any', 'noDataFor' (found ${kinds.map(quote).join(', ')})`, path);
      }
      return this.group(kinds[0] as 'all' | 'any', value, path, depth);
    }
    if (kinds.includes('noDataFor')) {
      if (kinds.includes('aggregate')) this.fail(`'noDataFor' cannot be combined with 'aggregate'`, `${path}.aggregate`);
      return this.noData(value, path);
    }
    if (kinds.length === 0) this.fail(`a condition must have exactly one of 'measure', 'all', 'any', 'noDataFor'`, path);
    return this.comparison(value, path);
  }

  group(kind: 'all' | 'any', value: Record<string, Json>, path: string, depth: number): GroupCondition {
    this.only(value, [kind], path);
    const items = value[kind];
    const at = `${path}.${kind}`;
    if (!Array.isArray(items) || items.length === 0) this.fail(`'${kind}' must be a non-empty array of conditions`, at);
    const conditions = items.map((item, i) => this.node(item, `${at}[${i}]`, depth + 1));
    return { kind, conditions };
  }

  noData(value: Record<string, Json>, path: string): NoDataCondition {
    this.only(value, ['noDataFor', 'measure'], path);
    const afterMs = this.duration(value.noDataFor, 'noDataFor', path, CONDITION_LIMITS.maxNoDataMs);
    const measure = value.measure === undefined ? null : this.measure(value.measure, path);
    return { kind: 'noData', afterMs, measure };
  }

  comparison(value: Record<string, Json>, path: string): ComparisonCondition {
    this.only(value, ['measure', 'op', 'value', 'min', 'max', 'for', 'aggregate', 'window', 'rateOfChange'], path);
    let source: Source = { kind: 'value' };
    if (value.aggregate !== undefined && value.rateOfChange !== undefined) {
      this.fail(`'aggregate' and 'rateOfChange' cannot be combined`, `${path}.rateOfChange`);
    }
    if (value.aggregate !== undefined) {
      const aggregate = value.aggregate;
      if (typeof aggregate !== 'string' || !(AGGREGATES as readonly string[]).includes(aggregate)) {
        this.fail(`'aggregate' must be one of ${AGGREGATES.join(', ')}`, `${path}.aggregate`);
      }
      if (value.window === undefined) this.fail(`'window' is required with 'aggregate' (an ISO 8601 duration such as "PT5M")`, `${path}.window`);
      const windowMs = this.duration(value.window, 'window', path, CONDITION_LIMITS.maxWindowMs);
      if (++this.windows > CONDITION_LIMITS.maxWindows) this.fail(`a rule must have at most ${CONDITION_LIMITS.maxWindows} windows`, `${path}.window`);
      source = { kind: 'aggregate', aggregate: aggregate as Aggregate, windowMs };
    } else if (value.window !== undefined) {
      this.fail(`'window' is only allowed with 'aggregate'`, `${path}.window`);
    }
    if (value.rateOfChange !== undefined) {
      source = { kind: 'rate', periodMs: this.duration(value.rateOfChange, 'rateOfChange', path, CONDITION_LIMITS.maxRatePeriodMs) };
    }
    let measure: string | null = null;
    if (value.measure !== undefined) measure = this.measure(value.measure, path);
    else if (!(source.kind === 'aggregate' && source.aggregate === 'count')) this.fail(`'measure' is required`, `${path}.measure`);

    const op = value.op;
    if (op === undefined) this.fail(`'op' is required`, `${path}.op`);
    const ops: readonly string[] = [...COMPARE_OPS, ...RANGE_OPS];
    if (typeof op !== 'string' || !ops.includes(op)) this.fail(`'op' must be one of ${ops.join(', ')}`, `${path}.op`);
    // Only a plain reading can be a string or a boolean; aggregates and rates are numbers.
    const scalars = source.kind === 'value' && (op === 'eq' || op === 'ne');
    let test: Test;
    if ((RANGE_OPS as readonly string[]).includes(op)) {
      if (value.value !== undefined) this.fail(`'value' is not allowed with op '${op}' (use 'min' and 'max')`, `${path}.value`);
      if (value.min === undefined) this.fail(`'min' is required with op '${op}'`, `${path}.min`);
      if (value.max === undefined) this.fail(`'max' is required with op '${op}'`, `${path}.max`);
      const min = this.operand(value.min, 'min', path, false);
      const max = this.operand(value.max, 'max', path, false);
      if (min.kind === 'constant' && max.kind === 'constant' && (min.value as number) > (max.value as number)) {
        this.fail(`'min' must not be greater than 'max'`, `${path}.min`);
      }
      test = { op: op as RangeOp, min, max };
    } else {
      for (const k of ['min', 'max'] as const) {
        if (value[k] !== undefined) this.fail(`'${k}' is only allowed with op 'outside' or 'between'`, `${path}.${k}`);
      }
      if (value.value === undefined) this.fail(`'value' is required with op '${op}'`, `${path}.value`);
      test = { op: op as CompareOp, value: this.operand(value.value, 'value', path, scalars) };
    }
    const forMs = value.for === undefined ? 0 : this.duration(value.for, 'for', path, CONDITION_LIMITS.maxForMs);
    return { kind: 'comparison', measure, source, test, forMs };
  }

  operand(value: Json, name: string, path: string, scalars: boolean): Operand {
    const at = `${path}.${name}`;
    if (isObject(value)) {
      this.only(value, ['property', 'default'], at);
      const p = value.property;
      if (typeof p !== 'string') this.fail(`'property' must be a path into the device's reported properties, such as "maxTemp"`, `${at}.property`);
      const parsed = parsePath(p);
      if ('error' in parsed) this.fail(`'property' ${parsed.error}`, `${at}.property`);
      const def = value.default === undefined ? null : this.scalar(value.default, 'default', at, scalars);
      return { kind: 'property', path: p, default: def };
    }
    if (value === null || value === undefined) this.fail(`'${name}' must be ${expected(scalars)}`, at);
    return { kind: 'constant', value: this.scalar(value, name, path, scalars) };
  }

  scalar(value: Json, name: string, path: string, scalars: boolean): Scalar {
    const at = `${path}.${name}`;
    if (typeof value === 'number') {
      if (!Number.isFinite(value) || Math.abs(value) > CONDITION_LIMITS.maxMagnitude) {
        this.fail(`'${name}' must be a number between -${CONDITION_LIMITS.maxMagnitude} and ${CONDITION_LIMITS.maxMagnitude}`, at);
      }
      return value;
    }
    if (scalars && typeof value === 'boolean') return value;
    if (scalars && typeof value === 'string') {
      if (value.length > CONDITION_LIMITS.maxStringLength) this.fail(`'${name}' must be at most ${CONDITION_LIMITS.maxStringLength} characters`, at);
      return value;
    }
    return this.fail(`'${name}' must be ${expected(scalars)}`, at);
  }

  measure(value: Json, path: string): string {
    const at = `${path}.measure`;
    if (typeof value !== 'string') this.fail(`'measure' must be a path into the message body, such as "Temperature" or "readings.temp"`, at);
    const parsed = parsePath(value);
    if ('error' in parsed) this.fail(`'measure' ${parsed.error}`, at);
    return value;
  }

  duration(value: Json, name: string, path: string, maxMs: number): number {
    const at = `${path}.${name}`;
    if (typeof value !== 'string') this.fail(`'${name}' must be an ISO 8601 duration such as "PT5M"`, at);
    const ms = parseIsoDuration(value);
    if (typeof ms !== 'number') this.fail(`'${name}' ${ms.error}`, at);
    if (ms < CONDITION_LIMITS.minDurationMs) this.fail(`'${name}' must be at least ${formatIsoDuration(CONDITION_LIMITS.minDurationMs)}`, at);
    if (ms > maxMs) this.fail(`'${name}' must be at most ${formatIsoDuration(maxMs)}`, at);
    return ms;
  }

  only(value: Record<string, Json>, allowed: readonly string[], path: string): void {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) this.fail(`unknown property '${key}' (expected ${allowed.map(quote).join(', ')})`, `${path}.${key}`);
    }
  }
}

function expected(scalars: boolean): string {
  return scalars
    ? 'a number, a string, true, false or {"property":"<path>"}'
    : 'a number or {"property":"<path>"}';
}

function quote(s: string): string {
  return `'${s}'`;
}

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Parses a condition: the JSON text of `ccs_condition`, or a value already parsed from JSON. Returns a deeply
 * frozen AST; throws `CcsError('InvalidValue')` naming `field` and the JSON path.
 */
export function parseCondition(input: unknown, field = 'ccs_condition'): RuleCondition {
  const parser = new ConditionParser(field);
  let value: unknown = input;
  if (typeof input === 'string') {
    if (input.length > CONDITION_LIMITS.maxLength) parser.fail(`must be at most ${CONDITION_LIMITS.maxLength} characters`, '$');
    try {
      value = JSON.parse(input);
    } catch (e) {
      parser.fail(`is not valid JSON (${e instanceof Error ? e.message : String(e)})`, '$');
    }
  }
  return deepFreeze(parser.node(value, '$', 1));
}

/** The condition as grammar JSON: `parseCondition(conditionToJson(c))` is equal to `c`. */
export function conditionToJson(c: RuleCondition): Record<string, unknown> {
  if (isGroupCondition(c)) return { [c.kind]: c.conditions.map(conditionToJson) };
  if (c.kind === 'noData') {
    return c.measure === null ? { noDataFor: formatIsoDuration(c.afterMs) } : { noDataFor: formatIsoDuration(c.afterMs), measure: c.measure };
  }
  const out: Record<string, unknown> = {};
  if (c.measure !== null) out.measure = c.measure;
  if (c.source.kind === 'aggregate') {
    out.aggregate = c.source.aggregate;
    out.window = formatIsoDuration(c.source.windowMs);
  } else if (c.source.kind === 'rate') {
    out.rateOfChange = formatIsoDuration(c.source.periodMs);
  }
  out.op = c.test.op;
  const operand = (o: Operand): unknown =>
    o.kind === 'constant' ? o.value : o.default === null ? { property: o.path } : { property: o.path, default: o.default };
  if ('value' in c.test) out.value = operand(c.test.value);
  else {
    out.min = operand(c.test.min);
    out.max = operand(c.test.max);
  }
  if (c.forMs > 0) out.for = formatIsoDuration(c.forMs);
  return out;
}

/** The leaves of a condition in document order: the order the evaluator keeps their state in. */
export function conditionLeaves(c: RuleCondition): LeafCondition[] {
  if (isGroupCondition(c)) return c.conditions.flatMap(conditionLeaves);
  return [c];
}
