import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { createBus, type Bus } from './bus/index.js';
import { NODE_ROLES, type Config, type NodeRole } from './config/index.js';
import { registerTemplateOperations } from './connector/templates/index.js';
import { registerConnectorActions, startCaseProcess, startCommandSync, startDeviceSync, startTwinSync, startWebhooks, startWorkflows, type StopProcess } from './connector/index.js';
import type { FastifyInstance } from 'fastify';
import { registerHubRoutes } from './hub/http/index.js';
import { createHub, createNodeId, ensureTlsMaterial, type HubRuntime, type TlsMaterial } from './hub/index.js';
import { createMqttGateway, type MqttGateway } from './hub/mqtt/index.js';
import { createGetDeviceConnectionString } from './hub/operations/get-device-connection-string.js';
import { ensureMeta, MetadataRegistry, standardSeedRows } from './metadata/index.js';
import { RECORD_EVENT_TABLES, RecordEventLog, RecordsService, type RecordContext, type RecordEventLogOptions } from './records/index.js';
import { createPrincipal, DEFAULT_ROLES, RateLimiter, TOKEN_TABLE, TokenService, type RoleDefinition } from './security/index.js';
import { registerConsoleRoutes } from './console/index.js';
import { createMetrics } from './metrics/index.js';
import { createAlertPipeline, createImportDeviceRules, registerRuleValidation, type AlertPipeline, type AlertPipelineDeps } from './pipeline/index.js';
import { createStore } from './store/index.js';
import type { Store } from './store/types.js';
import { createHttpServer, createWhoAmI, OperationRegistry, WebApi } from './webapi/index.js';

/** The platform's own user: creator of seeded rows and of the systemuser records behind tokens. */
export const SYSTEM_USER_ID = '8d5e0c39-5c1a-4f0e-9a56-3c7b1f2e4d10';

export interface AppDeps {
  readonly clock?: () => number;
  readonly log?: Logger;
  /**
   * A bus to use instead of the one `config.bus` names; the app does not close it. Several apps given connections
   * of one in-process network (`createMemoryBusNetwork`) act as nodes of one installation, as over NATS.
   */
  readonly bus?: Bus;
  /** Timings of the durable record events (poll, lease, checkpoint, retention); defaults suit production. */
  readonly recordEvents?: RecordEventLogOptions;
  /** Timings of the rules pipeline (tick, checkpoint, worker heartbeat and staleness); defaults suit production. */
  readonly pipeline?: Pick<AlertPipelineDeps, 'tickMs' | 'checkpointMs' | 'heartbeatMs' | 'staleMs'>;
}

export interface StartInfo {
  /** Base URL of the plain HTTP listener; '' on a node without the `api` role (no such listener). */
  readonly url: string;
  /** 0 on a node without the `api` role. */
  readonly port: number;
  /** Ports actually bound (0 in the configuration picks a free one); 0 on a node without the `hub` role. */
  readonly httpsPort: number;
  readonly mqttsPort: number;
  /** What this node runs. */
  readonly roles: readonly NodeRole[];
  /** This node's id in a scale-out installation; undefined for the all-in-one server. */
  readonly nodeId: string | undefined;
  /** Set when this start generated the admin token: it is shown once and stored only as a hash. */
  readonly generatedAdminToken?: string;
}

export interface App {
  readonly config: Config;
  readonly store: Store;
  readonly records: RecordsService;
  readonly tokens: TokenService;
  readonly operations: OperationRegistry;
  readonly bus: Bus;
  /** The IoT Hub-compatible gateway (registry, SAS, telemetry, C2D, methods, twins); transports call it. */
  readonly hub: HubRuntime;
  /** The rules pipeline (telemetry → rules → IoT alerts); started and stopped with the app. */
  readonly pipeline: AlertPipeline;
  /** The live model, custom tables included; templates add tables and columns through it. */
  readonly metadata: MetadataRegistry;
  /**
   * TLS material for the device listeners: the user's certificate, or the private CA's under `<data-dir>/tls/`
   * (generated on first call, then reused). Memoised.
   */
  tls(): TlsMaterial;
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
    await store.syncSchema([TOKEN_TABLE, ...RECORD_EVENT_TABLES]);
  } catch (e) {
    await store.close();
    throw e;
  }
  const recordEvents = new RecordEventLog({ store, clock, log }, deps.recordEvents);
  const records = new RecordsService({ metadata, clock, events: recordEvents });
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
  const nodeRoles = new Set(config.roles);
  // Scale-out (docs/scale-out.md): on a networked or shared bus, or running only some roles, this is one node of
  // several; the hub then routes device operations to the node holding the device and sends its events to workers.
  const clustered = deps.bus !== undefined || config.bus !== 'memory' || nodeRoles.size < NODE_ROLES.length;
  const bus = deps.bus ?? (await createBus({ url: config.bus, prefix: config.busPrefix, onError: (e, subject) => log.error({ err: e, subject }, 'bus subscriber failed') }));
  const cluster = clustered ? { nodeId: createNodeId(), roles: config.roles, holdsConnections: nodeRoles.has('hub'), receivesEvents: nodeRoles.has('worker') } : undefined;
  const hub = await createHub({ store, bus, hostName: config.hubHostName, mqttsPort: config.mqttsPort, telemetryRetentionDays: config.telemetryRetentionDays, clock, log, metrics, cluster });
  // Record events are raised in the process that wrote the record, so what reacts to them runs wherever records are
  // written (api and worker nodes); what reacts to hub events runs on workers, to which the hub delivers them.
  const writesRecords = nodeRoles.has('api') || nodeRoles.has('worker');
  const idle = async () => undefined;
  const stopDeviceSync = nodeRoles.has('worker') ? startDeviceSync({ hub, records, system, log }) : idle;
  const stopCommandSync = writesRecords ? startCommandSync({ hub, records, system, log, clock }) : idle;
  const stopTwinSync = writesRecords ? startTwinSync({ hub, records, system, log }) : idle;
  registerRuleValidation(records);
  // Rules workers share the devices by partition; in scale-out a worker is known by its node id.
  const pipeline = createAlertPipeline({ ...deps.pipeline, store, records, system, hub, bus, clock, log, metrics, workerId: cluster?.nodeId });
  let tlsMaterial: TlsMaterial | undefined;
  const tls = () =>
    (tlsMaterial ??= ensureTlsMaterial({ dataDir: config.dataDir, hostNames: [config.hubHostName], certFile: config.tlsCert, keyFile: config.tlsKey, clock }));
  const operations = new OperationRegistry();
  operations.register(createWhoAmI({ organizationId, businessUnitId }));
  registerConnectorActions(operations, { store, hub, clock });
  registerTemplateOperations(operations, { store, records, metadata, operations });
  operations.register(createGetDeviceConnectionString(hub));
  operations.register(createImportDeviceRules({ store, records }));
  const processDeps = { store, records, system, hub, bus, operations, pipeline, clock, log, metrics };
  const processes: StopProcess[] = writesRecords ? [startWorkflows(processDeps), startCaseProcess(processDeps), startWebhooks(processDeps)] : [];
  // Durable consumers have their checkpoints before anything else writes; they handle events from start() on.
  await recordEvents.ready();
  const api = new WebApi({ store, metadata, records, operations, clock, log });
  const limiter = new RateLimiter({ limit: config.rateLimit, windowMs: config.rateLimitWindowSeconds * 1000, clock });
  const httpDeps = { api, tokens, limiter, maxBodyBytes: config.maxBodyBytes, log, metrics };
  const consoleDeps = { tokens, records, bus, limiter };
  const http = createHttpServer({ ...httpDeps, routes: (app) => registerConsoleRoutes(app, consoleDeps) });
  let listeners: { https: FastifyInstance; mqtt: MqttGateway } | undefined;
  let started = false;

  /**
   * The device listeners: MQTT over TLS, and HTTPS carrying the device HTTP surface, the IoT Hub service REST, MQTT
   * over WebSocket at /$iothub/websocket, and the same Web API as the plain HTTP port.
   */
  async function listenDevices(): Promise<{ https: FastifyInstance; mqtt: MqttGateway; httpsPort: number; mqttsPort: number }> {
    const material = tls();
    const mqtt = await createMqttGateway({ hub, tls: material, log });
    const https = createHttpServer({ ...httpDeps, https: material, routes: (app) => {
        registerConsoleRoutes(app, consoleDeps);
        registerHubRoutes(app, { hub, log });
      },
    });
    https.server.on('upgrade', (req, socket, head) => {
      if (mqtt.isUpgradeRequest(req)) mqtt.handleUpgrade(req, socket, head);
      else socket.destroy();
    });
    try {
      const mqttsPort = await mqtt.listen(config.mqttsPort, config.host);
      await https.listen({ port: config.httpsPort, host: config.host });
      const httpsPort = (https.server.address() as AddressInfo).port;
      hub.advertise({ mqtts: mqttsPort, https: httpsPort });
      return { https, mqtt, httpsPort, mqttsPort };
    } catch (e) {
      await mqtt.close();
      await https.close();
      throw e;
    }
  }

  return {
    config,
    store,
    records,
    tokens,
    operations,
    bus,
    hub,
    pipeline,
    metadata,
    tls,
    system,
    async start() {
      let generatedAdminToken: string | undefined;
      await recordEvents.start();
      // Before any listener: the pipeline replays the log and subscribes before new telemetry can arrive.
      if (nodeRoles.has('worker')) await pipeline.start();
      // Before devices may connect: requests routed to this node must find it answering.
      await hub.join();
      if (!nodeRoles.has('hub') && config.bus === 'memory' && !deps.bus) {
        log.warn({ roles: config.roles }, 'no hub node can be reached over the in-process bus: every device will be offline for this node');
      }
      if (config.adminToken) {
        if (!(await tokens.existsWithSecret(config.adminToken))) await tokens.create({ role: 'admin', name: 'admin', secret: config.adminToken });
      } else if (!(await tokens.hasRole('admin'))) {
        generatedAdminToken = (await tokens.create({ role: 'admin', name: 'admin' })).token;
      }
      if (nodeRoles.has('api')) {
        await http.listen({ port: config.httpPort, host: config.host });
        started = true;
      }
      const devices = nodeRoles.has('hub') ? await listenDevices() : undefined;
      listeners = devices;
      // Only a serving process takes up commands a previous run left (not a CLI command that builds the app).
      if ('resume' in stopCommandSync) void stopCommandSync.resume();
      const port = started ? (http.server.address() as AddressInfo).port : 0;
      const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
      return {
        url: started ? `http://${host}:${port}` : '',
        port,
        httpsPort: devices?.httpsPort ?? 0,
        mqttsPort: devices?.mqttsPort ?? 0,
        roles: config.roles,
        nodeId: hub.nodeId,
        generatedAdminToken,
      };
    },
    async stop() {
      if (started) await http.close();
      // Device listeners close before the hub, so no transport calls a closed hub.
      if (listeners) {
        await listeners.mqtt.close();
        await listeners.https.close();
      }
      await hub.close();
      // After the hub has flushed its telemetry: the pipeline applies all of it before checkpointing.
      await pipeline.stop();
      await stopDeviceSync();
      await stopCommandSync();
      await stopTwinSync();
      for (const stopProcess of processes) await stopProcess();
      await recordEvents.stop();
      if (!deps.bus) await bus.close();
      await store.close();
    },
  };
}
