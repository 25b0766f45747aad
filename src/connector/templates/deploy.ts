/**
 * Deploying a template: check everything first (shape, tables, columns, values, references by key), then create the
 * tables and columns, then write every record in one transaction (created when its key is new, updated when a value
 * differs, left alone otherwise), then register the devices with the hub. A second deploy of the same template
 * changes nothing.
 *
 * What cannot be all-or-nothing: tables and columns are created before the records' transaction (the schema cannot
 * change inside it), and device registration talks to the hub after it has committed. Everything that can be
 * checked beforehand is, so a template that fails does so before anything is written; a refusal that only the
 * write itself can detect (a rule's condition, say) rolls the records back.
 */
import { CcsError } from '../../errors/index.js';
import { fromStoreValue, isLookup, isMultiTarget, lookupTypeColumn, toStoreValue, type MetadataRegistry, type Model, type Table } from '../../metadata/index.js';
import type { InputValues, RecordContext, RecordsService } from '../../records/index.js';
import { and, eq, type Condition, type Row, type Store } from '../../store/index.js';
import type { OperationRegistry } from '../../webapi/index.js';
import { REGISTRATION } from '../devices.js';
import { withTransaction } from '../transaction.js';
import { DEVICE_TABLE, TEMPLATE_MEMBERS, TEMPLATE_SCHEMA } from './format.js';
import { planItems, refKey, type Item, type ItemPlan, type Ref } from './items.js';
import { isObject, jsonEqual, parseJsonText, Problems, TemplateError, type Json } from './problems.js';
import { applyTables, planTables, type Outcome } from './tables.js';

export interface TemplateDeps {
  readonly store: Store;
  readonly records: RecordsService;
  readonly metadata: MetadataRegistry;
  /** Devices are registered through this registry's `msdyn_RegisterIoTDevice`, as a client would. */
  readonly operations: OperationRegistry;
}

export interface SectionCounts {
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
}

export interface DeviceRegistration {
  readonly deviceId: string;
  readonly registered: boolean;
  readonly message: string;
}

export interface DeployReport {
  /** Per section present in the template, in template order. */
  readonly sections: Readonly<Record<string, SectionCounts>>;
  /** Devices registered by this deploy (new or changed ones, and any not registered yet). */
  readonly registrations: readonly DeviceRegistration[];
  readonly warnings: readonly string[];
}

const REGISTER_ACTION = 'msdyn_RegisterIoTDevice';
const DEPLOY_LOCK = 'ccs:template-deploy';
const REGISTER_ATTEMPTS = 8;
const PENDING = Symbol('pending');

/** Parses template text; bad JSON is a TemplateError like any other problem. */
export function parseTemplateText(text: string): Json {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new TemplateError([`not valid JSON: ${(e as Error).message}`]);
  }
  if (!isObject(parsed)) throw new TemplateError(['a template is a JSON object with "$schema" and sections']);
  return parsed;
}

function checkShape(template: Json, problems: Problems): void {
  if (template['$schema'] !== TEMPLATE_SCHEMA) {
    problems.add('$schema', template['$schema'] === undefined ? `is required: "${TEMPLATE_SCHEMA}"` : `must be "${TEMPLATE_SCHEMA}", not ${JSON.stringify(template['$schema'])}`);
  }
  for (const member of ['name', 'description']) {
    if (template[member] !== undefined && typeof template[member] !== 'string') problems.add(member, 'must be a string');
  }
  const known = new Set<string>(TEMPLATE_MEMBERS);
  for (const member of Object.keys(template)) {
    if (!known.has(member)) problems.add(member, `unknown section (sections: ${TEMPLATE_MEMBERS.filter((m) => !m.startsWith('$') && m !== 'name' && m !== 'description').join(', ')})`);
  }
}

/** Key references of an item: its lookups by key and its links. */
function keyRefs(item: Item): { field: string; ref: { table: string; key: string } }[] {
  const out: { field: string; ref: { table: string; key: string } }[] = [];
  for (const [column, ref] of Object.entries(item.lookups)) if (ref && 'key' in ref) out.push({ field: column, ref });
  for (const [nav, refs] of Object.entries(item.links)) for (const ref of refs) if ('key' in ref) out.push({ field: nav, ref });
  return out;
}

/**
 * Every reference must name one record: an item of the template, or exactly one record already stored. An item
 * whose key matches several stored records is refused too (which one would it update?).
 */
async function checkReferences(records: RecordsService, ctx: RecordContext, base: Model, plan: ItemPlan, problems: Problems): Promise<void> {
  const inTemplate = new Set(plan.items.flatMap((i) => (i.identity.kind === 'key' ? [refKey({ table: i.table, key: i.identity.value })] : [])));
  const counts = new Map<string, number>();
  const stored = async (table: string, key: string): Promise<number> => {
    const column = plan.keyColumn(table);
    // A table or key column the template creates holds no records yet.
    if (!base.table(table)?.column(column)) return 0;
    const k = refKey({ table, key });
    let n = counts.get(k);
    if (n === undefined) {
      n = await records.count(ctx, table, eq(column, key));
      counts.set(k, n);
    }
    return n;
  };
  for (const item of plan.items) {
    if (item.identity.kind === 'key' && (await stored(item.table, item.identity.value)) > 1) {
      problems.add(item.where, `${await stored(item.table, item.identity.value)} ${item.table} records have ${item.identity.column} '${item.identity.value}'; a template item must match at most one`);
    }
    for (const { field, ref } of keyRefs(item)) {
      if (inTemplate.has(refKey(ref))) continue;
      const n = await stored(ref.table, ref.key);
      const column = plan.keyColumn(ref.table);
      if (n === 0) problems.add(`${item.where}: ${field}`, `no ${ref.table} with ${column} '${ref.key}' in the template or in ccs`);
      else if (n > 1) problems.add(`${item.where}: ${field}`, `${n} ${ref.table} records have ${column} '${ref.key}'; the reference must name one`);
    }
  }
}

/** Items in an order where each comes after the items its lookups name; a cycle is closed by a later update. */
function writeOrder(items: readonly Item[], index: ReadonlyMap<string, Item>): Item[] {
  const state = new Map<Item, 'visiting' | 'done'>();
  const out: Item[] = [];
  const visit = (item: Item): void => {
    state.set(item, 'visiting');
    for (const ref of Object.values(item.lookups)) {
      if (!ref || !('key' in ref)) continue;
      const dep = index.get(refKey(ref));
      if (dep && !state.has(dep)) visit(dep);
    }
    state.set(item, 'done');
    out.push(item);
  };
  for (const item of items) if (!state.has(item)) visit(item);
  return out;
}

type LookupInput = string | { readonly id: string; readonly table: string } | null;

function lookupInput(table: Table, column: string, ref: Ref, id: string): LookupInput {
  const def = table.column(column)!;
  return isLookup(def) && isMultiTarget(def) ? { id, table: ref.table } : id;
}

function lookupParts(value: unknown): { id: string | null; table: string | undefined } {
  if (value === null || value === undefined) return { id: null, table: undefined };
  if (typeof value === 'string') return { id: value.toLowerCase(), table: undefined };
  const v = value as { id: string; table: string };
  return { id: v.id.toLowerCase(), table: v.table };
}

/** The columns of `input` whose value differs from the stored row. */
function changes(table: Table, item: Item, input: Record<string, unknown>, row: Row): InputValues {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(input)) {
    const column = table.column(name)!;
    let same: boolean;
    if (isLookup(column)) {
      const want = lookupParts(value);
      same = want.id === ((row[name] as string | null | undefined) ?? null) && (want.table === undefined || want.id === null || want.table === row[lookupTypeColumn(name)]);
    } else if (item.jsonColumns.has(name)) {
      const stored = parseJsonText(row[name]);
      same = stored !== undefined && jsonEqual(parseJsonText(value), stored);
    } else {
      same = jsonEqual(fromStoreValue(column, toStoreValue(column, value)), fromStoreValue(column, row[name] ?? null));
    }
    if (!same) out[name] = value;
  }
  return out;
}

interface Written {
  readonly id: string;
  outcome: Outcome;
}

async function writeItems(records: RecordsService, rc: RecordContext, plan: ItemPlan): Promise<Map<Item, Written>> {
  const index = new Map<string, Item>();
  for (const item of plan.items) if (item.identity.kind === 'key') index.set(refKey({ table: item.table, key: item.identity.value }), item);
  const written = new Map<Item, Written>();
  const storedIds = new Map<string, string | undefined>();

  const resolve = async (ref: Ref): Promise<string | typeof PENDING | undefined> => {
    if ('id' in ref) return ref.id;
    const item = index.get(refKey(ref));
    if (item) return written.get(item)?.id ?? PENDING;
    const k = refKey(ref);
    if (!storedIds.has(k)) {
      const table = records.table(ref.table);
      const rows = await records.query(rc, ref.table, { columns: [table.primaryIdAttribute], where: eq(plan.keyColumn(ref.table), ref.key), limit: 1 });
      storedIds.set(k, rows[0]?.[table.primaryIdAttribute] as string | undefined);
    }
    return storedIds.get(k);
  };

  const find = async (item: Item, table: Table, input: Record<string, unknown>): Promise<string | undefined> => {
    const pk = table.primaryIdAttribute;
    const identity = item.identity;
    let where: Condition;
    if (identity.kind === 'key') where = eq(identity.column, identity.value);
    else if (identity.kind === 'id') where = eq(pk, identity.id);
    else {
      where = and(
        ...identity.columns.map((c) => {
          const { id, table: target } = lookupParts(input[c]);
          return target === undefined ? eq(c, id) : and(eq(c, id), eq(lookupTypeColumn(c), target));
        }),
      );
    }
    const rows = await records.query(rc, item.table, { columns: [pk], where, limit: 1 });
    return rows[0]?.[pk] as string | undefined;
  };

  const deferred: { item: Item; column: string; ref: Ref }[] = [];
  for (const item of writeOrder(plan.items, index)) {
    try {
      const table = records.table(item.table);
      const input: Record<string, unknown> = { ...item.values };
      for (const [column, ref] of Object.entries(item.lookups)) {
        if (ref === null) {
          input[column] = null;
          continue;
        }
        const id = await resolve(ref);
        if (id === PENDING) deferred.push({ item, column, ref });
        else if (id === undefined) throw new CcsError('InvalidValue', `${column}: the ${ref.table} record it names is gone`);
        else input[column] = lookupInput(table, column, ref, id);
      }
      const existing = await find(item, table, input);
      if (existing === undefined) {
        if (item.identity.kind === 'id') input[table.primaryIdAttribute] = item.identity.id;
        written.set(item, { id: await records.create(rc, item.table, input), outcome: 'created' });
        continue;
      }
      const row = (await records.retrieve(rc, item.table, existing))!;
      const changed = changes(table, item, input, row);
      if (Object.keys(changed).length > 0) await records.update(rc, item.table, existing, changed);
      written.set(item, { id: existing, outcome: Object.keys(changed).length > 0 ? 'updated' : 'unchanged' });
    } catch (e) {
      throw located(item, e);
    }
  }

  for (const { item, column, ref } of deferred) {
    try {
      const table = records.table(item.table);
      const w = written.get(item)!;
      const id = (await resolve(ref)) as string;
      const row = (await records.retrieve(rc, item.table, w.id))!;
      const changed = changes(table, item, { [column]: lookupInput(table, column, ref, id) }, row);
      if (Object.keys(changed).length === 0) continue;
      await records.update(rc, item.table, w.id, changed);
      if (w.outcome === 'unchanged') w.outcome = 'updated';
    } catch (e) {
      throw located(item, e);
    }
  }

  for (const item of plan.items) {
    const entries = Object.entries(item.links);
    if (entries.length === 0) continue;
    try {
      const table = records.table(item.table);
      const w = written.get(item)!;
      for (const [name, refs] of entries) {
        const nav = table.navigation(name);
        if (nav?.kind !== 'manyToMany') continue;
        const want = new Set<string>();
        for (const ref of refs) want.add(((await resolve(ref)) as string).toLowerCase());
        const current = new Set((await rc.db.select({ table: nav.intersect, columns: [nav.otherColumn], where: eq(nav.ownColumn, w.id) })).map((r) => String(r[nav.otherColumn])));
        let changed = false;
        for (const id of want) {
          if (current.has(id)) continue;
          await records.associate(rc, item.table, w.id, nav, id);
          changed = true;
        }
        for (const id of current) {
          if (want.has(id)) continue;
          await records.disassociate(rc, item.table, w.id, nav, id);
          changed = true;
        }
        if (changed && w.outcome === 'unchanged') w.outcome = 'updated';
      }
    } catch (e) {
      throw located(item, e);
    }
  }
  return written;
}

/** An error while writing an item, told as a template problem that names the item. */
function located(item: Item, e: unknown): unknown {
  if (e instanceof TemplateError || !(e instanceof CcsError)) return e;
  return new TemplateError([`${item.where}: ${e.message} (nothing from the records sections was written)`]);
}

function isTransaction(ctx: RecordContext): boolean {
  return typeof (ctx.db as { lock?: unknown }).lock === 'function';
}

/**
 * Deploys `template` (parsed JSON) as `ctx`'s principal. Throws a TemplateError listing every problem when the
 * template is not valid, before anything is written.
 */
export async function deployTemplate(deps: TemplateDeps, ctx: RecordContext, template: unknown): Promise<DeployReport> {
  if (isTransaction(ctx)) throw new CcsError('BadRequest', 'A template cannot be deployed inside a transaction (a $batch change set): it changes tables and talks to the hub.');
  if (!isObject(template)) throw new TemplateError(['a template is a JSON object with "$schema" and sections']);
  const { records, metadata } = deps;
  const problems = new Problems();
  checkShape(template, problems);
  const base = records.model;
  const tables = planTables(template['tables'], base, problems);
  const plan = planItems(template, tables.model, problems);
  await checkReferences(records, ctx, base, plan, problems);
  problems.throwIfAny();

  await applyTables(metadata, tables);
  let written: Map<Item, Written>;
  try {
    written = await withTransaction(deps, ctx, async (rc, tx) => {
      // Two deploys at once (two API nodes, say) take turns, so the second finds what the first created.
      await tx.lock(DEPLOY_LOCK);
      return writeItems(records, rc, plan);
    });
  } catch (e) {
    if (e instanceof TemplateError && (tables.newTables.length > 0 || tables.newColumns.length > 0)) {
      throw new TemplateError(e.problems.map((p) => `${p}; the tables section was applied`));
    }
    throw e;
  }

  const counts = new Map<string, { created: number; updated: number; unchanged: number }>();
  const count = (section: string, outcome: Outcome) => {
    const c = counts.get(section) ?? { created: 0, updated: 0, unchanged: 0 };
    c[outcome]++;
    counts.set(section, c);
  };
  for (const outcome of tables.outcomes) count('tables', outcome);
  for (const [item, w] of written) count(item.section, w.outcome);
  const sections: Record<string, SectionCounts> = {};
  for (const member of TEMPLATE_MEMBERS) {
    if (template[member] === undefined || member.startsWith('$') || member === 'name' || member === 'description') continue;
    sections[member] = counts.get(member) ?? { created: 0, updated: 0, unchanged: 0 };
  }

  const registrations = await register(deps, ctx, written);
  return { sections, registrations, warnings: [...tables.warnings] };
}

/** Registers the devices that are new, changed, or not registered yet. */
async function register(deps: TemplateDeps, ctx: RecordContext, written: ReadonlyMap<Item, Written>): Promise<DeviceRegistration[]> {
  const { records } = deps;
  const ids: string[] = [];
  for (const [item, w] of written) {
    if (!item.register) continue;
    const row = await records.retrieve(ctx, DEVICE_TABLE, w.id, ['msdyn_registrationstatus']);
    if (w.outcome !== 'unchanged' || row?.['msdyn_registrationstatus'] !== REGISTRATION.registered) ids.push(w.id);
  }
  if (ids.length === 0) return [];
  const action = deps.operations.get(REGISTER_ACTION);
  if (!action) throw new CcsError('Internal', `${REGISTER_ACTION} is not available to register the template's devices.`);
  for (const id of ids) {
    // Registering is idempotent; a deploy running at the same time may be registering the same device, whose record
    // then changes under this one: register it again on top of that.
    for (let attempt = 1; ; attempt++) {
      try {
        await action.invoke({ records, record: ctx }, { IoTDeviceIds: id });
        break;
      } catch (e) {
        if (!(e instanceof CcsError && e.code === 'VersionMismatch') || attempt >= REGISTER_ATTEMPTS) throw e;
        // Apart, or two deploys registering the same devices in step would collide again and again.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 50 * attempt));
      }
    }
  }
  const out: DeviceRegistration[] = [];
  for (const id of ids) {
    const row = await records.retrieve(ctx, DEVICE_TABLE, id, ['msdyn_deviceid', 'msdyn_registrationstatus', 'msdyn_registrationmessage']);
    out.push({
      deviceId: String(row?.['msdyn_deviceid'] ?? id),
      registered: row?.['msdyn_registrationstatus'] === REGISTRATION.registered,
      message: String(row?.['msdyn_registrationmessage'] ?? ''),
    });
  }
  return out;
}

/** The report as lines for a terminal. */
export function formatDeployReport(report: DeployReport): string {
  const lines: string[] = [];
  for (const [section, c] of Object.entries(report.sections)) {
    const parts = [c.created && `${c.created} created`, c.updated && `${c.updated} updated`, c.unchanged && `${c.unchanged} unchanged`].filter(Boolean);
    lines.push(`${section}: ${parts.length ? parts.join(', ') : 'none'}`);
  }
  const ok = report.registrations.filter((r) => r.registered).length;
  if (report.registrations.length > 0) lines.push(`devices registered: ${ok} of ${report.registrations.length}`);
  for (const r of report.registrations) if (!r.registered) lines.push(`  ${r.deviceId}: ${r.message}`);
  for (const w of report.warnings) lines.push(`warning: ${w}`);
  return `${lines.join('\n')}\n`;
}
