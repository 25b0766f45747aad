import type { Store, Transaction } from './types.js';

/**
 * Group commit for many small transactions: work asked for while the writing transactions are busy goes together in
 * the next one, piece after piece. Alone, a piece is written at once; under load a commit — the expensive part — is
 * shared. When any piece of a group fails, the group is rolled back and each piece runs again in a transaction of
 * its own, so one failing piece fails alone: a piece must be safe to run twice (its writes are only kept once) and
 * must keep what it hands out per attempt (record events) inside its result.
 */
export interface GroupCommit {
  /** Runs `work` in a transaction shared with others; resolves once that transaction has committed. */
  run<T>(work: (tx: Transaction) => Promise<T>, order?: string): Promise<T>;
}

interface Piece {
  readonly work: (tx: Transaction) => Promise<unknown>;
  /** Pieces run in this order within a group, so two groups never take the same locks in opposite orders. */
  readonly order: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (e: unknown) => void;
}

/** Pieces in one transaction at most. */
const MAX_GROUP = 64;
/**
 * Transactions writing at once: SQLite has one writer, so one, and the next group gathers meanwhile; on PostgreSQL
 * the round trips of several overlap.
 */
const WRITERS = { sqlite: 1, postgres: 8 } as const;

/**
 * `writers`: transactions at once (default by engine). Pieces that take locks whose order `order` cannot tell want
 * one, so that two groups never wait for each other.
 */
export function createGroupCommit(store: Store, opts: { writers?: number } = {}): GroupCommit {
  const queue: Piece[] = [];
  const writers = opts.writers ?? WRITERS[store.engine];
  let writing = 0;

  async function drain(): Promise<void> {
    writing++;
    try {
      while (queue.length > 0) {
        const group = queue.splice(0, MAX_GROUP).sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
        let results: unknown[];
        try {
          results = await store.transaction(async (tx) => {
            const out: unknown[] = [];
            for (const p of group) out.push(await p.work(tx));
            return out;
          });
        } catch (e) {
          if (group.length === 1) group[0]!.reject(e);
          else for (const p of group) await store.transaction(p.work).then(p.resolve, p.reject);
          continue;
        }
        group.forEach((p, i) => p.resolve(results[i]));
      }
    } finally {
      writing--;
    }
  }

  return {
    run<T>(work: (tx: Transaction) => Promise<T>, order = ''): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        queue.push({ work, order, resolve: resolve as (value: unknown) => void, reject });
        if (writing < writers) void drain();
      });
    },
  };
}
