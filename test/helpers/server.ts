import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, type App } from '../../src/app.js';
import type { Bus } from '../../src/bus/index.js';
import { loadConfig } from '../../src/config/index.js';
import { PostgresStore } from '../../src/store/index.js';
import type { Engine } from './engines.js';

// DynamicsWebApi sends localhost calls to a proxy when one is configured and ignores NO_PROXY.
for (const k of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY']) delete process.env[k];

export const ADMIN_TOKEN = 'test-admin-token';

export interface TestServer {
  readonly app: App;
  readonly url: string;
  readonly dataDir: string;
  readonly storeUrl: string;
  /** Ports of the device listeners. */
  readonly mqttsPort: number;
  readonly httpsPort: number;
  /** Sends a request with the admin token unless `headers.authorization` says otherwise. */
  fetch(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  /** Stops the server; `drop` also removes a PostgreSQL test schema. */
  stop(opts?: { drop?: boolean }): Promise<void>;
}

export async function startServer(
  engine: Engine,
  opts: { storeUrl?: string; dataDir?: string; settings?: Record<string, string>; clock?: () => number; bus?: Bus } = {},
): Promise<TestServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'ccs-app-'));
  const storeUrl = opts.storeUrl ?? engine.url();
  const flags = new Map(Object.entries({
    'data-dir': dataDir, store: storeUrl, 'http-port': '0', 'https-port': '0', 'mqtts-port': '0', host: '127.0.0.1', 'admin-token': ADMIN_TOKEN, 'log-level': 'silent', ...opts.settings,
  }));
  const app = await createApp(loadConfig(flags, {}), { ...(opts.clock ? { clock: opts.clock } : {}), ...(opts.bus ? { bus: opts.bus } : {}) });
  const info = await app.start();
  const url = `http://localhost:${info.port}`;
  return {
    app,
    url,
    dataDir,
    storeUrl,
    mqttsPort: info.mqttsPort,
    httpsPort: info.httpsPort,
    fetch: (path, init = {}) => {
      const headers = new Headers(init.headers);
      const token = init.token === undefined ? ADMIN_TOKEN : init.token;
      if (token !== null && !headers.has('authorization')) headers.set('authorization', `Bearer ${token}`);
      return fetch(`${url}${path.startsWith('/') ? path : `/api/data/v9.2/${path}`}`, { ...init, headers });
    },
    stop: async ({ drop = true } = {}) => {
      const store = app.store;
      if (drop && store instanceof PostgresStore) await store.dropSchema();
      await app.stop();
    },
  };
}
