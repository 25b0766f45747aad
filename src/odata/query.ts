import { CcsError } from '../errors/index.js';
import type { Model, Navigation, Table } from '../metadata/index.js';
import type { Condition, OrderBy } from '../store/types.js';
import { FilterCompiler } from './compile-filter.js';
import { echo, invalidQuery, notImplemented, notReadable, unknownProperty } from './errors.js';
import { parseExpand } from './expand-syntax.js';
import { parseFilter, parseOrderBy, type Aliases } from './parser.js';

export interface ExpandPlan {
  navigation: Navigation;
  query: CompiledQuery;
}

export interface CompiledQuery {
  /** Column logical names to return (validated; `_x_value` in $select maps to column x); undefined = all. */
  select?: string[];
  where?: Condition;
  orderBy?: OrderBy[];
  top?: number;
  /** `$skip` is not in Dataverse; accepted as an extension. */
  skip?: number;
  /** `$count=true`. */
  count: boolean;
  expand: ExpandPlan[];
  /** Raw `$skiptoken`: opaque here, passed through to the pager that made it. */
  skipToken?: string;
}

interface Context {
  readonly model: Model;
  readonly aliases: Aliases;
  readonly clock: () => Date;
}

const TOP_LEVEL_OPTIONS = new Set<string>(['$select', '$filter', '$orderby', '$top', '$skip', '$count', '$expand', '$skiptoken', '$format']);
const EXPAND_OPTIONS = new Set<string>(['$select', '$filter', '$orderby', '$top', '$skip', '$count', '$expand']);
/** Options that shape a collection, which an expanded single record does not have. */
const COLLECTION_OPTIONS = ['$filter', '$orderby', '$top', '$skip', '$count'];
const ALIAS_NAME = /^@[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Compiles a request's query options against `table`. `params` is the decoded query string, parameter aliases
 * (`@p1=…`) included. Names other than `$…` and `@…` are custom options, which OData tells a service to ignore.
 */
export function compileQuery(params: URLSearchParams, table: Table, model: Model, clock: () => Date = () => new Date()): CompiledQuery {
  const options = new Map<string, string>();
  const aliases = new Map<string, string>();
  for (const name of new Set(params.keys())) {
    if (name === '$apply') notImplemented('$apply (aggregation and grouping) is not supported.');
    if (name === 'fetchXml') notImplemented('Queries with fetchXml are not supported; use $filter, $select and $orderby.');
    if (name === 'savedQuery' || name === 'userQuery') notImplemented(`Queries with ${name} are not supported.`);
    const isOption = name.startsWith('$');
    const isAlias = name.startsWith('@');
    if (!isOption && !isAlias) continue;
    const values = params.getAll(name);
    if (values.length > 1) {
      invalidQuery(`Query option '${echo(name)}' was specified more than once, but it must be specified at most once.`);
    }
    if (isAlias) {
      if (!ALIAS_NAME.test(name)) invalidQuery(`'${echo(name)}' is not a valid parameter alias name.`);
      aliases.set(name, values[0]!);
    } else {
      if (!TOP_LEVEL_OPTIONS.has(name)) invalidQuery(`The query parameter '${echo(name)}' is not supported.`);
      options.set(name, values[0]!);
    }
  }
  const format = options.get('$format');
  if (format !== undefined && format !== 'json' && !/^application\/json(;|$)/i.test(format)) {
    throw new CcsError('NotAcceptable', `The format '${echo(format)}' is not supported; only json is.`);
  }
  return compileOptions(options, table, { model, aliases, clock });
}

/** Compiles one `$filter` against `table`. `aliases` are keyed with their `@`. */
export function compileFilter(
  filter: string,
  table: Table,
  model: Model,
  aliases: Aliases = new Map(),
  clock: () => Date = () => new Date(),
): Condition {
  return new FilterCompiler(model, table, clock).condition(parseFilter(filter, aliases));
}

function compileOptions(options: ReadonlyMap<string, string>, table: Table, ctx: Context): CompiledQuery {
  const query: CompiledQuery = { count: false, expand: [] };
  const select = options.get('$select');
  if (select !== undefined) {
    const columns = compileSelect(select, table);
    if (columns) query.select = columns;
  }
  const filter = options.get('$filter');
  if (filter !== undefined) query.where = compileFilter(filter, table, ctx.model, ctx.aliases, ctx.clock);
  const orderBy = options.get('$orderby');
  if (orderBy !== undefined) query.orderBy = compileOrderBy(orderBy, table, ctx.aliases);
  const top = options.get('$top');
  if (top !== undefined) query.top = nonNegativeInteger('$top', top);
  const skip = options.get('$skip');
  if (skip !== undefined) query.skip = nonNegativeInteger('$skip', skip);
  const count = options.get('$count');
  if (count !== undefined) {
    if (count !== 'true' && count !== 'false') invalidQuery(`'${echo(count)}' is not a valid count option.`);
    query.count = count === 'true';
  }
  const expand = options.get('$expand');
  if (expand !== undefined) query.expand = compileExpand(expand, table, ctx);
  const skipToken = options.get('$skiptoken');
  if (skipToken !== undefined) query.skipToken = skipToken;
  return query;
}

/** Column names, `_x_value` for lookups; `*` means all columns (undefined). */
function compileSelect(text: string, table: Table): string[] | undefined {
  const columns: string[] = [];
  for (const raw of text.split(',')) {
    const name = raw.trim();
    if (name === '*') return undefined;
    if (!name) invalidQuery(`The $select value '${echo(text)}' has an empty item.`);
    const column = table.lookupByValueProperty(name) ?? table.column(name) ?? unknownProperty(name, table.logicalName);
    notReadable(column, table.logicalName);
    if (!columns.includes(column.logicalName)) columns.push(column.logicalName);
  }
  return columns;
}

function compileOrderBy(text: string, table: Table, aliases: Aliases): OrderBy[] {
  return parseOrderBy(text, aliases).map(({ expr, descending }) => {
    if (expr.kind !== 'path') return invalidQuery('Each $orderby item must be a column name, optionally followed by asc or desc.');
    if (expr.segments.length > 1) {
      invalidQuery(`Ordering by a lookup path ('${echo(expr.segments.join('/'))}') is not supported; order by a column of the table.`);
    }
    const name = expr.segments[0]!;
    const column = table.lookupByValueProperty(name) ?? table.column(name) ?? unknownProperty(name, table.logicalName);
    notReadable(column, table.logicalName);
    return descending ? { column: column.logicalName, descending: true } : { column: column.logicalName };
  });
}

function nonNegativeInteger(option: string, text: string): number {
  const n = /^\d{1,15}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) {
    invalidQuery(`Invalid value '${echo(text)}' for ${option} query option found. The ${option} query option requires a non-negative integer value.`);
  }
  return n;
}

function compileExpand(text: string, table: Table, ctx: Context): ExpandPlan[] {
  const plans: ExpandPlan[] = [];
  for (const item of parseExpand(text)) {
    const { path } = item;
    if (path === '*') notImplemented('$expand=* is not supported; name the navigation properties to expand.');
    const slash = path.indexOf('/');
    if (slash >= 0) {
      const rest = path.slice(slash + 1).trim();
      if (rest === '$ref' || rest === '$count') notImplemented(`$expand with ${rest} is not supported.`);
      invalidQuery(`$expand takes navigation properties of the table itself, not a path such as '${echo(path)}'.`);
    }
    const navigation = table.navigation(path) ?? unknownProperty(path, table.logicalName);
    if (plans.some((p) => p.navigation.name === path)) invalidQuery(`The navigation property '${path}' is expanded more than once.`);
    const options = new Map<string, string>();
    for (const [name, value] of item.options ?? []) {
      if (name === '$levels') notImplemented('$levels is not supported in $expand.');
      if (!EXPAND_OPTIONS.has(name)) invalidQuery(`The query option '${echo(name)}' is not supported inside $expand.`);
      if (options.has(name)) {
        invalidQuery(`Query option '${name}' was specified more than once, but it must be specified at most once.`);
      }
      options.set(name, value);
    }
    if (navigation.kind === 'single') {
      const misplaced = COLLECTION_OPTIONS.find((o) => options.has(o));
      if (misplaced) {
        invalidQuery(`${misplaced} cannot be used when expanding the single-valued navigation property '${path}'; only $select and $expand can.`);
      }
    }
    const target = ctx.model.table(navigation.target) ?? invalidQuery(`The table '${navigation.target}' is not defined.`);
    plans.push({ navigation, query: compileOptions(options, target, ctx) });
  }
  return plans;
}
