import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DuplicateKeyError } from '../../errors/index.js';
import { compare } from '../conditions.js';
import { SqlCompiler, quote, type CompiledSql, type Dialect } from '../sql/compile.js';
import { PendingLogs, type PendingLog } from '../sql/pending-logs.js';
import { startCheckpointer, type Checkpointer } from './checkpointer.js';
import type { Condition, JsonNumbersBucket, JsonNumbersQuery, LogAppend, PhysicalTable, Row, SelectQuery, Store, StoreValue, Transaction } from '../types.js';

const dialect: Dialect = {
  placeholder: () => '?',
  // NOCASE on the column makes its indexes case-insensitive; the explicit COLLATE also covers subquery operands.
  columnType: (type, ci) =>
    type === 'text' ? (ci ? 'TEXT COLLATE NOCASE' : 'TEXT') : type === 'double' ? 'REAL' : 'INTEGER',
  foldCase: (sql) => `${sql} COLLATE NOCASE`,
  like: (left, pattern) => `${left} LIKE ${pattern} ESCAPE '\\'`,
  indexExpression: (column) => `"${column}"`,
};

/** Page cache per connection, in KiB. */
const CACHE_KIB = 64 * 1024;

/**
 * Builds row objects from raw value arrays with one object literal of fixed shape: much cheaper for wide rows than
 * the driver's generic per-column object building. Names are column names from the prepared statement.
 */
function rowBuilder(names: readonly string[]): (values: StoreValue[]) => Row {
  const body = names.map((n, i) => `${JSON.stringify(n)}: v[${i}]`).join(', ');
  return new Function('v', `return { ${body} };`) as (values: StoreValue[]) => Row;
}

function translate(e: unknown): never {
  const code = (e as { code?: string }).code;
  if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') throw new DuplicateKeyError();
  throw e;
}

/** Runs compiled SQL on one connection, caching prepared statements. */
class Connection {
  readonly #statements = new Map<string, Database.Statement>();
  readonly #builders = new WeakMap<Database.Statement, (values: StoreValue[]) => Row>();
  constructor(readonly db: Database.Database) {}

  prepare(text: string): Database.Statement {
    let s = this.#statements.get(text);
    if (!s) {
      s = this.db.prepare(text);
      if (this.#statements.size > 2000) this.#statements.clear();
      this.#statements.set(text, s);
    }
    return s;
  }
  all(sql: CompiledSql): Row[] {
    const stmt = this.prepare(sql.text);
    let build = this.#builders.get(stmt);
    if (!build) {
      build = rowBuilder(stmt.columns().map((c) => c.name));
      this.#builders.set(stmt, build);
    }
    return (stmt.raw(true).all(...sql.params) as StoreValue[][]).map(build);
  }
  run(sql: CompiledSql): number {
    try {
      return this.prepare(sql.text).run(...sql.params).changes;
    } catch (e) {
      translate(e);
    }
  }
  /** Runs an INSERT; resolves to the rowid SQLite gave the row. */
  insertRowid(sql: CompiledSql): number {
    try {
      return Number(this.prepare(sql.text).run(...sql.params).lastInsertRowid);
    } catch (e) {
      translate(e);
    }
  }
}

/**
 * The embedded store: one SQLite file in WAL mode. Writes go through one connection and are serialised (a
 * transaction holds the writer until it ends); reads outside transactions use a second connection, so they see
 * committed data only and never wait for a writer.
 */
export class SqliteStore implements Store {
  readonly engine = 'sqlite' as const;
  readonly #compiler = new SqlCompiler(dialect);
  readonly #writer: Connection;
  readonly #reader: Connection;
  /** Tail of the queue of writers waiting for the write connection. */
  #writeLock: Promise<void> = Promise.resolve();
  #inWriteTransaction: Database.Transaction<(work: () => number) => number> | undefined;
  readonly #checkpointer: Checkpointer | undefined;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const writer = new Database(path);
    writer.pragma('journal_mode = WAL');
    writer.pragma('synchronous = NORMAL');
    writer.pragma('busy_timeout = 5000');
    if (path !== ':memory:') {
      writer.pragma('wal_autocheckpoint = 0');
      this.#checkpointer = startCheckpointer(path);
    }
    // SQLite's default page cache is 2 MB; tables of millions of rows with several indexes need far more to keep
    // index pages hot for inserts and lookups. Memory is taken only as pages are used.
    writer.pragma(`cache_size = -${CACHE_KIB}`);
    this.#writer = new Connection(writer);
    // An in-memory database is private to its connection, so it must read through the writer.
    this.#reader = path === ':memory:' ? this.#writer : new Connection(new Database(path, { readonly: false }));
    this.#reader.db.pragma('busy_timeout = 5000');
    this.#reader.db.pragma(`cache_size = -${CACHE_KIB}`);
  }

  async syncSchema(tables: readonly PhysicalTable[]): Promise<void> {
    await this.#exclusive(() => {
      const db = this.#writer.db;
      db.transaction(() => {
        for (const t of tables) {
          this.#compiler.register(t);
          db.exec(this.#compiler.createTable(t));
          const existing = new Set((db.pragma(`table_info("${t.name}")`) as { name: string }[]).map((c) => c.name));
          for (const c of t.columns) if (!existing.has(c.name)) db.exec(this.#compiler.addColumn(t.name, c));
          for (const idx of t.indexes) db.exec(this.#compiler.createIndex(t, idx));
        }
      })();
    });
  }

  async select(q: SelectQuery): Promise<Row[]> {
    return this.#reader.all(this.#compiler.select(q));
  }
  async count(q: Pick<SelectQuery, 'table' | 'where'>): Promise<number> {
    return Number(this.#reader.all(this.#compiler.count(q.table, q.where))[0]!['n']);
  }

  /**
   * json_each walks each document's members; a recursive step descends into nested objects. `json_valid` first, as
   * json_each fails on text that is not JSON; CASE keeps the order of those checks. `total` rather than `sum`:
   * `sum` of integers stops with an error on overflow.
   */
  async aggregateJsonNumbers(q: JsonNumbersQuery): Promise<JsonNumbersBucket[]> {
    const params: StoreValue[] = [];
    const json = `t0.${quote(q.json)}`;
    const time = `t0.${quote(q.time)}`;
    let where = `${time} >= ?`;
    if (q.where) where = `${this.#compiler.where(q.where, q.table, 't0', params)} AND ${where}`;
    params.push(q.origin, q.origin, q.width);
    const text = `WITH RECURSIVE
      ccs_jdoc(t, v) AS (
        SELECT ${time}, CASE WHEN json_valid(${json}) THEN CASE WHEN json_type(${json}) = 'object' THEN ${json} END END
        FROM ${quote(q.table)} t0 WHERE ${where}),
      ccs_jmember(t, path, type, v) AS (
        SELECT doc.t, j.key, j.type, j.value FROM ccs_jdoc AS doc, json_each(doc.v) j
        UNION ALL
        SELECT m.t, m.path || '.' || j.key, j.type, j.value FROM ccs_jmember AS m, json_each(CASE WHEN m.type = 'object' THEN m.v END) j)
      SELECT path, (t - CAST(? AS INTEGER)) / CAST(? AS INTEGER) AS bucket, min(x) AS min, max(x) AS max, total(x) AS sum, count(*) AS count
      FROM (SELECT t, path, CASE WHEN type IN ('integer', 'real') THEN v END AS x FROM ccs_jmember)
      WHERE x IS NOT NULL AND abs(x) <= 1.7976931348623157e308
      GROUP BY path, bucket ORDER BY path, bucket`;
    return this.#reader.all({ text, params }).map((r) => ({
      path: String(r['path']),
      bucket: Number(r['bucket']),
      min: Number(r['min']),
      max: Number(r['max']),
      sum: Number(r['sum']),
      count: Number(r['count']),
    }));
  }
  /** Numbers are taken under the write lock at the commit (transaction()), so none is ever in flight: no waiting. */
  async readLog(table: string, column: string, after: number, limit: number): Promise<Row[]> {
    return this.#reader.all(this.#compiler.select({ table, where: compare(column, 'gt', after), orderBy: [{ column }], limit }));
  }

  insert(table: string, row: Row, log?: LogAppend): Promise<void> {
    return this.#exclusive(() => void this.#write(this.#compiler.insert(table, row), log));
  }
  insertMany(table: string, rows: readonly Row[]): Promise<void> {
    return this.#exclusive(() => this.#writer.db.transaction(() => this.#insertEach(table, rows))());
  }
  update(table: string, values: Row, where: Condition, log?: LogAppend): Promise<number> {
    return this.#exclusive(() => this.#write(this.#compiler.update(table, values, where), log));
  }

  /**
   * A write outside a transaction; with log rows, both in one (synchronous, so nothing else runs in between) that
   * adds them only if the write changed a row.
   */
  #write(sql: CompiledSql, log: LogAppend | undefined): number {
    if (!log) return this.#writer.run(sql);
    this.#inWriteTransaction ??= this.#writer.db.transaction((work: () => number) => work());
    return this.#inWriteTransaction.immediate(() => {
      const changed = this.#writer.run(sql);
      if (changed > 0) this.#appendNow(log);
      return changed;
    });
  }

  /**
   * Inserts log rows inside a write transaction, which holds the lock. The number column is the table's INTEGER
   * PRIMARY KEY, that is its rowid: left out, SQLite gives each row the highest one plus one.
   */
  #appendNow(log: PendingLog | LogAppend): void {
    for (const row of log.rows) {
      const { [log.column]: _, ...rest } = row;
      row[log.column] = this.#writer.insertRowid(this.#compiler.insert(log.table, rest));
    }
  }

  /**
   * One prepared single-row INSERT run per row: in SQLite that is as fast as a multi-row statement, and keeps one
   * statement in the cache instead of one per batch size.
   */
  #insertEach(table: string, rows: readonly Row[]): void {
    for (const row of rows) this.#writer.run(this.#compiler.insert(table, row));
  }
  delete(table: string, where: Condition, log?: LogAppend): Promise<number> {
    return this.#exclusive(() => this.#write(this.#compiler.delete(table, where), log));
  }

  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.#exclusive(async () => {
      const w = this.#writer;
      const c = this.#compiler;
      const logs = new PendingLogs();
      const tx: Transaction = {
        select: async (q) => w.all(c.select(q)),
        count: async (q) => Number(w.all(c.count(q.table, q.where))[0]!['n']),
        insert: async (table, row, log) => void logs.added(w.run(c.insert(table, row)), log),
        insertMany: async (table, rows) => this.#insertEach(table, rows),
        update: async (table, values, where, log) => logs.added(w.run(c.update(table, values, where)), log),
        delete: async (table, where, log) => logs.added(w.run(c.delete(table, where)), log),
        // Nothing to wait for: this transaction already holds the only writer until it ends (#exclusive).
        lock: async () => undefined,
        appendLog: (table, column, rows) => logs.add(table, column, rows),
      };
      w.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(tx);
        // The write lock (BEGIN IMMEDIATE, across processes too) is held until COMMIT: numbers follow commit order.
        for (const log of logs.take()) this.#appendNow(log);
        w.db.exec('COMMIT');
        return result;
      } catch (e) {
        if (w.db.inTransaction) w.db.exec('ROLLBACK');
        throw e;
      }
    });
  }

  async close(): Promise<void> {
    await this.#writeLock;
    await this.#checkpointer?.close();
    if (this.#reader !== this.#writer) this.#reader.db.close();
    this.#writer.db.close();
  }

  /** Runs `fn` once every earlier writer has finished. */
  #exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.#writeLock.then(fn);
    this.#writeLock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}
