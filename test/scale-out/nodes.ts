import { createHmac } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, type App, type AppDeps, type StartInfo } from '../../src/app.js';
import { createMemoryBusNetwork, createNatsBus, type Bus } from '../../src/bus/index.js';
import { loadConfig } from '../../src/config/index.js';
import { ensureTlsMaterial } from '../../src/hub/index.js';
import { PostgresStore } from '../../src/store/index.js';
import { deleteTestStream, testBusPrefix } from '../helpers/buses.js';

// Requests to the nodes go to localhost: a proxy configured for the machine must not take them.
for (const k of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY']) delete process.env[k];

export const ADMIN_TOKEN = 'test-admin-token';
export const HOST = 'localhost';

/**
 * A bus installation that several app instances in this process join as separate nodes, each with a connection of
 * its own (so that closing one node's connection is, to the others, that node vanishing).
 */
export interface SharedBus {
  readonly name: 'memory' | 'nats';
  connect(): Promise<Bus>;
  cleanup(): Promise<void>;
}

/** The in-process bus always (one network of connections); NATS JetStream when CCS_TEST_NATS_URL is set. */
export function sharedBuses(): (() => SharedBus)[] {
  const list: (() => SharedBus)[] = [
    () => {
      const network = createMemoryBusNetwork();
      const made: Bus[] = [];
      return {
        name: 'memory',
        async connect() {
          const bus = network.connect();
          made.push(bus);
          return bus;
        },
        async cleanup() {
          await Promise.allSettled(made.map((b) => b.close()));
        },
      };
    },
  ];
  const url = process.env['CCS_TEST_NATS_URL'];
  if (url) {
    list.push(() => {
      const prefix = testBusPrefix();
      const made: Bus[] = [];
      return {
        name: 'nats',
        async connect() {
          const bus = await createNatsBus({ url, prefix, partitions: 4 });
          made.push(bus);
          return bus;
        },
        async cleanup() {
          await Promise.allSettled(made.map((b) => b.close()));
          await deleteTestStream(url, prefix);
        },
      };
    });
  }
  return list;
}

/** One certificate for every node, as behind a load balancer; devices trust its CA. */
export interface SharedTls {
  readonly ca: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export function sharedTls(): SharedTls {
  const dir = mkdtempSync(join(tmpdir(), 'ccs-scale-tls-'));
  const material = ensureTlsMaterial({ dataDir: dir, hostNames: [HOST] });
  return { ca: material.ca!, certFile: join(dir, 'tls', 'server.pem'), keyFile: join(dir, 'tls', 'server-key.pem') };
}

export interface TestNode {
  readonly app: App;
  readonly info: StartInfo;
  readonly bus: Bus;
  /** `HostName=localhost:<this node's MQTT port>;DeviceId=…;SharedAccessKey=…` */
  connectionString(deviceId: string, key: string): string;
  /** The IoT Hub service REST on this node's HTTPS port, signed with the iothubowner policy. */
  service(method: string, path: string, opts?: { body?: string | Buffer; headers?: Record<string, string> }): Promise<Reply>;
  /** The Web API on this node's plain HTTP port, with the admin token. */
  webApi(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  json<T = unknown>(): T;
}

export function sign(resource: string, key: string, keyName?: string): string {
  const expiry = Math.floor(Date.now() / 1000) + 3600;
  const sr = encodeURIComponent(resource);
  const sig = createHmac('sha256', Buffer.from(key, 'base64')).update(`${sr}\n${expiry}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${expiry}${keyName ? `&skn=${keyName}` : ''}`;
}

/**
 * Starts an app as one node of an installation: the given store and bus, its own data dir, ephemeral ports; a test's
 * clock and rules pipeline timings when given.
 */
export async function startNode(opts: {
  storeUrl: string;
  bus: Bus;
  tls: SharedTls;
  roles?: string;
  settings?: Record<string, string>;
  clock?: () => number;
  pipeline?: AppDeps['pipeline'];
}): Promise<TestNode> {
  const flags = new Map(
    Object.entries({
      'data-dir': mkdtempSync(join(tmpdir(), 'ccs-node-')),
      store: opts.storeUrl,
      'http-port': '0',
      'https-port': '0',
      'mqtts-port': '0',
      host: '127.0.0.1',
      'admin-token': ADMIN_TOKEN,
      'log-level': 'silent',
      'tls-cert': opts.tls.certFile,
      'tls-key': opts.tls.keyFile,
      ...(opts.roles ? { roles: opts.roles } : {}),
      ...opts.settings,
    }),
  );
  const app = await createApp(loadConfig(flags, {}), { bus: opts.bus, ...(opts.clock ? { clock: opts.clock } : {}), ...(opts.pipeline ? { pipeline: opts.pipeline } : {}) });
  let info: StartInfo;
  try {
    info = await app.start();
  } catch (e) {
    await app.stop();
    throw e;
  }
  let ownerToken: string | undefined;
  let stopped = false;
  return {
    app,
    info,
    bus: opts.bus,
    connectionString: (deviceId, key) => `HostName=${HOST}:${info.mqttsPort};DeviceId=${deviceId};SharedAccessKey=${key}`,
    async service(method, path, o = {}) {
      if (!ownerToken) {
        const policy = (await app.hub.registry.policy('iothubowner'))!;
        ownerToken = sign(HOST, policy.primaryKey, 'iothubowner');
      }
      const headers: Record<string, string> = { authorization: ownerToken, ...o.headers };
      if (o.body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json; charset=utf-8';
      return new Promise<Reply>((resolve, reject) => {
        const req = request({ host: HOST, port: info.httpsPort, method, path, headers, ca: opts.tls.ca }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: <T>() => JSON.parse(text) as T });
          });
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(o.body);
      });
    },
    webApi(path, init = {}) {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${ADMIN_TOKEN}`);
      return fetch(`${info.url}${path.startsWith('/') ? path : `/api/data/v9.2/${path}`}`, { ...init, headers });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await app.stop();
    },
  };
}

/** Removes a PostgreSQL test schema (SQLite files are left in the temp dir). */
export async function dropStore(app: App): Promise<void> {
  if (app.store instanceof PostgresStore) await app.store.dropSchema();
}

/** Polls until `probe` returns a value (not undefined), or fails naming `what`. */
export async function until<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
