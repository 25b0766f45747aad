import assert from 'node:assert/strict';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { DynamicsWebApi } from 'dynamics-web-api';
import type { Engine } from '../helpers/engines.js';
import { ADMIN_TOKEN, startServer, type TestServer } from '../helpers/server.js';

/** What dynamics-web-api rejects with: the Dataverse error body's fields plus the HTTP status. */
export interface DwaError {
  readonly status: number;
  readonly message: string;
  readonly code?: string;
}

export interface Connector {
  readonly srv: TestServer;
  readonly api: DynamicsWebApi;
}

/** A server with the connector's actions, and the real client pointed at it. Rate limiting off for load tests. */
export async function startConnector(engine: Engine): Promise<Connector> {
  const srv = await startServer(engine, { settings: { 'rate-limit': '0' } });
  return { srv, api: new DynamicsWebApi({ serverUrl: srv.url, onTokenRefresh: async () => ADMIN_TOKEN }) };
}

/** Asserts the call fails with `status` and a message matching `pattern`. */
export async function rejectsWith(call: Promise<unknown>, status: number, pattern: RegExp): Promise<void> {
  await assert.rejects(call, (e: DwaError) => {
    assert.equal(e.status, status, `status (message: ${e.message})`);
    assert.match(e.message, pattern);
    return true;
  });
}

/** Polls `probe` until it returns a value, or fails after `ms`. */
export async function eventually<T>(probe: () => Promise<T | undefined>, ms = 5000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`${what} not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The unmodified device SDK over MQTT/TLS, connected with the connection string the Web API gives for a device record. */
export async function connectDevice(c: Connector, deviceRecordId: string): Promise<device.Client> {
  const { ConnectionString } = await c.api.callFunction<{ ConnectionString: string }>({
    collection: 'msdyn_iotdevices',
    key: deviceRecordId,
    name: 'Microsoft.Dynamics.CRM.ccs_GetDeviceConnectionString',
  });
  const client = device.Client.fromConnectionString(ConnectionString, deviceMqtt.Mqtt);
  await client.setOptions({ ca: c.srv.app.tls().ca });
  await client.open();
  return client;
}

/** Creates a record through the Web API and returns its id. */
export function create(c: Connector, collection: string, data: Record<string, unknown>): Promise<string> {
  return c.api.create<Record<string, unknown>, string>({ collection, data });
}

export async function retrieve(c: Connector, collection: string, key: string, select?: string[]): Promise<Record<string, unknown>> {
  return (await c.api.retrieve<Record<string, unknown>>({ collection, key, ...(select ? { select } : {}) })) as Record<string, unknown>;
}
