import type { LogAppend, Row } from '../types.js';

/** One log's rows waiting for a transaction's commit. */
export interface PendingLog {
  readonly table: string;
  readonly column: string;
  readonly rows: Row[];
}

/**
 * The rows a transaction appended to logs (`Transaction.appendLog`), grouped per log, for the adapter to number and
 * write just before it commits. Logs come out ordered by table and column so that two transactions appending to the
 * same logs take their locks in the same order.
 */
export class PendingLogs {
  readonly #logs = new Map<string, PendingLog>();

  add(table: string, column: string, rows: readonly Row[]): void {
    if (rows.length === 0) return;
    const key = `${table}\u0000${column}`;
    let log = this.#logs.get(key);
    if (!log) {
      log = { table, column, rows: [] };
      this.#logs.set(key, log);
    }
    log.rows.push(...rows);
  }

  /** Adds a write's log rows if the write changed a row; passes the count of changed rows through. */
  added(changed: number, log: LogAppend | undefined): number {
    if (log && changed > 0) this.add(log.table, log.column, log.rows);
    return changed;
  }

  /** The logs to write; the list is emptied. */
  take(): PendingLog[] {
    const out = [...this.#logs.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, log]) => log);
    this.#logs.clear();
    return out;
  }
}
