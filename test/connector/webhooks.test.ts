import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { DynamicsWebApi } from 'dynamics-web-api';
import { engines } from '../helpers/engines.js';
import { ADMIN_TOKEN, startServer, type TestServer } from '../helpers/server.js';
import { eventually, rejectsWith } from './helpers.js';

const STATUS = { pending: 192350000, delivered: 192350001, retrying: 192350002, failed: 192350003 };
const HOUR = 3_600_000;

interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** A real HTTP endpoint on an ephemeral port that records what it gets and answers `status`. */
class Receiver {
  readonly received: Received[] = [];
  status = 200;
  #server: Server | undefined;
  port = 0;

  async listen(port = 0): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(this.status, { 'content-type': 'text/plain' }).end(this.status === 200 ? 'ok' : 'unavailable');
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  async close(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  bodies(): Record<string, unknown>[] {
    return this.received.map((r) => JSON.parse(r.body) as Record<string, unknown>);
  }
}

/** A port nothing listens on (for now). */
async function freePort(): Promise<number> {
  const r = await new Receiver().listen();
  const port = r.port;
  await r.close();
  return port;
}

interface Delivery {
  readonly ccs_webhookdeliveryid: string;
  readonly ccs_status: number;
  readonly ccs_attempts: number;
  readonly ccs_laststatuscode: number | null;
  readonly ccs_lasterror: string | null;
  readonly ccs_deliveredon: string | null;
  readonly ccs_nextattempton: string | null;
  readonly ccs_message: string;
  readonly ccs_recordid: string;
  readonly ccs_payload: string;
}

for (const engine of engines()) {
  describe(`webhooks on ${engine.name}`, () => {
    let srv: TestServer;
    let api: DynamicsWebApi;
    // The server's clock: tests move it forward to make retries due instead of waiting for them.
    let offset = 0;
    const clock = () => Date.now() + offset;
    const receivers: Receiver[] = [];
    const receiver = async (port?: number) => {
      const r = await new Receiver().listen(port);
      receivers.push(r);
      return r;
    };

    before(async () => {
      srv = await startServer(engine, { clock, settings: { 'rate-limit': '0' } });
      api = new DynamicsWebApi({ serverUrl: srv.url, onTokenRefresh: async () => ADMIN_TOKEN });
    });
    after(async () => {
      for (const r of receivers) await r.close();
      await srv.stop();
    });

    const webhook = (data: Record<string, unknown>) =>
      api.create<Record<string, unknown>, string>({
        collection: 'ccs_webhooks',
        data: { ccs_name: `hook-${randomUUID().slice(0, 8)}`, ccs_secret: 's3cret', ccs_table: 'account', ccs_messages: 'create,update,delete', ...data },
      });
    const account = (name: string, data: Record<string, unknown> = {}) => api.create<Record<string, unknown>, string>({ collection: 'accounts', data: { name, ...data } });
    const deliveriesOf = async (webhookId: string): Promise<Delivery[]> =>
      (await api.retrieveAll<Delivery>({ collection: 'ccs_webhookdeliveries', filter: `_ccs_webhook_value eq ${webhookId}`, orderBy: ['createdon', 'ccs_webhookdeliveryid'] })).value;
    const allIn = (webhookId: string, n: number, status: number, what: string) =>
      eventually(async () => {
        const list = await deliveriesOf(webhookId);
        return list.length === n && list.every((d) => d.ccs_status === status) ? list : undefined;
      }, 20000, what);
    const sign = (body: string, secret: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

    test('an event is posted as signed JSON; the delivery records the outcome', async () => {
      const r = await receiver();
      const hookName = `accounts-${randomUUID().slice(0, 8)}`;
      const hook = await webhook({ ccs_name: hookName, ccs_url: r.url, ccs_secret: 'top-secret' });
      const acc = await account('Northwind', { accountnumber: 'NW-1' });
      const [delivery] = await allIn(hook, 1, STATUS.delivered, 'create delivered');
      assert.equal(r.received.length, 1);
      const [got] = r.received as [Received];
      assert.equal(got.headers['content-type'], 'application/json');
      assert.equal(got.headers['x-ccs-event'], 'account.create');
      assert.equal(got.headers['x-ccs-delivery'], delivery!.ccs_webhookdeliveryid);
      assert.equal(got.headers['x-ccs-signature'], sign(got.body, 'top-secret'), 'HMAC-SHA256 of the raw body with the secret');
      assert.notEqual(got.headers['x-ccs-signature'], sign(got.body, 'wrong'));
      const body = JSON.parse(got.body) as Record<string, unknown> & { record: Record<string, unknown> };
      assert.equal(body['id'], delivery!.ccs_webhookdeliveryid);
      assert.equal(body['table'], 'account');
      assert.equal(body['message'], 'create');
      assert.equal(body['webhook'], hookName);
      assert.ok(!Number.isNaN(Date.parse(String(body['occurredon']))));
      assert.equal(body.record['accountid'], acc);
      assert.equal(body.record['name'], 'Northwind');
      assert.equal(body.record['accountnumber'], 'NW-1');
      assert.ok('@odata.etag' in body.record, 'the record as the Web API returns it');
      assert.equal(delivery!.ccs_attempts, 1);
      assert.equal(delivery!.ccs_laststatuscode, 200);
      assert.ok(delivery!.ccs_deliveredon);
      assert.equal(delivery!.ccs_payload, got.body, 'the delivery holds the exact body');

      await api.update({ collection: 'accounts', key: acc, data: { name: 'Northwind Traders' } });
      await api.deleteRecord({ collection: 'accounts', key: acc });
      await allIn(hook, 3, STATUS.delivered, 'update and delete delivered');
      const [, upd, del] = r.bodies() as [unknown, { message: string; record: Record<string, unknown> }, { message: string; record: Record<string, unknown> }];
      assert.equal(upd.message, 'update');
      assert.equal(upd.record['name'], 'Northwind Traders');
      assert.equal(del.message, 'delete');
      assert.deepEqual(del.record, { accountid: acc }, 'a delete carries the id only');
      assert.equal(r.received[2]!.headers['x-ccs-event'], 'account.delete');
    });

    test('only the subscribed messages, and only records matching the filter, are sent', async () => {
      const r = await receiver();
      const hook = await webhook({ ccs_url: r.url, ccs_messages: 'create', ccs_filter: "startswith(name,'Match') and accountnumber ne null" });
      await account('Other', { accountnumber: 'X' });
      await account('Matching but no number');
      const hit = await account('Match Ltd', { accountnumber: 'M-1' });
      await api.update({ collection: 'accounts', key: hit, data: { name: 'Match Ltd 2' } });
      const marker = await account('Match marker', { accountnumber: 'M-2' });
      // Events are handled in order: once the last one's delivery exists, the earlier ones were judged.
      const list = await allIn(hook, 2, STATUS.delivered, 'matching records delivered');
      assert.deepEqual(list.map((d) => d.ccs_recordid).sort(), [hit, marker].sort());
      assert.ok(list.every((d) => d.ccs_message === 'create'));
      assert.equal(r.received.length, 2);
    });

    test('an endpoint that is down gets retries with backoff, then every event once it is up', async () => {
      const port = await freePort();
      const hook = await webhook({ ccs_url: `http://127.0.0.1:${port}/hook`, ccs_messages: 'create' });
      const ids = [await account('Down 1'), await account('Down 2'), await account('Down 3')];
      const retrying = await allIn(hook, 3, STATUS.retrying, 'first attempts failed');
      for (const d of retrying) {
        assert.equal(d.ccs_attempts, 1);
        assert.equal(d.ccs_laststatuscode, null);
        assert.match(d.ccs_lasterror!, /fetch failed|ECONNREFUSED/);
        assert.ok(Date.parse(d.ccs_nextattempton!) > clock() - 1000, 'the next attempt is in the future');
      }
      const r = await receiver(port);
      offset += HOUR;
      const delivered = await allIn(hook, 3, STATUS.delivered, 'delivered once the endpoint is up');
      assert.deepEqual(delivered.map((d) => d.ccs_attempts), [2, 2, 2]);
      assert.deepEqual(r.bodies().map((b) => (b['record'] as Record<string, unknown>)['accountid']).sort(), [...ids].sort(), 'each event once, none lost');
    });

    test('a delivery is Failed after the webhook’s max attempts', async () => {
      const r = await receiver();
      r.status = 503;
      const hook = await webhook({ ccs_url: r.url, ccs_messages: 'create', ccs_maxattempts: 3 });
      await account('Always failing');
      const [failed] = await eventually(async () => {
        const list = await deliveriesOf(hook);
        if (list[0]?.ccs_status === STATUS.failed) return list;
        offset += HOUR; // make the next retry due
        return undefined;
      }, 30000, 'delivery failed');
      assert.equal(failed!.ccs_attempts, 3);
      assert.equal(failed!.ccs_laststatuscode, 503);
      assert.match(failed!.ccs_lasterror!, /HTTP 503: unavailable/);
      assert.equal(failed!.ccs_nextattempton, null);
      assert.equal(r.received.length, 3);
      // Nothing more is sent.
      offset += HOUR;
      await account('Marker');
      assert.equal(r.received.length, 3);
    });

    test('bad definitions are refused with a 400 naming the column; the server keeps serving', async () => {
      const bad = (data: Record<string, unknown>, pattern: RegExp) => rejectsWith(webhook({ ccs_url: 'http://127.0.0.1:9/x', ...data }), 400, pattern);
      await bad({ ccs_url: 'not a url' }, /Invalid value for 'ccs_url' of ccs_webhook: 'not a url' is not an absolute URL/);
      await bad({ ccs_url: 'ftp://example.com/x' }, /'ccs_url'.*scheme must be http or https, not 'ftp'/);
      await bad({ ccs_table: 'nosuchtable' }, /'ccs_table'.*no table named 'nosuchtable'/);
      await bad({ ccs_table: 'ccs_webhookdelivery' }, /'ccs_table'.*cannot be subscribed to/);
      await bad({ ccs_messages: 'create,insert' }, /'ccs_messages'.*create, update, delete/);
      await bad({ ccs_messages: ' , ' }, /'ccs_messages'/);
      await bad({ ccs_filter: "name eq" }, /'ccs_filter'/);
      await bad({ ccs_filter: "nosuchcolumn eq 'x'" }, /'ccs_filter'.*Could not find a property named 'nosuchcolumn'/);
      await bad({ ccs_secret: null }, /'ccs_secret'.*a secret is required/);
      await bad({ ccs_maxattempts: 0 }, /ccs_maxattempts/);
      const ok = await webhook({ ccs_url: 'https://example.com/ok', ccs_name: 'unique-name' });
      await rejectsWith(api.update({ collection: 'ccs_webhooks', key: ok, data: { ccs_url: 'mailto:x@example.com' } }), 400, /'ccs_url'/);
      await rejectsWith(api.update({ collection: 'ccs_webhooks', key: ok, data: { ccs_filter: 'name eq 1 eq' } }), 400, /'ccs_filter'/);
      await rejectsWith(webhook({ ccs_url: 'https://example.com/ok', ccs_name: 'unique-name' }), 412, /matching key values already exists/);
      // A valid change still works.
      await api.update({ collection: 'ccs_webhooks', key: ok, data: { ccs_filter: "name ne 'x'" } });
    });

    test('the secret is never readable: not in reads, $select, $filter, $orderby, the property or an expansion', async () => {
      const r = await receiver();
      const hook = await webhook({ ccs_url: r.url, ccs_secret: 'do-not-leak', ccs_messages: 'create' });
      const row = await api.retrieve<Record<string, unknown>>({ collection: 'ccs_webhooks', key: hook });
      assert.ok(!('ccs_secret' in row));
      assert.ok(!JSON.stringify(row).includes('do-not-leak'));
      const list = await (await srv.fetch('ccs_webhooks')).text();
      assert.ok(!list.includes('do-not-leak') && !list.includes('ccs_secret'));
      for (const q of ['$select=ccs_secret', "$filter=ccs_secret eq 'do-not-leak'", "$filter=startswith(ccs_secret,'d')", '$orderby=ccs_secret']) {
        const res = await srv.fetch(`ccs_webhooks?${q}`);
        assert.equal(res.status, 400, q);
        assert.match(((await res.json()) as { error: { message: string } }).error.message, /'ccs_secret' .* is write-only/);
      }
      const prop = await srv.fetch(`ccs_webhooks(${hook})/ccs_secret`);
      assert.equal(prop.status, 400);
      const rep = await srv.fetch('ccs_webhooks', {
        method: 'POST',
        headers: { 'content-type': 'application/json', prefer: 'return=representation' },
        body: JSON.stringify({ ccs_name: `rep-${randomUUID().slice(0, 8)}`, ccs_url: r.url, ccs_secret: 'also-hidden', ccs_table: 'contact', ccs_messages: 'create' }),
      });
      assert.equal(rep.status, 201);
      assert.ok(!(await rep.text()).includes('also-hidden'));
      await account('Secret test');
      await allIn(hook, 1, STATUS.delivered, 'delivered');
      const expanded = await (await srv.fetch(`ccs_webhookdeliveries?$filter=_ccs_webhook_value eq ${hook}&$expand=ccs_Webhook`)).text();
      assert.ok(expanded.includes('ccs_Webhook') && !expanded.includes('do-not-leak'));
      const attrs = await (await srv.fetch("EntityDefinitions(LogicalName='ccs_webhook')/Attributes(LogicalName='ccs_secret')")).json() as Record<string, unknown>;
      assert.equal(attrs['IsValidForRead'], false);
      // The secret can still be changed, and signs the next deliveries.
      await api.update({ collection: 'ccs_webhooks', key: hook, data: { ccs_secret: 'rotated' } });
      await account('After rotation');
      await allIn(hook, 2, STATUS.delivered, 'second delivered');
      const last = r.received[r.received.length - 1]!;
      assert.equal(last.headers['x-ccs-signature'], sign(last.body, 'rotated'));
    });
  });

  describe(`webhook deliveries across a restart on ${engine.name}`, () => {
    test('retrying deliveries resume after a restart and are delivered', async () => {
      let offset = 0;
      const clock = () => Date.now() + offset;
      const r = await new Receiver().listen();
      r.status = 500;
      let srv = await startServer(engine, { clock, settings: { 'rate-limit': '0' } });
      try {
        const api = () => new DynamicsWebApi({ serverUrl: srv.url, onTokenRefresh: async () => ADMIN_TOKEN });
        const hook = await api().create<Record<string, unknown>, string>({
          collection: 'ccs_webhooks',
          data: { ccs_name: 'restart', ccs_url: r.url, ccs_secret: 'k', ccs_table: 'contact', ccs_messages: 'create' },
        });
        const contact = await api().create<Record<string, unknown>, string>({ collection: 'contacts', data: { lastname: 'Restart' } });
        const deliveries = async () => (await api().retrieveAll<Delivery>({ collection: 'ccs_webhookdeliveries', filter: `_ccs_webhook_value eq ${hook}` })).value;
        await eventually(async () => ((await deliveries())[0]?.ccs_status === STATUS.retrying ? true : undefined), 20000, 'retrying');
        const { storeUrl, dataDir } = srv;
        await srv.stop({ drop: false });
        r.status = 200;
        offset += HOUR;
        srv = await startServer(engine, { storeUrl, dataDir, clock, settings: { 'rate-limit': '0' } });
        const [d] = await eventually(async () => {
          const list = await deliveries();
          return list[0]?.ccs_status === STATUS.delivered ? list : undefined;
        }, 20000, 'delivered after restart');
        assert.equal(d!.ccs_attempts, 2);
        assert.equal(r.received.length, 2);
        assert.equal((JSON.parse(r.received[1]!.body) as { record: { contactid: string } }).record.contactid, contact);
      } finally {
        await srv.stop();
        await r.close();
      }
    });
  });
}
