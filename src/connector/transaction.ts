import type { RecordContext, RecordEvent, RecordsService } from '../records/index.js';
import { isTransaction, type Store, type Transaction } from '../store/index.js';

/**
 * Runs `fn` in a transaction with a record context that writes through it. Inside a `$batch` change set the
 * request already runs in one (its events are published when it commits), so that one is used; otherwise a new
 * one is opened and its record events are published once it has committed.
 */
export async function withTransaction<T>(
  deps: { readonly store: Store; readonly records: RecordsService },
  ctx: RecordContext,
  fn: (rc: RecordContext, tx: Transaction) => Promise<T>,
): Promise<T> {
  if (isTransaction(ctx.db)) return fn(ctx, ctx.db);
  const pending: RecordEvent[] = [];
  const result = await deps.store.transaction((tx) => fn({ ...ctx, db: tx, pending }, tx));
  deps.records.publish(pending);
  return result;
}
