import type { Condition, Operand, PhysicalIndex, PhysicalTable, PhysicalType, SelectQuery, StoreValue } from '../types.js';

/** What differs between SQL engines. Everything else about SQL text is shared. */
export interface Dialect {
  placeholder(index: number): string;
  /** Type of a physical column in DDL. */
  columnType(type: PhysicalType, caseInsensitive: boolean): string;
  /** Expression that compares case-insensitively for a case-insensitive text column. */
  foldCase(sql: string): string;
  /** Case-insensitive LIKE with `\` as the escape character. */
  like(left: string, pattern: string): string;
  /** Expression indexed for a column; case-insensitive text columns are indexed on their folded form. */
  indexExpression(column: string, caseInsensitive: boolean): string;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** Physical names come from metadata, which validates them; this is the last line of defence. */
export function quote(name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`Invalid SQL identifier: ${JSON.stringify(name)}`);
  return `"${name}"`;
}

export interface CompiledSql {
  readonly text: string;
  readonly params: StoreValue[];
}

const OPS = { eq: '=', ne: '<>', gt: '>', ge: '>=', lt: '<', le: '<=' } as const;

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * Compiles the engine-neutral condition tree to SQL. `schema` tells which text columns compare without regard to
 * case; every value becomes a bound parameter.
 */
export class SqlCompiler {
  readonly #schema = new Map<string, Map<string, { type: PhysicalType; ci: boolean }>>();

  constructor(readonly dialect: Dialect) {}

  register(table: PhysicalTable): void {
    this.#schema.set(table.name, new Map(table.columns.map((c) => [c.name, { type: c.type, ci: !!c.caseInsensitive }])));
  }

  /** The physical type of a registered table's column. */
  typeOf(table: string, column: string): PhysicalType | undefined {
    return this.#schema.get(table)?.get(column)?.type;
  }

  isCaseInsensitive(table: string, column: string): boolean {
    return this.#schema.get(table)?.get(column)?.ci ?? false;
  }

  select(q: SelectQuery): CompiledSql {
    const params: StoreValue[] = [];
    const cols = q.columns ? q.columns.map((c) => `t0.${quote(c)}`).join(', ') : 't0.*';
    let text = `SELECT ${cols} FROM ${quote(q.table)} t0`;
    if (q.where) text += ` WHERE ${this.condition(q.where, q.table, 't0', params, 0)}`;
    if (q.orderBy?.length) {
      text += ` ORDER BY ${q.orderBy
        .map((o) => {
          const col = `t0.${quote(o.column)}`;
          const expr = this.isCaseInsensitive(q.table, o.column) ? this.dialect.foldCase(col) : col;
          return `${expr}${o.descending ? ' DESC' : ''}`;
        })
        .join(', ')}`;
    }
    if (q.limit !== undefined) {
      params.push(q.limit);
      text += ` LIMIT ${this.dialect.placeholder(params.length)}`;
    }
    if (q.offset) {
      params.push(q.offset);
      text += ` OFFSET ${this.dialect.placeholder(params.length)}`;
    }
    return { text, params };
  }

  count(table: string, where?: Condition): CompiledSql {
    const params: StoreValue[] = [];
    let text = `SELECT COUNT(*) AS n FROM ${quote(table)} t0`;
    if (where) text += ` WHERE ${this.condition(where, table, 't0', params, 0)}`;
    return { text, params };
  }

  insert(table: string, row: Record<string, StoreValue>): CompiledSql {
    const names = Object.keys(row);
    const params = names.map((n) => row[n]!);
    const text = `INSERT INTO ${quote(table)} (${names.map(quote).join(', ')}) VALUES (${names
      .map((_, i) => this.dialect.placeholder(i + 1))
      .join(', ')})`;
    return { text, params };
  }

  /** One INSERT with a VALUES list per row; every row takes the first row's columns (missing ones are null). */
  insertMany(table: string, rows: readonly Record<string, StoreValue>[]): CompiledSql {
    const names = Object.keys(rows[0]!);
    const params: StoreValue[] = [];
    const tuples = rows.map((row) => {
      const slots = names.map((n) => {
        params.push(row[n] ?? null);
        return this.dialect.placeholder(params.length);
      });
      return `(${slots.join(', ')})`;
    });
    return { text: `INSERT INTO ${quote(table)} (${names.map(quote).join(', ')}) VALUES ${tuples.join(', ')}`, params };
  }

  update(table: string, values: Record<string, StoreValue>, where: Condition): CompiledSql {
    const params: StoreValue[] = [];
    const sets = Object.keys(values).map((n) => {
      params.push(values[n]!);
      return `${quote(n)} = ${this.dialect.placeholder(params.length)}`;
    });
    // UPDATE cannot alias its target portably; conditions refer to it by its own name.
    const text = `UPDATE ${quote(table)} SET ${sets.join(', ')} WHERE ${this.condition(where, table, quote(table), params, 0)}`;
    return { text, params };
  }

  delete(table: string, where: Condition): CompiledSql {
    const params: StoreValue[] = [];
    const text = `DELETE FROM ${quote(table)} WHERE ${this.condition(where, table, quote(table), params, 0)}`;
    return { text, params };
  }

  createTable(t: PhysicalTable): string {
    const cols = t.columns.map((c) => {
      const pk = c.name === t.primaryKey ? ' PRIMARY KEY' : '';
      return `${quote(c.name)} ${this.dialect.columnType(c.type, !!c.caseInsensitive)}${pk}`;
    });
    return `CREATE TABLE IF NOT EXISTS ${quote(t.name)} (${cols.join(', ')})`;
  }

  addColumn(table: string, column: PhysicalTable['columns'][number]): string {
    return `ALTER TABLE ${quote(table)} ADD COLUMN ${quote(column.name)} ${this.dialect.columnType(column.type, !!column.caseInsensitive)}`;
  }

  createIndex(t: PhysicalTable, index: PhysicalIndex): string {
    const unique = !!index.unique;
    const name = indexName(t.name, index.columns, unique, !!index.sparse);
    const exprs = index.columns.map((c) => this.dialect.indexExpression(c, this.isCaseInsensitive(t.name, c)));
    const where = index.sparse ? ` WHERE ${quote(index.columns[0]!)} IS NOT NULL` : '';
    return `CREATE ${unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${quote(name)} ON ${quote(t.name)} (${exprs.join(', ')})${where}`;
  }

  /** A condition on `table` (aliased `alias`) for hand-written statements; values go into `params`. */
  where(c: Condition, table: string, alias: string, params: StoreValue[]): string {
    return this.condition(c, table, alias, params, 0);
  }

  private operand(o: Operand, table: string, alias: string, params: StoreValue[], depth: number): string {
    switch (o.kind) {
      case 'column':
        return `${alias}.${quote(o.column)}`;
      case 'value':
        params.push(o.value);
        return this.dialect.placeholder(params.length);
      case 'related': {
        const inner = `t${depth + 1}`;
        const value = this.operand(o.operand, o.table, inner, params, depth + 1);
        return `(SELECT ${value} FROM ${quote(o.table)} ${inner} WHERE ${inner}.${quote(o.key)} = ${alias}.${quote(o.via)})`;
      }
    }
  }

  /** The table and column an operand finally reads, to know whether it compares case-insensitively. */
  private target(o: Operand, table: string): { table: string; column: string } | undefined {
    if (o.kind === 'column') return { table, column: o.column };
    if (o.kind === 'related') return this.target(o.operand, o.table);
    return undefined;
  }

  private condition(c: Condition, table: string, alias: string, params: StoreValue[], depth: number): string {
    switch (c.kind) {
      case 'true':
        return '1 = 1';
      case 'false':
        return '1 = 0';
      case 'and':
      case 'or': {
        if (c.items.length === 0) return c.kind === 'and' ? '1 = 1' : '1 = 0';
        const sep = c.kind === 'and' ? ' AND ' : ' OR ';
        return `(${c.items.map((i) => this.condition(i, table, alias, params, depth)).join(sep)})`;
      }
      case 'not':
        return `NOT (${this.condition(c.item, table, alias, params, depth)})`;
      case 'compare': {
        // SQL's `= NULL` is never true: OData's `eq null` means IS NULL.
        if (c.right.kind === 'value' && c.right.value === null) {
          const left = this.operand(c.left, table, alias, params, depth);
          if (c.op === 'eq') return `${left} IS NULL`;
          if (c.op === 'ne') return `${left} IS NOT NULL`;
        }
        if (c.left.kind === 'value' && c.left.value === null) {
          return this.condition({ ...c, left: c.right, right: c.left }, table, alias, params, depth);
        }
        const ci = [c.left, c.right].some((o) => {
          const t = this.target(o, table);
          return t !== undefined && this.isCaseInsensitive(t.table, t.column);
        });
        let left = this.operand(c.left, table, alias, params, depth);
        let right = this.operand(c.right, table, alias, params, depth);
        if (ci) {
          left = this.dialect.foldCase(left);
          right = this.dialect.foldCase(right);
        }
        const sql = `${left} ${OPS[c.op]} ${right}`;
        // `ne` keeps rows where the column is null, as Dataverse does.
        return c.op === 'ne' && c.left.kind !== 'value' ? `(${sql} OR ${left} IS NULL)` : sql;
      }
      case 'match': {
        const left = this.operand(c.operand, table, alias, params, depth);
        const v = escapeLike(c.value);
        params.push(c.mode === 'contains' ? `%${v}%` : c.mode === 'startswith' ? `${v}%` : `%${v}`);
        return this.dialect.like(left, this.dialect.placeholder(params.length));
      }
      case 'in': {
        if (c.values.length === 0) return '1 = 0';
        const t = this.target(c.operand, table);
        const ci = t !== undefined && this.isCaseInsensitive(t.table, t.column);
        const left = this.operand(c.operand, table, alias, params, depth);
        const list = c.values.map((v) => {
          params.push(v);
          const p = this.dialect.placeholder(params.length);
          return ci ? this.dialect.foldCase(p) : p;
        });
        return `${ci ? this.dialect.foldCase(left) : left} IN (${list.join(', ')})`;
      }
      case 'exists': {
        const inner = `t${depth + 1}`;
        if (c.through) {
          // N:N: hop through the intersect table to the related row.
          const link = `t${depth + 2}`;
          const where = this.condition(c.where, c.table, inner, params, depth + 2);
          return `EXISTS (SELECT 1 FROM ${quote(c.through.table)} ${link} JOIN ${quote(c.table)} ${inner} ON ${inner}.${quote(
            c.through.targetKey,
          )} = ${link}.${quote(c.through.otherColumn)} WHERE ${link}.${quote(c.through.ownColumn)} = ${alias}.${quote(
            c.outerColumn,
          )} AND ${where})`;
        }
        const where = this.condition(c.where, c.table, inner, params, depth + 1);
        return `EXISTS (SELECT 1 FROM ${quote(c.table)} ${inner} WHERE ${inner}.${quote(c.column)} = ${alias}.${quote(
          c.outerColumn,
        )} AND ${where})`;
      }
    }
  }
}

/** Index names are stable and short enough for PostgreSQL's 63-character limit. */
function indexName(table: string, columns: readonly string[], unique: boolean, sparse: boolean): string {
  const full = `${unique ? 'ux' : sparse ? 'px' : 'ix'}_${table}_${columns.join('_')}`;
  if (full.length <= 63) return full;
  let h = 0;
  for (const ch of full) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return `${full.slice(0, 54)}_${h.toString(16).padStart(8, '0')}`;
}
