import { parseDateTime, type ColumnDef, type Model, type Table } from '../metadata/index.js';
import type { CompareOp, Condition, Operand } from '../store/types.js';
import type { Expr, Literal } from './ast.js';
import { and, compare, FALSE, inList, negate, or, TRUE, value } from './conditions.js';
import { invalidQuery, invalidValue, notImplemented, notReadable, unknownProperty } from './errors.js';
import { categoryOf, edmTypeOfColumn, edmTypeOfLiteral, incompatible, literalToStore } from './literals.js';
import { compileQueryFunction } from './query-functions.js';

/** A column reached from the row being filtered: directly, or through single-valued navigations. */
export interface ColumnRef {
  readonly operand: Operand;
  readonly column: ColumnDef;
}

/** What an expression in a comparison turned out to be. */
type Value =
  | { readonly kind: 'column'; readonly ref: ColumnRef }
  | { readonly kind: 'literal'; readonly literal: Literal }
  | { readonly kind: 'bool'; readonly condition: Condition };

interface Scope {
  readonly table: Table;
  /** The lambda's range variable; absent for the row being filtered (`$it`). */
  readonly variable?: string;
}

/** Lookup paths longer than this are refused; Dataverse itself allows one level. */
const MAX_HOPS = 8;
const SWAP: Record<CompareOp, CompareOp> = { eq: 'eq', ne: 'ne', gt: 'lt', ge: 'le', lt: 'gt', le: 'ge' };
type MatchMode = 'contains' | 'startswith' | 'endswith';
const TEXT_MATCH: ReadonlySet<string> = new Set<MatchMode>(['contains', 'startswith', 'endswith']);
const isTextMatch = (name: string): name is MatchMode => TEXT_MATCH.has(name);
/** Valid OData functions that Dataverse does not support in `$filter` either. */
const UNSUPPORTED_FUNCTIONS = new Set<string>([
  'length', 'indexof', 'substring', 'trim', 'concat', 'matchesPattern', 'year', 'month', 'day', 'hour', 'minute',
  'second', 'fractionalseconds', 'totalseconds', 'date', 'time', 'totaloffsetminutes', 'now', 'mindatetime',
  'maxdatetime', 'round', 'floor', 'ceiling', 'cast', 'isof', 'hassubset', 'hassubsequence',
]);

/**
 * Compiles a `$filter` tree against a table. Every name is looked up in the metadata, and only names found there
 * (column logical names, primary keys, lookup columns of relationships) are written into the condition, so
 * nothing a client types reaches the store as an identifier.
 */
export class FilterCompiler {
  readonly #scopes: Scope[];

  constructor(
    readonly model: Model,
    table: Table,
    readonly clock: () => Date,
  ) {
    this.#scopes = [{ table }];
  }

  condition(e: Expr): Condition {
    switch (e.kind) {
      case 'and':
        return and(e.items.map((i) => this.condition(i)));
      case 'or':
        return or(e.items.map((i) => this.condition(i)));
      case 'not':
        return negate(this.condition(e.item));
      case 'compare':
        return this.compare(e.op, e.left, e.right);
      case 'in':
        return this.in(e.operand, e.values);
      case 'lambda':
        return this.lambda(e);
      case 'qualifiedCall':
        return compileQueryFunction(e.name, e.args, this);
      case 'call':
        if (isTextMatch(e.name)) return this.match(e.name, e.args);
        this.value(e); // reports unknown and unsupported functions before the type error below
        break;
      case 'literal':
        if (e.literal.type === 'boolean') return e.literal.value ? TRUE : FALSE;
        break;
      case 'path': {
        // A Boolean column on its own is a condition: `$filter=donotemail`.
        const ref = this.path(e.segments);
        if (categoryOf(ref.column) === 'boolean') return compare('eq', ref.operand, value(1));
        break;
      }
    }
    return invalidQuery('The $filter expression must evaluate to a single boolean value.');
  }

  /** Resolves a column name given as text (`PropertyName='name'`) against the innermost scope. */
  property(name: string): ColumnRef {
    const segments = name.split('/');
    const scope = this.#scopes[this.#scopes.length - 1]!;
    if (scope.variable !== undefined && segments[0] === scope.variable) return this.path(segments);
    return this.resolve(scope.table, segments);
  }

  private value(e: Expr): Value {
    switch (e.kind) {
      case 'literal':
        return { kind: 'literal', literal: e.literal };
      case 'path':
        return { kind: 'column', ref: this.path(e.segments) };
      case 'call':
        if (e.name === 'tolower' || e.name === 'toupper') return this.caseFunction(e.name, e.args);
        if (isTextMatch(e.name)) return { kind: 'bool', condition: this.match(e.name, e.args) };
        if (UNSUPPORTED_FUNCTIONS.has(e.name)) notImplemented(`The function '${e.name}' is not supported in $filter.`);
        return invalidQuery(`An unknown function with name '${e.name}' was found.`);
      default:
        return { kind: 'bool', condition: this.condition(e) };
    }
  }

  private compare(op: CompareOp, leftExpr: Expr, rightExpr: Expr): Condition {
    const left = this.value(leftExpr);
    const right = this.value(rightExpr);
    if (left.kind === 'column' && right.kind === 'literal') return this.columnVersusLiteral(left.ref, right.literal, op);
    if (left.kind === 'literal' && right.kind === 'column') return this.columnVersusLiteral(right.ref, left.literal, SWAP[op]);
    if (left.kind === 'column' && right.kind === 'column') {
      if (categoryOf(left.ref.column) !== categoryOf(right.ref.column)) {
        incompatible(edmTypeOfColumn(left.ref.column), edmTypeOfColumn(right.ref.column), op);
      }
      return compare(op, left.ref.operand, right.ref.operand);
    }
    if (left.kind === 'literal' && right.kind === 'literal') return constant(left.literal, right.literal, op);
    return this.booleanCompare(left, right, op);
  }

  private columnVersusLiteral(ref: ColumnRef, literal: Literal, op: CompareOp): Condition {
    if (literal.type === 'null') {
      // OData: ordering against null is false; `eq null` / `ne null` test for null.
      return op === 'eq' || op === 'ne' ? compare(op, ref.operand, value(null)) : FALSE;
    }
    return compare(op, ref.operand, value(literalToStore(ref.column, literal, op)));
  }

  /** `contains(name,'x') eq true`, `flag eq (a/any())`: comparisons where one side is itself a condition. */
  private booleanCompare(left: Value, right: Value, op: CompareOp): Condition {
    const asCondition = (v: Value): Condition | undefined => {
      if (v.kind === 'bool') return v.condition;
      if (v.kind === 'literal' && v.literal.type === 'boolean') return v.literal.value ? TRUE : FALSE;
      if (v.kind === 'column' && categoryOf(v.ref.column) === 'boolean') return compare('eq', v.ref.operand, value(1));
      return undefined;
    };
    const a = asCondition(left);
    const b = asCondition(right);
    if (a === undefined || b === undefined || (op !== 'eq' && op !== 'ne')) {
      return incompatible(edmType(left), edmType(right), op);
    }
    return op === 'eq' ? equivalent(a, b) : negate(equivalent(a, b));
  }

  private in(operandExpr: Expr, valueExprs: readonly Expr[]): Condition {
    const operand = this.value(operandExpr);
    if (operand.kind !== 'column') return invalidQuery('The left side of the in operator must be a property.');
    const values = valueExprs.map((v) => {
      if (v.kind !== 'literal') return invalidQuery('The in operator takes a list of literal values.');
      return literalToStore(operand.ref.column, v.literal, 'eq');
    });
    return inList(operand.ref.operand, values);
  }

  private match(name: MatchMode, args: readonly Expr[]): Condition {
    const signature = (): never =>
      invalidQuery(
        `No function signature for the function with name '${name}' matches the specified arguments. The function signatures considered are: ${name}(Edm.String Nullable=true, Edm.String Nullable=true).`,
      );
    if (args.length !== 2) return signature();
    const target = this.value(args[0]!);
    const text = this.value(args[1]!);
    if (target.kind !== 'column' || categoryOf(target.ref.column) !== 'string') return signature();
    if (text.kind === 'column') notImplemented(`The function '${name}' is supported with a literal text only, not a column.`);
    if (text.kind !== 'literal' || text.literal.type !== 'string') return signature();
    return { kind: 'match', mode: name, operand: target.ref.operand, value: text.literal.value };
  }

  /** tolower/toupper: text comparisons are case-insensitive already, so the function changes nothing. */
  private caseFunction(name: string, args: readonly Expr[]): Value {
    const inner = args.length === 1 ? this.value(args[0]!) : undefined;
    if (inner?.kind === 'column' && categoryOf(inner.ref.column) === 'string') return inner;
    if (inner?.kind === 'literal' && inner.literal.type === 'string') {
      const text = name === 'tolower' ? inner.literal.value.toLowerCase() : inner.literal.value.toUpperCase();
      return { kind: 'literal', literal: { type: 'string', value: text } };
    }
    return invalidQuery(
      `No function signature for the function with name '${name}' matches the specified arguments. The function signatures considered are: ${name}(Edm.String Nullable=true).`,
    );
  }

  private lambda(e: Extract<Expr, { kind: 'lambda' }>): Condition {
    const { table, rest } = this.scopeFor(e.path);
    const name = rest[0];
    if (name === undefined) return invalidQuery(`The '${e.op}' operator must follow a collection-valued navigation property.`);
    const nav = table.navigation(name);
    if (!nav) {
      if (table.column(name) || table.lookupByValueProperty(name)) {
        invalidQuery(`The '${e.op}' operator must follow a collection-valued navigation property; '${name}' is a column.`);
      }
      unknownProperty(name, table.logicalName);
    }
    if (rest.length > 1) {
      invalidQuery(`The '${e.op}' operator can only follow a collection-valued navigation property of the row itself, not a lookup path.`);
    }
    if (nav.kind === 'single') {
      invalidQuery(`The '${e.op}' operator needs a collection-valued navigation property; '${name}' is single-valued.`);
    }
    if (e.variable !== undefined && this.#scopes.some((s) => s.variable === e.variable)) {
      invalidQuery(`The range variable '${e.variable}' is already in use by an enclosing lambda expression.`);
    }
    const target = this.tableOf(nav.target);
    let where: Condition = TRUE;
    if (e.body !== undefined) {
      this.#scopes.push({ table: target, variable: e.variable });
      try {
        where = this.condition(e.body);
      } finally {
        this.#scopes.pop();
      }
    }
    // all(p) holds when no related row fails p.
    if (e.op === 'all') where = negate(where);
    const exists: Condition =
      nav.kind === 'collection'
        ? { kind: 'exists', table: target.logicalName, column: nav.column, outerColumn: table.primaryIdAttribute, where }
        : {
            kind: 'exists',
            table: target.logicalName,
            // Unused by the N:N form (the join goes through `through`), given the target key for completeness.
            column: target.primaryIdAttribute,
            outerColumn: table.primaryIdAttribute,
            where,
            through: { table: nav.intersect, ownColumn: nav.ownColumn, otherColumn: nav.otherColumn, targetKey: target.primaryIdAttribute },
          };
    return e.op === 'all' ? negate(exists) : exists;
  }

  private path(segments: readonly string[]): ColumnRef {
    const { table, rest } = this.scopeFor(segments);
    if (rest.length === 0) {
      invalidQuery(`The range variable '${segments[0]}' must be followed by a property, as in ${segments[0]}/statecode.`);
    }
    return this.resolve(table, rest);
  }

  /** Splits off the range variable inside a lambda; outside one, paths start at the filtered table. */
  private scopeFor(segments: readonly string[]): { table: Table; rest: readonly string[] } {
    const inner = this.#scopes[this.#scopes.length - 1]!;
    if (inner.variable === undefined) return { table: inner.table, rest: segments };
    const first = segments[0];
    if (first === inner.variable) return { table: inner.table, rest: segments.slice(1) };
    if (this.#scopes.some((s) => s.variable === first)) {
      notImplemented(`A lambda expression cannot refer to the range variable '${first}' of an enclosing lambda expression.`);
    }
    return notImplemented(
      `Inside a lambda expression, properties must start with the range variable, as in ${inner.variable}/${first}; properties of the outer row are not supported there.`,
    );
  }

  /** `name`, `_x_value`, or `nav/…/name` through single-valued navigations, each hop a `related` operand. */
  private resolve(start: Table, names: readonly string[]): ColumnRef {
    if (names.length - 1 > MAX_HOPS) invalidQuery(`Lookup paths can be at most ${MAX_HOPS} navigation properties long.`);
    const hops: { table: string; key: string; via: string }[] = [];
    let table = start;
    for (let i = 0; i < names.length - 1; i++) {
      const name = names[i]!;
      const nav = table.navigation(name);
      if (!nav) {
        if (table.column(name) || table.lookupByValueProperty(name)) {
          invalidQuery(`'${name}' is not a navigation property, so '${names[i + 1]}' cannot be read through it.`);
        }
        unknownProperty(name, table.logicalName);
      }
      if (nav.kind !== 'single') {
        invalidQuery(
          `The parent value for a property access of a property '${names[i + 1]}' is not a single value. Property access can only be applied to a single value.`,
        );
      }
      const target = this.tableOf(nav.target);
      hops.push({ table: target.logicalName, key: target.primaryIdAttribute, via: nav.column });
      table = target;
    }
    const column = columnOf(table, names[names.length - 1]!);
    let operand: Operand = { kind: 'column', column: column.logicalName };
    for (let i = hops.length - 1; i >= 0; i--) operand = { kind: 'related', ...hops[i]!, operand };
    return { operand, column };
  }

  private tableOf(logicalName: string): Table {
    return this.model.table(logicalName) ?? invalidQuery(`The table '${logicalName}' is not defined.`);
  }
}

/** A property of `table` that holds a value: a column, a lookup's `_x_value`, or a single navigation (its lookup). */
function columnOf(table: Table, name: string): ColumnDef {
  const column = table.lookupByValueProperty(name) ?? table.column(name);
  if (column) {
    notReadable(column, table.logicalName);
    return column;
  }
  const nav = table.navigation(name);
  if (nav?.kind === 'single') {
    // `primarycontactid eq null` compares the lookup itself.
    const lookup = table.column(nav.column);
    if (lookup) return lookup;
  }
  if (nav) invalidQuery(`The collection-valued navigation property '${name}' can only be used with the any or all operator.`);
  return unknownProperty(name, table.logicalName);
}

/** `a eq b` for two conditions, without a needless `or` when one side is a constant (`… eq true`). */
function equivalent(a: Condition, b: Condition): Condition {
  if (b.kind === 'true') return a;
  if (b.kind === 'false') return negate(a);
  if (a.kind === 'true') return b;
  if (a.kind === 'false') return negate(b);
  return or([and([a, b]), and([negate(a), negate(b)])]);
}

function edmType(v: Value): string {
  if (v.kind === 'column') return edmTypeOfColumn(v.ref.column);
  if (v.kind === 'literal') return edmTypeOfLiteral(v.literal);
  return 'Edm.Boolean';
}

/** Comparison of two literals (`1 eq 1` is a common "always true"), folded here so the store never sees one. */
function constant(a: Literal, b: Literal, op: CompareOp): Condition {
  const result = (c: number): Condition => {
    const r = op === 'eq' ? c === 0 : op === 'ne' ? c !== 0 : op === 'gt' ? c > 0 : op === 'ge' ? c >= 0 : op === 'lt' ? c < 0 : c <= 0;
    return r ? TRUE : FALSE;
  };
  const order = (x: number | string, y: number | string): number => (x < y ? -1 : x > y ? 1 : 0);
  if (a.type === 'null' || b.type === 'null') {
    if (op === 'eq' || op === 'ne') return (a.type === b.type) === (op === 'eq') ? TRUE : FALSE;
    return FALSE;
  }
  if (a.type === 'number' && b.type === 'number') return result(order(a.value, b.value));
  if (a.type === 'boolean' && b.type === 'boolean') return result(order(Number(a.value), Number(b.value)));
  if (a.type === 'string' && b.type === 'string') return result(order(a.value.toLowerCase(), b.value.toLowerCase()));
  if (a.type === 'guid' && b.type === 'guid') return result(order(a.value.toLowerCase(), b.value.toLowerCase()));
  if (a.type === 'datetime' && b.type === 'datetime') {
    const x = parseDateTime(a.text);
    const y = parseDateTime(b.text);
    if (x === undefined || y === undefined) return invalidValue('A date literal in the comparison is not a valid date.');
    return result(order(x, y));
  }
  return incompatible(edmTypeOfLiteral(a), edmTypeOfLiteral(b), op);
}
