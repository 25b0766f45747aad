import type { C2dMessage, HubMessage } from '../types.js';

/**
 * IoT Hub's MQTT topic names, property bags and CONNECT username, parsed and built as pure functions.
 *
 * Sources: "Communicate with an IoT hub using the MQTT protocol" (learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub,
 * cited as [MQTT-doc]) and what the Node SDK actually sends and parses (reference/iot-hub.md §1.5, §2.4, §2.5).
 */

// ---- CONNECT username ------------------------------------------------------------------------------------------

export interface MqttUsername {
  /** The host the device addressed, possibly with `:port` (the SDK keeps a port given in HostName, §2.1). */
  readonly host: string;
  readonly deviceId: string;
  /** Present for module identities (`{host}/{deviceId}/{moduleId}/?…`), which this gateway does not serve. */
  readonly moduleId: string | undefined;
  /** Decoded query fields: `api-version`, `DeviceClientType`, `model-id`… */
  readonly fields: ReadonlyMap<string, string>;
}

/**
 * `{host}/{deviceId}/?api-version=2021-04-12&DeviceClientType=…` ([MQTT-doc] "Using the MQTT protocol directly (as a
 * device)"). The query part is optional: the docs only recommend `api-version`. Returns undefined when malformed.
 */
export function parseUsername(username: string): MqttUsername | undefined {
  const q = username.indexOf('?');
  const path = q === -1 ? username : username.slice(0, q);
  const query = q === -1 ? '' : username.slice(q + 1);
  const parts = path.replace(/\/$/, '').split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) return undefined;
  const fields = parseQuery(query);
  if (!fields) return undefined;
  return { host: parts[0]!, deviceId: parts[1]!, moduleId: parts[2], fields };
}

// ---- property bags ---------------------------------------------------------------------------------------------

function decode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/**
 * A URL-encoded `k=v&k2=v2` bag. `+` stays a plus: the SDK encodes with `encodeURIComponent`/`querystring.stringify`,
 * which never emit `+` for a space, and decodes C2D bags with `decodeURIComponent` (mqtt.js dist 838-846). A bare key
 * is IoT Hub's encoding of a null value ([MQTT-doc] "Receiving cloud-to-device messages"), read here as ''.
 * Returns undefined when an escape is malformed.
 */
export function parseQuery(text: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  if (text === '') return out;
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = decode(eq === -1 ? pair : pair.slice(0, eq));
    const value = eq === -1 ? '' : decode(pair.slice(eq + 1));
    if (key === undefined || value === undefined || key === '') return undefined;
    out.set(key, value);
  }
  return out;
}

/** Encodes a bag the way the SDK decodes it: `encodeURIComponent` on keys and values, joined with `&` and `=`. */
export function buildQuery(entries: Iterable<readonly [string, string]>): string {
  const parts: string[] = [];
  for (const [k, v] of entries) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  return parts.join('&');
}

/** System properties on D2C bags that map onto `HubMessage` fields ([MQTT-doc] "Sending device-to-cloud messages"). */
const SYSTEM_TO_APP: Readonly<Record<string, string>> = {
  // The SDK sends the `dt-subject` application property as `$.sub` (mqtt.js dist `_getEventTopicFromMessage`).
  '$.sub': 'dt-subject',
  // IoT Plug and Play interface id; IoT Hub exposes it as the `iothub-interface-id` property.
  '$.ifid': 'iothub-interface-id',
};

/** Builds the message a device sent from its property bag and body. Unknown `$.` keys are kept as they came. */
export function messageFromBag(bag: ReadonlyMap<string, string>, body: Buffer): HubMessage {
  const properties: Record<string, string> = {};
  let messageId: string | undefined;
  let correlationId: string | undefined;
  let userId: string | undefined;
  let contentType: string | undefined;
  let contentEncoding: string | undefined;
  let expiryTime: number | undefined;
  for (const [k, v] of bag) {
    switch (k) {
      case '$.mid': messageId = v; break;
      case '$.cid': correlationId = v; break;
      case '$.uid': userId = v; break;
      case '$.ct': contentType = v; break;
      case '$.ce': contentEncoding = v; break;
      case '$.exp': {
        // The SDK sends an ISO 8601 date (`expiryTimeUtc.toISOString()`); anything unreadable is dropped.
        const t = Date.parse(v);
        if (Number.isFinite(t)) expiryTime = t;
        break;
      }
      case '$.to': break; // meaningless device→cloud; IoT Hub sets its own routing
      // Own keys only: `toString` or `constructor` must not pick up Object.prototype members as names.
      default: properties[Object.hasOwn(SYSTEM_TO_APP, k) ? SYSTEM_TO_APP[k]! : k] = v;
    }
  }
  return {
    body,
    properties,
    ...(messageId !== undefined ? { messageId } : {}),
    ...(correlationId !== undefined ? { correlationId } : {}),
    ...(userId !== undefined ? { userId } : {}),
    ...(contentType !== undefined ? { contentType } : {}),
    ...(contentEncoding !== undefined ? { contentEncoding } : {}),
    ...(expiryTime !== undefined ? { expiryTime } : {}),
  };
}

// ---- device → hub topics ---------------------------------------------------------------------------------------

export type DevicePublish =
  /** `devices/{id}/messages/events/{bag}` ([MQTT-doc] "Sending device-to-cloud messages"). */
  | { readonly kind: 'telemetry'; readonly bag: ReadonlyMap<string, string> }
  /** `$iothub/twin/GET/?$rid={rid}` ([MQTT-doc] "Retrieving a device twin's properties"). */
  | { readonly kind: 'twinGet'; readonly rid: string }
  /** `$iothub/twin/PATCH/properties/reported/?$rid={rid}` ([MQTT-doc] "Update device twin's reported properties"). */
  | { readonly kind: 'twinPatchReported'; readonly rid: string }
  /** `$iothub/methods/res/{status}/?$rid={rid}` ([MQTT-doc] "Respond to a direct method"). */
  | { readonly kind: 'methodResponse'; readonly rid: string; readonly status: number };

/**
 * Classifies a PUBLISH topic from device `deviceId`. Undefined means the topic is not one a device may publish to —
 * another device's, a module's, a hub→device one, or malformed — and IoT Hub closes the connection for it.
 * `$rid` values are returned as they appear on the wire, so that replies echo them byte for byte.
 */
export function parseDevicePublish(topic: string, deviceId: string): DevicePublish | undefined {
  const events = `devices/${deviceId}/messages/events`;
  if (topic.startsWith(events)) {
    const rest = topic.slice(events.length);
    if (rest !== '' && !rest.startsWith('/')) return undefined;
    // The bag is everything after `events/`: values the device left unencoded may hold a `/`.
    const bag = parseQuery(rest.slice(1));
    return bag ? { kind: 'telemetry', bag } : undefined;
  }
  if (!topic.startsWith('$iothub/')) return undefined;
  const q = topic.indexOf('?');
  if (q === -1) return undefined;
  const path = topic.slice(0, q).replace(/\/$/, '');
  const rid = rawField(topic.slice(q + 1), '$rid');
  if (rid === undefined || rid === '') return undefined;
  if (path === '$iothub/twin/GET') return { kind: 'twinGet', rid };
  if (path === '$iothub/twin/PATCH/properties/reported') return { kind: 'twinPatchReported', rid };
  const m = /^\$iothub\/methods\/res\/(\d{1,9})$/.exec(path);
  if (m) return { kind: 'methodResponse', rid, status: Number(m[1]) };
  return undefined;
}

/** A query field's value exactly as sent (undecoded). */
function rawField(query: string, name: string): string | undefined {
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    if ((eq === -1 ? pair : pair.slice(0, eq)) === name) return eq === -1 ? '' : pair.slice(eq + 1);
  }
  return undefined;
}

// ---- subscriptions ---------------------------------------------------------------------------------------------

export type SubscriptionKind = 'c2d' | 'methods' | 'twinResponses' | 'desired';

/** The documented topic filters ([MQTT-doc]) a device may subscribe to, as prefixes of its filter. */
function families(deviceId: string): readonly (readonly [string, SubscriptionKind])[] {
  return [
    [`devices/${deviceId}/messages/devicebound/`, 'c2d'],
    ['$iothub/methods/POST/', 'methods'],
    ['$iothub/twin/res/', 'twinResponses'],
    ['$iothub/twin/PATCH/properties/desired/', 'desired'],
  ];
}

/**
 * Which family a SUBSCRIBE topic filter belongs to, or undefined when the device may not hold it. A device may
 * subscribe only under its own documented topics: `devices/{id}/messages/devicebound/#`, `$iothub/methods/POST/#`,
 * `$iothub/twin/res/#`, `$iothub/twin/PATCH/properties/desired/#` ([MQTT-doc]) or narrower filters inside them
 * (`$iothub/methods/POST/reboot/#`); anything reaching outside them (`devices/#`, another device's topics) is refused.
 */
export function classifyFilter(filter: string, deviceId: string): SubscriptionKind | undefined {
  if (!isValidFilter(filter)) return undefined;
  for (const [prefix, kind] of families(deviceId)) {
    if (filter.startsWith(prefix) && filter.length > prefix.length) return kind;
  }
  return undefined;
}

/** MQTT 3.1.1 §4.7.1: `#` only alone as the last level, `+` only as a whole level. */
export function isValidFilter(filter: string): boolean {
  if (filter === '' || filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return false;
    if (level.includes('+') && level !== '+') return false;
  }
  return true;
}

/** MQTT 3.1.1 §4.7: whether `topic` matches `filter` (`#` also matches the parent level, [MQTT-4.7.1-2]). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

// ---- hub → device topics ---------------------------------------------------------------------------------------

/** `devices/{id}/messages/devicebound/{bag}` ([MQTT-doc] "Receiving cloud-to-device messages"). */
export function c2dTopic(deviceId: string, message: C2dMessage): string {
  const bag: [string, string][] = [
    ['$.mid', message.messageId],
    // IoT Hub sets `$.to` to the device's devicebound address; the SDK maps it to `Message.to`.
    ['$.to', `/devices/${deviceId}/messages/deviceBound`],
  ];
  if (message.correlationId !== undefined) bag.push(['$.cid', message.correlationId]);
  if (message.userId !== undefined) bag.push(['$.uid', message.userId]);
  if (message.expiryTime !== undefined && Number.isFinite(message.expiryTime)) {
    bag.push(['$.exp', new Date(message.expiryTime).toISOString()]);
  }
  if (message.contentType !== undefined) bag.push(['$.ct', message.contentType]);
  if (message.contentEncoding !== undefined) bag.push(['$.ce', message.contentEncoding]);
  for (const [k, v] of Object.entries(message.properties)) bag.push([k, v]);
  // Properties are read only from segment 4 of the topic (mqtt.ts:874-905): the bag must not contain a `/`, and
  // encodeURIComponent guarantees that.
  return `devices/${deviceId}/messages/devicebound/${buildQuery(bag)}`;
}

/**
 * `$iothub/methods/POST/{name}/?$rid={rid}` ([MQTT-doc] "Respond to a direct method"). The name goes as is, as IoT
 * Hub sends it; only characters that would break the topic (`/`, `?`, `#`, `+`, NUL) are percent-encoded.
 */
export function methodRequestTopic(methodName: string, rid: string): string {
  const name = methodName.replace(/[/?#+\u0000%]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`);
  return `$iothub/methods/POST/${name}/?$rid=${rid}`;
}

/** `$iothub/twin/res/{status}/?$rid={rid}[&$version={n}]` ([MQTT-doc] "Retrieving a device twin's properties"). */
export function twinResponseTopic(status: number, rid: string, version?: number): string {
  return `$iothub/twin/res/${status}/?$rid=${rid}${version === undefined ? '' : `&$version=${version}`}`;
}

/** `$iothub/twin/PATCH/properties/desired/?$version={n}` ([MQTT-doc] "Receiving desired properties update notifications"). */
export function desiredPatchTopic(version: number): string {
  return `$iothub/twin/PATCH/properties/desired/?$version=${version}`;
}
