/**
 * The `tables` section: custom tables and columns, each entry an EntityMetadata body exactly as
 * `POST EntityDefinitions` takes it (with its `Attributes`), parsed by the same code as that endpoint
 * (metadata/entity-definitions.ts). An entry whose table exists already (a standard table, or a custom table from an
 * earlier deploy) adds the attributes the table lacks, as `POST EntityDefinitions(...)/Attributes` would; existing
 * columns are left as they are, since ccs cannot change a column.
 */
import {
  columnDefFromAttributeMetadata,
  isLookup,
  pluralize,
  tableDefFromEntityMetadata,
  type ColumnDef,
  type MetadataRegistry,
  type Model,
  type TableDef,
} from '../../metadata/index.js';
import { isObject, type Json, type Problems } from './problems.js';

export type Outcome = 'created' | 'updated' | 'unchanged';

export interface TablePlan {
  /** The model as it will be once the plan is applied: records of the template are checked against it. */
  readonly model: Model;
  /** New tables, in creation order (a table's lookup targets come before it). */
  readonly newTables: readonly TableDef[];
  /** New columns, added after every new table exists. */
  readonly newColumns: readonly { readonly table: string; readonly column: ColumnDef }[];
  readonly outcomes: readonly Outcome[];
  readonly warnings: readonly string[];
}

const CRM = 'Microsoft.Dynamics.CRM.';

/** The attribute kind an AttributeMetadata body asks for, as a column type family (for comparing with a column). */
const KIND_TYPES: Record<string, readonly ColumnDef['type'][]> = {
  String: ['string'],
  Memo: ['memo'],
  Integer: ['integer'],
  BigInt: ['bigint'],
  Decimal: ['decimal'],
  Double: ['double'],
  Boolean: ['boolean'],
  DateTime: ['datetime'],
  Picklist: ['picklist'],
  Lookup: ['lookup', 'polymorphic', 'customer', 'owner'],
};

function attributeKind(attr: Json): string | undefined {
  if (typeof attr['AttributeType'] === 'string') return attr['AttributeType'];
  const t = attr['@odata.type'];
  if (typeof t !== 'string') return undefined;
  return t.replace(/^#/, '').replace(CRM, '').replace(/AttributeMetadata$/, '') || undefined;
}

function tableName(entry: Json): string | undefined {
  if (typeof entry['LogicalName'] === 'string' && entry['LogicalName'] !== '') return entry['LogicalName'];
  if (typeof entry['SchemaName'] === 'string' && entry['SchemaName'] !== '') return entry['SchemaName'].toLowerCase();
  return undefined;
}

function attributeName(attr: Json): string | undefined {
  if (typeof attr['SchemaName'] === 'string' && attr['SchemaName'] !== '') return attr['SchemaName'].toLowerCase();
  if (typeof attr['LogicalName'] === 'string' && attr['LogicalName'] !== '') return attr['LogicalName'];
  return undefined;
}

function targetsOf(attr: Json): string[] {
  const t = attr['Targets'];
  return Array.isArray(t) ? t.filter((x): x is string => typeof x === 'string') : [];
}

function definition(model: Model, name: string): TableDef {
  return model.definitions.find((d) => d.logicalName === name)!;
}

function withColumn(model: Model, name: string, column: ColumnDef): Model {
  const def = definition(model, name);
  return model.with({ ...def, columns: [...def.columns, column] });
}

/**
 * Checks the `tables` section against `base` and works out what deploying it creates. Problems are recorded in
 * `problems`; nothing is changed.
 */
export function planTables(section: unknown, base: Model, problems: Problems): TablePlan {
  const empty: TablePlan = { model: base, newTables: [], newColumns: [], outcomes: [], warnings: [] };
  if (section === undefined) return empty;
  if (!Array.isArray(section)) {
    problems.add('tables', 'must be an array of table definitions (EntityMetadata with Attributes)');
    return empty;
  }
  const warnings: string[] = [];
  const entries: { entry: Json; name: string; where: string; attrs: Json[] }[] = [];
  const byName = new Map<string, number>();
  for (const [i, entry] of section.entries()) {
    const at = `tables[${i}]`;
    if (!isObject(entry)) {
      problems.add(at, 'must be an object (EntityMetadata with Attributes)');
      continue;
    }
    const name = tableName(entry);
    if (!name) {
      problems.add(at, "needs 'SchemaName' (a new table) or 'LogicalName' (columns for an existing table)");
      continue;
    }
    const where = `${at} (${name})`;
    if (byName.has(name)) {
      problems.add(where, `the table is listed twice (also tables[${byName.get(name)}])`);
      continue;
    }
    const attrsValue = entry['Attributes'] ?? [];
    if (!Array.isArray(attrsValue) || !attrsValue.every(isObject)) {
      problems.add(where, "'Attributes' must be an array of AttributeMetadata objects");
      continue;
    }
    byName.set(name, entries.length);
    entries.push({ entry, name, where, attrs: attrsValue });
  }

  // Creation order: a new table after the new tables its lookups point at. A lookup closing a cycle between new
  // tables is added as a column once they all exist.
  const isNew = (i: number) => base.table(entries[i]!.name) === undefined;
  const order: number[] = [];
  const state = new Map<number, 'visiting' | 'done'>();
  const deferred = new Set<Json>();
  const visit = (i: number): void => {
    state.set(i, 'visiting');
    for (const attr of entries[i]!.attrs) {
      for (const target of targetsOf(attr)) {
        const j = byName.get(target);
        if (j === undefined || j === i || !isNew(j)) continue;
        if (state.get(j) === 'visiting') deferred.add(attr);
        else if (!state.has(j)) visit(j);
      }
    }
    state.set(i, 'done');
    order.push(i);
  };
  for (let i = 0; i < entries.length; i++) if (!state.has(i)) visit(i);

  let model = base;
  const newTables: TableDef[] = [];
  const newColumns: { table: string; column: ColumnDef }[] = [];
  const outcomes: Outcome[] = new Array<Outcome>(entries.length).fill('unchanged');
  const later: { index: number; attr: Json }[] = [];
  for (const i of order) {
    const { entry, name, where, attrs } = entries[i]!;
    if (model.table(name)) {
      for (const [k, attr] of attrs.entries()) {
        const attrName = attributeName(attr);
        const at = `${where}.Attributes[${k}]${attrName ? ` (${attrName})` : ''}`;
        const existing = attrName ? model.table(name)!.column(attrName) : undefined;
        if (existing) {
          const kind = attributeKind(attr);
          const types = kind ? KIND_TYPES[kind] : undefined;
          if (types && !types.includes(existing.type)) {
            problems.add(at, `the column exists as a ${existing.type} column; ccs cannot change an existing column`);
          }
          continue;
        }
        const column = problems.guard(at, () => columnDefFromAttributeMetadata(attr, model.table(name)!, model));
        if (!column) continue;
        model = withColumn(model, name, column);
        newColumns.push({ table: name, column });
        outcomes[i] = 'updated';
      }
      continue;
    }
    const own = attrs.filter((a) => !deferred.has(a));
    const def = problems.guard(where, () => tableDefFromEntityMetadata({ ...entry, Attributes: own }, model));
    if (!def) continue;
    model = model.with(def);
    newTables.push(def);
    outcomes[i] = 'created';
    for (const attr of attrs) if (deferred.has(attr)) later.push({ index: i, attr });
  }
  for (const { index, attr } of later) {
    const { name, where } = entries[index]!;
    const column = problems.guard(`${where} (${attributeName(attr) ?? 'attribute'})`, () => columnDefFromAttributeMetadata(attr, model.table(name)!, model));
    if (!column) continue;
    model = withColumn(model, name, column);
    newColumns.push({ table: name, column });
  }
  return { model, newTables, newColumns, outcomes, warnings };
}

/** Creates the planned tables, then the planned columns, through the metadata registry (which syncs the schema). */
export async function applyTables(metadata: MetadataRegistry, plan: TablePlan): Promise<void> {
  for (const def of plan.newTables) await metadata.addTable(def);
  for (const { table, column } of plan.newColumns) await metadata.addColumn(table, column);
}

// ---------------------------------------------------------------------------------------------------------------
// Export

const ODATA_TYPES: Partial<Record<ColumnDef['type'], string>> = {
  string: 'StringAttributeMetadata',
  memo: 'MemoAttributeMetadata',
  integer: 'IntegerAttributeMetadata',
  bigint: 'BigIntAttributeMetadata',
  decimal: 'DecimalAttributeMetadata',
  double: 'DoubleAttributeMetadata',
  boolean: 'BooleanAttributeMetadata',
  datetime: 'DateTimeAttributeMetadata',
  picklist: 'PicklistAttributeMetadata',
  lookup: 'LookupAttributeMetadata',
  polymorphic: 'LookupAttributeMetadata',
};

/**
 * The AttributeMetadata body that creates `column` again: the inverse of `columnDefFromAttributeMetadata`, with
 * labels as plain strings and defaults left out. Undefined for column kinds that cannot be created.
 */
export function attributeBody(table: TableDef, column: ColumnDef): Json | undefined {
  const odataType = ODATA_TYPES[column.type];
  if (!odataType) return undefined;
  const body: Json = { '@odata.type': `${CRM}${odataType}`, SchemaName: column.schemaName ?? column.logicalName };
  if (column.logicalName === table.primaryNameAttribute) body['IsPrimaryName'] = true;
  body['DisplayName'] = column.displayName;
  if (column.description) body['Description'] = column.description;
  if (column.requiredLevel && column.requiredLevel !== 'None') body['RequiredLevel'] = { Value: column.requiredLevel };
  switch (column.type) {
    case 'string':
    case 'memo':
      body['MaxLength'] = column.maxLength;
      break;
    case 'integer':
    case 'bigint':
      if (column.minValue !== undefined) body['MinValue'] = column.minValue;
      if (column.maxValue !== undefined) body['MaxValue'] = column.maxValue;
      break;
    case 'decimal':
    case 'double':
      if (column.precision !== undefined) body['Precision'] = column.precision;
      if (column.minValue !== undefined) body['MinValue'] = column.minValue;
      if (column.maxValue !== undefined) body['MaxValue'] = column.maxValue;
      break;
    case 'boolean':
      if ((column.trueLabel ?? 'Yes') !== 'Yes' || (column.falseLabel ?? 'No') !== 'No') {
        body['OptionSet'] = { TrueOption: { Value: 1, Label: column.trueLabel ?? 'Yes' }, FalseOption: { Value: 0, Label: column.falseLabel ?? 'No' } };
      }
      if (column.defaultValue !== undefined) body['DefaultValue'] = column.defaultValue;
      break;
    case 'picklist':
      body['OptionSet'] = {
        ...(column.optionSet.name !== `${table.logicalName}_${column.logicalName}` ? { Name: column.optionSet.name } : {}),
        Options: column.optionSet.options.map((o) => ({ Value: o.value, Label: o.label })),
      };
      if (column.defaultValue !== undefined) body['DefaultFormValue'] = column.defaultValue;
      break;
    case 'lookup':
    case 'polymorphic':
      body['Targets'] = [...column.targets];
      break;
    default:
      break;
  }
  return body;
}

/** Custom tables in an order where each comes after the custom tables its lookups point at. */
function creationOrder(defs: readonly TableDef[]): TableDef[] {
  const byName = new Map(defs.map((d) => [d.logicalName, d]));
  const done = new Set<string>();
  const out: TableDef[] = [];
  const visit = (d: TableDef): void => {
    done.add(d.logicalName);
    for (const c of d.columns) {
      if (!isLookup(c)) continue;
      for (const t of c.targets) {
        const target = byName.get(t);
        if (target && !done.has(t)) visit(target);
      }
    }
    out.push(d);
  };
  for (const d of [...defs].sort((a, b) => (a.logicalName < b.logicalName ? -1 : 1))) if (!done.has(d.logicalName)) visit(d);
  return out;
}

/** The `tables` section for the custom tables of `model` and the custom columns of its standard tables. */
export function exportTables(model: Model, warnings: string[]): Json[] {
  const out: Json[] = [];
  const attributes = (def: TableDef, columns: readonly ColumnDef[]) =>
    columns.flatMap((c) => {
      const body = attributeBody(def, c);
      if (!body) warnings.push(`tables (${def.logicalName}): column '${c.logicalName}' of type ${c.type} cannot be written in a template; left out`);
      return body ? [body] : [];
    });
  for (const def of creationOrder(model.definitions.filter((d) => d.isCustomEntity))) {
    const entry: Json = { SchemaName: def.schemaName, DisplayName: def.displayName };
    if (def.displayCollectionName) entry['DisplayCollectionName'] = def.displayCollectionName;
    if (def.description) entry['Description'] = def.description;
    if ((def.ownership ?? 'UserOwned') !== 'UserOwned') entry['OwnershipType'] = def.ownership;
    if (def.entitySetName !== pluralize(def.logicalName)) entry['EntitySetName'] = def.entitySetName;
    entry['Attributes'] = attributes(def, def.columns);
    out.push(entry);
  }
  for (const def of model.definitions) {
    if (def.isCustomEntity) continue;
    const custom = def.columns.filter((c) => c.isCustomAttribute);
    if (custom.length > 0) out.push({ LogicalName: def.logicalName, Attributes: attributes(def, custom) });
  }
  return out;
}
