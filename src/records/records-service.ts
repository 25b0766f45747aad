import { randomUUID } from 'node:crypto';
import { CcsError } from '../errors/index.js';
import {
  isChoice,
  isLookup,
  isMultiTarget,
  lookupTypeColumn,
  toStoreValue,
  type ChoiceColumn,
  type MetadataRegistry,
  type Model,
  type Navigation,
  type Table,
} from '../metadata/index.js';
import { demand, type Principal } from '../security/principal.js';
import { and, eq, isTransaction } from '../store/index.js';
import type { Condition, LogAppend, OrderBy, Queryable, Row, StoreValue, Transaction } from '../store/types.js';
import type { ConsumeOptions, RecordEventConsumer, RecordEventHandler, RecordEventLog } from './record-event-log.js';

/** Reads and writes an update may take when other writers keep changing the row in between. */
const MAX_UPDATE_ATTEMPTS = 20;

export interface RecordEvent {
  readonly type: 'created' | 'updated' | 'deleted';
  readonly table: string;
  readonly id: string;
  /** Columns written by the operation (created and updated). */
  readonly columns: readonly string[];
  readonly principal: Principal;
}

export type RecordListener = (event: RecordEvent) => void;

/**
 * Checks a record's values before they are stored: the whole row as it will be (defaults applied on create, the
 * stored row merged with the change on update), store-level values (lookups as ids). Throw a CcsError to refuse.
 */
export type RecordValidator = (row: Readonly<Row>, op: 'create' | 'update') => void;

/** Work done in the creating transaction once a record is inserted: its context writes through that transaction. */
export type CreateHook = (ctx: RecordContext & { readonly db: Transaction }, id: string, columns: readonly string[]) => Promise<void>;

export interface RecordContext {
  readonly db: Queryable;
  readonly principal: Principal;
  /** Inside a transaction, events wait here and are published once it commits. */
  readonly pending?: RecordEvent[];
}

/** A lookup value: the target's id, and for lookups with several targets the target table. */
export interface LookupValue {
  readonly id: string;
  readonly table: string;
}

/** Column logical name → JSON value as a Web API client writes it; lookups take a GUID string or a `LookupValue`. */
export type InputValues = Readonly<Record<string, unknown>>;

export type Key = { readonly kind: 'id'; readonly id: string } | { readonly kind: 'alternate'; readonly values: Readonly<Record<string, StoreValue>> };

export interface QuerySpec {
  readonly columns?: readonly string[];
  readonly where?: Condition;
  readonly orderBy?: readonly OrderBy[];
  readonly limit?: number;
  readonly offset?: number;
}

export interface ExpandSpec {
  readonly navigation: Navigation;
  readonly query: QuerySpec & { readonly expand?: readonly ExpandSpec[] };
}

/** A row with the related rows asked for by `$expand`, keyed by navigation property. */
export interface RecordTree {
  readonly row: Row;
  readonly expanded: Record<string, RecordTree | RecordTree[] | null>;
  /** The columns asked for (`$select` of an expansion); all when absent. Rows may hold more, for the expansion. */
  readonly select?: readonly string[];
}

/**
 * The columns to load for a `$select`: besides the selected ones, the lookup columns that single-valued
 * expansions follow. Undefined means all columns.
 */
export function columnsToLoad(select: readonly string[] | undefined, expand: readonly ExpandSpec[]): string[] | undefined {
  if (!select) return undefined;
  const out = new Set(select);
  for (const e of expand) if (e.navigation.kind === 'single') out.add(e.navigation.column);
  return [...out];
}


/**
 * Create, read, update, delete and associate records of any table, with validation, platform columns, optimistic
 * concurrency, privileges and record events. Values in and out are JSON-level; rows are store-level.
 *
 * Record events go two ways: to in-memory listeners (`onEvent`, in this process, once the write has committed; lost
 * if the process dies first) and, given an event log, to durable consumers (`consume`): each write carries its
 * event's outbox row, stored atomically with it (in its transaction, or in one statement with it outside one), and
 * the event is handed to its consumers at least once, wherever they run (./record-event-log.ts).
 */
export class RecordsService {
  readonly #listeners = new Set<RecordListener>();
  readonly #validators = new Map<string, { readonly check: RecordValidator; readonly columns?: readonly string[] }[]>();
  readonly #createHooks = new Map<string, CreateHook[]>();

  constructor(
    private readonly deps: { readonly metadata: MetadataRegistry; readonly clock: () => number; readonly events?: RecordEventLog },
  ) {}

  /** The durable event log, when the service was given one. */
  get events(): RecordEventLog | undefined {
    return this.deps.events;
  }

  /**
   * Registers a durable consumer of record events (at least once, in commit order, one process at a time; see
   * ./record-event-log.ts). Handlers must be idempotent on the event's `sequence`.
   */
  consume(name: string, handler: RecordEventHandler, opts?: ConsumeOptions): RecordEventConsumer {
    if (!this.deps.events) throw new Error('Durable record events need an event log (RecordsService deps.events).');
    return this.deps.events.consume(name, handler, opts);
  }

  get model(): Model {
    return this.deps.metadata.model;
  }

  table(logicalName: string): Table {
    const t = this.model.table(logicalName);
    if (!t) throw new CcsError('ResourceNotFound', `Could not find a table with the name '${logicalName}'.`);
    return t;
  }

  /** Subscribes to record events; returns the unsubscribe function. */
  onEvent(listener: RecordListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Adds a check run on every create and update of `tableName` (rules whose JSON the metadata cannot describe). On an
   * update it sees the stored row with the new values over it; `columns`, when given, are the only stored columns it
   * reads (an update then reads no more than its validators need). Returns the function that removes it.
   */
  addValidator(tableName: string, validator: RecordValidator, columns?: readonly string[]): () => void {
    const list = this.#validators.get(tableName) ?? [];
    const entry = { check: validator, columns };
    list.push(entry);
    this.#validators.set(tableName, list);
    return () => {
      const i = list.indexOf(entry);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /**
   * Adds work done in the creating transaction right after a record of `tableName` is inserted (as Dataverse's
   * synchronous post-operation plug-ins), for creates made inside a transaction: the record and what the hook writes
   * commit together. Creates outside a transaction run no hook, so a process registering one must also react to the
   * record's event. `columns` are the names the create was given. Returns the function that removes it.
   */
  addCreateHook(tableName: string, hook: CreateHook): () => void {
    const list = this.#createHooks.get(tableName) ?? [];
    list.push(hook);
    this.#createHooks.set(tableName, list);
    return () => {
      const i = list.indexOf(hook);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /** Hands events of a committed transaction to the listeners and wakes this process's durable consumers. */
  publish(events: readonly RecordEvent[]): void {
    for (const e of events) for (const l of this.#listeners) l(e);
    this.deps.events?.committed(events);
  }

  #emit(ctx: RecordContext, event: RecordEvent): void {
    if (ctx.pending) ctx.pending.push(event);
    else this.publish([event]);
  }

  /** The outbox row the write raising `event` carries, when there is an event log. */
  #logOf(event: RecordEvent): LogAppend | undefined {
    return this.deps.events?.logFor(event);
  }

  /** Converts input values to a store row, validating names, types and lookups. */
  async #toRow(ctx: RecordContext, table: Table, values: InputValues): Promise<Row> {
    const row: Row = {};
    for (const [name, value] of Object.entries(values)) {
      const column = table.column(name);
      if (!column) {
        throw new CcsError('UnknownProperty', `Could not find a property named '${name}' on type 'Microsoft.Dynamics.CRM.${table.logicalName}'.`);
      }
      if (column.readOnly) continue; // Dataverse ignores platform-maintained columns a client sends back.
      if (isLookup(column)) {
        if (value === null) {
          row[name] = null;
          if (isMultiTarget(column)) row[lookupTypeColumn(name)] = null;
          continue;
        }
        const lookup = typeof value === 'string' ? { id: value, table: column.targets[0]! } : (value as LookupValue);
        if (typeof lookup !== 'object' || typeof lookup.id !== 'string' || typeof lookup.table !== 'string') {
          throw new CcsError('InvalidValue', `Invalid value for lookup '${name}': expected a GUID.`);
        }
        if (column.targets[0] !== '*' && !column.targets.includes(lookup.table)) {
          throw new CcsError('InvalidValue', `Lookup '${name}' cannot refer to a '${lookup.table}' record (allowed: ${column.targets.join(', ')}).`);
        }
        const id = toStoreValue(column, lookup.id) as string;
        await this.#mustExist(ctx, this.table(lookup.table), id);
        row[name] = id;
        if (isMultiTarget(column)) row[lookupTypeColumn(name)] = lookup.table;
        continue;
      }
      row[name] = toStoreValue(column, value);
    }
    return row;
  }

  async #mustExist(ctx: RecordContext, table: Table, id: string): Promise<void> {
    const found = await ctx.db.select({ table: table.logicalName, columns: [table.primaryIdAttribute], where: eq(table.primaryIdAttribute, id), limit: 1 });
    if (found.length === 0) throw notFound(table, id);
  }

  /** Keeps statecode and statuscode consistent: setting one fills in or checks the other. */
  #alignState(table: Table, row: Row): void {
    const status = table.column('statuscode');
    if (!status || !isChoice(status)) return;
    const options = (status as ChoiceColumn).optionSet.options;
    const state = row['statecode'];
    const code = row['statuscode'];
    if (typeof code === 'number') {
      const option = options.find((o) => o.value === code);
      if (state === undefined && option?.state !== undefined) row['statecode'] = option.state;
      else if (typeof state === 'number' && option?.state !== undefined && option.state !== state) {
        throw new CcsError('InvalidValue', `${code} is not a valid status code for state code ${state} on ${table.logicalName}.`);
      }
    } else if (typeof state === 'number') {
      const first = options.find((o) => o.state === state);
      if (first) row['statuscode'] = first.value;
    }
  }

  async create(ctx: RecordContext, tableName: string, values: InputValues): Promise<string> {
    const table = this.table(tableName);
    demand(ctx.principal, 'Create', tableName);
    const row = await this.#toRow(ctx, table, values);
    const pk = table.primaryIdAttribute;
    const id = typeof row[pk] === 'string' ? (row[pk] as string) : randomUUID();
    const now = this.deps.clock();
    // Before defaults: a client giving only statecode gets that state's first status, not the default status.
    this.#alignState(table, row);
    for (const c of table.columns) {
      if (row[c.logicalName] !== undefined) continue;
      if ('defaultValue' in c && c.defaultValue !== undefined) row[c.logicalName] = toStoreValue(c, c.defaultValue);
    }
    Object.assign(row, { [pk]: id, createdon: now, modifiedon: now, versionnumber: 1 });
    if (table.column('createdby')) Object.assign(row, { createdby: ctx.principal.userId, modifiedby: ctx.principal.userId });
    const owner = table.column('ownerid');
    if (owner && isLookup(owner) && row['ownerid'] == null) {
      row['ownerid'] = ctx.principal.userId;
      if (isMultiTarget(owner)) row[lookupTypeColumn('ownerid')] = 'systemuser';
    }
    for (const c of table.columns) {
      if (c.requiredLevel === 'SystemRequired' && row[c.logicalName] == null) {
        throw new CcsError('RequiredValueMissing', `A value for the required column '${c.logicalName}' is missing.`);
      }
    }
    for (const v of this.#validators.get(tableName) ?? []) v.check(row, 'create');
    const event: RecordEvent = { type: 'created', table: tableName, id, columns: Object.keys(values), principal: ctx.principal };
    try {
      await ctx.db.insert(tableName, row, this.#logOf(event));
    } catch (e) {
      if (e instanceof CcsError && e.code === 'DuplicateKey') {
        throw new CcsError('DuplicateKey', `A record with matching key values already exists in ${tableName}.`);
      }
      throw e;
    }
    this.#emit(ctx, event);
    const hooks = this.#createHooks.get(tableName);
    if (hooks?.length && isTransaction(ctx.db)) for (const hook of hooks) await hook({ ...ctx, db: ctx.db }, id, event.columns);
    return id;
  }

  /** The id of the record a key names, or undefined when there is none. */
  async resolve(ctx: RecordContext, tableName: string, key: Key): Promise<string | undefined> {
    if (key.kind === 'id') return key.id;
    const table = this.table(tableName);
    const where = and(...Object.entries(key.values).map(([c, v]) => eq(c, v)));
    const rows = await ctx.db.select({ table: tableName, columns: [table.primaryIdAttribute], where, limit: 2 });
    return rows[0]?.[table.primaryIdAttribute] as string | undefined;
  }

  async retrieve(ctx: RecordContext, tableName: string, id: string, columns?: readonly string[]): Promise<Row | undefined> {
    const table = this.table(tableName);
    demand(ctx.principal, 'Read', tableName);
    const rows = await ctx.db.select({ table: tableName, columns: withKeyColumns(table, columns), where: eq(table.primaryIdAttribute, id), limit: 1 });
    return rows[0];
  }

  async query(ctx: RecordContext, tableName: string, spec: QuerySpec): Promise<Row[]> {
    const table = this.table(tableName);
    demand(ctx.principal, 'Read', tableName);
    return ctx.db.select({ table: tableName, ...spec, columns: withKeyColumns(table, spec.columns) });
  }

  async count(ctx: RecordContext, tableName: string, where?: Condition): Promise<number> {
    demand(ctx.principal, 'Read', tableName);
    return ctx.db.count({ table: tableName, where });
  }

  /**
   * Updates a record. `ifVersion` makes it conditional on the version the caller last saw. Throws RecordNotFound
   * or VersionMismatch.
   */
  async update(ctx: RecordContext, tableName: string, id: string, values: InputValues, opts: { ifVersion?: number } = {}): Promise<void> {
    const table = this.table(tableName);
    demand(ctx.principal, 'Write', tableName);
    const row = await this.#toRow(ctx, table, values);
    delete row[table.primaryIdAttribute];
    this.#alignState(table, row);
    const pk = table.primaryIdAttribute;
    const event: RecordEvent = { type: 'updated', table: tableName, id, columns: Object.keys(values), principal: ctx.principal };
    // Without a version from the caller the last writer wins, as in Dataverse without If-Match: a write that lands
    // between the read and the write below only makes this one read again (and validate against the new row).
    // Validators see the row as it will be (a change of one column can make another invalid): what they read of it.
    const validators = this.#validators.get(tableName) ?? [];
    const columns = validators.every((v) => v.columns) ? [...new Set([pk, 'versionnumber', ...validators.flatMap((v) => v.columns ?? [])])] : undefined;
    for (let attempt = 1; ; attempt++) {
      const current = await ctx.db.select({ table: tableName, columns, where: eq(pk, id), limit: 1 });
      if (current.length === 0) throw notFound(table, id);
      const version = Number(current[0]!['versionnumber']);
      if (opts.ifVersion !== undefined && opts.ifVersion !== version) throw versionMismatch();
      if (validators.length > 0) {
        const merged = { ...current[0], ...row };
        for (const v of validators) v.check(merged, 'update');
      }
      const written: Row = { ...row, modifiedon: this.deps.clock(), versionnumber: version + 1 };
      if (table.column('modifiedby')) written['modifiedby'] = ctx.principal.userId;
      // The version check in the statement itself closes the gap between the read above and this write.
      const changed = await ctx.db.update(tableName, written, and(eq(pk, id), eq('versionnumber', version)), this.#logOf(event));
      if (changed > 0) break;
      if (opts.ifVersion !== undefined || attempt >= MAX_UPDATE_ATTEMPTS) throw versionMismatch();
    }
    this.#emit(ctx, event);
  }

  async delete(ctx: RecordContext, tableName: string, id: string, opts: { ifVersion?: number } = {}): Promise<void> {
    const table = this.table(tableName);
    demand(ctx.principal, 'Delete', tableName);
    const pk = table.primaryIdAttribute;
    const where = opts.ifVersion === undefined ? eq(pk, id) : and(eq(pk, id), eq('versionnumber', opts.ifVersion));
    const event: RecordEvent = { type: 'deleted', table: tableName, id, columns: [], principal: ctx.principal };
    if ((await ctx.db.delete(tableName, where, this.#logOf(event))) === 0) {
      if (opts.ifVersion !== undefined && (await this.retrieve(ctx, tableName, id, [pk]))) throw versionMismatch();
      throw notFound(table, id);
    }
    // Intersect rows of N:N relationships go with the record.
    for (const nav of table.navigations) {
      if (nav.kind === 'manyToMany') await ctx.db.delete(nav.intersect, eq(nav.ownColumn, id));
    }
    this.#emit(ctx, event);
  }

  /** Links `id` to `relatedId` through a navigation property (`$ref` POST/PUT). */
  async associate(ctx: RecordContext, tableName: string, id: string, nav: Navigation, relatedId: string): Promise<void> {
    const table = this.table(tableName);
    await this.#mustExist(ctx, table, id);
    if (nav.kind === 'single') {
      await this.update(ctx, tableName, id, { [nav.column]: { id: relatedId, table: nav.target } });
    } else if (nav.kind === 'collection') {
      await this.update(ctx, nav.target, relatedId, { [nav.column]: { id, table: tableName } });
    } else {
      demand(ctx.principal, 'Write', tableName);
      await this.#mustExist(ctx, this.table(nav.target), relatedId);
      try {
        await ctx.db.insert(nav.intersect, { [`${nav.intersect}id`]: randomUUID(), [nav.ownColumn]: id, [nav.otherColumn]: relatedId });
      } catch (e) {
        if (!(e instanceof CcsError && e.code === 'DuplicateKey')) throw e;
        throw new CcsError('DuplicateKey', 'Cannot insert duplicate key: the records are already associated.');
      }
    }
  }

  /** Removes a link (`$ref` DELETE). For single-valued navigation `relatedId` is ignored. */
  async disassociate(ctx: RecordContext, tableName: string, id: string, nav: Navigation, relatedId?: string): Promise<void> {
    const table = this.table(tableName);
    await this.#mustExist(ctx, table, id);
    if (nav.kind === 'single') {
      await this.update(ctx, tableName, id, { [nav.column]: null });
      return;
    }
    if (!relatedId) throw new CcsError('BadRequest', `Specify the related record to disassociate through '${nav.name}'.`);
    if (nav.kind === 'collection') {
      const rows = await ctx.db.select({ table: nav.target, columns: [nav.column], where: eq(this.table(nav.target).primaryIdAttribute, relatedId) });
      if (rows[0]?.[nav.column] !== id) throw notFound(this.table(nav.target), relatedId);
      await this.update(ctx, nav.target, relatedId, { [nav.column]: null });
    } else {
      demand(ctx.principal, 'Write', tableName);
      const n = await ctx.db.delete(nav.intersect, and(eq(nav.ownColumn, id), eq(nav.otherColumn, relatedId)));
      if (n === 0) throw notFound(this.table(nav.target), relatedId);
    }
  }

  /** Loads the related rows asked for by `$expand`, for every row at once (one query per navigation). */
  async expand(ctx: RecordContext, rows: readonly Row[], expand: readonly ExpandSpec[], select?: readonly string[]): Promise<RecordTree[]> {
    const trees: RecordTree[] = rows.map((row) => ({ row, expanded: {}, select }));
    for (const { navigation: nav, query } of expand) {
      const target = this.table(nav.target);
      demand(ctx.principal, 'Read', nav.target);
      const tpk = target.primaryIdAttribute;
      const nested = query.expand ?? [];
      const columnsFor = (extra: string) => {
        const cols = columnsToLoad(query.columns, nested);
        return cols ? [...new Set([...cols, extra])] : undefined;
      };
      if (nav.kind === 'single') {
        const ids = [...new Set(rows.map((r) => r[nav.column]).filter((v): v is string => typeof v === 'string'))];
        const related = ids.length
          ? await this.query(ctx, nav.target, { columns: columnsFor(tpk), where: { kind: 'in', operand: { kind: 'column', column: tpk }, values: ids } })
          : [];
        const children = await this.expand(ctx, related, nested, query.columns);
        const byId = new Map(children.map((t) => [t.row[tpk], t]));
        for (const t of trees) t.expanded[nav.name] = byId.get(t.row[nav.column] as string) ?? null;
        continue;
      }
      const parentTable = this.table(nav.table);
      const ids = rows.map((r) => r[parentTable.primaryIdAttribute] as string);
      const groups = new Map<string, RecordTree[]>(ids.map((id) => [id, []]));
      if (ids.length) {
        let related: Row[];
        let parentOf: (row: Row) => string[];
        if (nav.kind === 'collection') {
          const where: Condition = { kind: 'in', operand: { kind: 'column', column: nav.column }, values: ids };
          related = await this.query(ctx, nav.target, {
            columns: columnsFor(nav.column),
            where: query.where ? and(where, query.where) : where,
            orderBy: query.orderBy,
          });
          parentOf = (row) => [row[nav.column] as string];
        } else {
          const links = await ctx.db.select({ table: nav.intersect, where: { kind: 'in', operand: { kind: 'column', column: nav.ownColumn }, values: ids } });
          const owners = new Map<string, string[]>();
          for (const l of links) owners.set(l[nav.otherColumn] as string, [...(owners.get(l[nav.otherColumn] as string) ?? []), l[nav.ownColumn] as string]);
          const where: Condition = { kind: 'in', operand: { kind: 'column', column: tpk }, values: [...owners.keys()] };
          related = owners.size
            ? await this.query(ctx, nav.target, { columns: columnsFor(tpk), where: query.where ? and(where, query.where) : where, orderBy: query.orderBy })
            : [];
          parentOf = (row) => owners.get(row[tpk] as string) ?? [];
        }
        const children = await this.expand(ctx, related, nested, query.columns);
        for (const child of children) for (const p of parentOf(child.row)) groups.get(p)?.push(child);
      }
      for (const t of trees) {
        const list = groups.get(t.row[parentTable.primaryIdAttribute] as string) ?? [];
        t.expanded[nav.name] = query.limit !== undefined ? list.slice(0, query.limit) : list;
      }
    }
    return trees;
  }
}

/** The primary key and version always come back, whatever `$select` says (Dataverse does the same). */
function withKeyColumns(table: Table, columns: readonly string[] | undefined): string[] | undefined {
  if (!columns) return undefined;
  const out = new Set([table.primaryIdAttribute, 'versionnumber', ...columns]);
  for (const c of columns) {
    const col = table.column(c);
    if (col && isLookup(col) && isMultiTarget(col)) out.add(lookupTypeColumn(c));
  }
  return [...out];
}

export function notFound(table: Table, id: string): CcsError {
  return new CcsError('RecordNotFound', `${table.logicalName} With Id = ${id} Does Not Exist`);
}

function versionMismatch(): CcsError {
  return new CcsError('VersionMismatch', "The version of the existing record doesn't match the RowVersion property provided.");
}
