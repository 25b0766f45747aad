import { CcsError } from '../../errors/index.js';
import type { C2dMessage, HubMessage } from '../types.js';
import { isJsonObject, parseJsonBody } from './json.js';

/**
 * IoT Hub messages over HTTPS carry their properties as headers (dev-guide "Create and read IoT Hub messages",
 * HTTPS column): application properties as `iothub-app-<name>`, system properties as `iothub-messageid`,
 * `iothub-correlationid`, `iothub-userid`, `iothub-expiry`, `iothub-contenttype`, `iothub-contentencoding`.
 */

const APP = 'iothub-app-';

type MutableMessage = { -readonly [K in keyof HubMessage]: HubMessage[K] };

function parseExpiry(value: string): number {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new CcsError('ArgumentInvalid', `iothub-expiry '${value}' is not a date (use ISO 8601, e.g. 2030-01-01T00:00:00Z).`);
  return ms;
}

/**
 * Applies one header or batch property to a message; names that are not message properties are ignored. Property
 * names keep the case the sender used (Node keeps it in rawHeaders), as IoT Hub does.
 */
function apply(m: MutableMessage, props: Record<string, string>, name: string, value: string): void {
  const lower = name.toLowerCase();
  if (lower.startsWith(APP)) {
    const key = name.slice(APP.length);
    if (key !== '' && !(key in props)) props[key] = value;
    return;
  }
  switch (lower) {
    case 'iothub-messageid': m.messageId ??= value; break;
    case 'iothub-correlationid': m.correlationId ??= value; break;
    case 'iothub-userid': m.userId ??= value; break;
    case 'iothub-expiry': if (value !== '') m.expiryTime ??= parseExpiry(value); break;
    case 'iothub-contenttype': m.contentType = value; break;
    case 'iothub-contentencoding': m.contentEncoding = value; break;
    default: break;
  }
}

/**
 * A message from an HTTP request: the body as bytes and properties from the headers. The plain `Content-Type` and
 * `Content-Encoding` headers stand for the content-type / content-encoding system properties when the explicit
 * `iothub-contenttype` / `iothub-contentencoding` are absent.
 */
export function messageFromRequest(rawHeaders: readonly string[], body: Buffer): HubMessage {
  const m: MutableMessage = { body, properties: {} };
  const props: Record<string, string> = {};
  let contentType: string | undefined;
  let contentEncoding: string | undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    const lower = name.toLowerCase();
    if (lower === 'content-type') contentType ??= value;
    else if (lower === 'content-encoding') contentEncoding ??= value;
    else apply(m, props, name, value);
  }
  m.contentType ??= contentType;
  m.contentEncoding ??= contentEncoding;
  m.properties = props;
  return stripUndefined(m);
}

function stripUndefined(m: MutableMessage): HubMessage {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) if (v !== undefined) out[k] = v;
  return out as unknown as HubMessage;
}

/** IoT Hub's batched telemetry (`Content-Type: application/vnd.microsoft.iothub.json`), as the C and Node SDKs send it. */
export const BATCH_CONTENT_TYPE = 'application/vnd.microsoft.iothub.json';

export function isBatch(contentType: string | undefined): boolean {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase() === BATCH_CONTENT_TYPE;
}

/**
 * `[{ "body": "<base64>", "base64Encoded": true, "properties": { "iothub-app-k": "v", "iothub-messageid": "…" } }]`.
 * The body is base64 unless `base64Encoded` is false (then it is the text itself).
 */
export function messagesFromBatch(body: Buffer): HubMessage[] {
  const doc = parseJsonBody(body);
  if (!Array.isArray(doc) || doc.length === 0) throw new CcsError('ArgumentInvalid', 'A batch must be a non-empty JSON array of messages.');
  return doc.map((item, i) => {
    if (!isJsonObject(item) || typeof item['body'] !== 'string') {
      throw new CcsError('ArgumentInvalid', `Batch item ${i} must be an object with a string "body".`);
    }
    const m: MutableMessage = {
      body: item['base64Encoded'] === false ? Buffer.from(item['body'], 'utf8') : Buffer.from(item['body'], 'base64'),
      properties: {},
    };
    const props: Record<string, string> = {};
    const given = item['properties'];
    if (given !== undefined && given !== null) {
      if (!isJsonObject(given)) throw new CcsError('ArgumentInvalid', `Batch item ${i}: "properties" must be an object.`);
      for (const [k, v] of Object.entries(given)) {
        if (typeof v !== 'string') throw new CcsError('ArgumentInvalid', `Batch item ${i}: property '${k}' must be a string.`);
        apply(m, props, k, v);
      }
    }
    m.properties = props;
    return stripUndefined(m);
  });
}

/** Headers of a cloud-to-device message handed to a device polling over HTTPS. */
export function c2dHeaders(deviceId: string, m: C2dMessage): Record<string, string> {
  const h: Record<string, string> = {
    // The lock token travels as the ETag; the SDKs strip the quotes and send it back in the complete/abandon path.
    etag: `"${m.lockToken}"`,
    'iothub-messageid': headerValue(m.messageId),
    'iothub-enqueuedtime': new Date(m.enqueuedTime).toISOString(),
    'iothub-deliverycount': String(m.deliveryCount),
    'iothub-to': `/devices/${deviceId}/messages/deviceBound`,
    'content-type': headerValue(m.contentType ?? 'application/octet-stream'),
  };
  if (m.correlationId !== undefined) h['iothub-correlationid'] = headerValue(m.correlationId);
  if (m.userId !== undefined) h['iothub-userid'] = headerValue(m.userId);
  if (m.expiryTime !== undefined) h['iothub-expiry'] = new Date(m.expiryTime).toISOString();
  if (m.contentType !== undefined) h['iothub-contenttype'] = headerValue(m.contentType);
  // Not as HTTP Content-Encoding: the body is not transfer-encoded, and clients would try to decode it.
  if (m.contentEncoding !== undefined) h['iothub-contentencoding'] = headerValue(m.contentEncoding);
  for (const [k, v] of Object.entries(m.properties)) h[`${APP}${headerName(k)}`] = headerValue(v);
  return h;
}

/**
 * Properties that reached the queue another way (MQTT bags are URL-decoded, the Web API takes any text) may hold
 * characters a header cannot; they are percent-encoded rather than failing the whole receive. IoT Hub itself limits
 * C2D property names and values to header-safe ASCII (dev-guide messages-construct), so compliant senders never
 * see the difference.
 */
function headerName(name: string): string {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name) ? name : encodeURIComponent(name);
}

function headerValue(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
}
