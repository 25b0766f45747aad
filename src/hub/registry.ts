import { randomUUID } from 'node:crypto';
import { CcsError, DuplicateKeyError } from '../errors/index.js';
import type { Row, Store } from '../store/types.js';
import { checkDeviceId, checkKey, generateEtag, generateKey } from './keys.js';
import { C2D_TABLE, DEVICE_TABLE, POLICY_TABLE, TWIN_TABLE } from './tables.js';
import { and, compare, eq } from '../store/index.js';
import type {
  AccessPolicy,
  ConnectionState,
  DeviceIdentity,
  DeviceRegistry,
  DeviceStatus,
  IdentityInput,
  PolicyName,
  PolicyRight,
} from './types.js';

/** IoT Hub's built-in shared access policies and their rights (iot-hub-dev-guide-sas.md, "Access control and permissions"). */
export const POLICY_RIGHTS: Readonly<Record<PolicyName, readonly PolicyRight[]>> = {
  iothubowner: ['RegistryRead', 'RegistryWrite', 'ServiceConnect', 'DeviceConnect'],
  service: ['ServiceConnect'],
  device: ['DeviceConnect'],
  registryRead: ['RegistryRead'],
  registryReadWrite: ['RegistryRead', 'RegistryWrite'],
};

/** Connection state held in memory by the node that holds the connection; newer than what the table says. */
export interface LiveConnection {
  /** Undefined when this node knows only the device's activity, not its connection. */
  readonly state: ConnectionState | undefined;
  readonly updatedTime: number | undefined;
  readonly lastActivityTime: number | null;
}

export interface RegistryDeps {
  readonly store: Store;
  readonly clock: () => number;
  /** In-memory connection state that overlays the stored one (the hub's connection tracker). */
  readonly live?: (deviceId: string) => LiveConnection | undefined;
  /** Called after an identity was disabled or deleted, so its connection can be closed. */
  readonly onRevoked?: (deviceId: string, reason: string) => void;
}

export interface HubRegistry extends DeviceRegistry {
  /** Creates the policies (with new keys) on first start. */
  init(): Promise<void>;
  /** The identity without its queue count (always 0 here): for authentication, which needs keys and status only. */
  find(deviceId: string): Promise<DeviceIdentity | undefined>;
}

function isPolicyName(name: string): name is PolicyName {
  return Object.hasOwn(POLICY_RIGHTS, name);
}

function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}

const EMPTY_TWIN = (deviceId: string, etag: string): Row => ({
  deviceid: deviceId, etag, version: 1, tags: '{}', desired: '{}', desiredversion: 1, reported: '{}', reportedversion: 1,
});

/**
 * The identity registry: device identities with their keys and status, and the shared access policies. Identities
 * live in `ccs_hubdevice`; creating one also creates its twin, deleting one removes its twin and queued messages.
 */
export function createRegistry(deps: RegistryDeps): HubRegistry {
  const { store, clock } = deps;
  let policyCache: { at: number; policies: AccessPolicy[] } | undefined;

  function toIdentity(r: Row, pending: number): DeviceIdentity {
    const deviceId = String(r['deviceid']);
    const live = deps.live?.(deviceId);
    return {
      deviceId,
      etag: String(r['etag']),
      generationId: String(r['generationid']),
      status: r['status'] === 'disabled' ? 'disabled' : 'enabled',
      statusReason: r['statusreason'] === null ? null : String(r['statusreason']),
      statusUpdatedTime: numOrNull(r['statusupdatedtime']),
      primaryKey: String(r['primarykey']),
      secondaryKey: String(r['secondarykey']),
      connectionState: live?.state ?? (r['connectionstate'] === 'Connected' ? 'Connected' : 'Disconnected'),
      connectionStateUpdatedTime: live?.updatedTime ?? numOrNull(r['connectionstateupdatedtime']),
      lastActivityTime: maxOrNull(live?.lastActivityTime ?? null, numOrNull(r['lastactivitytime'])),
      cloudToDeviceMessageCount: pending,
    };
  }

  async function row(deviceId: string): Promise<Row | undefined> {
    return (await store.select({ table: DEVICE_TABLE.name, where: eq('deviceid', deviceId), limit: 1 }))[0];
  }

  async function pendingCount(deviceId: string): Promise<number> {
    return store.count({ table: C2D_TABLE.name, where: and(eq('deviceid', deviceId), compare('expirytime', 'gt', clock())) });
  }

  async function load(deviceId: string): Promise<DeviceIdentity | undefined> {
    const r = await row(deviceId);
    return r ? toIdentity(r, await pendingCount(deviceId)) : undefined;
  }

  async function mustLoad(deviceId: string): Promise<DeviceIdentity> {
    const d = await load(deviceId);
    if (!d) throw notFound(deviceId);
    return d;
  }

  function checkEtag(current: Row, etag: string | undefined): void {
    if (etag === undefined || etag === '*' || etag === '') return;
    const given = etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
    if (given !== current['etag']) {
      throw new CcsError('PreconditionFailed', `Precondition failed: device '${String(current['deviceid'])}' has changed (etag mismatch).`);
    }
  }

  function checkStatus(status: unknown): DeviceStatus | undefined {
    if (status === undefined) return undefined;
    if (status !== 'enabled' && status !== 'disabled') throw new CcsError('ArgumentInvalid', `Invalid status '${String(status)}': enabled or disabled.`);
    return status;
  }

  async function loadPolicies(): Promise<AccessPolicy[]> {
    const now = clock();
    // Policies change only on key regeneration; a short cache spares a query per service request.
    if (policyCache && now - policyCache.at < 10_000) return policyCache.policies;
    const rows = await store.select({ table: POLICY_TABLE.name, orderBy: [{ column: 'keyname' }] });
    const policies = rows
      .filter((r) => isPolicyName(String(r['keyname'])))
      .map((r) => ({
        keyName: String(r['keyname']) as PolicyName,
        primaryKey: String(r['primarykey']),
        secondaryKey: String(r['secondarykey']),
        rights: String(r['rights']).split(',').filter(Boolean) as PolicyRight[],
      }));
    policyCache = { at: now, policies };
    return policies;
  }

  return {
    async init() {
      const existing = new Set((await store.select({ table: POLICY_TABLE.name, columns: ['keyname'] })).map((r) => String(r['keyname'])));
      for (const [name, rights] of Object.entries(POLICY_RIGHTS)) {
        if (existing.has(name)) continue;
        try {
          await store.insert(POLICY_TABLE.name, { keyname: name, primarykey: generateKey(), secondarykey: generateKey(), rights: rights.join(',') });
        } catch (e) {
          if (!(e instanceof DuplicateKeyError)) throw e; // another node created it first
        }
      }
      policyCache = undefined;
    },

    async create(input) {
      checkDeviceId(input.deviceId);
      const status = checkStatus(input.status) ?? 'enabled';
      if (input.primaryKey) checkKey(input.primaryKey, 'primary');
      if (input.secondaryKey) checkKey(input.secondaryKey, 'secondary');
      const now = clock();
      const r: Row = {
        deviceid: input.deviceId,
        etag: generateEtag(),
        generationid: randomUUID(),
        status,
        statusreason: input.statusReason ?? null,
        statusupdatedtime: now,
        primarykey: input.primaryKey || generateKey(),
        secondarykey: input.secondaryKey || generateKey(),
        connectionstate: 'Disconnected',
        connectionstateupdatedtime: null,
        lastactivitytime: null,
        createdon: now,
      };
      try {
        await store.transaction(async (tx) => {
          await tx.insert(DEVICE_TABLE.name, r);
          // A twin left over from an identity deleted on an older version would block the insert.
          await tx.delete(TWIN_TABLE.name, eq('deviceid', input.deviceId));
          await tx.insert(TWIN_TABLE.name, EMPTY_TWIN(input.deviceId, generateEtag()));
        });
      } catch (e) {
        if (e instanceof DuplicateKeyError) throw new CcsError('DeviceAlreadyExists', `A device with ID '${input.deviceId}' is already registered.`);
        throw e;
      }
      return toIdentity(r, 0);
    },

    get: (deviceId) => load(deviceId),
    async find(deviceId) {
      // Authentication runs on every connect: one query, no queue count.
      const r = await row(deviceId);
      return r ? toIdentity(r, 0) : undefined;
    },

    async list(opts = {}) {
      const top = Math.min(Math.max(opts.top ?? 1000, 1), 1000);
      const rows = await store.select({ table: DEVICE_TABLE.name, orderBy: [{ column: 'deviceid' }], limit: top });
      const now = clock();
      const counts = new Map<string, number>();
      if (rows.length > 0) {
        const pending = await store.select({
          table: C2D_TABLE.name,
          columns: ['deviceid'],
          where: and({ kind: 'in', operand: { kind: 'column', column: 'deviceid' }, values: rows.map((r) => r['deviceid']!) }, compare('expirytime', 'gt', now)),
        });
        for (const p of pending) counts.set(String(p['deviceid']), (counts.get(String(p['deviceid'])) ?? 0) + 1);
      }
      return rows.map((r) => toIdentity(r, counts.get(String(r['deviceid'])) ?? 0));
    },

    async update(input, etag) {
      checkDeviceId(input.deviceId);
      const status = checkStatus(input.status);
      if (input.primaryKey) checkKey(input.primaryKey, 'primary');
      if (input.secondaryKey) checkKey(input.secondaryKey, 'secondary');
      const conditional = etag !== undefined && etag !== '*' && etag !== '';
      for (;;) {
        const current = await row(input.deviceId);
        if (!current) throw notFound(input.deviceId);
        checkEtag(current, etag);
        const values: Row = { etag: generateEtag() };
        if (status !== undefined && status !== current['status']) {
          values['status'] = status;
          values['statusupdatedtime'] = clock();
        }
        if (input.statusReason !== undefined) values['statusreason'] = input.statusReason;
        if (input.primaryKey) values['primarykey'] = input.primaryKey;
        if (input.secondaryKey) values['secondarykey'] = input.secondaryKey;
        // Compare-and-set on the etag read above, so two concurrent conditional updates cannot both win; an
        // unconditional one that lost the race simply applies to the newer state.
        const n = await store.update(DEVICE_TABLE.name, values, and(eq('deviceid', input.deviceId), eq('etag', current['etag']!)));
        if (n === 0) {
          if (conditional) throw new CcsError('PreconditionFailed', `Precondition failed: device '${input.deviceId}' has changed.`);
          continue;
        }
        // Like IoT Hub, a key change does not drop a live connection (its token stays valid until it expires);
        // disabling does.
        if (values['status'] === 'disabled') deps.onRevoked?.(input.deviceId, 'device disabled');
        return mustLoad(input.deviceId);
      }
    },

    async delete(deviceId, etag) {
      const current = await row(deviceId);
      if (!current) throw notFound(deviceId);
      checkEtag(current, etag);
      await store.transaction(async (tx) => {
        await tx.delete(C2D_TABLE.name, eq('deviceid', deviceId));
        await tx.delete(TWIN_TABLE.name, eq('deviceid', deviceId));
        await tx.delete(DEVICE_TABLE.name, eq('deviceid', deviceId));
      });
      deps.onRevoked?.(deviceId, 'device deleted');
    },

    async regenerateKey(deviceId, which) {
      if (which !== 'primary' && which !== 'secondary') throw new CcsError('ArgumentInvalid', `Key '${String(which)}': primary or secondary.`);
      const n = await store.update(DEVICE_TABLE.name, { [`${which}key`]: generateKey(), etag: generateEtag() }, eq('deviceid', deviceId));
      if (n === 0) throw notFound(deviceId);
      return mustLoad(deviceId);
    },

    policies: () => loadPolicies(),

    async policy(name) {
      return (await loadPolicies()).find((p) => p.keyName === name);
    },

    async regeneratePolicyKey(name, which) {
      if (which !== 'primary' && which !== 'secondary') throw new CcsError('ArgumentInvalid', `Key '${String(which)}': primary or secondary.`);
      const n = await store.update(POLICY_TABLE.name, { [`${which}key`]: generateKey() }, eq('keyname', name));
      if (n === 0) throw new CcsError('ArgumentInvalid', `No shared access policy named '${name}'.`);
      policyCache = undefined;
      return (await loadPolicies()).find((p) => p.keyName === name)!;
    },
  };
}

function maxOrNull(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

export function notFound(deviceId: string): CcsError {
  return new CcsError('DeviceNotFound', `Device '${deviceId}' is not registered in this hub.`);
}
