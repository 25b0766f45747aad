import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { DuplicateKeyError } from '../../src/errors/index.js';
import { createStore, PostgresStore, type PhysicalTable, type Row, type Store } from '../../src/store/index.js';
import { engines } from '../helpers/engines.js';

/** Polls until `probe` returns a value, for at most 10 s. */
async function until<T>(probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + 10_000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const devices: PhysicalTable = {
  name: 'device',
  primaryKey: 'id',
  columns: [
    { name: 'id', type: 'text' },
    { name: 'name', type: 'text', caseInsensitive: true },
    { name: 'seen', type: 'bigint' },
    { name: 'score', type: 'double' },
    { name: 'on', type: 'integer' },
  ],
  indexes: [{ columns: ['name'], unique: true }, { columns: ['seen'] }],
};
const readings: PhysicalTable = {
  name: 'reading',
  primaryKey: 'id',
  columns: [
    { name: 'id', type: 'text' },
    { name: 'device', type: 'text' },
    { name: 'value', type: 'double' },
  ],
  indexes: [{ columns: ['device'], sparse: true }],
};

const docs: PhysicalTable = {
  name: 'doc',
  primaryKey: 'id',
  columns: [
    { name: 'id', type: 'integer' },
    { name: 'owner', type: 'text' },
    { name: 'at', type: 'bigint' },
    { name: 'body', type: 'text' },
  ],
  indexes: [{ columns: ['at'] }],
};

const log: PhysicalTable = {
  name: 'eventlog',
  primaryKey: 'seq',
  columns: [
    { name: 'seq', type: 'bigint', logNumber: true },
    { name: 'body', type: 'text' },
  ],
  indexes: [],
};

for (const engine of engines()) {
  describe(`store contract on ${engine.name}`, () => {
    const stores: Store[] = [];
    async function open(): Promise<Store> {
      const store = createStore(engine.url());
      stores.push(store);
      await store.syncSchema([devices, readings, docs, log]);
      return store;
    }
    after(async () => {
      for (const s of stores) {
        if (s instanceof PostgresStore) await s.dropSchema();
        await s.close();
      }
    });

    test('insert, select with conditions, order, limit, count', async () => {
      const s = await open();
      await s.insert('device', { id: 'a', name: 'Alpha', seen: 1_700_000_000_000, score: 1.5, on: 1 });
      await s.insert('device', { id: 'b', name: 'beta', seen: 1_700_000_000_500, score: null, on: 0 });
      await s.insert('device', { id: 'c', name: 'Gamma 50%_x', seen: 1_700_000_001_000, score: 3, on: 1 });
      const rows = await s.select({ table: 'device', where: { kind: 'compare', op: 'ge', left: { kind: 'column', column: 'seen' }, right: { kind: 'value', value: 1_700_000_000_500 } }, orderBy: [{ column: 'seen', descending: true }] });
      assert.deepEqual(rows.map((r) => r['id']), ['c', 'b']);
      assert.equal(typeof rows[0]!['seen'], 'number');
      // Text compares without regard to case, as in Dataverse.
      const ci = await s.select({ table: 'device', where: { kind: 'compare', op: 'eq', left: { kind: 'column', column: 'name' }, right: { kind: 'value', value: 'ALPHA' } } });
      assert.deepEqual(ci.map((r) => r['id']), ['a']);
      // LIKE wildcards in values are literal.
      const m = await s.select({ table: 'device', where: { kind: 'match', mode: 'contains', operand: { kind: 'column', column: 'name' }, value: '50%_' } });
      assert.deepEqual(m.map((r) => r['id']), ['c']);
      const none = await s.select({ table: 'device', where: { kind: 'match', mode: 'contains', operand: { kind: 'column', column: 'name' }, value: '%' } });
      assert.deepEqual(none.map((r) => r['id']), ['c']);
      // ne keeps nulls; eq null is IS NULL.
      const ne = await s.select({ table: 'device', where: { kind: 'compare', op: 'ne', left: { kind: 'column', column: 'score' }, right: { kind: 'value', value: 1.5 } }, orderBy: [{ column: 'id' }] });
      assert.deepEqual(ne.map((r) => r['id']), ['b', 'c']);
      const isNull = await s.select({ table: 'device', where: { kind: 'compare', op: 'eq', left: { kind: 'column', column: 'score' }, right: { kind: 'value', value: null } } });
      assert.deepEqual(isNull.map((r) => r['id']), ['b']);
      const page = await s.select({ table: 'device', columns: ['id'], orderBy: [{ column: 'name' }], limit: 2, offset: 1 });
      assert.deepEqual(page, [{ id: 'b' }, { id: 'c' }]);
      assert.equal(await s.count({ table: 'device', where: { kind: 'in', operand: { kind: 'column', column: 'name' }, values: ['alpha', 'BETA', 'x'] } }), 2);
    });

    test('related operands and exists', async () => {
      const s = await open();
      await s.insert('device', { id: 'a', name: 'A', seen: 1, score: 0, on: 1 });
      await s.insert('device', { id: 'b', name: 'B', seen: 2, score: 0, on: 0 });
      await s.insert('reading', { id: 'r1', device: 'a', value: 10 });
      await s.insert('reading', { id: 'r2', device: 'a', value: 20 });
      await s.insert('reading', { id: 'r3', device: 'b', value: 5 });
      const viaName = await s.select({ table: 'reading', where: { kind: 'compare', op: 'eq', left: { kind: 'related', table: 'device', key: 'id', via: 'device', operand: { kind: 'column', column: 'name' } }, right: { kind: 'value', value: 'a' } }, orderBy: [{ column: 'id' }] });
      assert.deepEqual(viaName.map((r) => r['id']), ['r1', 'r2']);
      const any = await s.select({ table: 'device', where: { kind: 'exists', table: 'reading', column: 'device', outerColumn: 'id', where: { kind: 'compare', op: 'gt', left: { kind: 'column', column: 'value' }, right: { kind: 'value', value: 15 } } } });
      assert.deepEqual(any.map((r) => r['id']), ['a']);
    });

    test('update and delete report affected rows; duplicates are DuplicateKeyError', async () => {
      const s = await open();
      await s.insert('device', { id: 'a', name: 'A', seen: 1, score: 0, on: 1 });
      await assert.rejects(s.insert('device', { id: 'a', name: 'Other', seen: 1, score: 0, on: 1 }), DuplicateKeyError);
      await assert.rejects(s.insert('device', { id: 'z', name: 'a', seen: 1, score: 0, on: 1 }), DuplicateKeyError);
      const idIs = (id: string) => ({ kind: 'compare', op: 'eq', left: { kind: 'column', column: 'id' }, right: { kind: 'value', value: id } }) as const;
      assert.equal(await s.update('device', { seen: 5 }, idIs('a')), 1);
      assert.equal(await s.update('device', { seen: 5 }, idIs('missing')), 0);
      assert.equal(await s.delete('device', idIs('a')), 1);
      assert.equal(await s.count({ table: 'device' }), 0);
    });

    test('transactions commit together or not at all, and isolate readers', async () => {
      const s = await open();
      await s.transaction(async (tx) => {
        await tx.insert('device', { id: 'a', name: 'A', seen: 1, score: 0, on: 1 });
        await tx.insert('device', { id: 'b', name: 'B', seen: 1, score: 0, on: 1 });
      });
      assert.equal(await s.count({ table: 'device' }), 2);
      await assert.rejects(
        s.transaction(async (tx) => {
          await tx.insert('device', { id: 'c', name: 'C', seen: 1, score: 0, on: 1 });
          assert.equal(await tx.count({ table: 'device' }), 3);
          assert.equal(await s.count({ table: 'device' }), 2, 'uncommitted rows are invisible outside');
          throw new Error('roll back');
        }),
        /roll back/,
      );
      assert.equal(await s.count({ table: 'device' }), 2);
      // Concurrent transactions and plain writes all land.
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          i % 2
            ? s.transaction((tx) => tx.insert('device', { id: `t${i}`, name: `T${i}`, seen: i, score: 0, on: 0 }))
            : s.insert('device', { id: `p${i}`, name: `P${i}`, seen: i, score: 0, on: 0 }),
        ),
      );
      assert.equal(await s.count({ table: 'device' }), 22);
    });

    test('lock(key) serialises read-decide-write transactions on the same key', async () => {
      const s = await open();
      await s.insert('device', { id: 'counter', name: 'counter', seen: 0, score: 0, on: 0 });
      const idIs = { kind: 'compare', op: 'eq', left: { kind: 'column', column: 'id' }, right: { kind: 'value', value: 'counter' } } as const;
      // Each transaction reads the counter, yields, then writes it plus one: without the lock, PostgreSQL's read
      // committed transactions all read the same value and increments are lost.
      await Promise.all(
        Array.from({ length: 8 }, () =>
          s.transaction(async (tx) => {
            await tx.lock('device:counter');
            const seen = Number((await tx.select({ table: 'device', columns: ['seen'], where: idIs }))[0]!['seen']);
            await new Promise((r) => setTimeout(r, 10));
            await tx.update('device', { seen: seen + 1 }, idIs);
          }),
        ),
      );
      assert.equal((await s.select({ table: 'device', columns: ['seen'], where: idIs }))[0]!['seen'], 8);
      // The lock goes with the transaction, also when it rolls back.
      await assert.rejects(s.transaction(async (tx) => {
        await tx.lock('device:counter');
        throw new Error('roll back');
      }), /roll back/);
      await s.transaction(async (tx) => tx.lock('device:counter'));
    });

    test('insertMany writes every row, and inside a transaction a duplicate undoes them all', async () => {
      const s = await open();
      const rows = Array.from({ length: 7000 }, (_, i) => ({ id: `r${i}`, device: i % 2 ? 'a' : null, value: i / 2 }));
      await s.insertMany('reading', rows);
      assert.equal(await s.count({ table: 'reading' }), 7000);
      const r = await s.select({ table: 'reading', where: { kind: 'compare', op: 'eq', left: { kind: 'column', column: 'id' }, right: { kind: 'value', value: 'r6999' } } });
      assert.deepEqual(r, [{ id: 'r6999', device: 'a', value: 3499.5 }]);
      await assert.rejects(
        s.transaction((tx) => tx.insertMany('reading', [{ id: 'new-1', device: null, value: 1 }, { id: 'r0', device: null, value: 2 }])),
        DuplicateKeyError,
      );
      assert.equal(await s.count({ table: 'reading' }), 7000);
      await s.insertMany('reading', []);
    });

    test('aggregateJsonNumbers: numbers of JSON object documents per path and time bucket; anything else adds nothing', async () => {
      const s = await open();
      const t0 = 1_700_000_000_000;
      const bodies: [number, string, string | null][] = [
        [0, 'a', JSON.stringify({ temp: 20, hum: 40, state: 'on', ok: true, none: null, list: [1, 2, { x: 3 }], readings: { pressure: 1.5, deep: { v: -2 } } })],
        [999, 'a', ' \n {"temp": 22.5, "hum": 42}'],
        [1000, 'a', '{"temp": 30, "readings": {"pressure": 2.5}, "big": 1e400, "huge": 9000000000000000000}'],
        [1001, 'a', '{"huge": 9000000000000000000, "nul": "a\\u0000b", "temp": 1}'],
        [1002, 'a', '{"temp": 2, "temp": 4}'],
        [1500, 'a', 'not json'],
        [1501, 'a', '{"temp": 5'],
        [1502, 'a', '[1, 2, 3]'],
        [1503, 'a', '42'],
        [1504, 'a', '"text"'],
        [1505, 'a', null],
        [1506, 'a', '{}'],
        [1507, 'a', '{ temp: 5 }'],
        [2000, 'b', '{"temp": 99}'],
        [-1, 'a', '{"temp": -100}'],
      ];
      await s.insertMany('doc', bodies.map(([dt, owner, body], id) => ({ id, owner, at: t0 + dt, body })));
      const got = await s.aggregateJsonNumbers({ table: 'doc', where: { kind: 'compare', op: 'eq', left: { kind: 'column', column: 'owner' }, right: { kind: 'value', value: 'a' } }, json: 'body', time: 'at', origin: t0, width: 1000 });
      assert.deepEqual(got, [
        { path: 'huge', bucket: 1, min: 9e18, max: 9e18, sum: 1.8e19, count: 2 },
        { path: 'hum', bucket: 0, min: 40, max: 42, sum: 82, count: 2 },
        { path: 'readings.deep.v', bucket: 0, min: -2, max: -2, sum: -2, count: 1 },
        { path: 'readings.pressure', bucket: 0, min: 1.5, max: 1.5, sum: 1.5, count: 1 },
        { path: 'readings.pressure', bucket: 1, min: 2.5, max: 2.5, sum: 2.5, count: 1 },
        { path: 'temp', bucket: 0, min: 20, max: 22.5, sum: 42.5, count: 2 },
        // A member named twice counts twice.
        { path: 'temp', bucket: 1, min: 1, max: 30, sum: 37, count: 4 },
      ]);
      // No condition: every row at or after the origin; wider buckets.
      const all = await s.aggregateJsonNumbers({ table: 'doc', json: 'body', time: 'at', origin: t0, width: 60_000 });
      assert.deepEqual(all.find((r) => r.path === 'temp'), { path: 'temp', bucket: 0, min: 1, max: 99, sum: 178.5, count: 7 });
      assert.deepEqual(await s.aggregateJsonNumbers({ table: 'doc', json: 'body', time: 'at', origin: t0 + 10_000, width: 1000 }), []);
    });

    test('appendLog numbers rows at commit, increasing, in the order given; readLog follows the log; a rollback writes nothing', async () => {
      const s = await open();
      const first = [{ seq: null, body: 'a' }, { seq: null, body: 'b' }];
      const second = [{ seq: null, body: 'c' }];
      await s.transaction(async (tx) => {
        tx.appendLog('eventlog', 'seq', first);
        await tx.insert('device', { id: 'x', name: 'X', seen: 1, score: 0, on: 1 });
        tx.appendLog('eventlog', 'seq', second);
        tx.appendLog('eventlog', 'seq', []);
      });
      const numbers = [...first, ...second].map((r) => r.seq as unknown as number);
      assert.ok(numbers.every((n, i) => typeof n === 'number' && (i === 0 || n > numbers[i - 1]!)), `numbers written into the rows, increasing: ${numbers.join(',')}`);
      await assert.rejects(s.transaction(async (tx) => {
        tx.appendLog('eventlog', 'seq', [{ seq: null, body: 'never' }]);
        throw new Error('roll back');
      }), /roll back/);
      await s.transaction(async (tx) => tx.appendLog('eventlog', 'seq', [{ seq: null, body: 'd' }]));
      const all = await s.readLog('eventlog', 'seq', 0, 100);
      assert.deepEqual(all.map((r) => r['body']), ['a', 'b', 'c', 'd']);
      assert.deepEqual(all.slice(0, 3).map((r) => r['seq']), numbers);
      assert.deepEqual((await s.readLog('eventlog', 'seq', numbers[1]!, 1)).map((r) => r['body']), ['c'], 'after a position, at most limit');
      assert.deepEqual(await s.readLog('eventlog', 'seq', Number(all[3]!['seq']), 100), []);
      // Pruned up to the last row, numbering goes on after it.
      const last = Number(all[3]!['seq']);
      await s.delete('eventlog', { kind: 'compare', op: 'lt', left: { kind: 'column', column: 'seq' }, right: { kind: 'value', value: last } });
      const next = [{ seq: null, body: 'e' }];
      await s.transaction(async (tx) => tx.appendLog('eventlog', 'seq', next));
      assert.ok((next[0]!.seq as unknown as number) > last);
    });

    test('a write carries its log row: added with it, inside or outside a transaction, only if it changed a row', async () => {
      const s = await open();
      const entry = (body: string) => ({ table: 'eventlog', column: 'seq', rows: [{ seq: null, body }] });
      const idIs = (id: string) => ({ kind: 'compare', op: 'eq', left: { kind: 'column', column: 'id' }, right: { kind: 'value', value: id } }) as const;
      const inserted = entry('inserted');
      await s.insert('device', { id: 'w1', name: 'W1', seen: 1, score: 0, on: 1 }, inserted);
      assert.equal(typeof inserted.rows[0]!.seq, 'number', 'the number is written into the row');
      assert.equal(await s.update('device', { seen: 2 }, idIs('w1'), entry('updated')), 1);
      assert.equal(await s.update('device', { seen: 2 }, idIs('missing'), entry('no update')), 0);
      assert.equal(await s.delete('device', idIs('missing'), entry('no delete')), 0);
      // A write that fails takes its log row with it.
      await assert.rejects(s.insert('device', { id: 'w1', name: 'Other', seen: 1, score: 0, on: 1 }, entry('duplicate')), DuplicateKeyError);
      await s.transaction(async (tx) => {
        await tx.insert('device', { id: 'w2', name: 'W2', seen: 1, score: 0, on: 1 }, entry('in a transaction'));
        assert.equal(await tx.update('device', { seen: 3 }, idIs('missing'), entry('no update in a transaction')), 0);
        assert.equal(await tx.delete('device', idIs('w1'), entry('deleted in a transaction')), 1);
      });
      await assert.rejects(s.transaction(async (tx) => {
        await tx.insert('device', { id: 'w3', name: 'W3', seen: 1, score: 0, on: 1 }, entry('rolled back'));
        throw new Error('roll back');
      }), /roll back/);
      // Several rows with one write.
      await s.insert('device', { id: 'w4', name: 'W4', seen: 1, score: 0, on: 1 }, { table: 'eventlog', column: 'seq', rows: [{ seq: null, body: 'many 1' }, { seq: null, body: 'many 2' }] });
      const rows = await s.readLog('eventlog', 'seq', 0, 100);
      assert.deepEqual(rows.map((r) => r['body']), ['inserted', 'updated', 'in a transaction', 'deleted in a transaction', 'many 1', 'many 2']);
      assert.equal(rows[0]!['seq'], inserted.rows[0]!.seq);
      assert.deepEqual((await s.select({ table: 'device', columns: ['id'], orderBy: [{ column: 'id' }] })).map((r) => r['id']), ['w2', 'w4']);
    });

    test('readLog: a follower of concurrent appenders (two pools) gets every committed row once, in order, past failed commits', async () => {
      const url = engine.url();
      const a = createStore(url);
      stores.push(a);
      await a.syncSchema([devices, log]);
      // A second SQLite store in the same thread would wait for the first's write lock synchronously (the driver
      // blocks), so only processes can share a SQLite file; PostgreSQL gets a second pool, as a second node would.
      let b = a;
      if (engine.name === 'postgres') {
        b = createStore(url);
        stores.unshift(b);
        await b.syncSchema([devices, log]);
      }
      let writing = true;
      const committedRows = new Set<string>();
      const followed: Row[] = [];
      const follower = (async () => {
        let position = 0;
        for (;;) {
          const done = !writing;
          const rows = await a.readLog('eventlog', 'seq', position, 7);
          for (const r of rows) {
            assert.ok(Number(r['seq']) > position, 'in number order');
            position = Number(r['seq']);
            followed.push(r);
          }
          if (done && rows.length === 0 && followed.length >= committedRows.size) return;
          await new Promise((r) => setTimeout(r, 1));
        }
      })();
      // Transactions yield between their writes, commit in an order unrelated to when they started, and some roll
      // back; some fail at the commit itself, after their numbers were taken.
      const writers = Promise.all(
        Array.from({ length: 40 }, async (_, i) => {
          const store = i % 2 ? a : b;
          try {
            await store.transaction(async (tx) => {
              tx.appendLog('eventlog', 'seq', [{ seq: null, body: `${i}.1` }]);
              await new Promise((r) => setTimeout(r, (i * 7) % 13));
              await tx.insert('device', { id: `d${i}`, name: `D${i}`, seen: i, score: 0, on: 0 });
              tx.appendLog('eventlog', 'seq', [{ seq: null, body: `${i}.2` }]);
              if (i % 5 === 4) throw new Error('roll back');
              // Logs are written in name order: this one's numbers are taken, then the missing log fails the commit.
              if (i % 7 === 6) tx.appendLog('nosuchlog', 'seq', [{ seq: null, body: 'x' }]);
            });
            committedRows.add(`${i}.1`).add(`${i}.2`);
          } catch (e) {
            if (e instanceof Error && e.message === 'roll back') return;
            if (i % 7 !== 6) throw e;
          }
        }),
      );
      try {
        await writers;
      } finally {
        writing = false;
      }
      await Promise.race([follower, new Promise((_, reject) => setTimeout(() => reject(new Error(`the follower got ${followed.length} of ${committedRows.size} rows`)), 20_000))]);
      assert.equal(committedRows.size, 2 * (40 - 8 - 4));
      assert.deepEqual(followed.map((r) => r['body']).sort(), [...committedRows].sort(), 'every committed row once');
      const stored = await a.select({ table: 'eventlog', orderBy: [{ column: 'seq' }] });
      assert.deepEqual(followed, stored, 'in number order');
    });

    if (engine.name === 'postgres') {
      test('readLog on PostgreSQL: a number still in flight holds back the ones after it until it commits or rolls back', async () => {
        const url = engine.url();
        const s = createStore(url);
        stores.push(s);
        await s.syncSchema([log]);
        // Another session takes a number the way appendLog does (transaction id first) and keeps its transaction open.
        const u = new URL(url);
        const schema = u.searchParams.get('schema')!;
        u.searchParams.delete('schema');
        const other = new pg.Client({ connectionString: u.toString(), options: `-c search_path="${schema}"` });
        await other.connect();
        try {
          const hold = async (body: string) => {
            await other.query('BEGIN');
            await other.query('SELECT pg_current_xact_id()');
            const n = Number((await other.query("SELECT nextval('eventlog_seq_seq') AS n")).rows[0].n);
            await other.query('INSERT INTO eventlog (seq, body) VALUES ($1, $2)', [n, body]);
            return n;
          };
          const held = await hold('held');
          const later = [{ seq: null, body: 'later' }];
          await s.transaction(async (tx) => tx.appendLog('eventlog', 'seq', later));
          assert.ok((later[0]!.seq as unknown as number) > held);
          assert.deepEqual(await s.readLog('eventlog', 'seq', 0, 10), [], 'nothing past a number in flight');
          assert.deepEqual(await s.readLog('eventlog', 'seq', 0, 10), []);
          await other.query('COMMIT');
          assert.deepEqual((await s.readLog('eventlog', 'seq', 0, 10)).map((r) => r['body']), ['held', 'later']);

          // Rolled back: its number is passed over once nothing that could hold it is in flight.
          const position = later[0]!.seq as unknown as number;
          await hold('rolled back');
          const after = [{ seq: null, body: 'after' }];
          await s.transaction(async (tx) => tx.appendLog('eventlog', 'seq', after));
          assert.deepEqual(await s.readLog('eventlog', 'seq', position, 10), []);
          await other.query('ROLLBACK');
          const got = await until(async () => {
            const rows = await s.readLog('eventlog', 'seq', position, 10);
            return rows.length > 0 ? rows : undefined;
          });
          assert.deepEqual(got.map((r) => r['body']), ['after']);
        } finally {
          await other.end();
        }
      });
    }

    test('schema sync adds new columns and keeps data', async () => {
      const s = await open();
      await s.insert('device', { id: 'a', name: 'A', seen: 1, score: 0, on: 1 });
      await s.syncSchema([{ ...devices, columns: [...devices.columns, { name: 'extra', type: 'text' }] }]);
      await s.update('device', { extra: 'x' }, { kind: 'true' });
      assert.deepEqual(await s.select({ table: 'device', columns: ['id', 'extra'] }), [{ id: 'a', extra: 'x' }]);
    });
  });
}
