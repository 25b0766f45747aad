/**
 * Reading the record sections of a template into items: one record each, with its natural key, its plain column
 * values as the Web API takes them, its lookups as references by natural key, and its N:N links. Everything is
 * checked against the model the template's tables produce, and every problem is recorded with the section, the item
 * and the field it concerns.
 */
import {
  CONNECTED_DEVICE_ROLE_ID,
  isLookup,
  isMultiTarget,
  toStoreValue,
  type ColumnDef,
  type Model,
  type Table,
} from '../../metadata/index.js';
import {
  CONNECTION_NAME,
  CONNECTION_TABLE,
  DEVICE_TABLE,
  RECORD_SECTIONS,
  SETTINGS_ID,
  SETTINGS_TABLE,
} from './format.js';
import { isObject, type Json, type Problems } from './problems.js';

/** A reference to a record: by natural key (the template's way), or by id (fixed platform rows). */
export type Ref = { readonly table: string; readonly key: string } | { readonly table: string; readonly id: string };

export type Identity =
  | { readonly kind: 'key'; readonly column: string; readonly value: string }
  | { readonly kind: 'id'; readonly id: string }
  /** A connection is the same connection when it joins the same two records in the same role. */
  | { readonly kind: 'lookups'; readonly columns: readonly string[] };

export interface Item {
  /** The section the item comes from, for the report. */
  readonly section: string;
  /** How problems name it: `devices[2] (thermostat-0003)`. */
  readonly where: string;
  readonly table: string;
  readonly identity: Identity;
  /** Plain columns, JSON values as the Web API takes them (a JSON column given as an object is already text). */
  readonly values: Readonly<Record<string, unknown>>;
  /** Columns given as a JSON object or array: equal when they hold the same JSON, whatever the spacing. */
  readonly jsonColumns: ReadonlySet<string>;
  readonly lookups: Readonly<Record<string, Ref | null>>;
  /** N:N navigation property → the records it links to (the whole set: others are unlinked). */
  readonly links: Readonly<Record<string, readonly Ref[]>>;
  readonly register: boolean;
}

export interface ItemPlan {
  readonly items: readonly Item[];
  /** Natural key column of each table, as the template uses it. */
  keyColumn(table: string): string;
}

const META_TABLE = '$table';
const META_KEY = '$key';

function quote(v: string): string {
  return `'${v}'`;
}

interface Builder {
  readonly model: Model;
  readonly problems: Problems;
}

/** Checks one plain value against its column; a JSON object or array for a text column becomes its JSON text. */
function plainValue(b: Builder, where: string, column: ColumnDef, value: unknown): { value: unknown; json: boolean } | undefined {
  let v = value;
  let json = false;
  if ((column.type === 'memo' || column.type === 'string') && typeof value === 'object' && value !== null) {
    v = JSON.stringify(value);
    json = true;
  }
  const ok = b.problems.guard(`${where}: ${column.logicalName}`, () => toStoreValue(column, v));
  return ok === undefined ? undefined : { value: v, json };
}

/** A lookup value: a natural key (one-table lookups) or `{"<table>": "<key>"}`. */
function lookupRef(b: Builder, where: string, column: ColumnDef & { targets: readonly string[] }, value: unknown): Ref | null | undefined {
  const at = `${where}: ${column.logicalName}`;
  if (value === null) return null;
  const multi = isLookup(column) && isMultiTarget(column);
  if (typeof value === 'string') {
    if (multi) {
      b.problems.add(at, `can refer to records of several tables: write {"<table>": "<key>"}, e.g. {"${column.targets[0] === '*' ? 'account' : column.targets[0]}": "…"}`);
      return undefined;
    }
    if (value === '') {
      b.problems.add(at, 'names no record (an empty key); use null to clear the lookup');
      return undefined;
    }
    return { table: column.targets[0]!, key: value };
  }
  if (isObject(value) && Object.keys(value).length === 1) {
    const [target, key] = Object.entries(value)[0]!;
    if (column.targets[0] === '*' ? !b.model.table(target) : !column.targets.includes(target)) {
      b.problems.add(at, `cannot refer to a '${target}' record (allowed: ${column.targets[0] === '*' ? 'any table' : column.targets.join(', ')})`);
      return undefined;
    }
    if (typeof key !== 'string' || key === '') {
      b.problems.add(at, `the ${target} record must be named by its key, a non-empty string`);
      return undefined;
    }
    return { table: target, key };
  }
  b.problems.add(at, `must name the ${multi ? 'record as {"<table>": "<key>"}' : `${column.targets[0]} record by its key`}, or be null`);
  return undefined;
}

/** Reads the columns, lookups and links of one record object. `skip` are members read by the caller. */
function readRecord(
  b: Builder,
  where: string,
  table: Table,
  raw: Json,
  skip: ReadonlySet<string>,
): { values: Record<string, unknown>; json: Set<string>; lookups: Record<string, Ref | null>; links: Record<string, Ref[]> } {
  const values: Record<string, unknown> = {};
  const json = new Set<string>();
  const lookups: Record<string, Ref | null> = {};
  const links: Record<string, Ref[]> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (skip.has(name)) continue;
    const nav = table.navigation(name);
    if (nav?.kind === 'manyToMany') {
      if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string' && v !== '')) {
        b.problems.add(`${where}: ${name}`, `must list the linked ${nav.target} records by their keys (strings)`);
        continue;
      }
      links[name] = value.map((key) => ({ table: nav.target, key }));
      continue;
    }
    const column = table.column(name);
    if (!column) {
      b.problems.add(where, `unknown column '${name}' on table '${table.logicalName}'`);
      continue;
    }
    if (name === table.primaryIdAttribute) {
      b.problems.add(`${where}: ${name}`, 'is the record id; templates name records by their key, never by id');
      continue;
    }
    if (column.readOnly) {
      b.problems.add(`${where}: ${name}`, 'is set by the platform and cannot be written');
      continue;
    }
    if (isLookup(column)) {
      const ref = lookupRef(b, where, column, value);
      if (ref !== undefined) lookups[name] = ref;
      continue;
    }
    const plain = plainValue(b, where, column, value);
    if (!plain) continue;
    values[name] = plain.value;
    if (plain.json) json.add(name);
  }
  return { values, json, lookups, links };
}

function keyText(b: Builder, at: string, table: Table, keyColumn: string, raw: Json): string | undefined {
  const column = table.column(keyColumn);
  if (!column || (column.type !== 'string' && column.type !== 'memo')) {
    b.problems.add(at, `'${keyColumn}' cannot be the key of ${table.logicalName}: the key must be a text column`);
    return undefined;
  }
  const key = raw[keyColumn];
  if (typeof key !== 'string' || key.trim() === '') {
    b.problems.add(at, `'${keyColumn}' is required: it is the item's key`);
    return undefined;
  }
  return key;
}

/**
 * Reads every record section of `template` against `model` (the model once the template's tables exist). Checks
 * shapes, columns, values and duplicate keys; references between records are checked by `checkReferences`.
 */
export function planItems(template: Json, model: Model, problems: Problems): ItemPlan {
  const b: Builder = { model, problems };
  const items: Item[] = [];
  const sectionTables = new Map(RECORD_SECTIONS.map((s) => [s.table, s]));
  const keyColumns = new Map<string, string>(RECORD_SECTIONS.map((s) => [s.table, s.key]));

  // `records`: plain seed records of any other table, by `$table` and optionally `$key` (the key column).
  const records = template['records'];
  if (records !== undefined && !Array.isArray(records)) problems.add('records', 'must be an array of records, each with "$table"');
  for (const [i, raw] of (Array.isArray(records) ? records : []).entries()) {
    const at = `records[${i}]`;
    if (!isObject(raw)) {
      problems.add(at, 'must be an object with "$table" and the record\'s columns');
      continue;
    }
    const tableName = raw[META_TABLE];
    if (typeof tableName !== 'string') {
      problems.add(at, '"$table" is required: the logical name of the record\'s table');
      continue;
    }
    const table = model.table(tableName);
    if (!table) {
      problems.add(at, `"$table": there is no table '${tableName}'`);
      continue;
    }
    const section = sectionTables.get(tableName);
    if (section || tableName === CONNECTION_TABLE || tableName === SETTINGS_TABLE) {
      problems.add(at, `"$table": ${tableName} records go in the '${section?.name ?? (tableName === CONNECTION_TABLE ? 'connections' : 'settings')}' section`);
      continue;
    }
    const givenKey = raw[META_KEY];
    if (givenKey !== undefined && typeof givenKey !== 'string') {
      problems.add(at, '"$key" must be the logical name of the key column');
      continue;
    }
    const keyColumn = givenKey ?? table.primaryNameAttribute;
    const known = keyColumns.get(tableName);
    if (known !== undefined && known !== keyColumn) {
      problems.add(at, `"$key": ${tableName} records are keyed by '${known}' elsewhere in the template; one table has one key`);
      continue;
    }
    keyColumns.set(tableName, keyColumn);
    const key = keyText(b, at, table, keyColumn, raw);
    if (key === undefined) continue;
    const where = `${at} (${tableName} ${quote(key)})`;
    const r = readRecord(b, where, table, raw, new Set([META_TABLE, META_KEY]));
    items.push({ section: 'records', where, table: tableName, identity: { kind: 'key', column: keyColumn, value: key }, values: r.values, jsonColumns: r.json, lookups: r.lookups, links: r.links, register: false });
  }

  for (const section of RECORD_SECTIONS) {
    const list = template[section.name];
    if (list === undefined) continue;
    const table = model.table(section.table);
    if (!table) {
      problems.add(section.name, `needs the table '${section.table}', which this ccs does not have`);
      continue;
    }
    if (!Array.isArray(list)) {
      problems.add(section.name, `must be an array of ${table.logicalName} records`);
      continue;
    }
    for (const [i, raw] of list.entries()) {
      const at = `${section.name}[${i}]`;
      if (!isObject(raw)) {
        problems.add(at, `must be an object: a ${table.logicalName} record, column → value`);
        continue;
      }
      const key = keyText(b, at, table, section.key, raw);
      if (key === undefined) continue;
      const where = `${at} (${key})`;
      const r = readRecord(b, where, table, raw, new Set());
      items.push({
        section: section.name,
        where,
        table: section.table,
        identity: { kind: 'key', column: section.key, value: key },
        values: r.values,
        jsonColumns: r.json,
        lookups: r.lookups,
        links: r.links,
        register: section.register === true,
      });
    }
  }

  const connections = template['connections'];
  if (connections !== undefined && !Array.isArray(connections)) problems.add('connections', 'must be an array of {"record": {"<table>": "<key>"}, "device": "<device id>"}');
  for (const [i, raw] of (Array.isArray(connections) ? connections : []).entries()) {
    const at = `connections[${i}]`;
    if (!isObject(raw)) {
      problems.add(at, 'must be an object: {"record": {"<table>": "<key>"}, "device": "<device id>"}');
      continue;
    }
    const extra = Object.keys(raw).filter((k) => k !== 'record' && k !== 'device');
    if (extra.length) problems.add(at, `unknown member${extra.length > 1 ? 's' : ''} ${extra.map(quote).join(', ')} (a connection has "record" and "device")`);
    const device = raw['device'];
    if (typeof device !== 'string' || device === '') {
      problems.add(at, '"device" is required: the device id (msdyn_deviceid) of the connected device');
      continue;
    }
    const record = raw['record'];
    const entry = isObject(record) && Object.keys(record).length === 1 ? Object.entries(record)[0]! : undefined;
    if (!entry || typeof entry[1] !== 'string' || entry[1] === '') {
      problems.add(at, '"record" is required: the connected record as {"<table>": "<key>"}, e.g. {"msdyn_customerasset": "Lobby"}');
      continue;
    }
    const [recordTable, recordKey] = entry as [string, string];
    if (!model.table(recordTable)) {
      problems.add(`${at}: record`, `there is no table '${recordTable}'`);
      continue;
    }
    if (recordTable === DEVICE_TABLE || recordTable === CONNECTION_TABLE) {
      problems.add(`${at}: record`, `a device is connected to a record of another table, not to a ${recordTable}`);
      continue;
    }
    items.push({
      section: 'connections',
      where: `${at} (${recordTable} ${quote(recordKey)} → ${device})`,
      table: CONNECTION_TABLE,
      identity: { kind: 'lookups', columns: ['record1id', 'record2id', 'record2roleid'] },
      values: { name: CONNECTION_NAME },
      jsonColumns: new Set(),
      lookups: {
        record1id: { table: recordTable, key: recordKey },
        record2id: { table: DEVICE_TABLE, key: device },
        record2roleid: { table: 'connectionrole', id: CONNECTED_DEVICE_ROLE_ID },
      },
      links: {},
      register: false,
    });
  }

  const settings = template['settings'];
  if (settings !== undefined) {
    const table = model.table(SETTINGS_TABLE)!;
    if (!isObject(settings)) problems.add('settings', 'must be an object: msdyn_iotsettings columns → values');
    else {
      const r = readRecord(b, 'settings', table, settings, new Set());
      items.push({ section: 'settings', where: 'settings', table: SETTINGS_TABLE, identity: { kind: 'id', id: SETTINGS_ID }, values: r.values, jsonColumns: r.json, lookups: r.lookups, links: r.links, register: false });
    }
  }

  // One item per key and table (keys compare without regard to case, as the store does).
  const seen = new Map<string, string>();
  for (const item of items) {
    const id = identityKey(item);
    if (id === undefined) continue;
    const first = seen.get(id);
    if (first) problems.add(item.where, `the same record as ${first}; each record appears once in a template`);
    else seen.set(id, item.where);
  }

  return { items, keyColumn: (table) => keyColumns.get(table) ?? model.table(table)?.primaryNameAttribute ?? '' };
}

/** A string that is the same for two items describing the same record, when that can be told before deploying. */
export function identityKey(item: Item): string | undefined {
  if (item.identity.kind === 'key') return `${item.table}\u0000${item.identity.value.toLowerCase()}`;
  if (item.identity.kind === 'id') return `${item.table}\u0000#${item.identity.id}`;
  const refs = item.identity.columns.map((c) => item.lookups[c]);
  return `${item.table}\u0000${refs.map((r) => (r ? `${r.table}:${'key' in r ? r.key.toLowerCase() : `#${r.id}`}` : '')).join('\u0000')}`;
}

export function refKey(ref: { table: string; key: string }): string {
  return `${ref.table}\u0000${ref.key.toLowerCase()}`;
}
