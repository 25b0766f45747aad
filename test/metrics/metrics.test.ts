import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMetrics } from '../../src/metrics/index.js';

test('counters, gauges and histograms render in the Prometheus text format', () => {
  const m = createMetrics();
  const c = m.counter('ccs_requests_total', 'Requests.', ['method', 'status']);
  c.inc({ method: 'GET', status: '200' });
  c.inc({ method: 'GET', status: '200' }, 2);
  c.inc({ method: 'POST', status: '400' });
  m.gauge('ccs_devices_connected', 'Connected devices.').set(7);
  const h = m.histogram('ccs_duration_seconds', 'Durations.', [0.01, 0.1], ['route']);
  h.observe(0.005, { route: 'a"b' });
  h.observe(0.05, { route: 'a"b' });
  h.observe(1, { route: 'a"b' });
  assert.equal(m.counter('ccs_requests_total', 'again', ['method', 'status']), c, 'the same name gives the same metric');
  const text = m.render();
  assert.match(text, /# TYPE ccs_requests_total counter\n/);
  assert.match(text, /ccs_requests_total\{method="GET",status="200"\} 3\n/);
  assert.match(text, /ccs_requests_total\{method="POST",status="400"\} 1\n/);
  assert.match(text, /ccs_devices_connected 7\n/);
  assert.match(text, /ccs_duration_seconds_bucket\{route="a\\"b",le="0.01"\} 1\n/);
  assert.match(text, /ccs_duration_seconds_bucket\{route="a\\"b",le="0.1"\} 2\n/);
  assert.match(text, /ccs_duration_seconds_bucket\{route="a\\"b",le="\+Inf"\} 3\n/);
  assert.match(text, /ccs_duration_seconds_count\{route="a\\"b"\} 3\n/);
  assert.ok(text.endsWith('\n'));
});
