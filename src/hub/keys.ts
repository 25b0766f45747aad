import { randomBytes } from 'node:crypto';
import { CcsError } from '../errors/index.js';

/** A new symmetric key: 32 random bytes, base64 (what IoT Hub generates). */
export function generateKey(): string {
  return randomBytes(32).toString('base64');
}

/** A new etag: opaque, changes on every write. */
export function generateEtag(): string {
  return randomBytes(9).toString('base64');
}

/**
 * Checks a caller-supplied key: IoT Hub accepts base64 keys of 16 to 64 bytes (device-identity REST, "symmetricKey").
 */
export function checkKey(key: string, which: string): void {
  const bytes = Buffer.from(key, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key) || bytes.length < 16 || bytes.length > 64 || bytes.toString('base64') !== key) {
    throw new CcsError('ArgumentInvalid', `The ${which} key must be base64 and between 16 and 64 bytes long.`);
  }
}

/**
 * Device ids as IoT Hub allows them (iot-hub-devguide-identity-registry.md, "Device identity properties"): up to 128
 * characters, ASCII letters and digits plus `- . % _ * ? ! ( ) , : = @ $ '`. `+` `#` `/` are refused too because they
 * would break MQTT topics.
 */
export function checkDeviceId(deviceId: string): void {
  if (typeof deviceId !== 'string' || deviceId.length === 0 || deviceId.length > 128 || !/^[A-Za-z0-9\-.%_*?!(),:=@$']+$/.test(deviceId)) {
    throw new CcsError(
      'ArgumentInvalid',
      `Invalid device id '${String(deviceId)}': up to 128 characters, letters, digits and - . % _ * ? ! ( ) , : = @ $ ' only.`,
    );
  }
}
