import pg from 'pg';
import { CcsError, DuplicateKeyError } from '../../errors/index.js';
import { SqlCompiler, quote, type CompiledSql, type Dialect } from '../sql/compile.js';
import { PendingLogs, type PendingLog } from '../sql/pending-logs.js';
import type { Condition, JsonNumbersBucket, JsonNumbersQuery, LogAppend, PhysicalTable, Queryable, Row, SelectQuery, Store, StoreValue, Transaction } from '../types.js';

const dialect: Dialect = {
  placeholder: (i) => `$${i}`,
  columnType: (type) =>
    ({ text: 'TEXT', integer: 'INTEGER', bigint: 'BIGINT', double: 'DOUBLE PRECISION', boolean: 'BOOLEAN' })[type],
  foldCase: (sql) => `lower(${sql})`,
  like: (left, pattern) => `${left} ILIKE ${pattern} ESCAPE '\\'`,
  indexExpression: (column, ci) => (ci ? `lower("${column}")` : `"${column}"`),
};

// BIGINT columns hold epoch milliseconds and version numbers, all within 2^53.
const types = {
  getTypeParser(oid: number, format?: string) {
    if (oid === 20) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

function translate(e: unknown): never {
  const code = (e as { code?: string }).code;
  if (code === '23505') throw new DuplicateKeyError();
  // Text that PostgreSQL cannot hold (a NUL character, invalid UTF-8) is the client's error, not ours.
  if (code === '22021' || code === '22P05') throw new CcsError('InvalidValue', 'Text values cannot contain the NUL character or invalid UTF-8.');
  throw e;
}

type Client = pg.Pool | pg.PoolClient;

/** SQL with, optionally, the name it is prepared under on each connection (planned once there, not per call). */
type NamedSql = CompiledSql & { readonly name?: string };

async function all(client: Client, sql: NamedSql): Promise<Row[]> {
  try {
    return (await client.query({ text: sql.text, values: sql.params, types, ...(sql.name ? { name: sql.name } : {}) })).rows as Row[];
  } catch (e) {
    translate(e);
  }
}
async function run(client: Client, sql: CompiledSql): Promise<number> {
  try {
    return (await client.query({ text: sql.text, values: sql.params, types })).rowCount ?? 0;
  } catch (e) {
    translate(e);
  }
}

type Raw = Queryable & { raw(sql: NamedSql): Promise<Row[]> };

/** Statements of one connection or of the pool; a write's log rows (`LogAppend`) are left to `withLog`. */
function queryable(client: Client, c: SqlCompiler, withLog: (write: CompiledSql, log: LogAppend) => Promise<number>): Raw {
  const write = (sql: CompiledSql, log: LogAppend | undefined) => (log ? withLog(sql, log) : run(client, sql));
  return {
    raw: (sql) => all(client, sql),
    select: (q) => all(client, c.select(q)),
    count: async (q) => Number((await all(client, c.count(q.table, q.where)))[0]!['n']),
    insert: async (table, row, log) => void (await write(c.insert(table, row), log)),
    async insertMany(table, rows) {
      if (rows.length === 0) return;
      // PostgreSQL takes at most 65,535 parameters per statement.
      const perStatement = Math.max(1, Math.floor(60_000 / Object.keys(rows[0]!).length));
      for (let i = 0; i < rows.length; i += perStatement) await run(client, c.insertMany(table, rows.slice(i, i + perStatement)));
    },
    update: (table, values, where, log) => write(c.update(table, values, where), log),
    delete: (table, where, log) => write(c.delete(table, where), log),
  };
}

/** The sequence numbering a log (`PhysicalColumn.logNumber`). */
function logSequence(table: string, column: string): string {
  return `${table}_${column}_seq`;
}

/** `xmin:xmax:xip,…` of `pg_current_snapshot()`, as transaction ids. */
function parseSnapshot(text: string): { xmin: bigint; xip: bigint[] } {
  const [xmin, , xip] = text.split(':');
  return { xmin: BigInt(xmin!), xip: xip ? xip.split(',').filter(Boolean).map((x) => BigInt(x)) : [] };
}

/** A gap a reader of a log met: numbers up to `upTo` are final once every transaction up to `waitFor` has ended. */
interface LogGap {
  readonly upTo: number;
  readonly waitFor: bigint;
}

/** Gaps remembered per reader position, at most this many (a reader that moved on leaves its entry behind). */
const MAX_LOG_GAPS = 1000;
/**
 * Write-with-log statements prepared per connection, by shape (table and columns): planning one costs more than
 * running it. Shapes beyond these are planned per call, which bounds what the connections keep.
 */
const MAX_PREPARED_SHAPES = 200;

/**
 * The scale-out store. The URL may carry `?schema=<name>` to keep ccs's tables in their own schema (created on
 * start); every pooled connection then uses it as its search path.
 */
export class PostgresStore implements Store {
  readonly engine = 'postgres' as const;
  readonly #compiler = new SqlCompiler(dialect);
  readonly #pool: pg.Pool;
  readonly #schema: string | undefined;
  readonly #q: Raw;
  #jsonFunction: Promise<void> | undefined;
  readonly #logGaps = new Map<string, LogGap>();
  readonly #prepared = new Map<string, string>();

  constructor(url: string, poolSize = 10) {
    const u = new URL(url);
    this.#schema = u.searchParams.get('schema') ?? undefined;
    u.searchParams.delete('schema');
    // The search path is a connection start-up parameter, so no query runs before the caller's own.
    const options = this.#schema ? `-c search_path=${quote(this.#schema)}` : undefined;
    this.#pool = new pg.Pool({ connectionString: u.toString(), max: poolSize, options });
    this.#q = queryable(this.#pool, this.#compiler, (write, log) => this.#writeWithLog(write, log));
  }

  async syncSchema(tables: readonly PhysicalTable[]): Promise<void> {
    const client = await this.#pool.connect();
    try {
      if (this.#schema) {
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${quote(this.#schema)}`);
        await client.query(`SET search_path TO ${quote(this.#schema)}`);
      }
      // Several nodes may start at once; one schema change at a time.
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(7391)');
      for (const t of tables) {
        this.#compiler.register(t);
        await client.query(this.#compiler.createTable(t));
        const { rows } = await client.query(
          'SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND table_schema = current_schema()',
          [t.name],
        );
        const existing = new Set(rows.map((r: { column_name: string }) => r.column_name));
        for (const c of t.columns) if (!existing.has(c.name)) await client.query(this.#compiler.addColumn(t.name, c));
        for (const idx of t.indexes) await client.query(this.#compiler.createIndex(t, idx));
        for (const c of t.columns) {
          if (!c.logNumber) continue;
          const seq = quote(logSequence(t.name, c.name));
          await client.query(`CREATE SEQUENCE IF NOT EXISTS ${seq}`);
          // Never behind the rows already there (a log written before its sequence existed, a sequence reset by hand).
          await client.query(`SELECT setval($1::regclass, m) FROM (SELECT MAX(${quote(c.name)}) AS m FROM ${quote(t.name)}) x, ${seq} s WHERE x.m > s.last_value`, [seq]);
        }
      }
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  select(q: SelectQuery): Promise<Row[]> {
    return this.#q.select(q);
  }

  /**
   * Numbers are taken at the commit step, so a lower number can commit after a higher one, and a failed commit
   * leaves a gap. The rows and the snapshot they were read with come from one statement. Up to the first missing
   * number the rows are final. Past it they are final only once every transaction the snapshot saw in flight has
   * ended: a transaction holding a number below a visible one took it before that one committed, after taking its
   * transaction id, so it is one of those (or has ended). Until then the reader gets the rows before the gap; once
   * they have ended, a number still missing is one that never committed, and is passed over.
   */
  async readLog(table: string, column: string, after: number, limit: number): Promise<Row[]> {
    const col = quote(column);
    const text = `SELECT s.ccs_snapshot, t.* FROM (SELECT pg_current_snapshot()::text AS ccs_snapshot) s
      LEFT JOIN LATERAL (SELECT * FROM ${quote(table)} WHERE ${col} > $1 ORDER BY ${col} LIMIT $2) t ON true ORDER BY t.${col}`;
    const result = await this.#q.raw(this.#named(text, [after, limit]));
    const snapshot = parseSnapshot(String(result[0]!['ccs_snapshot']));
    const rows = result.filter((r) => r[column] !== null && r[column] !== undefined).map((r) => {
      const { ccs_snapshot: _, ...row } = r;
      return row;
    });
    let next = after + 1;
    let final = 0;
    while (final < rows.length && Number(rows[final]![column]) === next) {
      final++;
      next++;
    }
    const key = `${table}\u0000${column}\u0000${after}`;
    if (final === rows.length) {
      this.#logGaps.delete(key);
      return rows;
    }
    const gap = this.#logGaps.get(key);
    if (gap && snapshot.xmin > gap.waitFor) {
      this.#logGaps.delete(key);
      return rows.filter((r) => Number(r[column]) <= gap.upTo);
    }
    if (!gap) {
      // Nothing in flight: the missing numbers belong to transactions that rolled back.
      if (snapshot.xip.length === 0) return rows;
      if (this.#logGaps.size >= MAX_LOG_GAPS) this.#logGaps.clear();
      this.#logGaps.set(key, { upTo: Number(rows[rows.length - 1]![column]), waitFor: snapshot.xip.reduce((a, b) => (b > a ? b : a)) });
    }
    return rows.slice(0, final);
  }
  count(q: Pick<SelectQuery, 'table' | 'where'>): Promise<number> {
    return this.#q.count(q);
  }

  /**
   * json_each walks each document's members; a recursive step descends into nested objects. The text is made JSON by
   * `ccs_json_object` (below), which answers NULL instead of failing for text that is not a JSON object. Numbers go
   * through numeric, which reads any JSON number, and become doubles only within the double range; CASE keeps each
   * cast behind its check (PostgreSQL may reorder WHERE clauses).
   */
  async aggregateJsonNumbers(q: JsonNumbersQuery): Promise<JsonNumbersBucket[]> {
    await (this.#jsonFunction ??= this.#createJsonFunction().catch((e: unknown) => {
      this.#jsonFunction = undefined;
      throw e;
    }));
    const params: StoreValue[] = [];
    const json = `t0.${quote(q.json)}`;
    const time = `t0.${quote(q.time)}`;
    const where = q.where ? `${this.#compiler.where(q.where, q.table, 't0', params)} AND ` : '';
    params.push(q.origin);
    const o = params.length;
    params.push(q.width);
    const w = params.length;
    const text = `WITH RECURSIVE
      ccs_jdoc(t, v) AS (
        SELECT ${time}, ccs_json_object(${json}) FROM ${quote(q.table)} t0 WHERE ${where}${time} >= $${o}::bigint),
      ccs_jmember(t, path, v) AS (
        SELECT doc.t, j.key, j.value FROM ccs_jdoc AS doc CROSS JOIN LATERAL json_each(doc.v) j
        UNION ALL
        SELECT m.t, m.path || '.' || j.key, j.value
        FROM ccs_jmember AS m CROSS JOIN LATERAL json_each(CASE WHEN json_typeof(m.v) = 'object' THEN m.v END) j),
      ccs_jnumber(t, path, x) AS (SELECT t, path, CASE WHEN json_typeof(v) = 'number' THEN (v::text)::numeric END FROM ccs_jmember),
      ccs_jvalue(t, path, x) AS (
        SELECT t, path, CASE WHEN abs(x) > 1.7976931348623157e308 THEN NULL WHEN abs(x) < 1e-300 THEN 0 ELSE x::float8 END
        FROM ccs_jnumber WHERE x IS NOT NULL)
      SELECT path, (t - $${o}::bigint) / $${w}::bigint AS bucket, min(x) AS min, max(x) AS max, sum(x) AS sum, count(*) AS count
      FROM ccs_jvalue WHERE x IS NOT NULL
      GROUP BY path, bucket ORDER BY path, bucket`;
    const rows = await this.#q.raw({ text, params });
    return rows.map((r) => ({
      path: String(r['path']),
      bucket: Number(r['bucket']),
      min: Number(r['min']),
      max: Number(r['max']),
      sum: Number(r['sum']),
      count: Number(r['count']),
    }));
  }

  /**
   * `text::json` fails on text that is not JSON, and PostgreSQL before 16 has no test for it (`IS JSON`), so the
   * cast is tried in a function that catches the failure. json_each cannot take \u0000 escapes (no text holds NUL):
   * they become U+FFFD first, which keeps the document valid. Created once per schema, under the schema lock.
   */
  async #createJsonFunction(): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(7391)');
      await client.query(`CREATE OR REPLACE FUNCTION ccs_json_object(doc text) RETURNS json
        LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
        BEGIN
          IF left(ltrim(doc, E' \\t\\r\\n'), 1) <> '{' THEN RETURN NULL; END IF;
          RETURN replace(doc, '\\u0000', '\\ufffd')::json;
        EXCEPTION WHEN others THEN
          RETURN NULL;
        END $f$`);
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }
  insert(table: string, row: Row, log?: LogAppend): Promise<void> {
    return this.#q.insert(table, row, log);
  }
  insertMany(table: string, rows: readonly Row[]): Promise<void> {
    return this.#q.insertMany(table, rows);
  }
  update(table: string, values: Row, where: Condition, log?: LogAppend): Promise<number> {
    return this.#q.update(table, values, where, log);
  }
  delete(table: string, where: Condition, log?: LogAppend): Promise<number> {
    return this.#q.delete(table, where, log);
  }

  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.#inTransaction((q, logs, client) =>
      fn({
        ...q,
        // A transaction-level advisory lock: released by COMMIT or ROLLBACK, never left behind by a failed request.
        // Read committed gives every later statement a fresh snapshot, so the holder sees what the last one wrote.
        lock: async (key) => void (await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [key])),
        appendLog: (table, column, rows) => logs.add(table, column, rows),
      }),
    );
  }

  /** Runs `fn` in a transaction on one connection; the log rows it gathers are written just before the commit. */
  async #inTransaction<T>(fn: (q: Raw, logs: PendingLogs, client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      const logs = new PendingLogs();
      // Inside a transaction a write's log rows wait for the commit, with the others.
      const q = queryable(client, this.#compiler, async (write, log) => logs.added(await run(client, write), log));
      const result = await fn(q, logs, client);
      for (const log of logs.take()) await this.#appendLog(q, log);
      await client.query('COMMIT');
      return result;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  /**
   * Numbers a log's rows from its sequence just before the commit, without a lock: transactions append and commit
   * concurrently, and readLog waits for numbers still in flight. Each statement takes the transaction id (the
   * materialised CTE runs before the number is drawn), so any transaction holding a number shows in the snapshots of
   * readers that see a higher one. A single row — one record write — is numbered and inserted in one round trip.
   */
  async #appendLog(q: Raw, log: PendingLog): Promise<void> {
    const seq = quote(logSequence(log.table, log.column));
    const xact = 'WITH ccs_xact AS MATERIALIZED (SELECT pg_current_xact_id())';
    if (log.rows.length === 1) {
      const row = log.rows[0]!;
      const names = Object.keys(row).filter((n) => n !== log.column);
      const text = `${xact} INSERT INTO ${quote(log.table)} (${[log.column, ...names].map(quote).join(', ')})
        VALUES ((SELECT nextval($1::regclass) FROM ccs_xact), ${names.map((_, i) => `$${i + 2}`).join(', ')}) RETURNING ${quote(log.column)} AS n`;
      const [inserted] = await q.raw(this.#named(text, [seq, ...names.map((n) => row[n] ?? null)]));
      row[log.column] = Number(inserted!['n']);
      return;
    }
    const drawn = await q.raw({ text: `${xact} SELECT nextval($1::regclass) AS n FROM ccs_xact, generate_series(1, $2::integer)`, params: [seq, log.rows.length] });
    const numbers = drawn.map((r) => Number(r['n'])).sort((a, b) => a - b);
    log.rows.forEach((row, i) => (row[log.column] = numbers[i]!));
    await q.insertMany(log.table, log.rows);
  }

  /**
   * A write outside a transaction and its log row in one statement: the write runs as a data-modifying CTE, and the
   * log row is inserted only if it changed a row — after it, so the transaction already has its id when the number
   * is drawn (readLog relies on that). Several log rows take a transaction instead.
   */
  async #writeWithLog(write: CompiledSql, log: LogAppend): Promise<number> {
    if (log.rows.length !== 1) {
      return this.#inTransaction(async (q, logs) => {
        const [changed] = await q.raw({ text: `WITH ccs_write AS (${write.text} RETURNING 1) SELECT count(*) AS n FROM ccs_write`, params: write.params });
        return logs.added(Number(changed!['n']), log);
      });
    }
    const row = log.rows[0]!;
    const names = Object.keys(row).filter((n) => n !== log.column);
    const params: StoreValue[] = [...write.params, quote(logSequence(log.table, log.column))];
    const seq = params.length;
    const values = names.map((n) => {
      params.push(row[n] ?? null);
      const type = this.#compiler.typeOf(log.table, n);
      return `$${params.length}${type ? `::${dialect.columnType(type, false)}` : ''}`;
    });
    const text = `WITH ccs_write AS (${write.text} RETURNING 1),
      ccs_changed AS (SELECT count(*) AS n FROM ccs_write),
      ccs_log AS (INSERT INTO ${quote(log.table)} (${[log.column, ...names].map(quote).join(', ')})
        SELECT nextval($${seq}::regclass), ${values.join(', ')} FROM ccs_changed WHERE n > 0 RETURNING ${quote(log.column)} AS ccs_number)
      SELECT (SELECT n FROM ccs_changed) AS n, (SELECT ccs_number FROM ccs_log) AS ccs_number`;
    const [result] = await this.#q.raw(this.#named(text, params));
    if (result!['ccs_number'] !== null) row[log.column] = Number(result!['ccs_number']);
    return Number(result!['n']);
  }

  /** The statement under its prepared name, while there are names left for new shapes. */
  #named(text: string, params: StoreValue[]): NamedSql {
    let name = this.#prepared.get(text);
    if (!name && this.#prepared.size < MAX_PREPARED_SHAPES) this.#prepared.set(text, (name = `ccs_log_${this.#prepared.size + 1}`));
    return { text, params, name };
  }

  /** Drops the schema given in the URL: for test suites that each use a schema of their own. */
  async dropSchema(): Promise<void> {
    if (!this.#schema) return;
    // A running app's background statements (event log polls, checkpoints) may hold locks the drop needs in another
    // order; PostgreSQL then cancels one side, which may be the drop: try again.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#pool.query(`DROP SCHEMA IF EXISTS ${quote(this.#schema)} CASCADE`);
        return;
      } catch (e) {
        if ((e as { code?: string }).code !== '40P01' || attempt >= 5) throw e;
      }
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
