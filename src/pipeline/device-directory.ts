import { CONNECTED_DEVICE_ROLE_ID } from '../metadata/index.js';
import type { RecordContext, RecordsService } from '../records/index.js';
import { and, eq } from '../store/index.js';

export const DEVICE_TABLE = 'msdyn_iotdevice';
const CONNECTION_TABLE = 'connection';
const ASSET_TABLE = 'msdyn_customerasset';
/** The device columns the directory holds (the primary key cannot change). */
const CACHED_COLUMNS = new Set(['msdyn_deviceid', 'msdyn_name', 'msdyn_category']);

/** What the pipeline needs to know about a hub device's record. */
export interface DeviceInfo {
  /** msdyn_iotdevice id. */
  readonly recordId: string;
  readonly name: string | null;
  readonly categoryId: string | null;
  /** The msdyn_customerasset connected to the device ("Connected Device" connection), if any. */
  readonly customerAssetId: string | null;
}

export interface DeviceDirectory {
  /** The record of a hub device, or null when no msdyn_iotdevice names it. Cached. */
  get(deviceId: string): Promise<DeviceInfo | null>;
  close(): void;
}

/**
 * Hub device id → its msdyn_iotdevice record, category and connected customer asset. Looked up once and cached; any
 * change to a device record or a connection empties the cache (both are rare next to readings, and a connection
 * names the device only by record id, so finding the one entry it affects would cost a lookup of its own).
 */
export function createDeviceDirectory(deps: { readonly records: RecordsService; readonly system: RecordContext }): DeviceDirectory {
  const { records, system } = deps;
  const cache = new Map<string, Promise<DeviceInfo | null>>();
  const off = records.onEvent((e) => {
    // Device sync updates connection state and last activity about once a second: those changes keep the cache.
    if (e.table === DEVICE_TABLE && e.type === 'updated' && !e.columns.some((c) => CACHED_COLUMNS.has(c))) return;
    if (e.table === DEVICE_TABLE || e.table === CONNECTION_TABLE) cache.clear();
  });

  async function lookup(deviceId: string): Promise<DeviceInfo | null> {
    const [row] = await records.query(system, DEVICE_TABLE, {
      columns: ['msdyn_iotdeviceid', 'msdyn_name', 'msdyn_category'],
      where: eq('msdyn_deviceid', deviceId),
      limit: 1,
    });
    if (!row) return null;
    const recordId = String(row['msdyn_iotdeviceid']);
    // Asset (record1) → device (record2) in the "Connected Device" role, as Microsoft's console creates it.
    const [link] = await records.query(system, CONNECTION_TABLE, {
      columns: ['record1id'],
      where: and(eq('record2id', recordId), eq('record2roleid', CONNECTED_DEVICE_ROLE_ID), eq('record1id_type', ASSET_TABLE)),
      orderBy: [{ column: 'createdon' }],
      limit: 1,
    });
    return {
      recordId,
      name: typeof row['msdyn_name'] === 'string' ? row['msdyn_name'] : null,
      categoryId: typeof row['msdyn_category'] === 'string' ? row['msdyn_category'] : null,
      customerAssetId: link && typeof link['record1id'] === 'string' ? link['record1id'] : null,
    };
  }

  return {
    get(deviceId) {
      let found = cache.get(deviceId);
      if (!found) {
        found = lookup(deviceId);
        cache.set(deviceId, found);
        // A failed lookup is not remembered.
        found.catch(() => cache.delete(deviceId));
      }
      return found;
    },
    close: off,
  };
}
