import {
  fromStoreValue,
  isChoice,
  isLookup,
  isMultiTarget,
  lookupTypeColumn,
  lookupValueProperty,
  type ColumnDef,
  type Table,
} from '../metadata/index.js';
import type { RecordContext, RecordsService, RecordTree } from '../records/index.js';
import type { Row } from '../store/types.js';

const FORMATTED = 'OData.Community.Display.V1.FormattedValue';
const LOGICAL_NAME = 'Microsoft.Dynamics.CRM.lookuplogicalname';
const NAVIGATION = 'Microsoft.Dynamics.CRM.associatednavigationproperty';

/** Which annotations the client asked for with `Prefer: odata.include-annotations="…"` (wildcards allowed). */
export class AnnotationFilter {
  private constructor(private readonly patterns: readonly string[]) {}

  static fromPrefer(value: string | undefined): AnnotationFilter {
    return new AnnotationFilter(value ? value.split(',').map((s) => s.trim()).filter(Boolean) : []);
  }

  get any(): boolean {
    return this.patterns.length > 0;
  }

  wants(term: string): boolean {
    return this.patterns.some((p) => {
      if (p === '*') return true;
      if (p.startsWith('-')) return false;
      return p.endsWith('*') ? term.startsWith(p.slice(0, -1)) : term === p;
    });
  }

  /** The header value echoed in Preference-Applied. */
  toString(): string {
    return `odata.include-annotations="${this.patterns.join(',')}"`;
  }
}

const STORED_AS_WRITTEN = new Set<ColumnDef['type']>(['string', 'memo', 'primarykey', 'uniqueidentifier']);

export function etagOf(row: Row): string {
  return `W/"${row['versionnumber']}"`;
}

function formatDate(ms: number): string {
  const d = new Date(ms);
  const h = d.getUTCHours();
  const mm = String(d.getUTCMinutes()).padStart(2, '0');
  return `${d.getUTCMonth() + 1}/${d.getUTCDate()}/${d.getUTCFullYear()} ${h % 12 || 12}:${mm} ${h < 12 ? 'AM' : 'PM'}`;
}

function formatted(column: ColumnDef, value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (isChoice(column)) return column.optionSet.options.find((o) => o.value === value)?.label ?? String(value);
  switch (column.type) {
    case 'boolean':
      return value ? column.trueLabel ?? 'Yes' : column.falseLabel ?? 'No';
    case 'datetime':
      return formatDate(Date.parse(String(value)));
    case 'integer':
    case 'bigint':
    case 'decimal':
    case 'double':
      return (value as number).toLocaleString('en-US', { maximumFractionDigits: 10 });
    default:
      return undefined;
  }
}

/**
 * Writes records as Dataverse does: `@odata.etag`, lookups as `_x_value`, DateTimeOffset without fractions, and the
 * requested annotations (labels of choices, names of looked-up records, formatted dates and numbers).
 */
export class Serializer {
  constructor(
    private readonly records: RecordsService,
    private readonly ctx: RecordContext,
    private readonly annotations: AnnotationFilter,
  ) {}

  async entities(table: Table, trees: readonly RecordTree[], select?: readonly string[]): Promise<Record<string, unknown>[]> {
    const wantFormatted = this.annotations.wants(FORMATTED);
    const names = wantFormatted ? await this.#lookupNames(table, trees.map((t) => t.row)) : new Map<string, string>();
    const wanted = select ? new Set([table.primaryIdAttribute, ...select]) : undefined;
    // Worked out once per page, not once per row.
    const columns = table.columns
      .filter((c) => c.isValidForRead !== false && (!wanted || wanted.has(c.logicalName)))
      .map((c) => ({
        column: c,
        name: c.logicalName,
        prop: isLookup(c) ? lookupValueProperty(c.logicalName) : c.logicalName,
        // Text and GUIDs are stored as written and have no formatted value: copied as they are.
        kind: isLookup(c) ? ('lookup' as const) : STORED_AS_WRITTEN.has(c.type) ? ('raw' as const) : ('convert' as const),
      }));
    const flags = { any: this.annotations.any, formatted: wantFormatted, navigation: this.annotations.wants(NAVIGATION), logicalName: this.annotations.wants(LOGICAL_NAME) };
    const out: Record<string, unknown>[] = [];
    for (const tree of trees) {
      const json = this.#entity(table, tree.row, columns, names, flags);
      for (const [navName, related] of Object.entries(tree.expanded)) {
        const target = this.records.table(table.navigation(navName)!.target);
        if (related === null) json[navName] = null;
        else if (Array.isArray(related)) json[navName] = await this.entities(target, related, related[0]?.select);
        else json[navName] = (await this.entities(target, [related], related.select))[0];
      }
      out.push(json);
    }
    return out;
  }

  #entity(
    table: Table,
    row: Row,
    columns: readonly { column: ColumnDef; name: string; prop: string; kind: 'lookup' | 'raw' | 'convert' }[],
    names: Map<string, string>,
    flags: { any: boolean; formatted: boolean; navigation: boolean; logicalName: boolean },
  ): Record<string, unknown> {
    const json: Record<string, unknown> = { '@odata.etag': etagOf(row) };
    for (const { column, name, prop, kind } of columns) {
      const raw = row[name];
      if (raw === undefined) continue;
      if (kind === 'raw') {
        json[prop] = raw;
        continue;
      }
      if (kind === 'lookup') {
        json[prop] = raw;
        if (raw !== null && flags.any && isLookup(column)) {
          const target = isMultiTarget(column) ? String(row[lookupTypeColumn(name)] ?? '') : column.targets[0]!;
          const label = names.get(`${target}:${raw}`);
          if (label !== undefined) json[`${prop}@${FORMATTED}`] = label;
          if (flags.navigation) {
            const nav = table.navigations.find((n) => n.kind === 'single' && n.column === name && n.target === target);
            if (nav) json[`${prop}@${NAVIGATION}`] = nav.name;
          }
          if (flags.logicalName) json[`${prop}@${LOGICAL_NAME}`] = target;
        }
        continue;
      }
      const value = fromStoreValue(column, raw);
      if (flags.formatted) {
        const f = formatted(column, value);
        if (f !== undefined) json[`${name}@${FORMATTED}`] = f;
      }
      json[prop] = value;
    }
    return json;
  }

  /** Primary names of every record the rows' lookups point at, keyed `<table>:<id>`, one query per table. */
  async #lookupNames(table: Table, rows: readonly Row[]): Promise<Map<string, string>> {
    const wanted = new Map<string, Set<string>>();
    for (const column of table.columns) {
      if (!isLookup(column)) continue;
      for (const row of rows) {
        const id = row[column.logicalName];
        if (typeof id !== 'string') continue;
        const target = isMultiTarget(column) ? String(row[lookupTypeColumn(column.logicalName)] ?? '') : column.targets[0]!;
        if (!this.records.model.table(target)) continue;
        if (!wanted.has(target)) wanted.set(target, new Set());
        wanted.get(target)!.add(id);
      }
    }
    const names = new Map<string, string>();
    for (const [target, ids] of wanted) {
      const t = this.records.table(target);
      if (!this.ctx.principal.can('Read', target)) continue;
      const rows = await this.ctx.db.select({
        table: target,
        columns: [t.primaryIdAttribute, t.primaryNameAttribute],
        where: { kind: 'in', operand: { kind: 'column', column: t.primaryIdAttribute }, values: [...ids] },
      });
      for (const r of rows) {
        const label = r[t.primaryNameAttribute];
        if (label !== null && label !== undefined) names.set(`${target}:${r[t.primaryIdAttribute]}`, String(label));
      }
    }
    return names;
  }
}
