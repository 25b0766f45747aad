/**
 * Exporting the configuration as a template that deploys it again: custom tables and columns, categories, property
 * and command definitions, devices, their connections, rules, workflows, webhooks and settings, plus the records
 * those refer to (accounts, customer assets…) in `records`. Not exported: what devices and agents produce (alerts,
 * readings, commands, cases, runs), the platform's state columns (registration, connection state, reported
 * properties), device keys, and — unless asked for — write-only columns (webhook secrets). A shipped row (a standard workflow, the settings) is written only with the
 * columns that differ from how it ships.
 */
import {
  CONNECTED_DEVICE_ROLE_ID,
  fromStoreValue,
  isLookup,
  isMultiTarget,
  lookupTypeColumn,
  standardSeedRows,
  toStoreValue,
  type ColumnDef,
  type Table,
} from '../../metadata/index.js';
import type { RecordContext, RecordsService } from '../../records/index.js';
import { and, eq, type Row, type StoreValue } from '../../store/index.js';
import {
  CONNECTION_TABLE,
  DATA_TABLES,
  DEVICE_KEY,
  DEVICE_TABLE,
  NOT_EXPORTED_COLUMNS,
  PLATFORM_TABLES,
  RECORD_SECTIONS,
  SETTINGS_ID,
  SETTINGS_TABLE,
  TEMPLATE_MEMBERS,
  TEMPLATE_SCHEMA,
} from './format.js';
import { jsonEqual, parseJsonText, type Json } from './problems.js';
import { exportTables } from './tables.js';

export interface ExportResult {
  readonly template: Json;
  /** What could not be written (a lookup to a record without a key, a device without a device id…). */
  readonly warnings: readonly string[];
}

const SECTION_OF_TABLE = new Map(RECORD_SECTIONS.map((s, i) => [s.table, { ...s, index: i }]));

/** Platform columns every record has: never configuration. */
const SKIPPED = new Set(['ownerid']);

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function normalised(column: ColumnDef, value: unknown): unknown {
  try {
    const v = fromStoreValue(column, toStoreValue(column, value));
    return typeof v === 'string' ? (parseJsonText(v) ?? v) : v;
  } catch {
    return value;
  }
}

function storedNormalised(column: ColumnDef, value: StoreValue): unknown {
  const v = fromStoreValue(column, value);
  return typeof v === 'string' ? (parseJsonText(v) ?? v) : v;
}

export interface ExportOptions {
  /**
   * Write the values of write-only columns (a webhook's `ccs_secret`), which no read of the Web API returns. Without
   * them a template that creates such records does not deploy into another instance until they are filled in.
   */
  readonly includeSecrets?: boolean;
}

export async function exportTemplate(records: RecordsService, ctx: RecordContext, opts: ExportOptions = {}): Promise<ExportResult> {
  const model = records.model;
  const warnings: string[] = [];
  const seeds = new Map(standardSeedRows.map((s) => [`${s.table}\u0000${s.id}`, s.row]));
  const keyColumn = (table: string) => SECTION_OF_TABLE.get(table)?.key ?? (table === DEVICE_TABLE ? DEVICE_KEY : model.table(table)?.primaryNameAttribute ?? '');
  const keys = new Map<string, string | null>();
  /** Records outside the sections that exported items refer to: exported in `records`. */
  const referenced = new Map<string, Set<string>>();

  async function keyOf(table: string, id: string): Promise<string | null> {
    const k = `${table}\u0000${id}`;
    if (!keys.has(k)) {
      const t = model.table(table);
      const column = keyColumn(table);
      const row = t && column ? await records.retrieve(ctx, table, id, [column]) : undefined;
      const v = row?.[column];
      keys.set(k, typeof v === 'string' && v !== '' ? v : null);
    }
    return keys.get(k)!;
  }

  function refer(table: string, id: string): void {
    if (SECTION_OF_TABLE.has(table) || PLATFORM_TABLES.has(table) || DATA_TABLES.has(table) || table === SETTINGS_TABLE || table === CONNECTION_TABLE) return;
    const set = referenced.get(table) ?? new Set<string>();
    set.add(id);
    referenced.set(table, set);
  }

  /** One record as a template item: its key, then every configuration column that is set (and not as shipped). */
  async function item(table: Table, row: Row, where: string, key?: string): Promise<Json | undefined> {
    const id = String(row[table.primaryIdAttribute]);
    const seed = seeds.get(`${table.logicalName}\u0000${id}`);
    const skip = new Set([...SKIPPED, ...(NOT_EXPORTED_COLUMNS[table.logicalName] ?? [])]);
    const out: Json = {};
    if (key) out[key] = row[key];
    let differs = false;
    // State last: it reads better after what the record is.
    const state = new Set(['statecode', 'statuscode']);
    const columns = [...table.columns.filter((c) => !state.has(c.logicalName)), ...table.columns.filter((c) => state.has(c.logicalName))];
    for (const column of columns) {
      const name = column.logicalName;
      if (name === key || name === table.primaryIdAttribute || column.readOnly || skip.has(name)) continue;
      const value = row[name] ?? null;
      if (column.isValidForRead === false && !opts.includeSecrets) {
        if (value !== null) warnings.push(`${where}: ${name} is write-only and was left out; fill it in before deploying elsewhere, or export with secrets`);
        continue;
      }
      if (isLookup(column)) {
        const target = isMultiTarget(column) ? (row[lookupTypeColumn(name)] as string | null) : column.targets[0]!;
        if (seed && Object.hasOwn(seed, name) && typeof seed[name] === 'string' && String(seed[name]).toLowerCase() === value) continue;
        if (value === null || !target || DATA_TABLES.has(target)) continue;
        const targetKey = await keyOf(target, String(value));
        if (targetKey === null) {
          warnings.push(`${where}: ${name}: the ${target} record it refers to has no ${keyColumn(target) || 'key'}; left out`);
          continue;
        }
        refer(target, String(value));
        out[name] = isMultiTarget(column) ? { [target]: targetKey } : targetKey;
        differs = true;
        continue;
      }
      if (value === null) continue;
      const current = storedNormalised(column, value);
      const shipped = seed && Object.hasOwn(seed, name) ? normalised(column, seed[name]) : 'defaultValue' in column && column.defaultValue !== undefined ? normalised(column, column.defaultValue) : undefined;
      if (shipped !== undefined && jsonEqual(current, shipped)) continue;
      out[name] = current;
      differs = true;
    }
    // A shipped row as it shipped needs no item.
    return seed && !differs ? undefined : out;
  }

  /** N:N links written on the item of the later section (the earlier one's items exist by then). */
  async function links(table: Table, id: string, out: Json): Promise<void> {
    const own = SECTION_OF_TABLE.get(table.logicalName);
    if (!own) return;
    for (const nav of table.navigations) {
      if (nav.kind !== 'manyToMany' || nav.target === table.logicalName) continue;
      const other = SECTION_OF_TABLE.get(nav.target);
      if (!other || other.index >= own.index) continue;
      const rows = await ctx.db.select({ table: nav.intersect, columns: [nav.otherColumn], where: eq(nav.ownColumn, id) });
      const names: string[] = [];
      for (const r of rows) {
        const k = await keyOf(nav.target, String(r[nav.otherColumn]));
        if (k !== null) names.push(k);
      }
      if (names.length > 0) out[nav.name] = names.sort(compareText);
    }
  }

  const template: Json = { $schema: TEMPLATE_SCHEMA };
  const tables = exportTables(model, warnings);
  if (tables.length > 0) template['tables'] = tables;

  const sections: Record<string, Json[]> = {};
  for (const section of RECORD_SECTIONS) {
    const table = model.table(section.table);
    if (!table) continue;
    const rows = (await records.query(ctx, section.table, {})).filter((row) => {
      const k = row[section.key];
      if (typeof k === 'string' && k !== '') return true;
      warnings.push(`${section.name}: the ${section.table} record ${String(row[table.primaryIdAttribute])} has no ${section.key}; left out`);
      return false;
    });
    rows.sort((a, b) => compareText(String(a[section.key]).toLowerCase(), String(b[section.key]).toLowerCase()));
    const list: Json[] = [];
    for (const row of rows) {
      const out = await item(table, row, `${section.name} (${String(row[section.key])})`, section.key);
      if (!out) continue;
      await links(table, String(row[table.primaryIdAttribute]), out);
      list.push(out);
    }
    if (list.length > 0) sections[section.name] = list;
  }

  // Connections of devices: record1 any record, record2 a device, in the Connected Device role.
  const connections: Json[] = [];
  const connectionRows = await records.query(ctx, CONNECTION_TABLE, {
    where: and(eq('record2roleid', CONNECTED_DEVICE_ROLE_ID), eq(lookupTypeColumn('record2id'), DEVICE_TABLE)),
  });
  for (const row of connectionRows) {
    const recordTable = row[lookupTypeColumn('record1id')];
    if (typeof recordTable !== 'string' || DATA_TABLES.has(recordTable) || !model.table(recordTable)) continue;
    const device = await keyOf(DEVICE_TABLE, String(row['record2id']));
    const record = await keyOf(recordTable, String(row['record1id']));
    if (device === null || record === null) {
      warnings.push(`connections: connection ${String(row['connectionid'])} joins a record without a key; left out`);
      continue;
    }
    refer(recordTable, String(row['record1id']));
    connections.push({ record: { [recordTable]: record }, device });
  }
  const connectionKey = (c: Json) => `${String(c['device']).toLowerCase()}\u0000${JSON.stringify(c['record']).toLowerCase()}`;
  connections.sort((a, b) => compareText(connectionKey(a), connectionKey(b)));
  const unique = connections.filter((c, i) => i === 0 || connectionKey(c) !== connectionKey(connections[i - 1]!));

  const settingsTable = model.table(SETTINGS_TABLE)!;
  const settingsRow = await records.retrieve(ctx, SETTINGS_TABLE, SETTINGS_ID);
  const settings = settingsRow ? await item(settingsTable, settingsRow, 'settings') : undefined;

  // Records the sections refer to, and those they refer to in turn.
  const recordItems: { table: string; key: string; item: Json }[] = [];
  const done = new Set<string>();
  for (let progress = true; progress; ) {
    progress = false;
    for (const [tableName, ids] of referenced) {
      const table = model.table(tableName)!;
      const column = keyColumn(tableName);
      for (const id of [...ids]) {
        if (done.has(`${tableName}\u0000${id}`)) continue;
        done.add(`${tableName}\u0000${id}`);
        progress = true;
        const row = await records.retrieve(ctx, tableName, id);
        if (!row) continue;
        const key = row[column];
        if (typeof key !== 'string' || key === '') continue;
        const out = await item(table, row, `records (${tableName} '${key}')`, column);
        if (out) recordItems.push({ table: tableName, key, item: { $table: tableName, ...out } });
      }
    }
  }
  recordItems.sort((a, b) => compareText(a.table, b.table) || compareText(a.key.toLowerCase(), b.key.toLowerCase()));

  if (recordItems.length > 0) template['records'] = recordItems.map((r) => r.item);
  Object.assign(template, sections);
  if (unique.length > 0) template['connections'] = unique;
  if (settings && Object.keys(settings).length > 0) template['settings'] = settings;
  // Members in the format's order: records and connections are only known once the sections have been read.
  const out: Json = {};
  for (const member of TEMPLATE_MEMBERS) if (template[member] !== undefined) out[member] = template[member];
  return { template: out, warnings };
}
