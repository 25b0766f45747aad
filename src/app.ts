import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type { Config } from './config/index.js';
import { ensureMeta, MetadataRegistry, standardSeedRows } from './metadata/index.js';
import { RecordsService, type RecordContext } from './records/index.js';
import { createPrincipal, DEFAULT_ROLES, RateLimiter, TOKEN_TABLE, TokenService, type RoleDefinition } from './security/index.js';
import { createMetrics } from './metrics/index.js';
import { createStore } from './store/index.js';
import type { Store } from './store/types.js';
import { createHttpServer, createWhoAmI, OperationRegistry, WebApi } from './webapi/index.js';

/** The platform's own user: creator of seeded rows and of the systemuser records behind tokens. */
export const SYSTEM_USER_ID = '8d5e0c39-5c1a-4f0e-9a56-3c7b1f2e4d10';

export interface AppDeps {
  readonly clock?: () => number;
  readonly log?: Logger;
}

export interface StartInfo {
  /** Base URL of the plain HTTP listener. */
  readonly url: string;
  readonly port: number;
  /** Set when this start generated the admin token: it is shown once and stored only as a hash. */
  readonly generatedAdminToken?: string;
}

export interface App {
  readonly config: Config;
  readonly store: Store;
  readonly records: RecordsService;
  readonly tokens: TokenService;
  readonly operations: OperationRegistry;
  /** A record context acting as the platform itself, with every privilege. */
  readonly system: RecordContext;
  start(): Promise<StartInfo>;
  stop(): Promise<void>;
}

function loadRoles(file: string | undefined): Record<string, RoleDefinition> {
  if (!file) return { ...DEFAULT_ROLES };
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, RoleDefinition>;
  } catch (e) {
    throw new Error(`--roles-file ${file}: ${(e as Error).message}`);
  }
}

/**
 * Builds every capability from the configuration: opens the store, brings its schema and first-start rows up to
 * date, and wires the Web API. Nothing listens until `start()`.
 */
export async function createApp(config: Config, deps: AppDeps = {}): Promise<App> {
  const clock = deps.clock ?? Date.now;
  const log = deps.log ?? pino({ level: config.logLevel });
  const store = createStore(config.store);
  const metrics = createMetrics();
  const roles = loadRoles(config.rolesFile);
  let metadata: MetadataRegistry;
  try {
    metadata = await MetadataRegistry.open(store);
    await store.syncSchema([TOKEN_TABLE]);
  } catch (e) {
    await store.close();
    throw e;
  }
  const records = new RecordsService({ metadata, clock });
  const systemPrincipal = createPrincipal({ userId: SYSTEM_USER_ID, name: 'SYSTEM', role: 'admin', access: { '*': { Read: true, Create: true, Write: true, Delete: true } } });
  const system: RecordContext = { db: store, principal: systemPrincipal };
  const tokens = new TokenService({
    store,
    roles,
    clock,
    createUser: (name) => records.create(system, 'systemuser', { fullname: name }),
  });
  async function seed(): Promise<void> {
    const rows = [{ table: 'systemuser', id: SYSTEM_USER_ID, row: { fullname: 'SYSTEM' } }, ...standardSeedRows];
    for (const s of rows) {
      const table = records.table(s.table);
      if (await records.retrieve(system, s.table, s.id, [table.primaryIdAttribute])) continue;
      await records.create(system, s.table, { ...s.row, [table.primaryIdAttribute]: s.id });
    }
  }

  await seed();
  const organizationId = await ensureMeta(store, 'organizationid', randomUUID);
  const businessUnitId = await ensureMeta(store, 'businessunitid', randomUUID);
  const operations = new OperationRegistry();
  operations.register(createWhoAmI({ organizationId, businessUnitId }));
  const api = new WebApi({ store, metadata, records, operations, clock, log });
  const limiter = new RateLimiter({ limit: config.rateLimit, windowMs: config.rateLimitWindowSeconds * 1000, clock });
  const http = createHttpServer({ api, tokens, limiter, maxBodyBytes: config.maxBodyBytes, log, metrics });
  let started = false;

  return {
    config,
    store,
    records,
    tokens,
    operations,
    system,
    async start() {
      let generatedAdminToken: string | undefined;
      if (config.adminToken) {
        if (!(await tokens.existsWithSecret(config.adminToken))) await tokens.create({ role: 'admin', name: 'admin', secret: config.adminToken });
      } else if (!(await tokens.hasRole('admin'))) {
        generatedAdminToken = (await tokens.create({ role: 'admin', name: 'admin' })).token;
      }
      await http.listen({ port: config.httpPort, host: config.host });
      started = true;
      const port = (http.server.address() as AddressInfo).port;
      const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
      return { url: `http://${host}:${port}`, port, generatedAdminToken };
    },
    async stop() {
      if (started) await http.close();
      await store.close();
    },
  };
}
