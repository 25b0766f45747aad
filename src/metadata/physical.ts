import type { PhysicalColumn, PhysicalTable, PhysicalType } from '../store/types.js';
import { isLookup, isMultiTarget, type Model, type Table } from './model.js';
import type { ColumnDef } from './types.js';

/** Physical column holding the target table's logical name of a several-target lookup. */
export function lookupTypeColumn(column: string): string {
  return `${column}_type`;
}

function physicalType(column: ColumnDef): PhysicalType {
  switch (column.type) {
    case 'integer':
    case 'picklist':
    case 'state':
    case 'status':
    case 'boolean':
      return 'integer';
    case 'bigint':
    case 'datetime': // epoch milliseconds: one representation, ordered, on every engine
      return 'bigint';
    case 'decimal':
    case 'double':
      return 'double';
    default:
      return 'text';
  }
}

/** The physical table behind a table definition: one column per attribute, plus the type of multi-target lookups. */
export function physicalTable(table: Table): PhysicalTable {
  const columns: PhysicalColumn[] = [];
  const indexes: { columns: string[]; unique?: boolean; sparse?: boolean }[] = [];
  for (const c of table.columns) {
    columns.push({
      name: c.logicalName,
      type: physicalType(c),
      caseInsensitive: c.type === 'string' || c.type === 'memo',
    });
    if (isLookup(c)) {
      if (isMultiTarget(c)) columns.push({ name: lookupTypeColumn(c.logicalName), type: 'text' });
      if (c.logicalName !== 'createdby' && c.logicalName !== 'modifiedby') indexes.push({ columns: [c.logicalName], sparse: true });
    }
  }
  for (const idx of table.indexes ?? []) indexes.push({ columns: [...idx] });
  // Queries order by the primary key last, to page stably; with it at the end of each index, an index that serves
  // the filter also serves the order, and the first rows come without a sort.
  for (const idx of indexes) idx.columns.push(table.primaryIdAttribute);
  for (const key of table.alternateKeys ?? []) indexes.push({ columns: [...key.columns], unique: true });
  return { name: table.logicalName, primaryKey: table.primaryIdAttribute, columns, indexes };
}

/** Intersect tables of the model's N:N relationships. */
export function intersectTables(model: Model): PhysicalTable[] {
  const out = new Map<string, PhysicalTable>();
  for (const table of model.tables()) {
    for (const nav of table.navigations) {
      if (nav.kind !== 'manyToMany' || out.has(nav.intersect)) continue;
      const [a, b] = [nav.ownColumn, nav.otherColumn].sort();
      out.set(nav.intersect, {
        name: nav.intersect,
        primaryKey: `${nav.intersect}id`,
        columns: [
          { name: `${nav.intersect}id`, type: 'text' },
          { name: a, type: 'text' },
          { name: b, type: 'text' },
        ],
        indexes: [{ columns: [a, b], unique: true }, { columns: [b] }],
      });
    }
  }
  return [...out.values()];
}

export function physicalSchema(model: Model): PhysicalTable[] {
  return [...model.tables().map(physicalTable), ...intersectTables(model)];
}
