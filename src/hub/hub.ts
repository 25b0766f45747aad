import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { telemetrySubject, type Bus } from '../bus/index.js';
import { CcsError } from '../errors/index.js';
import { DURATION_BUCKETS, type Metrics } from '../metrics/index.js';
import type { Store } from '../store/types.js';
import { C2D_TABLE, DEVICE_TABLE, HUB_TABLES } from './tables.js';
import { createC2dDispatcher, createC2dQueue, type C2dOutcome } from './c2d.js';
import { createCluster, OwnerGoneError, OwnerTimeoutError, type Cluster, type HubClusterOptions, type HubEventMessage, type NodeRequest } from './cluster.js';
import { createConnectionTracker } from './connections.js';
import { checkMethodRequest, createMethodInvoker, METHOD_DEFAULT_TIMEOUT_S } from './methods.js';
import { createRegistry, notFound } from './registry.js';
import {
  buildDeviceConnectionString,
  buildServiceConnectionString,
  isExpired,
  isSignedWith,
  parseSasToken,
  resourceCovers,
  stripPort,
} from './sas.js';
import { and, chunks, compare, eq, isIn, isNull, or } from '../store/index.js';
import { createTelemetryLog } from './telemetry-log.js';
import { createTwinStore, type StoredTwin } from './twins.js';
import type { AccessPolicy, DeviceChannel, DeviceIdentity, DeviceStatusUpdate, Hub, HubEvents, MethodRequest, MethodResponse, PolicyRight, Twin } from './types.js';

/** Default MQTT over TLS port; a connection string names any other in its HostName. */
export const DEFAULT_MQTTS_PORT = 8883;

export interface HubDeps {
  readonly store: Store;
  readonly bus: Bus;
  /** The hub's host name as devices and services name it (`HostName=`), optionally with `:port`. */
  readonly hostName: string;
  readonly clock?: () => number;
  readonly log?: Pick<Logger, 'error' | 'warn' | 'info' | 'debug'>;
  /** Where the hub's counters and histograms go (`/metrics`). */
  readonly metrics?: Metrics;
  /**
   * Other names a SAS token's `sr` may use for this hub (any port). Defaults to localhost, 127.0.0.1 and [::1]: a
   * device connecting by address signs that address, and the key still has to match.
   */
  readonly hostAliases?: readonly string[];
  /** Port devices reach MQTT over TLS on, for connection strings (8883 is left out); see `advertise()`. */
  readonly mqttsPort?: number;
  /** How often connection state is written to the identity table (ms). */
  readonly flushIntervalMs?: number;
  /** Wait before retrying a failed C2D delivery (ms). */
  readonly c2dRetryMs?: number;
  /** Telemetry group commit: largest group and idle linger (ms). */
  readonly telemetryMaxBatch?: number;
  readonly telemetryLingerMs?: number;
  /** Telemetry groups written at once (default 1; a networked store gains from a few). */
  readonly telemetryConcurrency?: number;
  /** Telemetry older than this many days is deleted at start and every hour; 0 keeps it forever. Default 30. */
  readonly telemetryRetentionDays?: number;
  /**
   * Marks every stored "Connected" identity disconnected on start: right for the all-in-one server, where a
   * connection cannot outlive the process; scale-out nodes share the table and must not. Default: true without
   * `cluster`, false with it.
   */
  readonly resetConnectionsOnStart?: boolean;
  /**
   * Scale-out (cluster.ts): this hub is one node of several sharing the store and the bus. Device operations (C2D,
   * direct methods, desired properties) reach the device on whichever node holds its connection, and events go to the
   * nodes that process them. Without it the hub is alone: everything is local, as in the all-in-one server.
   */
  readonly cluster?: HubClusterOptions;
  /** Scale-out: how often a hub node looks for queued C2D messages of the devices it holds (a missed notification). */
  readonly c2dScanMs?: number;
}

/** What the hub offers beyond the `Hub` contract to the composition root, the CLI and tests. */
export interface HubRuntime extends Hub {
  /** Telemetry group-commit counters: groups written and records in them. */
  readonly telemetryStats: { readonly groups: number; readonly records: number };
  /** Scale-out: this node's id; undefined for a hub alone. */
  readonly nodeId: string | undefined;
  /**
   * Scale-out: joins the installation (registers the node, answers routed requests when it holds connections,
   * follows events when it processes them). Call before devices may connect. Does nothing for a hub alone.
   */
  join(): Promise<void>;
}

/** Telemetry retention when none is configured (issue 4: 30 days), and how often it is applied. */
export const DEFAULT_TELEMETRY_RETENTION_DAYS = 30;
const RETENTION_INTERVAL_MS = 3_600_000;

const noopLog = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };

/**
 * Builds the hub: creates its tables and policies on first start, then serves the `Hub` contract. Nothing listens
 * here; transports (src/hub/mqtt/, src/hub/http/) call it.
 */
export async function createHub(deps: HubDeps): Promise<HubRuntime> {
  const { store, bus } = deps;
  const clock = deps.clock ?? Date.now;
  const log = deps.log ?? noopLog;
  const hostName = deps.hostName;
  const hostNames = [hostName, ...(deps.hostAliases ?? ['localhost', '127.0.0.1', '[::1]'])];
  let mqttsPort = deps.mqttsPort ?? DEFAULT_MQTTS_PORT;

  const listeners: { [E in keyof HubEvents]: Set<HubEvents[E]> } = { connection: new Set(), status: new Set(), reported: new Set(), c2d: new Set() };
  let cluster: Cluster | undefined;
  /** Largest batch of status updates in one event message between nodes. */
  const STATUS_CHUNK = 500;
  /**
   * Raises a hub event. Alone, to this process's listeners; in scale-out, to the bus, from which exactly one node that
   * processes events (possibly this one) hands it to its listeners.
   */
  function emit<E extends keyof HubEvents>(event: E, ...args: Parameters<HubEvents[E]>): void {
    if (cluster) {
      if (event === 'status') {
        for (const part of chunks(args[0] as readonly DeviceStatusUpdate[], STATUS_CHUNK)) cluster.publishEvent({ event, args: [part] });
      } else {
        cluster.publishEvent({ event, args });
      }
      return;
    }
    emitLocal(event, ...args);
  }
  function emitLocal<E extends keyof HubEvents>(event: E, ...args: Parameters<HubEvents[E]>): void {
    for (const l of listeners[event]) {
      try {
        (l as (...a: Parameters<HubEvents[E]>) => void)(...args);
      } catch (e) {
        log.error({ err: e, event }, 'hub event listener failed');
      }
    }
  }

  await store.syncSchema(HUB_TABLES);
  if (deps.resetConnectionsOnStart ?? !deps.cluster) {
    await store.update(DEVICE_TABLE.name, { connectionstate: 'Disconnected', connectionstateupdatedtime: clock() }, eq('connectionstate', 'Connected'));
  }

  const m = deps.metrics;
  const telemetryTotal = m?.counter('ccs_hub_telemetry_messages_total', 'Device-to-cloud messages made durable.', ['transport']);
  const groupSize = m?.histogram('ccs_hub_telemetry_group_size', 'Messages per telemetry group commit.', [1, 10, 50, 100, 250, 500, 1000, 2000]);
  const commitSeconds = m?.histogram('ccs_hub_telemetry_commit_seconds', 'Duration of one telemetry group commit.', DURATION_BUCKETS);
  const connectedGauge = m?.gauge('ccs_hub_connected_devices', 'Devices connected to this node.');
  const c2dTotal = m?.counter('ccs_hub_c2d_messages_total', 'Cloud-to-device messages leaving the queue, by outcome.', ['outcome']);
  const methodsTotal = m?.counter('ccs_hub_method_calls_total', 'Direct method calls, by result.', ['result']);
  const authFailures = m?.counter('ccs_hub_auth_failures_total', 'Refused SAS authentications.', ['kind']);
  let connected = 0;

  const tracker = createConnectionTracker({ store, clock, newerStateWins: deps.cluster !== undefined });
  /** Scale-out: the id of each local connection, as recorded in the presence table. */
  const connectionIds = new WeakMap<DeviceChannel, { id: string; at: number }>();
  const registry = createRegistry({
    store,
    clock,
    live: (id) => tracker.live(id),
    onRevoked: (id, reason) => {
      const c = tracker.channel(id);
      if (c) c.close(reason);
      else notifyOwner(id, { op: 'close', deviceId: id, reason });
    },
  });
  await registry.init();
  const twins = createTwinStore({ store, identity: (id) => registry.find(id) });
  const queue = createC2dQueue({
    store,
    clock,
    onOutcome: (deviceId, messageId, outcome: C2dOutcome) => {
      c2dTotal?.inc({ outcome });
      emit('c2d', deviceId, messageId, outcome);
    },
  });
  const dispatcher = createC2dDispatcher({
    queue,
    channelOf: (id) => tracker.channel(id),
    retryMs: deps.c2dRetryMs,
    onError: (e, deviceId) => log.warn({ err: e, deviceId }, 'cloud-to-device delivery failed'),
  });
  const methods = createMethodInvoker({ channelOf: (id) => tracker.channel(id) });
  const telemetry = createTelemetryLog({
    store,
    clock,
    maxBatch: deps.telemetryMaxBatch,
    lingerMs: deps.telemetryLingerMs,
    concurrency: deps.telemetryConcurrency,
    onDurable: (records, seconds) => {
      groupSize?.observe(records.length);
      commitSeconds?.observe(seconds);
      if (telemetryTotal) {
        const byTransport = new Map<string, number>();
        for (const r of records) byTransport.set(r.transport, (byTransport.get(r.transport) ?? 0) + 1);
        for (const [transport, n] of byTransport) telemetryTotal.inc({ transport }, n);
      }
      for (const r of records) {
        tracker.touch(r.deviceId);
        bus.publish(telemetrySubject(r.deviceId), r).catch((e: unknown) => log.error({ err: e, deviceId: r.deviceId }, 'telemetry hand-off to the bus failed'));
      }
    },
  });

  const flushStatus = () =>
    tracker.flush().then(
      (written) => {
        if (written.length) emit('status', written);
      },
      (e: unknown) => log.error({ err: e }, 'writing connection state failed'),
    );
  const flushTimer = setInterval(() => void flushStatus(), deps.flushIntervalMs ?? 1000);
  flushTimer.unref();
  // Housekeeping of shared tables belongs to the nodes that hold connections (all of them do it; it is idempotent).
  const housekeeping = !deps.cluster || deps.cluster.holdsConnections;
  const purgeTimer = setInterval(() => {
    queue.purgeExpired().catch((e: unknown) => log.error({ err: e }, 'purging expired cloud-to-device messages failed'));
  }, 60_000);
  purgeTimer.unref();
  if (!housekeeping) clearInterval(purgeTimer);
  const retentionMs = housekeeping ? (deps.telemetryRetentionDays ?? DEFAULT_TELEMETRY_RETENTION_DAYS) * 86_400_000 : 0;
  let retention: Promise<unknown> = Promise.resolve();
  const applyRetention = () => {
    retention = retention.then(() =>
      telemetry.purge(clock() - retentionMs).then(
        (n) => {
          if (n > 0) log.info({ records: n }, 'purged telemetry past its retention');
        },
        (e: unknown) => log.error({ err: e }, 'purging old telemetry failed'),
      ),
    );
  };
  let retentionTimer: NodeJS.Timeout | undefined;
  if (retentionMs > 0) {
    applyRetention(); // not awaited: a large backlog must not hold up the start
    retentionTimer = setInterval(applyRetention, RETENTION_INTERVAL_MS);
    retentionTimer.unref();
  }
  let closed = false;

  async function mustExist(deviceId: string): Promise<DeviceIdentity> {
    const d = await registry.find(deviceId);
    if (!d) throw notFound(deviceId);
    return d;
  }

  function toTwin(t: StoredTwin, d: DeviceIdentity): Twin {
    return {
      deviceId: t.deviceId,
      etag: t.etag,
      version: t.version,
      tags: t.tags,
      properties: {
        desired: { ...t.desired, $version: t.desiredVersion },
        reported: { ...t.reported, $version: t.reportedVersion },
      },
      status: d.status,
      connectionState: d.connectionState,
      lastActivityTime: d.lastActivityTime,
    };
  }

  function pushDesired(deviceId: string, change: { patch: Record<string, unknown>; version: number } | undefined): void {
    if (!change) return;
    const c = tracker.channel(deviceId);
    // A device fetches its twin on connect; IoT Hub does not queue desired patches.
    if (!c) return notifyOwner(deviceId, { op: 'desired', deviceId, patch: change.patch, version: change.version });
    try {
      c.sendDesiredPatch({ ...change.patch, $version: change.version }, change.version);
    } catch (e) {
      log.warn({ err: e, deviceId }, 'sending a desired-properties patch failed');
    }
  }

  // ---- scale-out --------------------------------------------------------------------------------------------------

  /** Tells the node holding the device, if another one does, about something for the device. Best effort. */
  function notifyOwner(deviceId: string, request: NodeRequest): void {
    if (!cluster) return;
    const c = cluster;
    void (async () => {
      const owner = await c.owner(deviceId);
      if (!owner || owner.nodeId === c.nodeId) return;
      await c.send(owner, request);
    })().catch((e: unknown) => {
      if (!(e instanceof OwnerGoneError)) log.warn({ err: e, deviceId, op: request.op }, 'telling the node that holds the device failed');
    });
  }

  /** New C2D messages for the device: deliver them from here if the device is here, else tell its node. */
  function kickC2d(deviceId: string): void {
    if (tracker.channel(deviceId)) dispatcher.kick(deviceId);
    else notifyOwner(deviceId, { op: 'c2d', deviceId });
  }

  /** A connection on another node took the device over: this node lets go of its connection without a disconnection. */
  function dropLocal(channel: DeviceChannel, reason: string): void {
    if (tracker.release(channel)) connectedGauge?.set(--connected);
    methods.channelClosed(channel);
    dispatcher.abandon(channel);
    try {
      channel.close(reason);
    } catch (e) {
      log.warn({ err: e, deviceId: channel.deviceId }, 'closing the replaced connection failed');
    }
  }

  function claim(channel: DeviceChannel): void {
    const c = cluster;
    const cid = connectionIds.get(channel);
    if (!c || !cid) return;
    c.claim(channel.deviceId, cid.id, cid.at).then(
      (outcome) => {
        if (outcome === 'superseded' && tracker.channel(channel.deviceId) === channel) dropLocal(channel, 'a newer connection for this device took over');
      },
      (e: unknown) => log.error({ err: e, deviceId: channel.deviceId }, 'recording where the device is connected failed'),
    );
  }

  /** A request routed here by another node. */
  async function handleNodeRequest(request: NodeRequest): Promise<unknown> {
    const { deviceId } = request;
    switch (request.op) {
      case 'c2d':
        dispatcher.kick(deviceId);
        return true;
      case 'desired': {
        const c = tracker.channel(deviceId);
        if (c) c.sendDesiredPatch({ ...request.patch, $version: request.version }, request.version);
        return c !== undefined;
      }
      case 'method':
        // Only this node's connection: a routed call is never routed again.
        return methods.invoke(deviceId, request.request);
      case 'drop': {
        const c = tracker.channel(deviceId);
        if (!c || connectionIds.get(c)?.id !== request.connectionId) return false;
        dropLocal(c, 'another connection for this device took over');
        return true;
      }
      case 'close': {
        const c = tracker.channel(deviceId);
        if (c) c.close(request.reason);
        return c !== undefined;
      }
    }
  }

  /**
   * A direct method wherever the device is connected: here, or on the node its presence names. While the device is
   * connected nowhere, it waits up to `connectTimeoutInSeconds` for it to connect somewhere.
   */
  async function invokeRouted(c: Cluster, deviceId: string, request: MethodRequest): Promise<MethodResponse> {
    checkMethodRequest(request);
    const deadline = Date.now() + (request.connectTimeoutInSeconds ?? 0) * 1000;
    const responseS = request.responseTimeoutInSeconds ?? METHOD_DEFAULT_TIMEOUT_S;
    for (;;) {
      const connectS = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      const here = { ...request, connectTimeoutInSeconds: connectS };
      if (tracker.channel(deviceId)) return methods.invoke(deviceId, here);
      const owner = await c.owner(deviceId);
      if (owner && owner.nodeId !== c.nodeId) {
        try {
          // The owner answers within its own timeouts (GatewayTimeout, DeviceNotOnline); the margin covers the trip.
          return (await c.send(owner, { op: 'method', deviceId, request: here }, (responseS + connectS) * 1000 + 5_000)) as MethodResponse;
        } catch (e) {
          if (e instanceof OwnerTimeoutError) {
            throw new CcsError('GatewayTimeout', `Timed out waiting for the response from device '${deviceId}' to method '${request.methodName}'.`);
          }
          if (!(e instanceof OwnerGoneError)) throw e;
          // The node is gone with the connection: the device may connect again elsewhere within the connect timeout.
        }
      }
      if (Date.now() >= deadline || closed) throw new CcsError('DeviceNotOnline', `Timed out waiting for device '${deviceId}' to connect.`);
      await new Promise((r) => setTimeout(r, Math.min(250, Math.max(1, deadline - Date.now()))));
    }
  }

  /** Queued C2D messages of devices held here, in case a notification from another node was missed. */
  async function scanC2d(): Promise<void> {
    const held = [...tracker.channels()].map((c) => c.deviceId);
    const now = clock();
    for (const part of chunks(held)) {
      const rows = await store.select({
        table: C2D_TABLE.name,
        columns: ['deviceid'],
        where: and(isIn('deviceid', part), compare('expirytime', 'gt', now), or(isNull('lockeduntil'), compare('lockeduntil', 'le', now))),
      });
      for (const id of new Set(rows.map((r) => String(r['deviceid'])))) dispatcher.kick(id);
    }
  }
  let scanTimer: NodeJS.Timeout | undefined;

  if (deps.cluster) {
    cluster = createCluster({
      store,
      bus,
      clock,
      log,
      options: deps.cluster,
      handle: handleNodeRequest,
      deliverEvent: (m: HubEventMessage) => emitLocal(m.event, ...(m.args as Parameters<HubEvents[typeof m.event]>)),
      onOrphaned: (updates) => {
        for (const u of updates) emit('connection', u.deviceId, 'Disconnected', clock());
        emit('status', updates);
      },
      onPresenceLost: () => {
        for (const c of tracker.channels()) {
          tracker.markConnected(c.deviceId);
          claim(c);
        }
      },
    });
  }

  function unauthorized(message: string): CcsError {
    return new CcsError('IotHubUnauthorizedAccess', message);
  }

  async function authenticateDevice(deviceId: string, sasToken: string): Promise<DeviceIdentity> {
    const token = parseSasToken(sasToken);
    if (isExpired(token, clock())) throw unauthorized('The shared access signature has expired.');
    const target = `${stripPort(hostName)}/devices/${deviceId}`;
    const identity = await registry.find(deviceId);
    // One answer for an unknown device, a disabled one and a bad signature: nothing to probe with.
    const refused = unauthorized(`Device '${deviceId}' is not authorized with this token.`);
    if (!identity || identity.status !== 'enabled') throw refused;
    if (token.keyName !== undefined) {
      // A shared access policy with DeviceConnect may act for any device it covers (iot-hub-dev-guide-sas.md).
      const policy = await registry.policy(token.keyName);
      if (!policy || !policy.rights.includes('DeviceConnect')) throw refused;
      if (!resourceCovers(token.resource, target, hostNames)) throw refused;
      if (!isSignedWith(token, policy.primaryKey) && !isSignedWith(token, policy.secondaryKey)) throw refused;
      return identity;
    }
    // A device key grants exactly its own device: `sr` must name it, not a prefix of it.
    if (!resourceCovers(token.resource, target, hostNames) || !resourceCovers(target, token.resource, hostNames)) throw refused;
    if (!isSignedWith(token, identity.primaryKey) && !isSignedWith(token, identity.secondaryKey)) throw refused;
    return identity;
  }

  async function authenticateService(sasToken: string, right: PolicyRight): Promise<AccessPolicy> {
    const token = parseSasToken(sasToken);
    if (isExpired(token, clock())) throw unauthorized('The shared access signature has expired.');
    const refused = unauthorized(`The token does not grant ${right} on this hub.`);
    if (token.keyName === undefined) throw refused;
    const policy = await registry.policy(token.keyName);
    if (!policy) throw refused;
    if (!resourceCovers(token.resource, stripPort(hostName), hostNames)) throw refused;
    if (!isSignedWith(token, policy.primaryKey) && !isSignedWith(token, policy.secondaryKey)) throw refused;
    if (!policy.rights.includes(right)) throw refused;
    return policy;
  }

  const hub: HubRuntime = {
    hostName,
    registry,
    get telemetryStats() {
      return { ...telemetry.stats };
    },

    // ---- device side -------------------------------------------------------------------------------------------

    async authenticateDevice(deviceId, sasToken) {
      try {
        return await authenticateDevice(deviceId, sasToken);
      } catch (e) {
        authFailures?.inc({ kind: 'device' });
        throw e;
      }
    },

    async authenticateService(sasToken, right) {
      try {
        return await authenticateService(sasToken, right);
      } catch (e) {
        authFailures?.inc({ kind: 'service' });
        throw e;
      }
    },

    attach(channel) {
      if (closed) throw new CcsError('DeviceNotOnline', 'The hub is shutting down.');
      if (cluster) connectionIds.set(channel, { id: randomUUID(), at: clock() });
      const old = tracker.attach(channel);
      if (old) {
        // One connection per device: the newer one takes over (IoT Hub error 400027 on the old one).
        methods.channelClosed(old);
        dispatcher.abandon(old);
        try {
          old.close('another connection for this device took over');
        } catch (e) {
          log.warn({ err: e, deviceId: channel.deviceId }, 'closing the replaced connection failed');
        }
      } else {
        connectedGauge?.set(++connected);
        emit('connection', channel.deviceId, 'Connected', clock());
      }
      claim(channel);
      dispatcher.kick(channel.deviceId);
      methods.channelReady(channel.deviceId);
      let attached = true;
      return () => {
        if (!attached) return;
        attached = false;
        methods.channelClosed(channel);
        dispatcher.abandon(channel);
        if (tracker.detach(channel)) {
          connectedGauge?.set(--connected);
          emit('connection', channel.deviceId, 'Disconnected', clock());
        }
        const cid = connectionIds.get(channel);
        // Compare-and-set on the connection id: a connection that took over keeps its presence.
        if (cluster && cid) cluster.release(channel.deviceId, cid.id).catch((e: unknown) => log.error({ err: e, deviceId: channel.deviceId }, 'removing the device presence failed'));
      };
    },

    ingest(deviceId, message, transport) {
      return telemetry.append(deviceId, message, transport);
    },

    async getTwinDocument(deviceId) {
      const t = await twins.read(deviceId);
      return { desired: { ...t.desired, $version: t.desiredVersion }, reported: { ...t.reported, $version: t.reportedVersion } };
    },

    async patchReported(deviceId, patch) {
      const t = await twins.patchReported(deviceId, patch);
      tracker.touch(deviceId);
      emit('reported', deviceId, { ...t.reported, $version: t.reportedVersion }, t.reportedVersion);
      return t.reportedVersion;
    },

    methodResponse(deviceId, rid, status, payload) {
      tracker.touch(deviceId);
      methods.response(deviceId, rid, status, payload);
    },

    async receiveC2d(deviceId) {
      tracker.touch(deviceId);
      return queue.next(deviceId);
    },

    async settleC2d(deviceId, lockToken, outcome) {
      tracker.touch(deviceId);
      await queue.settle(deviceId, lockToken, outcome);
    },

    touch(deviceId) {
      tracker.touch(deviceId);
    },

    ready(deviceId, feature) {
      if (feature === 'c2d') dispatcher.kick(deviceId);
      else methods.channelReady(deviceId);
    },

    get nodeId() {
      return cluster?.nodeId;
    },

    async join() {
      if (!cluster) return;
      await cluster.join();
      if (deps.cluster?.holdsConnections && !scanTimer && !closed) {
        scanTimer = setInterval(() => {
          scanC2d().catch((e: unknown) => log.error({ err: e }, 'looking for queued cloud-to-device messages failed'));
        }, deps.c2dScanMs ?? 15_000);
        scanTimer.unref();
      }
    },

    // ---- service side ------------------------------------------------------------------------------------------

    async sendC2d(deviceId, message) {
      await mustExist(deviceId);
      const queued = await queue.enqueue(deviceId, message);
      kickC2d(deviceId);
      return queued;
    },

    async invokeMethod(deviceId, request) {
      await mustExist(deviceId);
      try {
        const res = cluster ? await invokeRouted(cluster, deviceId, request) : await methods.invoke(deviceId, request);
        methodsTotal?.inc({ result: 'answered' });
        return res;
      } catch (e) {
        methodsTotal?.inc({ result: e instanceof CcsError ? e.code : 'error' });
        throw e;
      }
    },

    async getTwin(deviceId) {
      const d = await mustExist(deviceId);
      return toTwin(await twins.read(deviceId), d);
    },

    async updateTwin(deviceId, patch, etag) {
      const d = await mustExist(deviceId);
      const { twin, desired } = await twins.write(deviceId, patch, 'merge', etag);
      pushDesired(deviceId, desired);
      return toTwin(twin, d);
    },

    async replaceTwin(deviceId, replacement, etag) {
      const d = await mustExist(deviceId);
      const { twin, desired } = await twins.write(deviceId, replacement, 'replace', etag);
      pushDesired(deviceId, desired);
      return toTwin(twin, d);
    },

    readTelemetry(opts) {
      return telemetry.read(opts);
    },

    readDeviceTelemetry(deviceId, range) {
      return telemetry.readDevice(deviceId, range);
    },

    purgeTelemetry(before) {
      return telemetry.purge(before);
    },

    async deviceConnectionString(deviceId, opts = {}) {
      let identity = await registry.find(deviceId);
      if (!identity) {
        if (!opts.create) throw notFound(deviceId);
        try {
          identity = await registry.create({ deviceId });
        } catch (e) {
          if (!(e instanceof CcsError && e.code === 'DeviceAlreadyExists')) throw e;
          identity = await mustExist(deviceId);
        }
      }
      // A non-default MQTT port travels in HostName: the SDK dials it and signs it into `sr` (reference §2.1).
      const host = hostName.includes(':') || mqttsPort === DEFAULT_MQTTS_PORT ? hostName : `${hostName}:${mqttsPort}`;
      return buildDeviceConnectionString({ hostName: host, deviceId, sharedAccessKey: identity.primaryKey });
    },

    async serviceConnectionString(policyName = 'iothubowner') {
      const policy = await registry.policy(policyName);
      if (!policy) throw new CcsError('ArgumentInvalid', `No shared access policy named '${policyName}'. Policies: iothubowner, service, device, registryRead, registryReadWrite.`);
      // The service SDK always dials 443 and cannot take a port (reference §4): the host name goes without one.
      return buildServiceConnectionString({ hostName: stripPort(hostName), sharedAccessKeyName: policy.keyName, sharedAccessKey: policy.primaryKey });
    },

    advertise(ports) {
      if (ports.mqtts !== undefined) mqttsPort = ports.mqtts;
    },

    on(event, listener) {
      const set = listeners[event] as Set<typeof listener>;
      set.add(listener);
      return () => void set.delete(listener);
    },

    async close() {
      if (closed) return;
      closed = true;
      clearInterval(flushTimer);
      clearInterval(purgeTimer);
      clearInterval(retentionTimer);
      clearInterval(scanTimer);
      dispatcher.close();
      methods.close();
      await telemetry.flush();
      await dispatcher.idle();
      const releases: Promise<unknown>[] = [];
      for (const c of [...tracker.channels()]) {
        tracker.detach(c);
        const cid = connectionIds.get(c);
        if (cluster && cid) releases.push(cluster.release(c.deviceId, cid.id).catch((e: unknown) => log.error({ err: e, deviceId: c.deviceId }, 'removing the device presence failed')));
      }
      await Promise.all(releases);
      await flushStatus();
      await cluster?.leave();
      await retention;
    },
  };
  return hub;
}
