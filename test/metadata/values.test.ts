import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { formatDateTime, parseDateTime } from '../../src/metadata/index.js';

test('formatDateTime writes what toISOString writes, without fractions, for every date Dataverse stores', () => {
  const min = Date.UTC(1753, 0, 1);
  const max = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
  fc.assert(
    fc.property(fc.integer({ min, max }), (ms) => formatDateTime(ms) === `${new Date(ms).toISOString().slice(0, 19)}Z`),
    { numRuns: 20_000 },
  );
  for (const ms of [0, -1, 951_782_400_000 /* 2000-02-29 */, Date.UTC(1900, 1, 28, 23, 59, 59), min, max]) {
    assert.equal(formatDateTime(ms), `${new Date(ms).toISOString().slice(0, 19)}Z`);
  }
});

test('parseDateTime reads dates and date-times, with or without an offset', () => {
  assert.equal(parseDateTime('2024-01-02'), Date.UTC(2024, 0, 2));
  assert.equal(parseDateTime('2024-01-02T03:04:05Z'), Date.UTC(2024, 0, 2, 3, 4, 5));
  assert.equal(parseDateTime('2024-01-02T03:04:05+01:00'), Date.UTC(2024, 0, 2, 2, 4, 5));
  assert.equal(parseDateTime('2024-01-02T03:04:05'), Date.UTC(2024, 0, 2, 3, 4, 5));
  assert.equal(parseDateTime('yesterday'), undefined);
  assert.equal(parseDateTime('2024-13-02'), undefined);
});
