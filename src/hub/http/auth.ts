import type { FastifyRequest } from 'fastify';
import { CcsError } from '../../errors/index.js';
import { parseSasToken, type SasToken } from '../sas.js';
import type { AccessPolicy, Hub, PolicyRight } from '../types.js';

/**
 * The SAS token of an `Authorization: SharedAccessSignature sr=…&sig=…&se=…[&skn=…]` header (IoT Hub SAS tokens,
 * iot-hub-dev-guide-sas "SAS token structure"). The hub verifies it; here it is only read to tell a shared access
 * policy token (`skn` present) from a device token.
 */
export interface SasHeader {
  /** The header value as sent, handed to the hub unchanged: it signs the raw `sr`. */
  readonly token: string;
  readonly parsed: SasToken;
}

export function readSasHeader(req: FastifyRequest): SasHeader {
  const raw = req.headers.authorization;
  if (!raw) throw new CcsError('IotHubUnauthorizedAccess', 'Unauthorized: send "Authorization: SharedAccessSignature sr=…&sig=…&se=…".');
  const token = raw.trim();
  return { token, parsed: parseSasToken(token) };
}

/** Checks a service caller's policy token for one right (IoT Hub answers 401 for a missing right, too). */
export async function authorizeService(hub: Hub, req: FastifyRequest, right: PolicyRight): Promise<AccessPolicy> {
  const sas = readSasHeader(req);
  if (sas.parsed.keyName === undefined) {
    throw new CcsError('IotHubUnauthorizedAccess', 'Unauthorized: this operation needs a shared access policy token (with skn).');
  }
  return hub.authenticateService(sas.token, right);
}

/**
 * Authenticates a caller of the device HTTPS surface for `deviceId`: the device's own token, or a shared access
 * policy token with DeviceConnect covering the device (how gateways act for devices, dev-guide-sas "Use security
 * tokens from service components"); the hub checks both. A token for another device fails the hub's `sr` check and
 * is answered 401 IotHubUnauthorizedAccess, as IoT Hub does.
 */
export async function authorizeDevice(hub: Hub, req: FastifyRequest, deviceId: string): Promise<void> {
  await hub.authenticateDevice(deviceId, readSasHeader(req).token);
}
