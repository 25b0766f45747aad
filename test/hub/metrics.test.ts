import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createSasToken } from '../../src/hub/index.js';
import { createMetrics } from '../../src/metrics/index.js';
import { engines } from '../helpers/engines.js';
import { FakeChannel, openHub } from './helpers.js';

const [engine] = engines(); // counters live above the store: one engine is enough

describe('hub metrics', () => {
  test('telemetry, group commits, connections, C2D outcomes and refused tokens are counted', async () => {
    const metrics = createMetrics();
    const t = await openHub(engine!, { metrics });
    try {
      await Promise.all(Array.from({ length: 30 }, (_, i) => t.hub.ingest(`d${i % 3}`, { body: Buffer.from('x'), properties: {} }, i < 20 ? 'mqtt' : 'https')));
      const d = await t.hub.registry.create({ deviceId: 'met-1' });
      t.hub.attach(new FakeChannel('met-1'));
      await t.hub.sendC2d('met-1', { body: Buffer.from('hi'), properties: {} });
      await new Promise((r) => setTimeout(r, 50));
      await t.hub.authenticateDevice('met-1', 'garbage').catch(() => undefined);
      await t.hub.authenticateDevice('met-1', createSasToken({ resource: 'hub.test/devices/met-1', key: d.primaryKey, expiry: Math.floor(t.clock() / 1000) + 60 }));
      const text = metrics.render();
      assert.match(text, /^ccs_hub_telemetry_messages_total\{transport="mqtt"\} 20$/m);
      assert.match(text, /^ccs_hub_telemetry_messages_total\{transport="https"\} 10$/m);
      assert.match(text, /^ccs_hub_telemetry_group_size_sum 30$/m);
      assert.match(text, /^ccs_hub_telemetry_commit_seconds_count [1-9]\d*$/m);
      assert.match(text, /^ccs_hub_connected_devices 1$/m);
      assert.match(text, /^ccs_hub_c2d_messages_total\{outcome="completed"\} 1$/m);
      assert.match(text, /^ccs_hub_auth_failures_total\{kind="device"\} 1$/m);
    } finally {
      await t.close();
    }
  });
});
