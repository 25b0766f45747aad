/**
 * The one wire encoding of bus payloads: JSON, with bytes kept as bytes. `TelemetryRecord.message.body` is a
 * `Buffer`, and plain JSON would turn it into `{type:'Buffer',data:[…]}` (Buffer's toJSON) and back into an object.
 *
 * Bytes become a one-key object: `{"$b":"<base64>"}` for a Buffer, `{"$u":"<base64>"}` for another Uint8Array.
 * So that no data can be mistaken for a tag, every one-key object whose key starts with `$` gets one more `$` on the
 * way out and loses it on the way in (`{"$b":"x"}` travels as `{"$$b":"x"}`); other objects pass unchanged.
 */

function replacer(this: unknown, key: string, value: unknown): unknown {
  // `this[key]` is the value before `toJSON` ran: the Buffer itself rather than Buffer's JSON form.
  const raw = (this as Record<string, unknown>)[key];
  if (raw instanceof Uint8Array) {
    const b64 = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64');
    return Buffer.isBuffer(raw) ? { $b: b64 } : { $u: b64 };
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0]!.startsWith('$')) return { [`$${keys[0]!}`]: (value as Record<string, unknown>)[keys[0]!] };
  }
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (keys.length !== 1 || !keys[0]!.startsWith('$')) return value;
  const k = keys[0]!;
  const v = (value as Record<string, unknown>)[k];
  if (k === '$b' && typeof v === 'string') return Buffer.from(v, 'base64');
  if (k === '$u' && typeof v === 'string') return new Uint8Array(Buffer.from(v, 'base64'));
  return { [k.slice(1)]: v };
}

/** `undefined` (no payload) travels as zero bytes. */
export function encodePayload(payload: unknown): Uint8Array {
  if (payload === undefined) return new Uint8Array(0);
  return Buffer.from(JSON.stringify(payload, replacer), 'utf8');
}

export function decodePayload(data: Uint8Array): unknown {
  if (data.byteLength === 0) return undefined;
  return JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'), reviver) as unknown;
}
