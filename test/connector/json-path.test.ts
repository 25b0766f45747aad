import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parsePath, valueAt } from '../../src/connector/index.js';

describe('JsonGet property paths', () => {
  const doc = { a: { b: 1 }, readings: [{ temp: 71.5 }, { temp: 72 }], 'x.y': { '[z]': true }, 0: 'zero-key' };

  test('dotted names, bracketed and dotted indexes, $ prefix, quoted names', () => {
    assert.equal(valueAt(doc, parsePath('a.b')), 1);
    assert.equal(valueAt(doc, parsePath('readings[0].temp')), 71.5);
    assert.equal(valueAt(doc, parsePath('readings.1.temp')), 72);
    assert.equal(valueAt(doc, parsePath('$.readings[1].temp')), 72);
    assert.deepEqual(valueAt(doc, parsePath('$')), doc);
    assert.equal(valueAt(doc, parsePath(`['x.y']["[z]"]`)), true);
    assert.equal(valueAt(doc, parsePath('0')), 'zero-key', 'a digit name on an object is a key');
    assert.equal(valueAt([[1, 2]], parsePath('[0][1]')), 2);
  });

  test('paths that lead nowhere give undefined', () => {
    for (const p of ['a.c', 'a.b.c', 'readings[2].temp', 'readings.x', 'a[0]', 'toString', 'constructor']) {
      assert.equal(valueAt(doc, parsePath(p)), undefined, p);
    }
  });

  test('malformed paths are rejected', () => {
    for (const p of ['', 'a..b', '.a', 'a.', 'a[x]', 'a[1', 'a]', "a['b", 'a[0]b', 'a.[0]']) {
      assert.throws(() => parsePath(p), { name: 'PathSyntaxError' }, JSON.stringify(p));
    }
  });
});
