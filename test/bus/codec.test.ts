import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodePayload, encodePayload } from '../../src/bus/index.js';

const roundTrip = (v: unknown) => decodePayload(encodePayload(v));

test('codec: bytes stay bytes, of the same kind', () => {
  const body = Buffer.from('{"temp":71}');
  const out = roundTrip({ message: { body }, raw: new Uint8Array([1, 2]), slice: Buffer.from('abcdef').subarray(2, 4) }) as Record<string, unknown>;
  assert.ok(Buffer.isBuffer((out['message'] as { body: unknown }).body));
  assert.deepEqual((out['message'] as { body: Buffer }).body, body);
  assert.ok(out['raw'] instanceof Uint8Array && !Buffer.isBuffer(out['raw']));
  assert.deepEqual(out['slice'], Buffer.from('cd'), 'a view encodes its own bytes, not its whole backing buffer');
  assert.equal(roundTrip(undefined), undefined);
});

test('codec: data that looks like a tag is not mistaken for one', () => {
  for (const v of [{ $b: 'AAEC' }, { $u: 'AAEC' }, { $$b: 1 }, { $x: { $b: 'x' } }, { $b: 'x', other: 1 }]) assert.deepEqual(roundTrip(v), v);
});

test('codec: any JSON value with bytes anywhere round-trips (property)', () => {
  const key = fc.oneof(fc.string(), fc.constantFrom('$b', '$u', '$$b', '$', '$$'));
  const value = fc.letrec((tie) => ({
    node: fc.oneof(
      { depthSize: 'small' },
      fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null)),
      fc.uint8Array().map((a) => Buffer.from(a)),
      fc.uint8Array(),
      fc.array(tie('node'), { maxLength: 4 }),
      fc.dictionary(key, tie('node'), { maxKeys: 3, noNullPrototype: true }),
    ),
  })).node;
  fc.assert(fc.property(value, (v) => void assert.deepStrictEqual(roundTrip(v), v)));
});
