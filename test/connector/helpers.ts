import assert from 'node:assert/strict';
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
