import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SqliteStore, type PhysicalTable } from '../../src/store/index.js';

const TABLE: PhysicalTable = { name: 'ckpt_item', primaryKey: 'id', columns: [{ name: 'id', type: 'text' }, { name: 'body', type: 'text' }], indexes: [] };

test('SQLite: the write-ahead log is checkpointed off the main thread, so it stays small under many commits', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'ccs-ckpt-')), 'ccs.db');
  const store = new SqliteStore(path);
  try {
    await store.syncSchema([TABLE]);
    const body = 'x'.repeat(3000);
    // Each commit appends a few pages: 4,000 of them write ≈ 50 MB to the log, which keeps all of it unless checkpoints
    // copy it back so that the log can start over.
    let largest = 0;
    for (let i = 0; i < 4000; i++) {
      await store.transaction((tx) => tx.insert(TABLE.name, { id: `item-${i}`, body }));
      if (i % 500 === 499) {
        await new Promise((r) => setTimeout(r, 250)); // a checkpoint round
        largest = Math.max(largest, statSync(`${path}-wal`).size);
      }
    }
    assert.equal(await store.count({ table: TABLE.name }), 4000);
    assert.ok(largest < 24 * 1024 * 1024, `the log reached ${largest} bytes`);
  } finally {
    await store.close();
  }
});
