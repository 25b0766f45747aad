import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BusNoResponderError, createMemoryBus, createMemoryBusNetwork, fromSubjectToken, subjectMatches, subjectToken, telemetrySubject } from '../../src/bus/index.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('subjects', () => {
  test('NATS wildcards: * one token, > the rest (at least one)', () => {
    assert.ok(subjectMatches('telemetry.dev1', 'telemetry.dev1'));
    assert.ok(subjectMatches('telemetry.*', 'telemetry.dev1'));
    assert.ok(!subjectMatches('telemetry.*', 'telemetry.dev1.x'));
    assert.ok(!subjectMatches('telemetry.*', 'telemetry'));
    assert.ok(subjectMatches('telemetry.>', 'telemetry.dev1.x'));
    assert.ok(!subjectMatches('telemetry.>', 'telemetry'));
    assert.ok(subjectMatches('>', 'a.b'));
    assert.ok(subjectMatches('*.dev1', 'telemetry.dev1'));
    assert.ok(!subjectMatches('telemetry.dev1', 'telemetry.dev2'));
    assert.ok(!subjectMatches('alerts.*', 'telemetry.dev1'));
  });

  test('device ids become one reversible token', () => {
    for (const id of ['dev1', 'a.b', 'x*y>z', '50%', 'sp ace', "a-b_c:d=e@f$g'h!(i),?"]) {
      const token = subjectToken(id);
      assert.ok(!/[.*> ]/.test(token), token);
      assert.equal(fromSubjectToken(token), id);
    }
    assert.equal(subjectToken('thermostat-1'), 'thermostat-1');
    assert.equal(telemetrySubject('a.b'), 'telemetry.a%2Eb');
  });
});

describe('in-process bus', () => {
  test('delivers to matching subscriptions in publish order, asynchronously', async () => {
    const bus = createMemoryBus();
    const got: string[] = [];
    bus.subscribe('telemetry.*', (p, subject) => void got.push(`${subject}:${String(p)}`));
    bus.subscribe('alerts.>', (p) => void got.push(`alert:${String(p)}`));
    const published = bus.publish('telemetry.d1', 1);
    assert.deepEqual(got, [], 'never synchronously inside publish');
    await published;
    await bus.publish('telemetry.d2', 2);
    await bus.publish('other.d1', 3);
    await bus.publish('alerts.x.y', 4);
    await tick();
    assert.deepEqual(got, ['telemetry.d1:1', 'telemetry.d2:2', 'alert:4']);
    await bus.close();
  });

  test('one handler call at a time per subscription; a slow subscriber does not hold up another', async () => {
    const bus = createMemoryBus();
    let active = 0;
    let maxActive = 0;
    const slow: number[] = [];
    const fast: number[] = [];
    bus.subscribe('s', async (p) => {
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise((r) => setTimeout(r, 2));
      slow.push(p as number);
      active--;
    });
    bus.subscribe('s', (p) => void fast.push(p as number));
    for (let i = 0; i < 10; i++) await bus.publish('s', i);
    await tick();
    assert.equal(fast.length, 10);
    assert.ok(slow.length < 10);
    await bus.close();
    assert.deepEqual(slow, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(maxActive, 1);
  });

  test('a failing handler is reported and the subscription goes on; unsubscribe stops delivery', async () => {
    const errors: string[] = [];
    const bus = createMemoryBus({ onError: (e, subject) => errors.push(`${subject}:${(e as Error).message}`) });
    const got: number[] = [];
    const sub = bus.subscribe('x', (p) => {
      if (p === 2) throw new Error('boom');
      got.push(p as number);
    });
    for (const n of [1, 2, 3]) await bus.publish('x', n);
    await tick();
    assert.deepEqual(got, [1, 3]);
    assert.deepEqual(errors, ['x:boom']);
    await sub.unsubscribe();
    await bus.publish('x', 4);
    await tick();
    assert.deepEqual(got, [1, 3]);
    await bus.close();
  });
});

describe('in-process bus network', () => {
  test('connections share subscriptions and responders; closing one removes only its own', async () => {
    const network = createMemoryBusNetwork();
    const a = network.connect();
    const b = network.connect();
    const got: string[] = [];
    b.subscribe('events.*', (p, subject) => void got.push(`b:${subject}=${String(p)}`));
    a.subscribe('events.*', (p, subject) => void got.push(`a:${subject}=${String(p)}`));
    b.respond('node.b', (p) => `b answers ${String(p)}`);
    await a.publish('events.x', 1);
    await tick();
    assert.deepEqual(got.sort(), ['a:events.x=1', 'b:events.x=1']);
    assert.equal(await a.request('node.b', 'hi', { timeoutMs: 1000 }), 'b answers hi');
    await b.close();
    await assert.rejects(a.request('node.b', 'hi', { timeoutMs: 60_000 }), BusNoResponderError);
    await assert.rejects(b.request('node.b', 'hi', { timeoutMs: 1000 }), /closed/);
    await assert.rejects(b.publish('events.x', 2), /closed/);
    got.length = 0;
    await a.publish('events.x', 3);
    await tick();
    assert.deepEqual(got, ['a:events.x=3'], 'the closed connection receives nothing more');
    await a.close();
  });

  test('a durable group spans connections; a member leaving with its connection leaves the group to the others', async () => {
    const network = createMemoryBusNetwork();
    const a = network.connect();
    const b = network.connect();
    const seen: string[] = [];
    a.subscribe('jobs.*', (p) => void seen.push(`a${String(p)}`), { durable: 'workers' });
    b.subscribe('jobs.*', (p) => void seen.push(`b${String(p)}`), { durable: 'workers' });
    for (const n of [1, 2, 3, 4]) await a.publish('jobs.x', n);
    await tick();
    assert.equal(seen.length, 4, 'each message once');
    assert.ok(seen.some((s) => s.startsWith('a')) && seen.some((s) => s.startsWith('b')), seen.join());
    await a.close();
    seen.length = 0;
    for (const n of [5, 6]) await b.publish('jobs.x', n);
    await tick();
    assert.deepEqual(seen, ['b5', 'b6']);
    await b.close();
  });
});
