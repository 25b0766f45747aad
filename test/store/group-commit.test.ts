import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createGroupCommit, createStore, eq, PostgresStore, type PhysicalTable, type Store } from '../../src/store/index.js';
import { engines } from '../helpers/engines.js';

const TABLE: PhysicalTable = { name: 'gc_item', primaryKey: 'id', columns: [{ name: 'id', type: 'text' }, { name: 'n', type: 'integer' }], indexes: [] };

async function withStore(url: string, fn: (store: Store) => Promise<void>): Promise<void> {
  const store = createStore(url);
  try {
    await store.syncSchema([TABLE]);
    await fn(store);
  } finally {
    if (store instanceof PostgresStore) await store.dropSchema();
    await store.close();
  }
}

for (const engine of engines()) {
  describe(`group commit (${engine.name})`, () => {
    test('work asked for at once shares transactions, and every piece commits', async () => {
      await withStore(engine.url(), async (store) => {
        const group = createGroupCommit(store);
        const ids = Array.from({ length: 40 }, (_, i) => `item-${i}`);
        const results = await Promise.all(ids.map((id, i) => group.run(async (tx) => {
          await tx.insert(TABLE.name, { id, n: i });
          return i;
        }, id)));
        assert.deepEqual(results, ids.map((_, i) => i));
        assert.equal(await store.count({ table: TABLE.name }), 40);
      });
    });

    test('a failing piece fails alone: the others of its group commit, its own writes do not', async () => {
      await withStore(engine.url(), async (store) => {
        const group = createGroupCommit(store, { writers: 1 });
        // The first piece holds the writer, so the next three gather into one group.
        const first = group.run((tx) => tx.insert(TABLE.name, { id: 'first', n: 0 }));
        const outcomes = await Promise.allSettled([
          group.run(async (tx) => tx.insert(TABLE.name, { id: 'a', n: 1 }), 'a'),
          group.run(async (tx) => {
            await tx.insert(TABLE.name, { id: 'b', n: 2 });
            throw new Error('piece b cannot go on');
          }, 'b'),
          group.run(async (tx) => tx.insert(TABLE.name, { id: 'c', n: 3 }), 'c'),
        ]);
        await first;
        assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled']);
        assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /piece b cannot go on/);
        const rows = await store.select({ table: TABLE.name, columns: ['id'] });
        assert.deepEqual(rows.map((r) => r['id']).sort(), ['a', 'c', 'first']);
        assert.equal((await store.select({ table: TABLE.name, where: eq('id', 'b') })).length, 0);
      });
    });
  });
}
