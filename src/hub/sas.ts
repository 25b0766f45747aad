import { createHmac, timingSafeEqual } from 'node:crypto';
import { CcsError } from '../errors/index.js';

/**
 * Shared access signatures and connection strings, as IoT Hub defines them (iot-hub-dev-guide-sas.md, "SAS token
 * structure"): `SharedAccessSignature sr={URL-encoded resourceURI}&sig={URL-encoded base64 HMAC}&se={expiry}[&skn=…]`,
 * the HMAC-SHA256 of `{URL-encoded resourceURI}\n{se}` keyed with the base64-decoded key; fields in any order.
 */

export interface SasToken {
  /** `sr` exactly as received (still URL-encoded): the signed string uses it byte for byte. */
  readonly rawResource: string;
  /** `sr` decoded: what the token grants access to. */
  readonly resource: string;
  /** `sig` decoded: base64 of the HMAC. */
  readonly signature: string;
  /** Expiry, epoch seconds. */
  readonly expiry: number;
  /** Policy name for shared-access-policy tokens; absent for device-key tokens. */
  readonly keyName: string | undefined;
}

const PREFIX = 'SharedAccessSignature ';

function unauthorized(message: string): CcsError {
  return new CcsError('IotHubUnauthorizedAccess', message);
}

function decode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw unauthorized('Malformed shared access signature: bad URL encoding.');
  }
}

/** Parses a SAS token; throws IotHubUnauthorizedAccess when it is not one. */
export function parseSasToken(token: string): SasToken {
  if (!token.startsWith(PREFIX)) throw unauthorized('Malformed shared access signature: expected "SharedAccessSignature sr=…&sig=…&se=…".');
  const fields = new Map<string, string>();
  for (const part of token.slice(PREFIX.length).trim().split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw unauthorized(`Malformed shared access signature: field '${part}'.`);
    const name = part.slice(0, eq);
    if (fields.has(name)) throw unauthorized(`Malformed shared access signature: '${name}' appears twice.`);
    fields.set(name, part.slice(eq + 1));
  }
  const sr = fields.get('sr');
  const sig = fields.get('sig');
  const se = fields.get('se');
  if (sr === undefined || sig === undefined || se === undefined) {
    throw unauthorized('Malformed shared access signature: sr, sig and se are required.');
  }
  if (!/^\d{1,15}$/.test(se)) throw unauthorized('Malformed shared access signature: se must be epoch seconds.');
  const skn = fields.get('skn');
  return { rawResource: sr, resource: decode(sr), signature: decode(sig), expiry: Number(se), keyName: skn === undefined ? undefined : decode(skn) };
}

function hmac(key: string, rawResource: string, expiry: number): Buffer {
  return createHmac('sha256', Buffer.from(key, 'base64')).update(`${rawResource}\n${expiry}`).digest();
}

/**
 * Whether the token was signed with `key` (base64). The HMAC is computed over the `sr` as received: the Node SDK
 * signs `encodeURIComponent(host/devices/id)` without lower-casing it while the docs say lower-case, so re-encoding
 * or re-casing would refuse one of them (reference/iot-hub.md §1.3).
 */
export function isSignedWith(token: SasToken, key: string): boolean {
  const expected = hmac(key, token.rawResource, token.expiry);
  const given = Buffer.from(token.signature, 'base64');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function isExpired(token: SasToken, nowMs: number): boolean {
  return token.expiry * 1000 <= nowMs;
}

function segments(resource: string): string[] {
  return resource.toLowerCase().replace(/\/+$/, '').split('/');
}

/**
 * Whether a token for `granted` may be used for `target`: resources compare without regard to case, and the scope is
 * a prefix match by path segment (`/a/b` covers `/a/b/c`, not `/a/bc`). The host part may carry a `:port` (the SDK
 * puts one in `sr` when the connection string's HostName has it, §2.1); `hostNames` lists the names this hub answers
 * to, any port accepted.
 */
export function resourceCovers(granted: string, target: string, hostNames: readonly string[] = []): boolean {
  const g = segments(granted.replace(/^https?:\/\//i, ''));
  const t = segments(target);
  if (g.length > t.length || g.length === 0) return false;
  const hosts = new Set(hostNames.map((h) => stripPort(h).toLowerCase()));
  for (let i = 0; i < g.length; i++) {
    if (i === 0 && hosts.size > 0) {
      if (!hosts.has(stripPort(g[0]!)) || !hosts.has(stripPort(t[0]!))) return false;
    } else if (g[i] !== t[i]) {
      return false;
    }
  }
  return true;
}

/** `host:port` → `host`; also `[::1]:8883` → `[::1]`. A bare IPv6 address is left alone. */
export function stripPort(host: string): string {
  const bracket = /^(\[[^\]]*\])(:\d+)?$/.exec(host);
  if (bracket) return bracket[1]!;
  const m = /^([^:]*):\d+$/.exec(host);
  return m ? m[1]! : host;
}

/** URL-encodes as the Node SDK does (`encodeURIComponent` plus `!'()*`), common/core/src/authorization.ts. */
export function encodeUriComponentStrict(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Creates a SAS token for `resource` (e.g. `host/devices/dev1`, or `host` with a policy `keyName`). */
export function createSasToken(opts: { resource: string; key: string; expiry: number; keyName?: string }): string {
  const sr = encodeUriComponentStrict(opts.resource);
  const sig = encodeUriComponentStrict(hmac(opts.key, sr, opts.expiry).toString('base64'));
  return `${PREFIX}sr=${sr}&sig=${sig}${opts.keyName ? `&skn=${encodeUriComponentStrict(opts.keyName)}` : ''}&se=${opts.expiry}`;
}

// ---- connection strings ----------------------------------------------------------------------------------------

export interface DeviceConnectionString {
  readonly hostName: string;
  readonly deviceId: string;
  readonly sharedAccessKey: string;
  readonly gatewayHostName?: string;
}

export interface ServiceConnectionString {
  readonly hostName: string;
  readonly sharedAccessKeyName: string;
  readonly sharedAccessKey: string;
}

/** Parses `Key=value;Key=value` (values may contain `=`, as base64 keys do). */
export function parseConnectionString(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(';')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new CcsError('ArgumentInvalid', `Malformed connection string: '${part}' is not Key=value.`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

export function parseDeviceConnectionString(text: string): DeviceConnectionString {
  const f = parseConnectionString(text);
  const hostName = f['HostName'];
  const deviceId = f['DeviceId'];
  const sharedAccessKey = f['SharedAccessKey'];
  if (!hostName || !deviceId || !sharedAccessKey) {
    throw new CcsError('ArgumentInvalid', 'A device connection string needs HostName, DeviceId and SharedAccessKey.');
  }
  return { hostName, deviceId, sharedAccessKey, ...(f['GatewayHostName'] ? { gatewayHostName: f['GatewayHostName'] } : {}) };
}

export function parseServiceConnectionString(text: string): ServiceConnectionString {
  const f = parseConnectionString(text);
  const hostName = f['HostName'];
  const sharedAccessKeyName = f['SharedAccessKeyName'];
  const sharedAccessKey = f['SharedAccessKey'];
  if (!hostName || !sharedAccessKeyName || !sharedAccessKey) {
    throw new CcsError('ArgumentInvalid', 'A service connection string needs HostName, SharedAccessKeyName and SharedAccessKey.');
  }
  return { hostName, sharedAccessKeyName, sharedAccessKey };
}

export function buildDeviceConnectionString(c: DeviceConnectionString): string {
  return `HostName=${c.hostName};DeviceId=${c.deviceId};SharedAccessKey=${c.sharedAccessKey}${c.gatewayHostName ? `;GatewayHostName=${c.gatewayHostName}` : ''}`;
}

export function buildServiceConnectionString(c: ServiceConnectionString): string {
  return `HostName=${c.hostName};SharedAccessKeyName=${c.sharedAccessKeyName};SharedAccessKey=${c.sharedAccessKey}`;
}

/** A device token from a device connection string, as the SDK makes it (`sr` = `HostName/devices/DeviceId`). */
export function deviceTokenFromConnectionString(text: string, expiry: number): string {
  const c = parseDeviceConnectionString(text);
  return createSasToken({ resource: `${c.hostName}/devices/${c.deviceId}`, key: c.sharedAccessKey, expiry });
}
