import { CcsError, DuplicateKeyError } from '../errors/index.js';
import type { Row, Store } from '../store/types.js';
import { generateEtag } from './keys.js';
import { notFound } from './registry.js';
import { TWIN_TABLE } from './tables.js';
import { and, eq } from '../store/index.js';
import type { DeviceIdentity, TwinPatch } from './types.js';

type Doc = Record<string, unknown>;

/** A twin as stored, without the identity's live fields. */
export interface StoredTwin {
  readonly deviceId: string;
  readonly etag: string;
  readonly version: number;
  readonly tags: Doc;
  readonly desired: Doc;
  readonly desiredVersion: number;
  readonly reported: Doc;
  readonly reportedVersion: number;
}

/** A desired-properties change to push to the device (body includes `$version`). */
export interface DesiredChange {
  readonly patch: Doc;
  readonly version: number;
}

// Size and shape limits from iot-hub-devguide-device-twins.md ("Tags and properties format", "Twin size").
const MAX_DEPTH = 10;
const MAX_TAGS_BYTES = 8 * 1024;
const MAX_PROPERTIES_BYTES = 32 * 1024;
const MAX_KEY_BYTES = 1024;

function isPlainObject(v: unknown): v is Doc {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Keys are case-sensitive UTF-8 strings without control characters, `.`, `$` or space; values are JSON; objects nest
 * at most MAX_DEPTH levels. `$version` and `$metadata` at the top of a patch are ignored (the SDK may echo them).
 */
function checkDocument(doc: unknown, what: string, depth = 1): void {
  if (!isPlainObject(doc)) throw new CcsError('ArgumentInvalid', `${what} must be a JSON object.`);
  if (depth > MAX_DEPTH) throw new CcsError('ArgumentInvalid', `${what} nests deeper than ${MAX_DEPTH} levels.`);
  for (const [k, v] of Object.entries(doc)) {
    if (depth === 1 && (k === '$version' || k === '$metadata')) continue;
    // eslint-disable-next-line no-control-regex
    if (k === '' || /[.$ \u0000-\u001f\u007f-\u009f]/.test(k) || Buffer.byteLength(k) > MAX_KEY_BYTES) {
      throw new CcsError('ArgumentInvalid', `${what}: invalid property name '${k}' (no '.', '$', spaces or control characters).`);
    }
    if (isPlainObject(v)) checkDocument(v, what, depth + 1);
  }
}

/** JSON merge patch as twins use it: objects merge recursively, `null` removes a key, anything else replaces. */
export function mergePatch(target: Doc, patch: Doc): Doc {
  const out: Doc = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$version' || k === '$metadata') continue;
    if (v === null) delete out[k];
    else if (isPlainObject(v)) out[k] = mergePatch(isPlainObject(out[k]) ? (out[k] as Doc) : {}, v);
    else out[k] = v;
  }
  return out;
}

function withoutMeta(doc: Doc): Doc {
  const { $version: _v, $metadata: _m, ...rest } = doc;
  return rest;
}

function checkSize(doc: Doc, limit: number, what: string): void {
  const size = Buffer.byteLength(JSON.stringify(doc));
  if (size > limit) throw new CcsError('MessageTooLarge', `${what} would be ${size} bytes; the limit is ${limit}.`);
}

function fromRow(r: Row): StoredTwin {
  return {
    deviceId: String(r['deviceid']),
    etag: String(r['etag']),
    version: Number(r['version']),
    tags: JSON.parse(String(r['tags'])) as Doc,
    desired: JSON.parse(String(r['desired'])) as Doc,
    desiredVersion: Number(r['desiredversion']),
    reported: JSON.parse(String(r['reported'])) as Doc,
    reportedVersion: Number(r['reportedversion']),
  };
}

export interface TwinStore {
  read(deviceId: string): Promise<StoredTwin>;
  /** Device reported PATCH: merges, bumps the reported `$version`. */
  patchReported(deviceId: string, patch: unknown): Promise<StoredTwin>;
  /** Service PATCH (merge) or PUT (replace) of tags and desired; returns the desired change to push, if any. */
  write(deviceId: string, patch: TwinPatch, mode: 'merge' | 'replace', etag?: string): Promise<{ twin: StoredTwin; desired?: DesiredChange }>;
}

/**
 * Twins, durable in `ccs_hubtwin`. Every write is a compare-and-set on the twin's version, retried on a race, so
 * concurrent writers (device PATCH, service PATCH, other nodes) never lose each other's changes.
 */
export function createTwinStore(deps: { store: Store; identity: (deviceId: string) => Promise<DeviceIdentity | undefined> }): TwinStore {
  const { store } = deps;

  async function read(deviceId: string): Promise<StoredTwin> {
    const r = (await store.select({ table: TWIN_TABLE.name, where: eq('deviceid', deviceId), limit: 1 }))[0];
    if (r) return fromRow(r);
    if (!(await deps.identity(deviceId))) throw notFound(deviceId);
    // An identity without a twin row (created before twins existed): start an empty one.
    const fresh: Row = { deviceid: deviceId, etag: generateEtag(), version: 1, tags: '{}', desired: '{}', desiredversion: 1, reported: '{}', reportedversion: 1 };
    await store.insert(TWIN_TABLE.name, fresh).catch((e: unknown) => {
      if (!(e instanceof DuplicateKeyError)) throw e; // a concurrent reader created it
    });
    return read(deviceId);
  }

  async function casWrite<T>(deviceId: string, change: (t: StoredTwin) => { values: Row; result: T } | undefined): Promise<{ twin: StoredTwin; result: T | undefined }> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const current = await read(deviceId);
      const c = change(current);
      if (!c) return { twin: current, result: undefined };
      const values: Row = { ...c.values, version: current.version + 1, etag: generateEtag() };
      const n = await store.update(TWIN_TABLE.name, values, and(eq('deviceid', deviceId), eq('version', current.version)));
      if (n === 1) return { twin: fromRow({ ...toRow(current), ...values }), result: c.result };
      if (!(await deps.identity(deviceId))) throw notFound(deviceId);
    }
    throw new CcsError('Internal', `Twin of '${deviceId}' is changing too fast to update.`);
  }

  return {
    read,

    async patchReported(deviceId, patch) {
      checkDocument(patch, 'Reported properties patch');
      const { twin } = await casWrite(deviceId, (t) => {
        const reported = mergePatch(t.reported, patch as Doc);
        checkSize(reported, MAX_PROPERTIES_BYTES, 'Reported properties');
        return { values: { reported: JSON.stringify(reported), reportedversion: t.reportedVersion + 1 }, result: true };
      });
      return twin;
    },

    async write(deviceId, patch, mode, etag) {
      if (!isPlainObject(patch as unknown)) throw new CcsError('ArgumentInvalid', 'The twin patch must be a JSON object.');
      if (patch.tags !== undefined && patch.tags !== null) checkDocument(patch.tags, 'Tags');
      const desiredPatch = patch.properties?.desired;
      if (desiredPatch !== undefined && desiredPatch !== null) checkDocument(desiredPatch, 'Desired properties');
      const wanted = etag === undefined || etag === '*' || etag === '' ? undefined : etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
      const { twin, result } = await casWrite<DesiredChange | undefined>(deviceId, (t) => {
        if (wanted !== undefined && wanted !== t.etag) {
          throw new CcsError('PreconditionFailed', `Precondition failed: the twin of '${deviceId}' has changed (etag mismatch).`);
        }
        const values: Row = {};
        let change: DesiredChange | undefined;
        if (mode === 'replace' || (patch.tags !== undefined && patch.tags !== null)) {
          const tags = mode === 'replace' ? withoutMeta((patch.tags ?? {}) as Doc) : mergePatch(t.tags, patch.tags as Doc);
          if (mode === 'replace') stripNulls(tags);
          checkSize(tags, MAX_TAGS_BYTES, 'Tags');
          values['tags'] = JSON.stringify(tags);
        }
        if (mode === 'replace' || (desiredPatch !== undefined && desiredPatch !== null)) {
          const desired = mode === 'replace' ? withoutMeta((desiredPatch ?? {}) as Doc) : mergePatch(t.desired, desiredPatch as Doc);
          if (mode === 'replace') stripNulls(desired);
          checkSize(desired, MAX_PROPERTIES_BYTES, 'Desired properties');
          values['desired'] = JSON.stringify(desired);
          values['desiredversion'] = t.desiredVersion + 1;
          // A merge sends the patch as given (nulls tell the device what was removed); a replace sends the whole
          // document (iot-hub-devguide-device-twins.md, "Back-end operations").
          change = { patch: mode === 'replace' ? desired : withoutMeta(desiredPatch as Doc), version: t.desiredVersion + 1 };
        }
        if (Object.keys(values).length === 0) return undefined;
        return { values, result: change };
      });
      return { twin, desired: result };
    },
  };
}

function stripNulls(doc: Doc): void {
  for (const [k, v] of Object.entries(doc)) {
    if (v === null) delete doc[k];
    else if (isPlainObject(v)) stripNulls(v);
  }
}

function toRow(t: StoredTwin): Row {
  return {
    deviceid: t.deviceId, etag: t.etag, version: t.version, tags: JSON.stringify(t.tags), desired: JSON.stringify(t.desired),
    desiredversion: t.desiredVersion, reported: JSON.stringify(t.reported), reportedversion: t.reportedVersion,
  };
}
