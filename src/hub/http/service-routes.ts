import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CcsError } from '../../errors/index.js';
import type { Hub, MethodRequest } from '../types.js';
import { authorizeService } from './auth.js';
import { bodyBytes, DEVICE_BOUND } from './device-routes.js';
import { deviceJson, isJsonObject, parseDeviceBody, parseJsonBody, parseTwinBody, twinJson, type Json } from './json.js';
import { SERVICE_BODY_LIMIT } from './limits.js';
import { messageFromRequest } from './message-headers.js';

/**
 * IoT Hub's service REST as `azure-iothub` 1.16 uses it (reference/iot-hub.md §4): registry on `/devices`, twins on
 * `/twins/{id}`, direct methods on `/twins/{id}/methods`. Callers sign with a shared access policy token; the right
 * each route needs is IoT Hub's (dev-guide-sas "Access control and permissions").
 */

type IdParams = { Params: { deviceId: string } };

const JSON_TYPE = 'application/json; charset=utf-8';

/** `If-Match: "*"` (what the SDK sends for update and delete) or no header means unconditional. */
function ifMatch(req: FastifyRequest): string | undefined {
  const v = req.headers['if-match'];
  if (v === undefined) return undefined;
  const t = v.trim();
  const unquoted = t.startsWith('W/') ? t.slice(2) : t;
  const etag = unquoted.length >= 2 && unquoted.startsWith('"') && unquoted.endsWith('"') ? unquoted.slice(1, -1) : unquoted;
  return etag === '*' ? undefined : etag;
}

function sendJson(reply: FastifyReply, status: number, body: unknown, etag?: string): FastifyReply {
  const r = reply.status(status).header('content-type', JSON_TYPE);
  if (etag !== undefined) r.header('etag', `"${etag}"`);
  return r.send(JSON.stringify(body));
}

/** Range checks (5–300 s, 0–300 s) and the payload limit are the hub's; here only the JSON types are read. */
function optionalSeconds(v: Json | undefined, name: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') throw new CcsError('ArgumentInvalid', `${name} must be a number of seconds.`);
  return v;
}

function parseMethodBody(body: Json): MethodRequest {
  if (!isJsonObject(body)) throw new CcsError('ArgumentInvalid', 'The method invocation must be a JSON object.');
  const methodName = body['methodName'];
  if (typeof methodName !== 'string' || methodName === '') throw new CcsError('ArgumentInvalid', 'methodName is required.');
  const responseTimeoutInSeconds = optionalSeconds(body['responseTimeoutInSeconds'], 'responseTimeoutInSeconds');
  const connectTimeoutInSeconds = optionalSeconds(body['connectTimeoutInSeconds'], 'connectTimeoutInSeconds');
  return {
    methodName,
    payload: body['payload'] ?? null,
    ...(responseTimeoutInSeconds !== undefined ? { responseTimeoutInSeconds } : {}),
    ...(connectTimeoutInSeconds !== undefined ? { connectTimeoutInSeconds } : {}),
  };
}

function parseTop(v: string | undefined): number {
  if (v === undefined || v === '') return 1000;
  const n = Number(v);
  // IoT Hub's list returns at most 1000 identities (REST "Devices - Get Devices", `top`).
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new CcsError('ArgumentInvalid', `top must be a whole number from 1 to 1000, not '${v}'.`);
  return n;
}

export function registerServiceRoutes(app: FastifyInstance, hub: Hub): void {
  const limit = { bodyLimit: SERVICE_BODY_LIMIT };

  // ---- registry --------------------------------------------------------------------------------------------------
  // registry.list() asks for `/devices/` (endpoint.devicePath('')), so both spellings are served.
  for (const path of ['/devices', '/devices/']) {
    app.get<{ Querystring: { top?: string } }>(path, async (req, reply) => {
      await authorizeService(hub, req, 'RegistryRead');
      const devices = await hub.registry.list({ top: parseTop(req.query.top) });
      return sendJson(reply, 200, devices.map(deviceJson));
    });
  }

  app.get<IdParams>('/devices/:deviceId', async (req, reply) => {
    await authorizeService(hub, req, 'RegistryRead');
    const d = await hub.registry.get(req.params.deviceId);
    if (!d) throw new CcsError('DeviceNotFound', `Device '${req.params.deviceId}' is not registered.`);
    return sendJson(reply, 200, deviceJson(d), d.etag);
  });

  // Create without If-Match (registry.create); update with `If-Match: "*"` or an etag (registry.update)
  // (REST "Devices - Create Or Update Identity": If-Match "should not be set when creating").
  app.put<IdParams>('/devices/:deviceId', limit, async (req, reply) => {
    await authorizeService(hub, req, 'RegistryWrite');
    const input = parseDeviceBody(parseJsonBody(bodyBytes(req)), req.params.deviceId);
    const d = req.headers['if-match'] === undefined ? await hub.registry.create(input) : await hub.registry.update(input, ifMatch(req));
    return sendJson(reply, 200, deviceJson(d), d.etag);
  });

  app.delete<IdParams>('/devices/:deviceId', async (req, reply) => {
    await authorizeService(hub, req, 'RegistryWrite');
    await hub.registry.delete(req.params.deviceId, ifMatch(req));
    return reply.status(204).send();
  });

  // ---- twins -----------------------------------------------------------------------------------------------------
  app.get<IdParams>('/twins/:deviceId', async (req, reply) => {
    await authorizeService(hub, req, 'ServiceConnect');
    const twin = await hub.getTwin(req.params.deviceId);
    return sendJson(reply, 200, twinJson(twin, await hub.registry.get(req.params.deviceId)), twin.etag);
  });

  // twin.update(patch) sends the etag it read (`If-Match: "<etag>"`); a mismatch is 412 PreconditionFailed.
  app.patch<IdParams>('/twins/:deviceId', limit, async (req, reply) => {
    await authorizeService(hub, req, 'ServiceConnect');
    const patch = parseTwinBody(parseJsonBody(bodyBytes(req)), 'patch');
    const twin = await hub.updateTwin(req.params.deviceId, patch, ifMatch(req));
    return sendJson(reply, 200, twinJson(twin, await hub.registry.get(req.params.deviceId)), twin.etag);
  });

  app.put<IdParams>('/twins/:deviceId', limit, async (req, reply) => {
    await authorizeService(hub, req, 'ServiceConnect');
    const replacement = parseTwinBody(parseJsonBody(bodyBytes(req)), 'replace');
    const twin = await hub.replaceTwin(req.params.deviceId, replacement, ifMatch(req));
    return sendJson(reply, 200, twinJson(twin, await hub.registry.get(req.params.deviceId)), twin.etag);
  });

  // ---- direct methods --------------------------------------------------------------------------------------------
  // 200 `{status, payload}` whatever status the device chose; offline is 404 DeviceNotOnline and no answer in time
  // is 504 GatewayTimeout, both raised by the hub (dev-guide direct methods, "Response").
  app.post<IdParams>('/twins/:deviceId/methods', limit, async (req, reply) => {
    await authorizeService(hub, req, 'ServiceConnect');
    const request = parseMethodBody(parseJsonBody(bodyBytes(req)));
    const res = await hub.invokeMethod(req.params.deviceId, request);
    return sendJson(reply, 200, { status: res.status, payload: res.payload ?? null });
  });

  // ---- cloud-to-device send (ccs's own) ----------------------------------------------------------------------------
  // IoT Hub sends C2D only over AMQP (`serviceClient.send()`, reference/iot-hub.md §4), which ccs does not serve.
  // This REST form takes the message as the device will receive it over HTTPS: body as bytes, properties as
  // `iothub-app-*` headers, system properties as `iothub-messageid`, `iothub-correlationid`, `iothub-expiry`…
  for (const seg of DEVICE_BOUND) {
    app.post<IdParams>(`/devices/:deviceId/messages/${seg}`, limit, async (req, reply) => {
      await authorizeService(hub, req, 'ServiceConnect');
      // Size (64 KB), property characters and the 50-message queue depth are checked by the hub.
      const message = messageFromRequest(req.raw.rawHeaders, bodyBytes(req));
      const queued = await hub.sendC2d(req.params.deviceId, message);
      return sendJson(reply, 200, {
        messageId: queued.messageId,
        enqueuedTimeUtc: new Date(queued.enqueuedTime).toISOString(),
        ...(queued.expiryTime !== undefined ? { expiryTimeUtc: new Date(queued.expiryTime).toISOString() } : {}),
      });
    });
  }
}
