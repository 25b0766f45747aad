import type { DeviceStatusUpdate, Hub } from '../hub/index.js';
import { formatDateTime, type StringColumn } from '../metadata/index.js';
import type { RecordContext, RecordsService } from '../records/index.js';

const DEVICE = 'msdyn_iotdevice';

export interface DeviceSyncDeps {
  readonly hub: Pick<Hub, 'on'>;
  readonly records: RecordsService;
  /** The platform's own context: the hub acts for no user. */
  readonly system: RecordContext;
  readonly log: { error(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void };
}

/**
 * Keeps `msdyn_iotdevice` records in step with the hub: connection state and last activity (batched by the hub, one
 * event per registry flush) and the twin's reported properties. Updates go through the records service, so they
 * raise record events like any other change.
 */
export function startDeviceSync(deps: DeviceSyncDeps): () => Promise<void> {
  const { records, system, log } = deps;
  // Updates of one device are applied in arrival order; batches do not overlap.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = (fn: () => Promise<void>) => {
    queue = queue.then(fn).catch((e: unknown) => log.error({ err: e }, 'updating device records from the hub failed'));
  };

  async function recordIds(deviceId: string): Promise<string[]> {
    const rows = await records.query(system, DEVICE, {
      columns: ['msdyn_iotdeviceid'],
      where: { kind: 'compare', op: 'eq', left: { kind: 'column', column: 'msdyn_deviceid' }, right: { kind: 'value', value: deviceId } },
    });
    return rows.map((r) => String(r['msdyn_iotdeviceid']));
  }

  async function applyStatus(updates: readonly DeviceStatusUpdate[]): Promise<void> {
    for (const u of updates) {
      const values: Record<string, unknown> = {};
      if (u.connectionState !== undefined) values['msdyn_connectionstate'] = u.connectionState === 'Connected';
      if (u.lastActivityTime !== null) values['msdyn_lastactivitytime'] = formatDateTime(u.lastActivityTime);
      if (Object.keys(values).length === 0) continue;
      for (const id of await recordIds(u.deviceId)) await records.update(system, DEVICE, id, values);
    }
  }

  async function applyReported(deviceId: string, reported: Record<string, unknown>): Promise<void> {
    const text = JSON.stringify(reported);
    const column = records.table(DEVICE).column('msdyn_devicereportedproperties') as StringColumn | undefined;
    if (!column) return;
    if (text.length > column.maxLength) {
      log.warn({ deviceId, length: text.length }, 'reported properties are too long for msdyn_devicereportedproperties; not copied');
      return;
    }
    for (const id of await recordIds(deviceId)) await records.update(system, DEVICE, id, { msdyn_devicereportedproperties: text });
  }

  const offStatus = deps.hub.on('status', (updates) => serial(() => applyStatus(updates)));
  const offReported = deps.hub.on('reported', (deviceId, reported) => serial(() => applyReported(deviceId, reported)));
  /** Stops listening and waits for the updates already received. */
  return async () => {
    offStatus();
    offReported();
    await queue;
  };
}
