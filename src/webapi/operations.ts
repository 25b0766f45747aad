import { CcsError } from '../errors/index.js';
import { isGuid, type OperationDef, type OperationParameterDef, type Table } from '../metadata/index.js';
import type { RecordContext, RecordsService } from '../records/index.js';

export interface OperationContext {
  readonly records: RecordsService;
  readonly record: RecordContext;
  /** The record (or table, for collection-bound operations) the operation is bound to. */
  readonly bound?: { readonly table: Table; readonly id?: string };
}

/** Output parameters, written as the `<name>Response` complex type; undefined answers 204. */
export type OperationResult = Record<string, unknown> | undefined;

export interface Operation {
  readonly def: OperationDef;
  /**
   * The operation works only through `ctx.record.db` (reads and writes in the caller's transaction when it is one),
   * touches nothing outside the store and ends quickly: a workflow whose steps are all like this runs in a single
   * transaction.
   */
  readonly transactional?: boolean;
  invoke(ctx: OperationContext, params: Readonly<Record<string, unknown>>): Promise<OperationResult>;
}

function checkValue(op: string, { name, type, range }: OperationParameterDef, value: unknown): void {
  const bad = (expected: string) => {
    throw new CcsError('InvalidValue', `Invalid value for parameter '${name}' of '${op}': expected ${expected}.`);
  };
  switch (type) {
    case 'Edm.String':
      if (typeof value !== 'string') bad('a string');
      break;
    case 'Edm.Int32':
    case 'Edm.Int64':
      if (typeof value !== 'number' || !Number.isInteger(value)) bad('a whole number');
      break;
    case 'Edm.Decimal':
    case 'Edm.Double':
      if (typeof value !== 'number') bad('a number');
      break;
    case 'Edm.Boolean':
      if (typeof value !== 'boolean') bad('true or false');
      break;
    case 'Edm.Guid':
      if (typeof value !== 'string' || !isGuid(value)) bad('a GUID');
      break;
    default:
      break; // entity and complex types are checked by the operation itself
  }
  if (range && typeof value === 'number' && (value < range.min || value > range.max)) {
    throw new CcsError('InvalidValue', `Parameter '${name}' of '${op}' must be from ${range.min} to ${range.max}; got ${value}.`);
  }
}

/**
 * Actions and functions by name. Later capabilities register theirs here; `$metadata` advertises every registered
 * operation and the Web API routes calls to it.
 */
export class OperationRegistry {
  readonly #ops = new Map<string, Operation>();

  static key(name: string, boundTo?: string): string {
    return boundTo ? `${boundTo}/${name}` : name;
  }

  register(op: Operation): void {
    const key = OperationRegistry.key(op.def.name, op.def.boundTo);
    if (this.#ops.has(key)) throw new Error(`Operation ${key} is already registered`);
    this.#ops.set(key, op);
  }

  get(name: string, boundTo?: string): Operation | undefined {
    return this.#ops.get(OperationRegistry.key(name, boundTo));
  }

  defs(): OperationDef[] {
    return [...this.#ops.values()].map((o) => o.def);
  }

  /** Validates parameters against the definition: unknown ones, missing ones, types and ranges. */
  static validate(def: OperationDef, params: Readonly<Record<string, unknown>>): void {
    for (const name of Object.keys(params)) {
      if (!name.startsWith('@')) OperationRegistry.parameter(def, name);
    }
    for (const p of def.parameters) {
      const value = params[p.name];
      if (value === undefined || value === null) {
        if (p.nullable === false) throw new CcsError('BadRequest', `Required parameter '${p.name}' of '${def.name}' is missing.`);
        continue;
      }
      checkValue(def.name, p, value);
    }
  }

  /** Checks one parameter's value (type and range) without the others; null and undefined pass. */
  static validateValue(def: OperationDef, name: string, value: unknown): void {
    if (value !== undefined && value !== null) checkValue(def.name, OperationRegistry.parameter(def, name), value);
  }

  static parameter(def: OperationDef, name: string): OperationParameterDef {
    const p = def.parameters.find((q) => q.name === name);
    if (!p) throw new CcsError('UnresolvedParameters', `Request message has unresolved parameters: '${name}' is not a parameter of '${def.name}'.`);
    return p;
  }
}
