import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { DurableRecordEvent, RecordEventConsumer } from '../../src/records/index.js';
import { createStore, eq, isIn, PostgresStore, type Row, type Store } from '../../src/store/index.js';
import { engines } from '../helpers/engines.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { dropStore, sharedBuses, sharedTls, startNode, type TestNode } from '../scale-out/nodes.js';

const DAY = 24 * 3_600_000;
const STATUS_SUCCEEDED = 30;
const DELIVERED = 192350001;

/** Polls until `probe` returns a value (not undefined), or fails naming `what`. */
async function until<T>(probe: () => Promise<T | undefined>, what: string, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function json<T = Record<string, unknown>>(res: Response, status: number): Promise<T> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  return (text ? JSON.parse(text) : {}) as T;
}

async function createAccount(srv: { fetch(path: string, init?: RequestInit): Promise<Response> }, data: Record<string, unknown>): Promise<string> {
  const res = await srv.fetch('accounts', { method: 'POST', headers: { 'content-type': 'application/json', prefer: 'return=representation' }, body: JSON.stringify(data) });
  return (await json<{ accountid: string }>(res, 201)).accountid;
}

/** A `$batch` with one change set of the given requests (method, path, body). */
function changeSet(requests: readonly [string, string, Record<string, unknown>?][]): { body: string; contentType: string } {
  const batch = `batch_${randomUUID()}`;
  const cs = `changeset_${randomUUID()}`;
  const parts = requests.map(([method, path, body], i) =>
    `--${cs}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: ${i + 1}\r\n\r\n` +
    `${method} /api/data/v9.2/${path} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n${body ? JSON.stringify(body) : ''}\r\n`);
  const body = `--${batch}\r\nContent-Type: multipart/mixed; boundary=${cs}\r\n\r\n${parts.join('')}--${cs}--\r\n--${batch}--\r\n`;
  return { body, contentType: `multipart/mixed; boundary=${batch}` };
}

/** Rows of an internal table, straight from the store. */
async function rows(store: Store, table: string, where?: Parameters<Store['select']>[0]['where']): Promise<Row[]> {
  return store.select({ table, where, orderBy: [{ column: table === 'ccs_recordevent' ? 'seq' : 'name' }] });
}

async function positionOf(store: Store, consumer: string): Promise<number> {
  const [row] = await store.select({ table: 'ccs_recordeventconsumer', where: eq('name', consumer) });
  return row ? Number(row['position']) : -1;
}

/** Waits until the named consumers' stored checkpoints have passed `seq` (they are written about once a second). */
function passed(store: Store, consumers: readonly string[], seq: number): Promise<true> {
  return until(async () => {
    for (const c of consumers) if ((await positionOf(store, c)) < seq) return undefined;
    return true;
  }, `checkpoints of ${consumers.join(', ')} past ${seq}`);
}

/** A consumer that records what it gets, once it has its checkpoint (it sees every event written after). */
async function probe(records: TestServer['app']['records'], name: string, handle?: (events: readonly DurableRecordEvent[]) => Promise<void>): Promise<{ got: DurableRecordEvent[]; consumer: RecordEventConsumer }> {
  const got: DurableRecordEvent[] = [];
  const consumer = records.consume(name, async (events) => {
    if (handle) await handle(events);
    got.push(...events);
  });
  await consumer.ready;
  return { got, consumer };
}

/** An HTTP endpoint that counts the webhook posts it gets per record. */
class Receiver {
  readonly bodies: { record: Record<string, unknown>; message: string }[] = [];
  #server: Server | undefined;
  url = '';

  async listen(): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { record: Record<string, unknown>; message: string });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    return this;
  }

  postsFor(accountId: string): number {
    return this.bodies.filter((b) => b.record['accountid'] === accountId).length;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}

for (const engine of engines()) {
  describe(`durable record events on ${engine.name}`, () => {
    let srv: TestServer;
    let store: Store;
    let offset = 0;
    const clock = () => Date.now() + offset;

    before(async () => {
      srv = await startServer(engine, { clock, settings: { 'rate-limit': '0' } });
      store = srv.app.store;
    });
    after(() => srv.stop());

    test('every write stores its event in its own transaction; a consumer gets them in commit order once committed', async () => {
      const { got, consumer } = await probe(srv.app.records, 'order');
      const { UserId } = await json<{ UserId: string }>(await srv.fetch('WhoAmI'), 200);
      const account = await createAccount(srv, { name: 'Outbox One' });
      await json(await srv.fetch(`accounts(${account})`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Outbox One renamed' }) }), 204);
      const [c1, c2] = [randomUUID(), randomUUID()];
      const ok = changeSet([
        ['POST', 'contacts', { contactid: c1, lastname: 'first' }],
        ['POST', 'contacts', { contactid: c2, lastname: 'second' }],
      ]);
      assert.equal((await srv.fetch('$batch', { method: 'POST', headers: { 'content-type': ok.contentType }, body: ok.body })).status, 200);
      // A change set that fails: its first create is rolled back, and so is its event.
      const doomed = randomUUID();
      const bad = changeSet([
        ['POST', 'contacts', { contactid: doomed, lastname: 'rolled back' }],
        ['POST', 'contacts', { lastname: 'bad', nosuchcolumn: 1 }],
      ]);
      const badRes = await srv.fetch('$batch', { method: 'POST', headers: { 'content-type': bad.contentType }, body: bad.body });
      assert.match(await badRes.text(), /nosuchcolumn/);
      await json(await srv.fetch(`accounts(${account})`, { method: 'DELETE' }), 204);

      const mine = (e: DurableRecordEvent) => [account, c1, c2, doomed].includes(e.id);
      await until(async () => (got.some((e) => e.id === account && e.type === 'deleted') ? true : undefined), 'the delete event');
      const events = got.filter(mine);
      assert.deepEqual(events.map((e) => [e.table, e.id, e.type]), [
        ['account', account, 'created'],
        ['account', account, 'updated'],
        ['contact', c1, 'created'],
        ['contact', c2, 'created'],
        ['account', account, 'deleted'],
      ]);
      assert.deepEqual(events[1]!.columns, ['name']);
      assert.equal(events[3]!.sequence, events[2]!.sequence + 1, 'one transaction, consecutive numbers');
      for (let i = 1; i < got.length; i++) assert.ok(got[i]!.sequence > got[i - 1]!.sequence, 'in sequence order');
      for (const e of events) {
        assert.equal(e.userId, UserId);
        assert.equal(e.principal?.userId, UserId, 'written in this process: the writer’s principal comes along');
      }
      // The outbox holds the same, and nothing of the rolled-back change set.
      const stored = await rows(store, 'ccs_recordevent', isIn('recordid', [account, c1, c2, doomed]));
      assert.deepEqual(stored.map((r) => [Number(r['seq']), r['tablename'], r['recordid'], r['eventtype'], r['userid']]),
        events.map((e) => [e.sequence, e.table, e.id, e.type, UserId]));
      assert.equal((await srv.fetch(`contacts(${doomed})`)).status, 404);

      // Stopped, the consumer's checkpoint is where it got to; retired, it is gone.
      await consumer.stop();
      assert.equal(await positionOf(store, 'order'), got[got.length - 1]!.sequence);
      await srv.app.records.events!.retire('order');
      assert.equal(await positionOf(store, 'order'), -1);
    });

    test('a failing handler gets the same events again, in order, until it succeeds', async () => {
      let calls = 0;
      const attempts: number[][] = [];
      const { got, consumer } = await probe(srv.app.records, 'flaky', async (events) => {
        attempts.push(events.map((e) => e.sequence));
        if (++calls <= 2) throw new Error('endpoint down');
      });
      const account = await createAccount(srv, { name: 'Flaky' });
      await until(async () => (got.some((e) => e.id === account) ? true : undefined), 'the event handled');
      assert.ok(attempts.length >= 3);
      assert.equal(attempts[1]![0], attempts[0]![0], 'the same first event after a failure');
      assert.equal(attempts[2]![0], attempts[0]![0]);
      assert.equal(got.filter((e) => e.id === account).length, 1, 'handed over once it succeeded');
      await consumer.stop();
      assert.equal(await positionOf(store, 'flaky'), got[got.length - 1]!.sequence);
      await srv.app.records.events!.retire('flaky');
    });

    test('bad use: a second consumer of a name in one process is refused; the log is not in the Web API', async () => {
      const { consumer } = await probe(srv.app.records, 'twice');
      assert.throws(() => srv.app.records.consume('twice', async () => undefined), /A record event consumer named 'twice' is already registered in this process\./);
      await consumer.stop();
      const res = await srv.fetch('ccs_recordevents');
      assert.equal(res.status, 404);
      assert.match(await res.text(), /Resource not found for the segment 'ccs_recordevents'/);
      // The server keeps serving, and the name is free again.
      const again = await probe(srv.app.records, 'twice');
      await createAccount(srv, { name: 'Still serving' });
      await srv.app.records.events!.retire('twice');
    });

    test('pruning deletes events every consumer has passed once older than the retention, keeps the newest; numbering goes on', async () => {
      let open: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (open = resolve));
      // A consumer that is behind: what it has not handled stays.
      await probe(srv.app.records, 'laggard', () => gate);
      try {
        const held = [await createAccount(srv, { name: 'Prune 1' }), await createAccount(srv, { name: 'Prune 2' })];
        const heldSeqs = (await rows(store, 'ccs_recordevent', isIn('recordid', held))).map((r) => Number(r['seq']));
        await passed(store, ['workflows', 'webhooks'], Math.max(...heldSeqs));
        offset += 2 * DAY;
        const events = srv.app.records.events!;
        assert.ok((await events.prune()) > 0, 'older events all consumers passed are deleted');
        const left = (await rows(store, 'ccs_recordevent')).map((r) => Number(r['seq']));
        assert.ok(heldSeqs.every((s) => left.includes(s)), 'events the laggard has not passed stay');
        assert.ok(left[0]! <= Math.min(...heldSeqs));

        open();
        const last = left[left.length - 1]!;
        await passed(store, ['laggard', 'workflows', 'webhooks'], last);
        await events.prune();
        assert.deepEqual((await rows(store, 'ccs_recordevent')).map((r) => Number(r['seq'])), [last], 'only the newest event is left');

        // New events are numbered after it, and are kept while younger than the retention even once passed.
        const fresh = [await createAccount(srv, { name: 'Prune 3' }), await createAccount(srv, { name: 'Prune 4' })];
        const freshSeqs = (await rows(store, 'ccs_recordevent', isIn('recordid', fresh))).map((r) => Number(r['seq']));
        assert.ok(freshSeqs[0]! > last && freshSeqs[1]! > freshSeqs[0]!, `numbered after the newest: ${freshSeqs.join(', ')} after ${last}`);
        await passed(store, ['laggard', 'workflows', 'webhooks'], freshSeqs[1]!);
        assert.equal(await events.prune(), 1, 'the old newest event goes, the young ones stay');
        assert.deepEqual((await rows(store, 'ccs_recordevent')).map((r) => Number(r['seq'])), freshSeqs);
      } finally {
        open();
        await srv.app.records.events!.retire('laggard');
      }
    });
  });

  describe(`record events across a crash on ${engine.name}`, () => {
    test('killed right after a write: the next start makes its workflow run and webhook delivery once; a replay adds none', { timeout: 180_000 }, async () => {
      const receiver = await new Receiver().listen();
      const storeUrl = engine.url();
      // Past the killed process's lease: the next start takes over at once rather than waiting for it to expire.
      const later = () => Date.now() + 60_000;
      const first = await startServer(engine, { storeUrl, settings: { 'rate-limit': '0' } });
      const dataDir = first.dataDir;
      let srv: TestServer | undefined;
      const inspect = createStore(storeUrl);
      try {
        const workflow = await json<{ workflowid: string }>(await first.fetch('workflows', {
          method: 'POST',
          headers: { 'content-type': 'application/json', prefer: 'return=representation' },
          body: JSON.stringify({
            name: 'Crash: touch new accounts', primaryentity: 'account', category: 0, mode: 0, statecode: 1, statuscode: 2, triggeroncreate: true,
            ccs_steps: JSON.stringify([{ update: 'account', values: { description: 'touched by the workflow' } }]),
          }),
        }), 201);
        const webhook = await json<{ ccs_webhookid: string }>(await first.fetch('ccs_webhooks', {
          method: 'POST',
          headers: { 'content-type': 'application/json', prefer: 'return=representation' },
          body: JSON.stringify({ ccs_name: 'crash-hook', ccs_url: receiver.url, ccs_secret: 's3cret', ccs_table: 'account', ccs_messages: 'create' }),
        }), 201);
        await first.stop({ drop: false });

        // A server process writes an account and is killed at once.
        const name = `Crash ${randomUUID().slice(0, 8)}`;
        const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./write-then-die.ts', import.meta.url)), storeUrl, dataDir, name], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (b: Buffer) => (out += b.toString()));
        const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
        assert.equal(signal, 'SIGKILL');
        const account = out.trim();
        assert.match(account, /^[0-9a-f-]{36}$/, `the child wrote an account: ${out}`);

        // The write committed with its event; nothing reacted to it.
        const [event] = await rows(inspect, 'ccs_recordevent', eq('recordid', account));
        assert.ok(event, 'the event was stored with the write');
        const seq = Number(event['seq']);
        assert.deepEqual(await inspect.select({ table: 'asyncoperation', where: eq('regardingobjectid', account) }), [], 'no run before the restart');
        assert.deepEqual(await inspect.select({ table: 'ccs_webhookdelivery', where: eq('ccs_recordid', account) }), [], 'no delivery before the restart');
        assert.ok((await positionOf(inspect, 'workflows')) < seq && (await positionOf(inspect, 'webhooks')) < seq);

        srv = await startServer(engine, { storeUrl, dataDir, clock: later, settings: { 'rate-limit': '0' } });
        const run = await until(async () => {
          const list = await inspect.select({ table: 'asyncoperation', where: eq('regardingobjectid', account) });
          return list.length === 1 && Number(list[0]!['statuscode']) === STATUS_SUCCEEDED ? list[0] : undefined;
        }, 'the run, succeeded');
        assert.equal(run['workflowactivationid'], workflow.workflowid);
        assert.equal(Number(run['ccs_eventsequence']), seq);
        await until(async () => (receiver.postsFor(account) >= 1 ? true : undefined), 'the webhook post');
        const deliveries = await inspect.select({ table: 'ccs_webhookdelivery', where: eq('ccs_recordid', account) });
        assert.equal(deliveries.length, 1);
        assert.equal(deliveries[0]!['ccs_webhook'], webhook.ccs_webhookid);
        assert.equal(Number(deliveries[0]!['ccs_eventsequence']), seq);
        await until(async () => (Number((await inspect.select({ table: 'ccs_webhookdelivery', where: eq('ccs_recordid', account) }))[0]!['ccs_status']) === DELIVERED ? true : undefined), 'delivered');
        const account1 = await json<{ description: string }>(await srv.fetch(`accounts(${account})?$select=description`), 200);
        assert.equal(account1.description, 'touched by the workflow');

        // Replay: both consumers are sent back to before the event; it is handed over again and changes nothing.
        await srv.stop({ drop: false });
        srv = undefined;
        await inspect.update('ccs_recordeventconsumer', { position: seq - 1 }, isIn('name', ['workflows', 'webhooks']));
        srv = await startServer(engine, { storeUrl, dataDir, clock: later, settings: { 'rate-limit': '0' } });
        await passed(inspect, ['workflows', 'webhooks'], seq);
        await srv.stop({ drop: false });
        srv = undefined;
        assert.equal((await inspect.select({ table: 'asyncoperation', where: eq('regardingobjectid', account) })).length, 1, 'still one run');
        assert.equal((await inspect.select({ table: 'ccs_webhookdelivery', where: eq('ccs_recordid', account) })).length, 1, 'still one delivery');
        assert.equal(receiver.postsFor(account), 1, 'posted once');
      } finally {
        await srv?.stop({ drop: false });
        if (inspect instanceof PostgresStore) await inspect.dropSchema();
        await inspect.close();
        await receiver.close();
      }
    });
  });

  describe(`record events when the lease holder dies on ${engine.name}`, () => {
    test('a running process takes the lease over once it expires and handles what the dead holder left', { timeout: 180_000 }, async () => {
      const storeUrl = engine.url();
      const first = await startServer(engine, { storeUrl, settings: { 'rate-limit': '0' } });
      const dataDir = first.dataDir;
      const inspect = createStore(storeUrl);
      let b: App | undefined;
      let child: ReturnType<typeof spawn> | undefined;
      try {
        await json(await first.fetch('workflows', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            name: 'Takeover: touch new accounts', primaryentity: 'account', category: 0, mode: 0, statecode: 1, statuscode: 2, triggeroncreate: true,
            ccs_steps: JSON.stringify([{ update: 'account', values: { description: 'touched after the takeover' } }]),
          }),
        }), 204);
        await first.stop({ drop: false });

        // The holder: started first, it takes the leases (for 1.5 s at a time, renewed while it lives).
        child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./write-then-die.ts', import.meta.url)), storeUrl, dataDir, 'Left by the dead holder', '1500', 'wait'], { stdio: ['pipe', 'pipe', 'inherit'] });
        let out = '';
        child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
        const exited = new Promise<NodeJS.Signals | null>((resolve) => child!.on('exit', (_code, sig) => resolve(sig)));
        await until(async () => (out.includes('ready\n') ? true : undefined), 'the holder started');
        const pid = child.pid!;
        await until(async () => ((await rows(inspect, 'ccs_recordeventconsumer')).every((r) => String(r['owner']).includes(`:${pid}:`)) ? true : undefined), 'the holder’s leases');

        // Another process on the same store stands by.
        const flags = new Map(Object.entries({
          'data-dir': dataDir, store: storeUrl, 'http-port': '0', 'https-port': '0', 'mqtts-port': '0', host: '127.0.0.1', 'admin-token': 'test-admin-token', 'log-level': 'silent',
        }));
        b = await createApp(loadConfig(flags, {}), { recordEvents: { leaseMs: 1500, pollMs: 100 } });
        await b.start();
        const standingBy = (await rows(inspect, 'ccs_recordeventconsumer')).map((r) => String(r['owner']));
        assert.ok(standingBy.every((o) => o.includes(`:${pid}:`)), 'the live holder keeps its leases');

        child.stdin!.write('go\n');
        assert.equal(await exited, 'SIGKILL');
        const account = out.replace('ready\n', '').trim();
        assert.match(account, /^[0-9a-f-]{36}$/);
        const run = await until(async () => {
          const list = await inspect.select({ table: 'asyncoperation', where: eq('regardingobjectid', account) });
          return list.length === 1 && Number(list[0]!['statuscode']) === STATUS_SUCCEEDED ? list[0] : undefined;
        }, 'the run made by the process that took over');
        assert.ok(run);
        const owners = (await rows(inspect, 'ccs_recordeventconsumer')).map((r) => String(r['owner']));
        assert.ok(owners.every((o) => !o.includes(`:${pid}:`)), `the leases moved: ${owners.join(', ')}`);
        await until(async () => ((await inspect.select({ table: 'account', columns: ['description'], where: eq('accountid', account) }))[0]?.['description'] === 'touched after the takeover' ? true : undefined), 'the workflow’s update');
        assert.equal((await inspect.select({ table: 'asyncoperation', where: eq('regardingobjectid', account) })).length, 1);
      } finally {
        if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await b?.stop();
        if (inspect instanceof PostgresStore) await inspect.dropSchema();
        await inspect.close();
      }
    });
  });

  describe(`record events on two nodes (${engine.name})`, () => {
    const bus = sharedBuses()[0]!();
    const tls = sharedTls();
    let a: TestNode;
    let b: TestNode;
    /** Node B's store: it outlives A. */
    let store: Store;

    before(async () => {
      const storeUrl = engine.url();
      a = await startNode({ storeUrl, bus: await bus.connect(), tls });
      store = a.app.store;
      // The first node holds the workflow and webhook consumers before the second starts.
      await until(async () => ((await rows(store, 'ccs_recordeventconsumer')).every((r) => r['owner'] !== null) ? true : undefined), 'the leases taken');
      b = await startNode({ storeUrl, bus: await bus.connect(), tls, roles: 'api' });
      store = b.app.store;
    });
    after(async () => {
      await a?.stop();
      if (b) {
        await dropStore(b.app);
        await b.stop();
      }
      await bus.cleanup();
    });

    test('an event written on one node is consumed once, by the lease holder; a clean stop hands the lease over', { timeout: 120_000 }, async () => {
      const onA = await probe(a.app.records, 'probe');
      // A registered it first, so A holds its lease.
      await until(async () => ((await rows(store, 'ccs_recordeventconsumer', eq('name', 'probe')))[0]?.['owner'] ? true : undefined), 'the probe lease on A');
      const onB = await probe(b.app.records, 'probe');
      const viaB = { fetch: (path: string, init?: RequestInit) => b.webApi(path, init) };
      await json(await b.webApi('workflows', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          name: 'Two nodes: touch new accounts', primaryentity: 'account', category: 0, mode: 0, statecode: 1, statuscode: 2, triggeroncreate: true,
          ccs_steps: JSON.stringify([{ update: 'account', values: { description: 'touched' } }]),
        }),
      }), 204);

      const first = await createAccount(viaB, { name: 'Written on B' });
      await until(async () => (onA.got.some((e) => e.id === first) ? true : undefined), 'the event on A');
      const runOf = (account: string) => until(async () => {
        const list = await store.select({ table: 'asyncoperation', where: eq('regardingobjectid', account) });
        return list.length > 0 && list.every((r) => Number(r['statuscode']) === STATUS_SUCCEEDED) ? list : undefined;
      }, `the run of ${account}`);
      const runs1 = await runOf(first);
      assert.equal(runs1.length, 1);
      assert.equal(runs1[0]!['hostid'], a.info.nodeId, 'the run is made and executed by the lease holder');

      // A stops cleanly: B takes the leases over and goes on from A's last checkpoint.
      await a.stop();
      const second = await createAccount(viaB, { name: 'Written on B, A gone' });
      await until(async () => (onB.got.some((e) => e.id === second) ? true : undefined), 'the event on B');
      const runs2 = await runOf(second);
      assert.equal(runs2.length, 1);
      assert.equal(runs2[0]!['hostid'], b.info.nodeId);
      assert.equal((await store.select({ table: 'asyncoperation', where: eq('regardingobjectid', first) })).length, 1, 'the first account still has one run');

      const seenA = new Set(onA.got.map((e) => e.sequence));
      assert.equal(onB.got.some((e) => e.id === first), false, 'the first event went to A only');
      assert.deepEqual(onB.got.filter((e) => seenA.has(e.sequence)).map((e) => e.sequence), [], 'no event handled by both nodes');
      await onB.consumer.stop();
    });
  });
}
