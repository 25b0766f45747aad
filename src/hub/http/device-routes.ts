import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CcsError } from '../../errors/index.js';
import { D2C_MAX_BYTES, messageSize } from '../telemetry-log.js';
import type { Hub, HubMessage } from '../types.js';
import { authorizeDevice } from './auth.js';
import { D2C_BODY_LIMIT } from './limits.js';
import { c2dHeaders, isBatch, messageFromRequest, messagesFromBatch } from './message-headers.js';

/**
 * IoT Hub's HTTPS device API (REST reference "Device - Send Device Event", "Receive Device Bound Notification",
 * "Complete / Abandon Device Bound Notification"), api-version 2021-04-12 or none. Devices sign requests with their
 * SAS token; see auth.ts.
 */

type DeviceParams = { Params: { deviceId: string } };
type LockParams = { Params: { deviceId: string; lockToken: string }; Querystring: Record<string, string | undefined> };

export function bodyBytes(req: FastifyRequest): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

/** The SDKs strip the ETag's quotes before putting the lock token in the path; other clients may not. */
function unquote(s: string): string {
  return s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s;
}

/**
 * The C2D paths: IoT Hub documents `deviceBound`; the Node and C SDKs send `devicebound` (azure-iot-common
 * endpoint.ts deviceMessagePath). Both are served, since routes are case-sensitive.
 */
export const DEVICE_BOUND = ['deviceBound', 'devicebound'] as const;

export function registerDeviceRoutes(app: FastifyInstance, hub: Hub): void {
  app.post<DeviceParams>('/devices/:deviceId/messages/events', { bodyLimit: D2C_BODY_LIMIT }, async (req, reply) => {
    const { deviceId } = req.params;
    await authorizeDevice(hub, req, deviceId);
    const body = bodyBytes(req);
    const messages: HubMessage[] = isBatch(req.headers['content-type']) ? messagesFromBatch(body) : [messageFromRequest(req.raw.rawHeaders, body)];
    // D2C messages are at most 256 KB, body and properties (quotas-throttling); a batch is limited to 256 KB in
    // total. Checked before anything is stored, so a batch is refused whole rather than half ingested.
    const total = messages.reduce((n, m) => n + messageSize(m), 0);
    if (total > D2C_MAX_BYTES) {
      throw new CcsError('MessageTooLarge', `The message is ${total} bytes; device-to-cloud messages are limited to ${D2C_MAX_BYTES} bytes.`);
    }
    // 204 means durable (issue 3 §8): answer only after the hub has stored every message of the request.
    for (const m of messages) await hub.ingest(deviceId, m, 'https');
    return reply.status(204).send();
  });

  for (const seg of DEVICE_BOUND) {
    app.get<DeviceParams>(`/devices/:deviceId/messages/${seg}`, async (req, reply) => {
      const { deviceId } = req.params;
      await authorizeDevice(hub, req, deviceId);
      hub.touch(deviceId);
      const m = await hub.receiveC2d(deviceId);
      // No message pending: 204 with no body, which the SDKs' polling receivers treat as "nothing yet".
      if (!m) return reply.status(204).send();
      return reply.status(200).headers(c2dHeaders(deviceId, m)).send(m.body);
    });

    app.delete<LockParams>(`/devices/:deviceId/messages/${seg}/:lockToken`, async (req, reply) => {
      const { deviceId, lockToken } = req.params;
      await authorizeDevice(hub, req, deviceId);
      hub.touch(deviceId);
      // `?reject` (no value) rejects instead of completing (Complete Device Bound Notification, `reject` parameter).
      const reject = req.query['reject'] !== undefined && req.query['reject'] !== 'false';
      await hub.settleC2d(deviceId, unquote(lockToken), reject ? 'reject' : 'complete');
      return reply.status(204).send();
    });

    app.post<LockParams>(`/devices/:deviceId/messages/${seg}/:lockToken/abandon`, async (req, reply) => {
      const { deviceId, lockToken } = req.params;
      await authorizeDevice(hub, req, deviceId);
      hub.touch(deviceId);
      await hub.settleC2d(deviceId, unquote(lockToken), 'abandon');
      return reply.status(204).send();
    });
  }
}
