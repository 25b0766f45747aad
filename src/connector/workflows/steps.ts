/**
 * The step grammar of `workflow.ccs_steps` (docs/workflows.md): parsed once into a typed tree, and checked against
 * the metadata and the action registry so that a workflow that cannot run is refused when it is saved, with the path
 * of the offending part (`ccs_steps[1].then[0].action: unknown action msdyn_Foo`).
 *
 * Parameter names and values of actions are deliberately not checked here: the action checks them when it is called,
 * exactly as over HTTP, so a run fails with the message a Web API client would get.
 */
import { CcsError } from '../../errors/index.js';
import { isLookup, isMultiTarget, type Model, type Table } from '../../metadata/index.js';
import { OperationRegistry } from '../../webapi/index.js';
import { parsePath, PathSyntaxError } from '../json-path.js';

/** A JSON literal, possibly holding references (`$record`, `$step`, `$now`) anywhere inside. */
export type ValueExpr = unknown;

export type CompareOp = 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le';
const COMPARE_OPS: readonly string[] = ['eq', 'ne', 'gt', 'ge', 'lt', 'le'];

export type ConditionExpr =
  | { readonly kind: 'compare'; readonly op: CompareOp; readonly left: ValueExpr; readonly right: ValueExpr }
  | { readonly kind: 'null' | 'notnull'; readonly value: ValueExpr }
  | { readonly kind: 'all' | 'any'; readonly items: readonly ConditionExpr[] }
  | { readonly kind: 'not'; readonly item: ConditionExpr };

interface StepBase {
  /** Where the step is in `ccs_steps`, e.g. `ccs_steps[1].then[0]`. */
  readonly path: string;
}
export type Step =
  | (StepBase & { readonly kind: 'condition'; readonly condition: ConditionExpr; readonly then: readonly Step[]; readonly else: readonly Step[] })
  | (StepBase & {
      readonly kind: 'action';
      readonly name: string;
      readonly bound: boolean;
      readonly parameters: Readonly<Record<string, ValueExpr>>;
      readonly as?: string;
    })
  | (StepBase & { readonly kind: 'create'; readonly table: string; readonly values: Readonly<Record<string, ValueExpr>>; readonly as?: string })
  | (StepBase & { readonly kind: 'update'; readonly table: string; readonly id?: ValueExpr; readonly values: Readonly<Record<string, ValueExpr>> })
  | (StepBase & { readonly kind: 'stop'; readonly outcome: 'succeeded' | 'canceled'; readonly message?: string });

/** A short name for logs and messages: `action msdyn_ParentIoTAlerts`, `create incident`. */
export function describeStep(step: Step): string {
  switch (step.kind) {
    case 'condition':
      return 'condition';
    case 'action':
      return `action ${step.name}`;
    case 'create':
      return `create ${step.table}`;
    case 'update':
      return `update ${step.table}`;
    case 'stop':
      return `stop ${step.outcome}`;
  }
}

export interface StepContext {
  readonly model: Model;
  readonly operations: OperationRegistry;
  /** The workflow's table: `$record` paths start there and `"bound": true` binds to it. */
  readonly primaryEntity: string;
}

const STEP_KINDS = ['condition', 'action', 'create', 'update', 'stop'] as const;
const ALLOWED: Record<(typeof STEP_KINDS)[number], readonly string[]> = {
  condition: ['condition', 'then', 'else'],
  action: ['action', 'bound', 'parameters', 'as'],
  create: ['create', 'values', 'as'],
  update: ['update', 'id', 'values'],
  stop: ['stop', 'message'],
};
const OUTPUT_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function invalid(path: string, why: string): never {
  throw new CcsError('InvalidValue', `${path}: ${why}`);
}

/** Runs a check that throws a CcsError, and refuses the definition at `path` with its message. */
function refuseAt(path: string, check: () => void): void {
  try {
    check();
  } catch (e) {
    if (e instanceof CcsError) invalid(path, e.message);
    throw e;
  }
}

/** Whether a value holds a `$record`, `$step` or `$now` reference anywhere inside. */
function hasReference(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(hasReference);
  if (!isObject(value)) return false;
  return Object.entries(value).some(([k, v]) => k.startsWith('$') || hasReference(v));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses and checks `ccs_steps`; empty or null is a workflow without steps. Throws a 400 naming the path. */
export function parseSteps(text: string | null | undefined, ctx: StepContext): Step[] {
  if (text === null || text === undefined || text.trim() === '') return [];
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    invalid('ccs_steps', `not valid JSON (${(e as Error).message})`);
  }
  const primary = ctx.model.table(ctx.primaryEntity);
  if (!primary) invalid('primaryentity', `unknown table '${ctx.primaryEntity}'`);
  return new StepParser(ctx, primary).list(json, 'ccs_steps');
}

class StepParser {
  /** Output names of the steps seen so far, in document order: a `$step` reference must name one of them. */
  readonly #outputs = new Set<string>();

  constructor(
    private readonly ctx: StepContext,
    private readonly primary: Table,
  ) {}

  list(json: unknown, path: string): Step[] {
    if (!Array.isArray(json)) invalid(path, 'expected a JSON array of steps');
    return json.map((s, i) => this.step(s, `${path}[${i}]`));
  }

  step(json: unknown, path: string): Step {
    if (!isObject(json)) invalid(path, 'expected a step object');
    const kinds = STEP_KINDS.filter((k) => k in json);
    if (kinds.length !== 1) {
      invalid(path, kinds.length === 0
        ? 'expected one of "condition", "action", "create", "update" or "stop"'
        : `a step has exactly one of "condition", "action", "create", "update" or "stop" (found ${kinds.map((k) => `"${k}"`).join(' and ')})`);
    }
    const kind = kinds[0]!;
    for (const key of Object.keys(json)) {
      if (!ALLOWED[kind].includes(key)) invalid(`${path}.${key}`, `unknown property of ${kind === 'action' ? 'an' : 'a'} ${kind} step (allowed: ${ALLOWED[kind].join(', ')})`);
    }
    switch (kind) {
      case 'condition': {
        const condition = this.condition(json['condition'], `${path}.condition`);
        const then = json['then'] === undefined ? [] : this.list(json['then'], `${path}.then`);
        const otherwise = json['else'] === undefined ? [] : this.list(json['else'], `${path}.else`);
        return { kind, path, condition, then, else: otherwise };
      }
      case 'action':
        return this.action(json, path);
      case 'create': {
        const table = this.table(json['create'], `${path}.create`);
        const values = this.values(json['values'], `${path}.values`, table);
        const as = this.as(json['as'], `${path}.as`);
        return { kind, path, table: table.logicalName, values, ...(as !== undefined ? { as } : {}) };
      }
      case 'update': {
        const table = this.table(json['update'], `${path}.update`);
        if (json['id'] === undefined && table.logicalName !== this.primary.logicalName) {
          invalid(`${path}.id`, `required when updating a table other than the workflow's own (${this.primary.logicalName})`);
        }
        if (json['id'] !== undefined) this.value(json['id'], `${path}.id`);
        const values = this.values(json['values'], `${path}.values`, table);
        return { kind, path, table: table.logicalName, ...(json['id'] !== undefined ? { id: json['id'] } : {}), values };
      }
      case 'stop': {
        const outcome = json['stop'];
        if (outcome !== 'succeeded' && outcome !== 'canceled') invalid(`${path}.stop`, 'expected "succeeded" or "canceled"');
        const message = json['message'];
        if (message !== undefined && typeof message !== 'string') invalid(`${path}.message`, 'expected a string');
        return { kind, path, outcome, ...(message !== undefined ? { message } : {}) };
      }
    }
  }

  action(json: Record<string, unknown>, path: string): Step {
    const name = json['action'];
    if (typeof name !== 'string' || name === '') invalid(`${path}.action`, 'expected the name of an action');
    const bound = json['bound'] ?? false;
    if (typeof bound !== 'boolean') invalid(`${path}.bound`, 'expected true or false');
    const table = this.primary.logicalName;
    const op = this.ctx.operations.get(name, bound ? table : undefined);
    if (!op) {
      const others = this.ctx.operations.defs().filter((d) => d.name === name);
      if (others.length === 0) invalid(`${path}.action`, `unknown action ${name}`);
      const boundTo = others.find((d) => d.boundTo)?.boundTo;
      if (bound) invalid(`${path}.action`, boundTo ? `${name} is bound to ${boundTo}, not to ${table}` : `${name} is not bound to a table: leave out "bound"`);
      invalid(`${path}.action`, `${name} is bound to ${boundTo}: set "bound": true on a workflow of that table`);
    }
    if (op.def.boundToCollection) invalid(`${path}.action`, `${name} is bound to the ${table} collection, not to one record`);
    const params = json['parameters'] ?? {};
    if (!isObject(params)) invalid(`${path}.parameters`, 'expected an object of parameter names and values');
    for (const [k, v] of Object.entries(params)) {
      this.value(v, `${path}.parameters.${k}`);
      // What can be known before a run — names, and the type and range of literal values — is refused on save with
      // the message a Web API client calling the action would get; values from references are checked by the run.
      refuseAt(`${path}.parameters.${k}`, () => {
        if (hasReference(v)) OperationRegistry.parameter(op.def, k);
        else OperationRegistry.validateValue(op.def, k, v);
      });
    }
    for (const p of op.def.parameters) {
      if (p.nullable === false && params[p.name] === undefined) invalid(`${path}.parameters`, `Required parameter '${p.name}' of '${name}' is missing.`);
    }
    const as = this.as(json['as'], `${path}.as`);
    return { kind: 'action', path, name, bound, parameters: params, ...(as !== undefined ? { as } : {}) };
  }

  table(json: unknown, path: string): Table {
    if (typeof json !== 'string') invalid(path, 'expected the logical name of a table');
    const table = this.ctx.model.table(json);
    if (!table) invalid(path, `unknown table ${json}`);
    return table;
  }

  values(json: unknown, path: string, table: Table): Record<string, ValueExpr> {
    if (json === undefined) return {};
    if (!isObject(json)) invalid(path, 'expected an object of column names and values');
    for (const [column, v] of Object.entries(json)) {
      if (!table.column(column)) invalid(`${path}.${column}`, `unknown column of ${table.logicalName}`);
      this.value(v, `${path}.${column}`);
    }
    return json;
  }

  as(json: unknown, path: string): string | undefined {
    if (json === undefined) return undefined;
    if (typeof json !== 'string' || !OUTPUT_NAME.test(json)) invalid(path, 'expected a name of letters, digits and underscores');
    if (this.#outputs.has(json)) invalid(path, `another step is already named '${json}'`);
    this.#outputs.add(json);
    return json;
  }

  condition(json: unknown, path: string): ConditionExpr {
    if (!isObject(json)) invalid(path, 'expected a condition object');
    const only = (keys: readonly string[]) => {
      for (const k of Object.keys(json)) if (!keys.includes(k)) invalid(`${path}.${k}`, `unknown property of this condition (allowed: ${keys.join(', ')})`);
    };
    if ('all' in json || 'any' in json) {
      const kind = 'all' in json ? 'all' : 'any';
      only([kind]);
      const items = json[kind];
      if (!Array.isArray(items)) invalid(`${path}.${kind}`, 'expected an array of conditions');
      return { kind, items: items.map((c, i) => this.condition(c, `${path}.${kind}[${i}]`)) };
    }
    if ('not' in json) {
      only(['not']);
      return { kind: 'not', item: this.condition(json['not'], `${path}.not`) };
    }
    const op = json['op'];
    if (op === 'null' || op === 'notnull') {
      only(['op', 'value']);
      if (!('value' in json)) invalid(`${path}.value`, `required for "${op}"`);
      this.value(json['value'], `${path}.value`);
      return { kind: op, value: json['value'] };
    }
    if (typeof op === 'string' && COMPARE_OPS.includes(op)) {
      only(['op', 'left', 'right']);
      for (const side of ['left', 'right']) {
        if (!(side in json)) invalid(`${path}.${side}`, `required for "${op}"`);
        this.value(json[side], `${path}.${side}`);
      }
      return { kind: 'compare', op: op as CompareOp, left: json['left'], right: json['right'] };
    }
    if (op === undefined) invalid(path, 'expected "op", "all", "any" or "not"');
    invalid(`${path}.op`, `unknown operator ${JSON.stringify(op)} (expected ${[...COMPARE_OPS, 'null', 'notnull'].join(', ')})`);
  }

  /** Checks the references inside a value; literals are taken as they are. */
  value(json: unknown, path: string): void {
    if (Array.isArray(json)) {
      json.forEach((v, i) => this.value(v, `${path}[${i}]`));
      return;
    }
    if (!isObject(json)) return;
    const refs = Object.keys(json).filter((k) => k.startsWith('$'));
    if (refs.length === 0) {
      for (const [k, v] of Object.entries(json)) this.value(v, `${path}.${k}`);
      return;
    }
    const ref = refs[0]!;
    if (Object.keys(json).length !== 1) invalid(path, `a reference has exactly one property (${ref})`);
    const target = json[ref];
    switch (ref) {
      case '$record':
        if (typeof target !== 'string' || target === '') invalid(`${path}.$record`, 'expected a column name or a dotted path through lookups');
        checkRecordPath(this.ctx.model, this.primary, target, `${path}.$record`);
        return;
      case '$step': {
        if (typeof target !== 'string' || target === '') invalid(`${path}.$step`, 'expected an output name and an optional dotted path');
        let steps;
        try {
          steps = parsePath(target);
        } catch (e) {
          if (!(e instanceof PathSyntaxError)) throw e;
          invalid(`${path}.$step`, `not a path (${e.message})`);
        }
        const first = steps[0];
        if (first?.kind !== 'name') invalid(`${path}.$step`, 'expected an output name first');
        if (!this.#outputs.has(first.name)) invalid(`${path}.$step`, `no earlier step is named '${first.name}' (name a step's output with "as")`);
        return;
      }
      case '$now':
        if (target !== true) invalid(`${path}.$now`, 'expected true');
        return;
      default:
        invalid(`${path}.${ref}`, 'unknown reference (expected $record, $step or $now)');
    }
  }
}

/**
 * Checks a `$record` path: every segment but the last is a lookup, and each segment is a column of the table the
 * previous lookup points at (any of them, for a lookup with several targets).
 */
function checkRecordPath(model: Model, primary: Table, path: string, where: string): void {
  let tables: Table[] = [primary];
  const segments = path.split('.');
  segments.forEach((segment, i) => {
    const columns = tables.map((t) => t.column(segment)).filter((c) => c !== undefined);
    if (columns.length === 0) invalid(where, `unknown column ${segment} of ${tables.map((t) => t.logicalName).join(' or ')}`);
    if (i === segments.length - 1) return;
    const lookups = columns.filter(isLookup);
    if (lookups.length === 0) invalid(where, `${segment} is not a lookup, so the path cannot go on to ${segments[i + 1]}`);
    const next = new Set<string>();
    for (const c of lookups) {
      if (isMultiTarget(c) && c.targets[0] === '*') for (const d of model.definitions) next.add(d.logicalName);
      else for (const t of c.targets) next.add(t);
    }
    tables = [...next].map((n) => model.table(n)).filter((t) => t !== undefined);
  });
}

/** The columns listed in `triggeronupdateattributelist`. */
export function parseAttributeList(text: string | null | undefined): string[] {
  if (!text) return [];
  return text.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
}
