import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BusNoResponderError, BusRemoteError, BusTimeoutError, type Bus } from '../../src/bus/index.js';
import { buses, type BusNamespace } from '../helpers/buses.js';

/** Polls until `check` holds; bus delivery is asynchronous on every engine. */
async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Asserts that every device's numbers arrived as 0, 1, 2, … */
function assertInOrder(byDevice: Map<string, number[]>, perDevice: number): void {
  for (const [device, seen] of byDevice) assert.deepEqual(seen, [...Array(perDevice).keys()], `order of ${device}`);
}

for (const engine of buses()) {
  describe(`bus contract: ${engine.name}`, () => {
    async function withBus<T>(fn: (bus: Bus, ns: BusNamespace, errors: string[]) => Promise<T>, retryDelayMs = 50): Promise<T> {
      const ns = engine.open();
      const errors: string[] = [];
      try {
        const bus = await ns.connect({ retryDelayMs, maxDeliver: 3, onError: (e, subject) => errors.push(`${subject}:${(e as Error).message}`) });
        return await fn(bus, ns, errors);
      } finally {
        await ns.cleanup();
      }
    }

    test('publish/subscribe with wildcards, plain and durable', () =>
      withBus(async (bus) => {
        const plain: string[] = [];
        const durable: string[] = [];
        const subs = [
          bus.subscribe('telemetry.*', (p, s) => void plain.push(`${s}=${String(p)}`)),
          bus.subscribe('alerts.>', (p, s) => void plain.push(`${s}=${String(p)}`)),
          bus.subscribe('telemetry.>', (p, s) => void durable.push(`${s}=${String(p)}`), { durable: 'wild' }),
        ];
        await Promise.all(subs.map((s) => s.ready));
        await bus.publish('telemetry.d1', 1);
        await bus.publish('other.d1', 2);
        await bus.publish('alerts.x.y', 3);
        await bus.publish('telemetry.d1.extra', 4);
        await until(() => plain.length >= 2 && durable.length >= 2, 'deliveries');
        await sleep(50);
        assert.deepEqual(plain.sort(), ['alerts.x.y=3', 'telemetry.d1=1']);
        assert.deepEqual(durable.sort(), ['telemetry.d1.extra=4', 'telemetry.d1=1']);
      }));

    for (const durable of [undefined, 'ordered']) {
      test(`per-subject order under concurrent publishing and slow handlers (${durable ? 'durable' : 'plain'})`, () =>
        withBus(async (bus) => {
          const devices = 12;
          const perDevice = 25;
          const byDevice = new Map<string, number[]>();
          let total = 0;
          const sub = bus.subscribe(
            'telemetry.*',
            async (p, subject) => {
              // Uneven handler times: a handler that finished early must not let a later message overtake.
              if ((p as number) % 3 === 0) await sleep(1);
              const list = byDevice.get(subject) ?? [];
              list.push(p as number);
              byDevice.set(subject, list);
              total++;
            },
            durable === undefined ? {} : { durable },
          );
          await sub.ready;
          const sends: Promise<void>[] = [];
          for (let i = 0; i < perDevice; i++) for (let d = 0; d < devices; d++) sends.push(bus.publish(`telemetry.dev${d}`, i));
          await Promise.all(sends);
          await until(() => total === devices * perDevice, `${devices * perDevice} messages`, 15_000);
          assert.equal(byDevice.size, devices);
          assertInOrder(byDevice, perDevice);
        }));
    }

    test('a durable consumer gets the messages published while it was away', { skip: engine.networked ? false : 'the in-process bus keeps nothing itself: the hub’s telemetry log in the store is the durable record' }, () =>
      withBus(async (bus, ns) => {
        const got: number[] = [];
        const first = bus.subscribe('jobs.*', (p) => void got.push(p as number), { durable: 'worker' });
        await first.ready;
        await bus.publish('jobs.a', 1);
        await until(() => got.length === 1, 'first message');
        await first.unsubscribe();
        // Published by another process while no worker runs.
        const producer = await ns.connect();
        for (const n of [2, 3, 4]) await producer.publish('jobs.a', n);
        await sleep(50);
        assert.deepEqual(got, [1]);
        const second = bus.subscribe('jobs.*', (p) => void got.push(p as number), { durable: 'worker' });
        await second.ready;
        await until(() => got.length === 4, 'the kept messages');
        assert.deepEqual(got, [1, 2, 3, 4]);
      }));

    test('at least once: a throwing handler gets the message again, in order; after max deliveries it is reported and dropped', () =>
      withBus(async (bus, _ns, errors) => {
        const attempts = new Map<number, number>();
        const handled: number[] = [];
        const sub = bus.subscribe(
          'jobs.dev1',
          (p) => {
            const n = p as number;
            const attempt = (attempts.get(n) ?? 0) + 1;
            attempts.set(n, attempt);
            if (n === 1 && attempt < 2) throw new Error('transient');
            if (n === 3) throw new Error('poison');
            handled.push(n);
          },
          { durable: 'retry' },
        );
        await sub.ready;
        for (const n of [1, 2, 3, 4]) await bus.publish('jobs.dev1', n);
        await until(() => handled.length === 3, 'messages 1, 2 and 4', 10_000);
        // 2 waited for 1's retry (same subject), and 4 came after 3 was given up.
        assert.deepEqual(handled, [1, 2, 4]);
        assert.equal(attempts.get(1), 2);
        assert.equal(attempts.get(3), 3, 'maxDeliver deliveries');
        assert.deepEqual(errors, ['jobs.dev1:poison']);
      }));

    test('subscribers with one durable name share the messages; each device stays in order', () =>
      withBus(async (bus, ns) => {
        // Two processes on a networked bus; two subscribers of one bus in-process.
        const other = engine.networked ? await ns.connect() : bus;
        const devices = 16;
        const perDevice = 10;
        const byDevice = new Map<string, number[]>();
        const byWorker = [0, 0];
        const active = new Set<string>();
        let overlap = false;
        const worker = (w: number) => async (p: unknown, subject: string) => {
          if (active.has(subject)) overlap = true;
          active.add(subject);
          await sleep(1);
          const list = byDevice.get(subject) ?? [];
          list.push(p as number);
          byDevice.set(subject, list);
          byWorker[w]!++;
          active.delete(subject);
        };
        const subs = [bus.subscribe('telemetry.>', worker(0), { durable: 'rules' }), other.subscribe('telemetry.>', worker(1), { durable: 'rules' })];
        await Promise.all(subs.map((s) => s.ready));
        const sends: Promise<void>[] = [];
        for (let i = 0; i < perDevice; i++) for (let d = 0; d < devices; d++) sends.push(bus.publish(`telemetry.dev${d}`, i));
        await Promise.all(sends);
        const total = devices * perDevice;
        await until(() => byWorker[0]! + byWorker[1]! >= total, `${total} messages`, 15_000);
        await sleep(50);
        assert.equal(byWorker[0]! + byWorker[1]!, total, 'each message once');
        assert.ok(byWorker[0]! > 0 && byWorker[1]! > 0, `both workers took a share: ${byWorker.join('/')}`);
        assert.ok(!overlap, 'one subject is never handled by two calls at once');
        assertInOrder(byDevice, perDevice);
      }));

    test('Buffer and Uint8Array payloads round-trip', () =>
      withBus(async (bus, ns) => {
        const got: unknown[] = [];
        const sub = bus.subscribe('telemetry.*', (p) => void got.push(p));
        await sub.ready;
        const payload = {
          sequence: 7,
          deviceId: 'a.b',
          message: { body: Buffer.from([0, 1, 2, 255, 0x7b]), properties: { $b: 'not bytes', k: 'v' } },
          raw: new Uint8Array([9, 8, 7]),
          list: [Buffer.from('x'), null, { $$u: 1 }],
        };
        const sender = engine.networked ? await ns.connect() : bus;
        await sender.publish('telemetry.x', payload);
        await until(() => got.length === 1, 'the payload');
        assert.deepEqual(got[0], payload);
        const received = got[0] as typeof payload;
        assert.ok(Buffer.isBuffer(received.message.body));
        assert.ok(received.raw instanceof Uint8Array && !Buffer.isBuffer(received.raw));
      }));

    test('request/reply: one answer per request, bytes kept, concurrent handler calls', () =>
      withBus(async (bus, ns) => {
        // On a networked bus the responder is another process; in-process, the same bus answers itself.
        const responder = engine.networked ? await ns.connect() : bus;
        let waiting: (() => void) | undefined;
        const calls: unknown[] = [];
        const sub = responder.respond('node.n1', async (p, subject) => {
          calls.push(p);
          const req = p as { op: string; body?: Buffer };
          if (req.op === 'hold') {
            // Answers only once a second request has come in: the calls must run side by side.
            await new Promise<void>((resolve) => (waiting = resolve));
            return 'released';
          }
          if (req.op === 'release') {
            waiting?.();
            return undefined;
          }
          return { subject, echo: req.body, at: 7 };
        });
        await sub.ready;
        const answer = (await bus.request('node.n1', { op: 'echo', body: Buffer.from([0, 1, 255]) }, { timeoutMs: 10_000 })) as { subject: string; echo: Buffer; at: number };
        assert.equal(answer.subject, 'node.n1');
        assert.ok(Buffer.isBuffer(answer.echo));
        assert.deepEqual([...answer.echo], [0, 1, 255]);
        assert.equal(answer.at, 7);
        const held = bus.request('node.n1', { op: 'hold' }, { timeoutMs: 10_000 });
        await until(() => calls.length === 2, 'the held call');
        assert.equal(await bus.request('node.n1', { op: 'release' }, { timeoutMs: 10_000 }), undefined);
        assert.equal(await held, 'released');
        assert.equal(calls.length, 3, 'each request reached the handler once');
      }));

    test('request/reply: no responder fails at once, a throwing handler sends its message and code, silence times out', () =>
      withBus(async (bus, ns) => {
        const responder = engine.networked ? await ns.connect() : bus;
        let speak!: () => void;
        const silence = new Promise<string>((resolve) => (speak = () => resolve('too late')));
        // A long timeout: "no responder" must come without waiting for it.
        await assert.rejects(bus.request('node.nobody', 1, { timeoutMs: 60_000 }), (e) => e instanceof BusNoResponderError && e.subject === 'node.nobody');
        const subs = [
          responder.respond('node.fails', () => {
            throw Object.assign(new Error('device is not online'), { code: 'DeviceNotOnline' });
          }),
          responder.respond('node.plain-error', async () => {
            throw new Error('plain');
          }),
          responder.respond('node.silent', () => silence),
        ];
        await Promise.all(subs.map((s) => s.ready));
        await assert.rejects(bus.request('node.fails', null, { timeoutMs: 10_000 }), (e) => e instanceof BusRemoteError && e.code === 'DeviceNotOnline' && e.message === 'device is not online');
        await assert.rejects(bus.request('node.plain-error', null, { timeoutMs: 10_000 }), (e) => e instanceof BusRemoteError && e.code === undefined && e.message === 'plain');
        await assert.rejects(bus.request('node.silent', null, { timeoutMs: 200 }), (e) => e instanceof BusTimeoutError && e.subject === 'node.silent');
        // The late answer goes nowhere and harms nothing.
        speak();
        // Requests and messages are separate worlds: neither reaches the other's handlers.
        const published: unknown[] = [];
        const plain = responder.subscribe('node.*', (p) => void published.push(p));
        await plain.ready;
        await bus.request('node.fails', 'x', { timeoutMs: 10_000 }).catch(() => undefined);
        await bus.publish('node.fails', 'y');
        await until(() => published.length === 1, 'the published message');
        await sleep(50);
        assert.deepEqual(published, ['y']);
        await assert.rejects(bus.request('node.*', 1, { timeoutMs: 1000 }), TypeError);
      }));

    test('request/reply: several responders share the requests; after unsubscribe (or close) there is no responder', () =>
      withBus(async (bus, ns) => {
        const a = engine.networked ? await ns.connect() : bus;
        const b = engine.networked ? await ns.connect() : bus;
        const counts = { a: 0, b: 0 };
        const subA = a.respond('hub.shared', () => ++counts.a);
        const subB = b.respond('hub.shared', () => ++counts.b);
        await Promise.all([subA.ready, subB.ready]);
        for (let i = 0; i < 40; i++) await bus.request('hub.shared', i, { timeoutMs: 10_000 });
        assert.equal(counts.a + counts.b, 40, 'each request answered once');
        await subA.unsubscribe();
        for (let i = 0; i < 5; i++) await bus.request('hub.shared', i, { timeoutMs: 10_000 });
        assert.equal(counts.a + counts.b, 45);
        if (engine.networked) {
          // A process that is gone (its connection closed) leaves no responder behind.
          await b.close();
        } else {
          await subB.unsubscribe();
        }
        await assert.rejects(bus.request('hub.shared', 0, { timeoutMs: 60_000 }), BusNoResponderError);
      }));

    test('unsubscribe waits for the call in progress and stops delivery; close ends the bus', () =>
      withBus(async (bus) => {
        for (const durable of [undefined, 'leaving']) {
          const got: number[] = [];
          let finished = false;
          const sub = bus.subscribe(
            'jobs.*',
            async (p) => {
              got.push(p as number);
              if (p === 1) {
                await sleep(100);
                finished = true;
              }
            },
            durable === undefined ? {} : { durable },
          );
          await sub.ready;
          await bus.publish('jobs.x', 1);
          await until(() => got.length === 1, 'the first message');
          await sub.unsubscribe();
          assert.ok(finished, 'the handler call in progress finished first');
          await bus.publish('jobs.x', 2);
          await sleep(100);
          assert.deepEqual(got, [1]);
        }
        await bus.close();
      }));
  });
}
