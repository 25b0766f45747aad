import { CcsError } from '../errors/index.js';
import type { DeviceChannel, MethodRequest, MethodResponse } from './types.js';

/** Direct-method limits (iot-hub-devguide-direct-methods.md): payload ≤ 128 KB, response timeout 5–300 s, default 30. */
export const METHOD_MAX_PAYLOAD_BYTES = 128 * 1024;
export const METHOD_DEFAULT_TIMEOUT_S = 30;
const MIN_TIMEOUT_S = 5;
const MAX_TIMEOUT_S = 300;

interface Pending {
  readonly deviceId: string;
  readonly channel: DeviceChannel;
  readonly resolve: (r: MethodResponse) => void;
  readonly reject: (e: unknown) => void;
  readonly timer: NodeJS.Timeout;
}

export interface MethodInvoker {
  invoke(deviceId: string, request: MethodRequest): Promise<MethodResponse>;
  /** A device's answer on `$iothub/methods/res/{status}/?$rid=`; unknown rids and other devices' rids are ignored. */
  response(deviceId: string, rid: string, status: number, payload: Buffer): void;
  /** A channel went away: calls waiting on it fail now rather than at their timeout. */
  channelClosed(channel: DeviceChannel): void;
  /** A channel may now accept methods (attached, or subscribed): calls waiting for the device to connect proceed. */
  channelReady(deviceId: string): void;
  close(): void;
}

function checkSeconds(value: unknown, name: string, min: number, max: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new CcsError('ArgumentInvalid', `${name} must be a whole number of seconds from ${min} to ${max}.`);
  }
}

/**
 * Checks a method request (name, timeouts, payload size) and returns the payload as it goes to the device. A node
 * that routes the call to another checks it first, so a bad request fails the same way wherever the device is.
 */
export function checkMethodRequest(request: MethodRequest): Buffer {
  // The name becomes a topic level ($iothub/methods/POST/{name}/): no level separators or wildcards.
  if (typeof request.methodName !== 'string' || request.methodName === '' || request.methodName.length > 256 || /[/#+\u0000-\u001f]/.test(request.methodName)) {
    throw new CcsError('ArgumentInvalid', `Invalid method name '${String(request.methodName)}'.`);
  }
  checkSeconds(request.responseTimeoutInSeconds, 'responseTimeoutInSeconds', MIN_TIMEOUT_S, MAX_TIMEOUT_S);
  checkSeconds(request.connectTimeoutInSeconds, 'connectTimeoutInSeconds', 0, MAX_TIMEOUT_S);
  const body = Buffer.from(request.payload === undefined ? 'null' : JSON.stringify(request.payload), 'utf8');
  if (body.length > METHOD_MAX_PAYLOAD_BYTES) {
    throw new CcsError('MessageTooLarge', `Method payload is ${body.length} bytes; the limit is ${METHOD_MAX_PAYLOAD_BYTES}.`);
  }
  return body;
}

function parsePayload(payload: Buffer): unknown {
  if (payload.length === 0) return null;
  const text = payload.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // IoT Hub requires JSON; a device that answers otherwise still gets its answer through, as a string.
    return text;
  }
}

/**
 * Direct methods: sends the request to the connection that holds the device and correlates the device's answer by
 * `$rid`. An offline device fails at once with 404 DeviceNotOnline unless `connectTimeoutInSeconds` lets it connect
 * first; no answer within `responseTimeoutInSeconds` fails with 504 GatewayTimeout.
 */
export function createMethodInvoker(opts: { readonly channelOf: (deviceId: string) => DeviceChannel | undefined; readonly pollMs?: number }): MethodInvoker {
  const pending = new Map<string, Pending>();
  const waiting = new Map<string, Set<() => void>>();
  let nextRid = 1;
  let closed = false;

  function ready(deviceId: string): DeviceChannel | undefined {
    const c = opts.channelOf(deviceId);
    return c && c.acceptsMethods ? c : undefined;
  }

  /** Waits up to `ms` for the device to hold a connection subscribed to methods. */
  function waitForChannel(deviceId: string, ms: number): Promise<DeviceChannel | undefined> {
    return new Promise((resolve) => {
      let set = waiting.get(deviceId);
      if (!set) waiting.set(deviceId, (set = new Set()));
      const done = (c: DeviceChannel | undefined) => {
        clearTimeout(deadline);
        clearInterval(poll);
        set!.delete(check);
        if (set!.size === 0) waiting.delete(deviceId);
        resolve(c);
      };
      const check = () => {
        const c = ready(deviceId);
        if (c || closed) done(c);
      };
      const deadline = setTimeout(() => done(ready(deviceId)), ms);
      // The transport may not tell us when the device subscribes to methods; polling covers that.
      const poll = setInterval(check, opts.pollMs ?? 100);
      set.add(check);
    });
  }

  return {
    async invoke(deviceId, request) {
      const body = checkMethodRequest(request);
      let channel = ready(deviceId);
      const connectS = request.connectTimeoutInSeconds ?? 0;
      if (!channel && connectS > 0) channel = await waitForChannel(deviceId, connectS * 1000);
      if (!channel) {
        throw new CcsError('DeviceNotOnline', `Timed out waiting for device '${deviceId}' to connect.`);
      }
      const rid = (nextRid++).toString(16);
      const timeoutS = request.responseTimeoutInSeconds ?? METHOD_DEFAULT_TIMEOUT_S;
      const target = channel;
      return new Promise<MethodResponse>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(rid);
          reject(new CcsError('GatewayTimeout', `Timed out waiting for the response from device '${deviceId}' to method '${request.methodName}'.`));
        }, timeoutS * 1000);
        pending.set(rid, { deviceId, channel: target, resolve, reject, timer });
        try {
          target.sendMethodRequest(rid, request.methodName, body);
        } catch (e) {
          clearTimeout(timer);
          pending.delete(rid);
          reject(new CcsError('DeviceNotOnline', `Device '${deviceId}' could not be reached: ${(e as Error).message}`));
        }
      });
    },

    response(deviceId, rid, status, payload) {
      const p = pending.get(rid);
      if (!p || p.deviceId !== deviceId) return;
      pending.delete(rid);
      clearTimeout(p.timer);
      p.resolve({ status, payload: parsePayload(payload) });
    },

    channelClosed(channel) {
      for (const [rid, p] of pending) {
        if (p.channel !== channel) continue;
        pending.delete(rid);
        clearTimeout(p.timer);
        p.reject(new CcsError('DeviceNotOnline', `Device '${p.deviceId}' disconnected before answering.`));
      }
    },

    channelReady(deviceId) {
      for (const check of waiting.get(deviceId) ?? []) check();
    },

    close() {
      closed = true;
      for (const set of waiting.values()) for (const check of set) check();
      for (const [rid, p] of pending) {
        pending.delete(rid);
        clearTimeout(p.timer);
        p.reject(new CcsError('DeviceNotOnline', `The hub is shutting down; device '${p.deviceId}' did not answer.`));
      }
    },
  };
}
