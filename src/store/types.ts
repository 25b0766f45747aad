/**
 * The Store port. Engine-neutral: callers describe rows and queries with plain values and the condition tree below;
 * each adapter turns them into its own SQL with bound parameters. Physical names are the metadata's logical names
 * (validated identifiers), so no caller ever writes SQL.
 */

/** Storage-level value: strings (also GUIDs, lower-case), numbers (datetimes are epoch milliseconds), null. */
export type StoreValue = string | number | null;
export type Row = Record<string, StoreValue>;

export type PhysicalType = 'text' | 'integer' | 'bigint' | 'double' | 'boolean';

export interface PhysicalColumn {
  readonly name: string;
  readonly type: PhysicalType;
  /** Text compared without regard to case (Dataverse string semantics). GUID columns are not. */
  readonly caseInsensitive?: boolean;
  /**
   * The number of an append-only log's rows (`Transaction.appendLog`, `Store.readLog`): the table's integer primary
   * key. Schema sync prepares what the engine numbers it with (a PostgreSQL sequence).
   */
  readonly logNumber?: boolean;
}

export interface PhysicalTable {
  readonly name: string;
  readonly primaryKey: string;
  readonly columns: readonly PhysicalColumn[];
  readonly indexes: readonly PhysicalIndex[];
}

export interface PhysicalIndex {
  readonly columns: readonly string[];
  readonly unique?: boolean;
  /** Leaves out rows whose first column is null: lookups that are mostly empty cost nothing to index. */
  readonly sparse?: boolean;
}

export type CompareOp = 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le';

/** A value in a condition: a column of the row being filtered, a literal, or a column of a related row. */
export type Operand =
  | { readonly kind: 'column'; readonly column: string }
  | { readonly kind: 'value'; readonly value: StoreValue }
  /** `(SELECT column FROM table WHERE key = <outer>.via)`: a lookup path such as `primarycontactid/fullname`. */
  | { readonly kind: 'related'; readonly table: string; readonly key: string; readonly via: string; readonly operand: Operand };

export type Condition =
  | { readonly kind: 'compare'; readonly op: CompareOp; readonly left: Operand; readonly right: Operand }
  | { readonly kind: 'and' | 'or'; readonly items: readonly Condition[] }
  | { readonly kind: 'not'; readonly item: Condition }
  | { readonly kind: 'true' | 'false' }
  /** Case-insensitive text match; `value` is taken literally (no wildcards). */
  | { readonly kind: 'match'; readonly mode: 'contains' | 'startswith' | 'endswith'; readonly operand: Operand; readonly value: string }
  | { readonly kind: 'in'; readonly operand: Operand; readonly values: readonly StoreValue[] }
  /**
   * `EXISTS (SELECT 1 FROM table WHERE table.column = <outer>.outerColumn AND where)`: collection navigation
   * (`any`), or an N:N hop through an intersect table (`through`).
   */
  | {
      readonly kind: 'exists';
      readonly table: string;
      readonly column: string;
      readonly outerColumn: string;
      readonly where: Condition;
      readonly through?: { readonly table: string; readonly ownColumn: string; readonly otherColumn: string; readonly targetKey: string };
    };

export interface OrderBy {
  readonly column: string;
  readonly descending?: boolean;
}

export interface SelectQuery {
  readonly table: string;
  /** Columns to return; all when absent. */
  readonly columns?: readonly string[];
  readonly where?: Condition;
  readonly orderBy?: readonly OrderBy[];
  readonly limit?: number;
  readonly offset?: number;
}

/**
 * Rows to add to an append-only log together with a write (`Queryable.insert`, `update`, `delete`): numbered and
 * written as `Transaction.appendLog` does, atomically with the write, and only if the write changed a row. Outside a
 * transaction this is how a write and its log row commit together without one (a single statement where the engine
 * allows).
 */
export interface LogAppend {
  readonly table: string;
  readonly column: string;
  readonly rows: readonly Row[];
}

/** Operations available both on the store and inside a transaction. */
export interface Queryable {
  select(query: SelectQuery): Promise<Row[]>;
  count(query: Pick<SelectQuery, 'table' | 'where'>): Promise<number>;
  /** Inserts one row. A duplicate primary or unique key rejects with a `DuplicateKeyError`. */
  insert(table: string, row: Row, log?: LogAppend): Promise<void>;
  /**
   * Inserts many rows with the same columns in as few statements as the engine allows (the telemetry log's group
   * commit). Inside a transaction it is all or nothing, like every write there.
   */
  insertMany(table: string, rows: readonly Row[]): Promise<void>;
  /** Updates rows matching `where`; resolves to the number of rows changed. */
  update(table: string, values: Row, where: Condition, log?: LogAppend): Promise<number>;
  /** Deletes rows matching `where`; resolves to the number of rows deleted. */
  delete(table: string, where: Condition, log?: LogAppend): Promise<number>;
}

/** What a transaction's callback gets: the usual operations, plus locks held until the transaction ends. */
export interface Transaction extends Queryable {
  /**
   * Waits for, then holds until commit or rollback, an exclusive lock named `key`: transactions that lock the same
   * key run their remaining statements one after another, and each sees what the previous one committed. For
   * read-decide-write sequences the rows alone cannot guard (e.g. grouping alerts of one device). Any string works;
   * unrelated keys may occasionally share a lock (PostgreSQL hashes them to 32 bits), which only costs waiting.
   */
  lock(key: string): Promise<void>;
  /**
   * Adds `rows` to an append-only log table when the transaction commits, numbering them in `column` (declared
   * `logNumber`): numbers are unique and increase in the order transactions reach their commit (a transaction's rows
   * in the order given), and are written into the given row objects just before the commit (read them once the
   * transaction has resolved). A transaction that rolls back writes nothing; on some
   * engines its numbers are never used (a gap). Follow the log with `Store.readLog`. Numbering may restart after the
   * highest row: keep the last row when pruning. Rows appended to one log in one transaction must have the same
   * columns.
   */
  appendLog(table: string, column: string, rows: readonly Row[]): void;
}

/**
 * Numbers inside JSON documents kept as text, aggregated per time bucket (`Store.aggregateJsonNumbers`): the device
 * readings chart, computed where the rows are.
 */
export interface JsonNumbersQuery {
  readonly table: string;
  /** Which rows; rows timed before `origin` are left out as well. */
  readonly where?: Condition;
  /**
   * Text column holding the document. Rows whose text is not a JSON object add nothing. Every number member counts,
   * nested objects' members too (arrays and their contents do not); numbers beyond the double range are skipped.
   */
  readonly json: string;
  /** Integer column of the row's time (epoch milliseconds). */
  readonly time: string;
  /** Bucket `k` holds the rows timed in `[origin + k·width, origin + (k+1)·width)`. */
  readonly origin: number;
  readonly width: number;
}

export interface JsonNumbersBucket {
  /** Member names from the top level down, joined by `.`: `temperature`, `readings.pressure`. */
  readonly path: string;
  readonly bucket: number;
  readonly min: number;
  readonly max: number;
  readonly sum: number;
  /** Numbers counted: each occurrence, so a member name repeated in one document counts each time. */
  readonly count: number;
}

export interface Store extends Queryable {
  /** Which engine, for logs and the start-up line only. */
  readonly engine: 'sqlite' | 'postgres';
  /** One row per path and bucket that has numbers, ordered by path then bucket. Read-only; outside transactions. */
  aggregateJsonNumbers(query: JsonNumbersQuery): Promise<JsonNumbersBucket[]>;
  /**
   * Rows of a log (`Transaction.appendLog`) numbered after `after`, in number order, at most `limit`, and never a row
   * while a lower number may still commit: a follower that moves its position to the last row it got never misses a
   * row committed later. It may therefore get fewer rows than are visible (none while the next number is in flight),
   * and numbers that will never commit are passed over once that is certain.
   */
  readLog(table: string, column: string, after: number, limit: number): Promise<Row[]>;
  /** Creates missing tables, columns and indexes. Never drops anything. */
  syncSchema(tables: readonly PhysicalTable[]): Promise<void>;
  /**
   * Runs `fn` in one transaction: everything it does through `tx` commits together, or nothing does if it throws.
   * Transactions are serialised with other writers where the engine needs it.
   */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
