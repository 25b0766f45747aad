import { randomUUID } from 'node:crypto';
import { ERRORS, isCcsError } from '../../errors/index.js';

/** The HTTP-style status of a hub error (the hub throws `CcsError`s from the catalogue); 500 for anything else. */
export function errorStatus(e: unknown): number {
  return isCcsError(e) ? ERRORS[e.code].status : 500;
}

/**
 * The body of an error reply on `$iothub/twin/res/{status}/`. IoT Hub answers with JSON carrying a numeric
 * `errorCode` (e.g. 400004), and the SDK fails the request with `body.message` only when `errorCode` is truthy
 * (mqtt_twin_client.ts 240-270); a body that is not JSON would crash it (reference/iot-hub.md §2.6 item 7).
 */
export function twinErrorBody(status: number, e: unknown): Buffer {
  const message = isCcsError(e) || status < 500 ? (e instanceof Error ? e.message : String(e)) : 'An unexpected error occurred.';
  return Buffer.from(
    JSON.stringify({ errorCode: status * 1000, trackingId: randomUUID(), message, timestampUtc: new Date().toISOString() }),
  );
}

/** Whether an authentication failure is the device's fault (refuse it) rather than the hub's (server unavailable). */
export function isRefusal(e: unknown): boolean {
  const status = errorStatus(e);
  return status >= 400 && status < 500;
}
