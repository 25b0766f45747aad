import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Queryable, Store, Transaction } from './types.js';

export type * from './types.js';
export { and, chunks, compare, eq, isIn, isNull, ne, or } from './conditions.js';
export { createGroupCommit, type GroupCommit } from './group-commit.js';
export { PostgresStore } from './postgres/postgres-store.js';
export { SqliteStore } from './sqlite/sqlite-store.js';

/** Whether `db` is a transaction (its writes commit together) rather than the store itself. */
export function isTransaction(db: Queryable): db is Transaction {
  return typeof (db as Partial<Transaction>).lock === 'function';
}

/** `sqlite:<path>` (or `sqlite::memory:`) or `postgres://…` / `postgresql://…`. */
export function createStore(url: string): Store {
  if (url.startsWith('sqlite:')) return new SqliteStore(url.slice('sqlite:'.length));
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return new PostgresStore(url);
  throw new Error(`Unsupported store URL: ${url} (expected sqlite:<path> or postgres://…)`);
}
