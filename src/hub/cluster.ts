import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { BusNoResponderError, BusRemoteError, BusTimeoutError, subjectToken, type Bus, type Subscription } from '../bus/index.js';
import { CcsError, DuplicateKeyError, ERRORS, type ErrorCode } from '../errors/index.js';
import { and, compare, eq, ne } from '../store/index.js';
import type { Condition, Store } from '../store/types.js';
import { DEVICE_TABLE, NODE_TABLE, PRESENCE_TABLE } from './tables.js';
import type { DeviceStatusUpdate, HubEvents, MethodRequest } from './types.js';

/**
 * Scale-out of the device endpoint: several hub nodes behind a TCP load balancer share one store and one bus, and
 * each device's connection lives on one of them. This module is what a node needs for that:
 *
 * - **Presence** (`ccs_hubpresence`): the node holding each connected device, and which connection of it. Every
 *   write is a compare-and-set on the connection id, so a node only replaces or removes the connection it read.
 *   A new connection anywhere takes the device over: its node replaces the row and tells the previous node to drop
 *   its connection (IoT Hub's "one connection per device").
 * - **Routing**: a node that needs the device's connection (C2D, direct methods, desired properties) reads the row
 *   and sends a request to the owning node's subject on the bus (`hub.node.<id>`). A node that is gone has no
 *   responder there, which the bus reports at once: the row is stale, it is removed, and the device is offline.
 * - **Nodes** (`ccs_hubnode`): one row per running node with a heartbeat. Nodes whose heartbeat stopped are swept by
 *   the others: their presence rows are removed and their devices marked disconnected.
 * - **Events**: hub events (`HubEvents`) from every node travel on `hub.event.<node>` to the nodes that process them
 *   (the `worker` role), shared among those by one durable name, so each event is handled once in the installation.
 */

export interface HubClusterOptions {
  /** This node's id: letters, digits, `_`, `-`. Unique per running process (`createNodeId()`). */
  readonly nodeId: string;
  /** What the node runs, for the node table (informational). */
  readonly roles: readonly string[];
  /** Devices connect to this node (the `hub` role): it records their presence and answers routed requests. */
  readonly holdsConnections: boolean;
  /** Hub events of every node are delivered to this node's `on` listeners (the `worker` role). */
  readonly receivesEvents: boolean;
  /** How often the node writes its heartbeat. Default 5 s. */
  readonly heartbeatMs?: number;
  /** A node whose heartbeat is older than this is presumed gone. Default 30 s. */
  readonly staleAfterMs?: number;
  /** How long a node waits for another to take a notification (new C2D message, desired patch, drop). Default 10 s. */
  readonly notifyTimeoutMs?: number;
}

/** What one node asks of the node holding a device. */
export type NodeRequest =
  | { readonly op: 'c2d'; readonly deviceId: string }
  | { readonly op: 'desired'; readonly deviceId: string; readonly patch: Record<string, unknown>; readonly version: number }
  | { readonly op: 'method'; readonly deviceId: string; readonly request: MethodRequest }
  | { readonly op: 'drop'; readonly deviceId: string; readonly connectionId: string }
  | { readonly op: 'close'; readonly deviceId: string; readonly reason: string };

/** A hub event as it travels between nodes. */
export interface HubEventMessage {
  readonly event: keyof HubEvents;
  readonly args: readonly unknown[];
}

/** Where a device's connection is. */
export interface Owner {
  readonly nodeId: string;
  readonly connectionId: string;
  readonly connectedTime: number;
}

/** The owning node is gone (no responder): its presence row was removed. */
export class OwnerGoneError extends Error {
  override readonly name = 'OwnerGoneError';
}

/** The owning node did not answer in time. */
export class OwnerTimeoutError extends Error {
  override readonly name = 'OwnerTimeoutError';
}

export interface ClusterDeps {
  readonly store: Store;
  readonly bus: Bus;
  readonly clock: () => number;
  readonly log: { error(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void; debug(obj: unknown, msg?: string): void };
  readonly options: HubClusterOptions;
  /** Answers a request routed to this node (`holdsConnections` only). */
  readonly handle: (request: NodeRequest) => Promise<unknown>;
  /** An event of some hub node for this node's listeners (`receivesEvents` only). */
  readonly deliverEvent: (message: HubEventMessage) => void;
  /** Devices whose node went away without releasing them, now recorded as disconnected. */
  readonly onOrphaned: (updates: readonly DeviceStatusUpdate[]) => void;
  /** Other nodes presumed this one gone (its heartbeat came too late) and removed its presence: claim it again. */
  readonly onPresenceLost: () => void;
}

export interface Cluster {
  readonly nodeId: string;
  /** Registers the node, answers requests, follows events, starts the heartbeat (and the sweep of gone nodes). */
  join(): Promise<void>;
  /** Stops all of that and removes the node's row. Never throws: it runs when the bus may already be gone. */
  leave(): Promise<void>;
  /**
   * Records that `connectionId` on this node now holds the device, telling the node that held it before to drop its
   * connection. `superseded` when a newer connection elsewhere already holds it (this one lost the race).
   */
  claim(deviceId: string, connectionId: string, connectedTime: number): Promise<'claimed' | 'superseded'>;
  /** Removes the device's presence if `connectionId` still holds it; true when it did. */
  release(deviceId: string, connectionId: string): Promise<boolean>;
  owner(deviceId: string): Promise<Owner | undefined>;
  /**
   * Sends a request to the owning node. Throws `OwnerGoneError` (and removes the stale presence) when that node is
   * gone, `OwnerTimeoutError` when it did not answer in time, and the owner's own `CcsError` when it refused.
   */
  send(owner: Owner, request: NodeRequest, timeoutMs?: number): Promise<unknown>;
  /** Sends an event to the nodes that process events. Failures are logged, not thrown. */
  publishEvent(message: HubEventMessage): void;
}

export const DEFAULT_HEARTBEAT_MS = 5_000;
export const DEFAULT_STALE_AFTER_MS = 30_000;
const EVENTS_DURABLE = 'ccs-hub-events';
const EVENT_NAMES: ReadonlySet<string> = new Set<keyof HubEvents>(['connection', 'status', 'reported', 'c2d']);

/** A node id for this process: the host name (as a subject token allows it) and a random part, e.g. `web-3-1a2b3c4d`. */
export function createNodeId(): string {
  const host = hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40) || 'node';
  return `${host}-${randomBytes(4).toString('hex')}`;
}

export function isNodeId(value: string): boolean {
  return /^[A-Za-z0-9_-]{1,100}$/.test(value);
}

function nodeSubject(nodeId: string): string {
  return `hub.node.${subjectToken(nodeId)}`;
}

/** A request from the bus, checked: it comes from another process. */
function parseNodeRequest(payload: unknown): NodeRequest {
  const p = payload as Partial<Record<string, unknown>> | null;
  const bad = () => new CcsError('ArgumentInvalid', 'Malformed request between hub nodes.');
  if (typeof p !== 'object' || p === null || typeof p['deviceId'] !== 'string') throw bad();
  switch (p['op']) {
    case 'c2d':
      return { op: 'c2d', deviceId: p['deviceId'] };
    case 'desired':
      if (typeof p['patch'] !== 'object' || p['patch'] === null || typeof p['version'] !== 'number') throw bad();
      return { op: 'desired', deviceId: p['deviceId'], patch: p['patch'] as Record<string, unknown>, version: p['version'] };
    case 'method':
      if (typeof p['request'] !== 'object' || p['request'] === null) throw bad();
      return { op: 'method', deviceId: p['deviceId'], request: p['request'] as MethodRequest };
    case 'drop':
      if (typeof p['connectionId'] !== 'string') throw bad();
      return { op: 'drop', deviceId: p['deviceId'], connectionId: p['connectionId'] };
    case 'close':
      return { op: 'close', deviceId: p['deviceId'], reason: String(p['reason'] ?? 'closed by the hub') };
    default:
      throw bad();
  }
}

function isErrorCode(code: string | undefined): code is ErrorCode {
  return code !== undefined && Object.prototype.hasOwnProperty.call(ERRORS, code);
}

/** `NOT EXISTS (presence row of this device)`: the device is held by no node. */
const NO_PRESENCE: Condition = { kind: 'not', item: { kind: 'exists', table: PRESENCE_TABLE.name, column: 'deviceid', outerColumn: 'deviceid', where: { kind: 'true' } } };

export function createCluster(deps: ClusterDeps): Cluster {
  const { store, bus, clock, log, options } = deps;
  const { nodeId } = options;
  if (!isNodeId(nodeId)) throw new TypeError(`Node id must be 1-100 letters, digits, '_' or '-', got '${nodeId}'`);
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  const notifyTimeoutMs = options.notifyTimeoutMs ?? 10_000;
  const eventSubject = `hub.event.${subjectToken(nodeId)}`;

  const subscriptions: Subscription[] = [];
  const timers: NodeJS.Timeout[] = [];
  /** Presence writes of one device on this node run one after another, in the order the connections came. */
  const chains = new Map<string, Promise<unknown>>();
  let joined = false;
  let left = false;

  function serial<T>(deviceId: string, fn: () => Promise<T>): Promise<T> {
    const prev = chains.get(deviceId) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    chains.set(deviceId, run);
    const cleanup = () => {
      if (chains.get(deviceId) === run) chains.delete(deviceId);
    };
    run.then(cleanup, cleanup);
    return run;
  }

  async function readOwner(deviceId: string): Promise<Owner | undefined> {
    const r = (await store.select({ table: PRESENCE_TABLE.name, where: eq('deviceid', deviceId), limit: 1 }))[0];
    if (!r) return undefined;
    return { nodeId: String(r['nodeid']), connectionId: String(r['connectionid']), connectedTime: Number(r['connectedtime']) };
  }

  /**
   * Records a device whose holding node is gone as disconnected, unless another node holds it by now. The time
   * written is when that connection began (the last moment known for sure), so a newer "Connected" from the node the
   * device moved to still wins (connections.ts `newerStateWins`).
   */
  async function markOrphaned(gone: readonly { deviceId: string; since: number }[]): Promise<void> {
    const updates: DeviceStatusUpdate[] = [];
    for (const g of gone) {
      const n = await store.update(
        DEVICE_TABLE.name,
        { connectionstate: 'Disconnected', connectionstateupdatedtime: g.since },
        and(eq('deviceid', g.deviceId), eq('connectionstate', 'Connected'), NO_PRESENCE),
      );
      if (n === 1) updates.push({ deviceId: g.deviceId, connectionState: 'Disconnected', lastActivityTime: null });
    }
    if (updates.length > 0) deps.onOrphaned(updates);
  }

  /** Removes a presence row that points at a node that is gone. */
  async function forget(deviceId: string, owner: Owner): Promise<void> {
    const n = await store.delete(PRESENCE_TABLE.name, and(eq('deviceid', deviceId), eq('connectionid', owner.connectionId)));
    if (n === 1) await markOrphaned([{ deviceId, since: owner.connectedTime }]);
  }

  async function send(owner: Owner, request: NodeRequest, timeoutMs = notifyTimeoutMs): Promise<unknown> {
    try {
      return await bus.request(nodeSubject(owner.nodeId), request, { timeoutMs });
    } catch (e) {
      if (e instanceof BusNoResponderError) {
        await forget(request.deviceId, owner).catch((err: unknown) => log.error({ err, deviceId: request.deviceId }, 'removing a stale device presence failed'));
        throw new OwnerGoneError(`Node '${owner.nodeId}' holding device '${request.deviceId}' is gone.`);
      }
      if (e instanceof BusTimeoutError) throw new OwnerTimeoutError(`Node '${owner.nodeId}' holding device '${request.deviceId}' did not answer in time.`);
      if (e instanceof BusRemoteError) throw new CcsError(isErrorCode(e.code) ? e.code : 'Internal', e.message);
      throw e;
    }
  }

  async function claimNow(deviceId: string, connectionId: string, connectedTime: number): Promise<'claimed' | 'superseded'> {
    const mine = { nodeid: nodeId, connectionid: connectionId, connectedtime: connectedTime };
    for (let attempt = 0; attempt < 50; attempt++) {
      const current = await readOwner(deviceId);
      if (!current) {
        try {
          await store.insert(PRESENCE_TABLE.name, { deviceid: deviceId, ...mine });
          return 'claimed';
        } catch (e) {
          if (e instanceof DuplicateKeyError) continue; // another node claimed it meanwhile: read again
          throw e;
        }
      }
      if (current.connectionId === connectionId) return 'claimed';
      // A connection that began later already holds the device: this older one is the one to go.
      if (current.nodeId !== nodeId && current.connectedTime > connectedTime) return 'superseded';
      const n = await store.update(PRESENCE_TABLE.name, mine, and(eq('deviceid', deviceId), eq('connectionid', current.connectionId)));
      if (n === 0) continue;
      if (current.nodeId !== nodeId) {
        // Tell the previous node to drop its connection. A gone node has none left to drop.
        await send(current, { op: 'drop', deviceId, connectionId: current.connectionId }).catch((e: unknown) => {
          if (!(e instanceof OwnerGoneError)) log.warn({ err: e, deviceId, node: current.nodeId }, 'the node that held the device did not take the takeover');
        });
      }
      return 'claimed';
    }
    throw new Error(`The presence of device '${deviceId}' is changing too fast to claim.`);
  }

  async function heartbeat(): Promise<void> {
    const n = await store.update(NODE_TABLE.name, { heartbeattime: clock() }, eq('nodeid', nodeId));
    if (n === 0 && !left) {
      // Swept by another node (this one stalled past staleAfterMs): come back, and hold the devices again.
      await register();
      log.warn({ node: nodeId }, 'this node was presumed gone by the others; claiming its devices again');
      deps.onPresenceLost();
    }
  }

  async function register(): Promise<void> {
    const now = clock();
    const row = { nodeid: nodeId, roles: options.roles.join(','), startedtime: now, heartbeattime: now };
    try {
      await store.insert(NODE_TABLE.name, row);
    } catch (e) {
      if (!(e instanceof DuplicateKeyError)) throw e;
      await store.update(NODE_TABLE.name, { heartbeattime: now }, eq('nodeid', nodeId));
    }
  }

  /** Removes nodes whose heartbeat stopped, with their presence rows, and records their devices as disconnected. */
  async function sweep(): Promise<void> {
    const dead = await store.select({ table: NODE_TABLE.name, where: and(compare('heartbeattime', 'lt', clock() - staleAfterMs), ne('nodeid', nodeId)) });
    for (const d of dead) {
      const deadId = String(d['nodeid']);
      const rows = await store.select({ table: PRESENCE_TABLE.name, where: eq('nodeid', deadId) });
      const gone: { deviceId: string; since: number }[] = [];
      for (const r of rows) {
        const n = await store.delete(PRESENCE_TABLE.name, and(eq('deviceid', r['deviceid']!), eq('connectionid', r['connectionid']!)));
        if (n === 1) gone.push({ deviceId: String(r['deviceid']), since: Math.max(Number(d['heartbeattime']), Number(r['connectedtime'])) });
      }
      await markOrphaned(gone);
      await store.delete(NODE_TABLE.name, and(eq('nodeid', deadId), eq('heartbeattime', d['heartbeattime']!)));
      log.warn({ node: deadId, devices: gone.length }, 'a hub node stopped without leaving; its devices are now disconnected');
    }
  }

  function every(ms: number, what: string, fn: () => Promise<void>): void {
    let running = false;
    const t = setInterval(() => {
      if (running) return;
      running = true;
      fn()
        .catch((e: unknown) => log.error({ err: e }, `cluster ${what} failed`))
        .finally(() => (running = false));
    }, ms);
    t.unref();
    timers.push(t);
  }

  return {
    nodeId,

    async join() {
      if (joined) return;
      joined = true;
      await register();
      if (options.holdsConnections) {
        const responder = bus.respond(nodeSubject(nodeId), (payload) => deps.handle(parseNodeRequest(payload)));
        subscriptions.push(responder);
        await responder.ready;
      }
      if (options.receivesEvents) {
        const events = bus.subscribe(
          'hub.event.*',
          (payload) => {
            const m = payload as Partial<HubEventMessage> | null;
            if (!m || typeof m.event !== 'string' || !EVENT_NAMES.has(m.event) || !Array.isArray(m.args)) {
              log.warn({ payload }, 'dropping a malformed hub event');
              return;
            }
            deps.deliverEvent({ event: m.event, args: m.args });
          },
          { durable: EVENTS_DURABLE },
        );
        subscriptions.push(events);
        await events.ready;
      }
      every(heartbeatMs, 'heartbeat', heartbeat);
      if (options.holdsConnections) every(Math.max(heartbeatMs, Math.floor(staleAfterMs / 3)), 'sweep', sweep);
    },

    async leave() {
      if (left) return;
      left = true;
      for (const t of timers) clearInterval(t);
      await Promise.allSettled([...chains.values()]);
      for (const s of subscriptions.splice(0)) {
        await s.unsubscribe().catch((e: unknown) => log.debug({ err: e }, 'leaving the bus failed'));
      }
      if (joined) await store.delete(NODE_TABLE.name, eq('nodeid', nodeId)).catch((e: unknown) => log.error({ err: e }, 'removing the node row failed'));
    },

    claim(deviceId, connectionId, connectedTime) {
      return serial(deviceId, () => claimNow(deviceId, connectionId, connectedTime));
    },

    release(deviceId, connectionId) {
      return serial(deviceId, async () => (await store.delete(PRESENCE_TABLE.name, and(eq('deviceid', deviceId), eq('connectionid', connectionId)))) === 1);
    },

    owner: readOwner,
    send,

    publishEvent(message) {
      bus.publish(eventSubject, message).catch((e: unknown) => log.error({ err: e, event: message.event }, 'handing a hub event to the bus failed'));
    },
  };
}
