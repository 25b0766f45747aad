import { CcsError } from '../../errors/index.js';
import type { DeviceIdentity, DeviceStatus, IdentityInput, Twin, TwinPatch } from '../types.js';

/**
 * The JSON shapes of IoT Hub's service REST (api-version 2021-04-12), as `azure-iothub` sends and reads them
 * (reference/iot-hub.md §4; REST reference "Devices - Get Identity", "Devices - Get Twin").
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** IoT Hub writes DateTime.MinValue for "never" rather than null; clients that parse dates expect a date. */
const NEVER = '0001-01-01T00:00:00Z';

function isoTime(ms: number | null): string {
  return ms === null ? NEVER : new Date(ms).toISOString();
}

export interface DeviceJson {
  readonly deviceId: string;
  readonly generationId: string;
  readonly etag: string;
  readonly connectionState: string;
  readonly status: DeviceStatus;
  readonly statusReason: string | null;
  readonly connectionStateUpdatedTime: string;
  readonly statusUpdatedTime: string;
  readonly lastActivityTime: string;
  readonly cloudToDeviceMessageCount: number;
  readonly authentication: {
    readonly symmetricKey: { readonly primaryKey: string; readonly secondaryKey: string };
    readonly x509Thumbprint: { readonly primaryThumbprint: null; readonly secondaryThumbprint: null };
    readonly type: 'sas';
  };
  readonly capabilities: { readonly iotEdge: false };
}

export function deviceJson(d: DeviceIdentity): DeviceJson {
  return {
    deviceId: d.deviceId,
    generationId: d.generationId,
    etag: d.etag,
    connectionState: d.connectionState,
    status: d.status,
    statusReason: d.statusReason,
    connectionStateUpdatedTime: isoTime(d.connectionStateUpdatedTime),
    statusUpdatedTime: isoTime(d.statusUpdatedTime),
    lastActivityTime: isoTime(d.lastActivityTime),
    cloudToDeviceMessageCount: d.cloudToDeviceMessageCount,
    authentication: {
      symmetricKey: { primaryKey: d.primaryKey, secondaryKey: d.secondaryKey },
      x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null },
      type: 'sas',
    },
    capabilities: { iotEdge: false },
  };
}

export interface TwinJson {
  readonly deviceId: string;
  readonly etag: string;
  readonly deviceEtag: string;
  readonly status: DeviceStatus;
  readonly statusReason: string | null;
  readonly statusUpdateTime: string;
  readonly connectionState: string;
  readonly lastActivityTime: string;
  readonly cloudToDeviceMessageCount: number;
  readonly authenticationType: 'sas';
  readonly x509Thumbprint: { readonly primaryThumbprint: null; readonly secondaryThumbprint: null };
  readonly modelId: string;
  readonly version: number;
  readonly tags: Record<string, unknown>;
  readonly properties: { readonly desired: Record<string, unknown>; readonly reported: Record<string, unknown> };
  readonly capabilities: { readonly iotEdge: false };
}

/**
 * Desired and reported carry `$metadata` in IoT Hub's twin; the hub keeps no per-property update times, so it is
 * present but empty (clients read `$version`, which the hub does keep).
 */
function section(props: Record<string, unknown>): Record<string, unknown> {
  return { ...props, $metadata: props['$metadata'] ?? {} };
}

/** A twin joined with its identity, which holds the fields IoT Hub repeats in the twin (deviceEtag, status times). */
export function twinJson(t: Twin, identity: DeviceIdentity | undefined): TwinJson {
  return {
    deviceId: t.deviceId,
    etag: t.etag,
    deviceEtag: identity?.etag ?? '',
    status: t.status,
    statusReason: identity?.statusReason ?? null,
    statusUpdateTime: isoTime(identity?.statusUpdatedTime ?? null),
    connectionState: t.connectionState,
    lastActivityTime: isoTime(t.lastActivityTime),
    cloudToDeviceMessageCount: identity?.cloudToDeviceMessageCount ?? 0,
    authenticationType: 'sas',
    x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null },
    modelId: '',
    version: t.version,
    tags: t.tags,
    properties: { desired: section(t.properties.desired), reported: section(t.properties.reported) },
    capabilities: { iotEdge: false },
  };
}

// ---- request bodies -------------------------------------------------------------------------------------------------

export function parseJsonBody(body: Buffer | undefined): Json {
  const text = body && body.length > 0 ? body.toString('utf8') : '';
  if (text.trim() === '') throw new CcsError('ArgumentInvalid', 'The request body is empty; a JSON document is required.');
  try {
    return JSON.parse(text) as Json;
  } catch (e) {
    throw new CcsError('ArgumentInvalid', `The request body is not valid JSON: ${(e as Error).message}`);
  }
}

export function isJsonObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optionalString(o: JsonObject, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new CcsError('ArgumentInvalid', `${where}.${key} must be a string.`);
  return v;
}

/** Symmetric keys are base64 of 16 to 64 bytes (IoT Hub rejects others); empty means "generate". */
function parseKey(o: JsonObject, key: string): string | undefined {
  const v = optionalString(o, key, 'authentication.symmetricKey');
  if (v === undefined || v === '') return undefined;
  const bytes = Buffer.from(v, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(v) || bytes.length < 16 || bytes.length > 64) {
    throw new CcsError('ArgumentInvalid', `authentication.symmetricKey.${key} must be base64 of 16 to 64 bytes.`);
  }
  return v;
}

/**
 * The body of `PUT /devices/{id}` (registry.create / registry.update). Only symmetric-key identities exist here;
 * X.509 and "none" authentication are refused rather than silently turned into SAS.
 */
export function parseDeviceBody(body: Json, pathId: string): IdentityInput {
  if (!isJsonObject(body)) throw new CcsError('ArgumentInvalid', 'The device must be a JSON object.');
  const deviceId = optionalString(body, 'deviceId', 'device') ?? pathId;
  if (deviceId !== pathId) {
    throw new CcsError('ArgumentInvalid', `The deviceId in the body ('${deviceId}') differs from the one in the path ('${pathId}').`);
  }
  const status = optionalString(body, 'status', 'device');
  if (status !== undefined && status !== 'enabled' && status !== 'disabled') {
    throw new CcsError('ArgumentInvalid', `device.status must be 'enabled' or 'disabled', not '${status}'.`);
  }
  const statusReason = optionalString(body, 'statusReason', 'device');
  let primaryKey: string | undefined;
  let secondaryKey: string | undefined;
  const auth = body['authentication'];
  if (auth !== undefined && auth !== null) {
    if (!isJsonObject(auth)) throw new CcsError('ArgumentInvalid', 'device.authentication must be an object.');
    const type = optionalString(auth, 'type', 'authentication') ?? 'sas';
    if (type !== 'sas') {
      throw new CcsError('ArgumentInvalid', `Authentication type '${type}' is not supported: ccs devices use symmetric keys ('sas').`);
    }
    const sym = auth['symmetricKey'];
    if (sym !== undefined && sym !== null) {
      if (!isJsonObject(sym)) throw new CcsError('ArgumentInvalid', 'authentication.symmetricKey must be an object.');
      primaryKey = parseKey(sym, 'primaryKey');
      secondaryKey = parseKey(sym, 'secondaryKey');
    }
  }
  return {
    deviceId,
    ...(status !== undefined ? { status } : {}),
    ...(statusReason !== undefined ? { statusReason } : {}),
    ...(primaryKey !== undefined ? { primaryKey } : {}),
    ...(secondaryKey !== undefined ? { secondaryKey } : {}),
  };
}

/** `$metadata` and `$version` are the hub's own bookkeeping: a client sending back a twin it read must not fail. */
function desiredInput(v: Json | undefined, where: string): Record<string, unknown> | undefined {
  if (v === undefined) return undefined;
  if (!isJsonObject(v)) throw new CcsError('ArgumentInvalid', `${where} must be a JSON object.`);
  const out: Record<string, unknown> = {};
  for (const [k, value] of Object.entries(v)) {
    if (k === '$metadata' || k === '$version') continue;
    // Twin property names may not start with `$` (dev-guide device twins, "Tags and properties format").
    if (k.startsWith('$')) throw new CcsError('ArgumentInvalid', `${where}: property names cannot start with '$' ('${k}').`);
    out[k] = value;
  }
  return out;
}

function tagsInput(v: Json | undefined): Record<string, unknown> | undefined {
  if (v === undefined) return undefined;
  if (!isJsonObject(v)) throw new CcsError('ArgumentInvalid', 'tags must be a JSON object.');
  return v;
}

/**
 * The body of `PATCH /twins/{id}` (`{ tags?, properties: { desired? } }`, twin.update) or `PUT /twins/{id}`
 * (replaceTwin). Reported properties belong to the device: a PATCH that sets them is refused; a PUT, which commonly
 * sends back a whole twin read earlier, has them ignored, as are the read-only fields (deviceId, etag, status…).
 */
export function parseTwinBody(body: Json, mode: 'patch' | 'replace'): TwinPatch {
  if (!isJsonObject(body)) throw new CcsError('ArgumentInvalid', 'The twin must be a JSON object.');
  const tags = tagsInput(body['tags']);
  let desired: Record<string, unknown> | undefined;
  const props = body['properties'];
  if (props !== undefined && props !== null) {
    if (!isJsonObject(props)) throw new CcsError('ArgumentInvalid', 'properties must be a JSON object.');
    if (mode === 'patch' && props['reported'] !== undefined) {
      throw new CcsError('ArgumentInvalid', 'Reported properties can only be updated by the device.');
    }
    desired = desiredInput(props['desired'], 'properties.desired');
  }
  return {
    ...(tags !== undefined ? { tags } : {}),
    ...(desired !== undefined ? { properties: { desired } } : {}),
  };
}
