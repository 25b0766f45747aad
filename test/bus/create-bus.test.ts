import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBus } from '../../src/bus/index.js';
import { ConfigError, loadConfig, parseFlags } from '../../src/config/index.js';

test('--bus: memory by default, nats://host:port accepted, anything else refused naming the option', () => {
  assert.equal(loadConfig(new Map([['data-dir', '/tmp/ccs-bus-config']]), {}).bus, 'memory');
  assert.equal(loadConfig(parseFlags(['--data-dir', '/tmp/x', '--bus', 'nats://nats.internal:4222']), {}).bus, 'nats://nats.internal:4222');
  assert.equal(loadConfig(new Map([['data-dir', '/tmp/x']]), { CCS_BUS: 'nats://127.0.0.1:4222' }).bus, 'nats://127.0.0.1:4222');
  for (const bad of ['redis://x', 'nats://', 'memory2']) {
    assert.throws(() => loadConfig(parseFlags(['--data-dir', '/tmp/x', '--bus', bad]), {}), (e) => e instanceof ConfigError && /--bus/.test(e.message), bad);
  }
  assert.equal(loadConfig(new Map([['data-dir', '/tmp/x']]), {}).busPrefix, 'ccs');
  assert.equal(loadConfig(parseFlags(['--data-dir', '/tmp/x', '--bus-prefix', 'plant_7']), {}).busPrefix, 'plant_7');
  for (const bad of ['a.b', 'a b', '>']) {
    assert.throws(() => loadConfig(parseFlags(['--data-dir', '/tmp/x', '--bus-prefix', bad]), {}), (e) => e instanceof ConfigError && /--bus-prefix/.test(e.message), bad);
  }
});

test('createBus: memory bus for memory; a NATS URL that cannot be reached fails at start', async () => {
  const bus = await createBus({ url: 'memory' });
  const got: unknown[] = [];
  bus.subscribe('a', (p) => void got.push(p));
  await bus.publish('a', 1);
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(got, [1]);
  await bus.close();
  await assert.rejects(createBus({ url: 'nats://127.0.0.1:1' }));
  await assert.rejects(createBus({ url: 'amqp://x' }), /'memory' or nats:/);
});
