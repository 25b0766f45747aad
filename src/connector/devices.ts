/**
 * What the registration, command and twin-sync processes share about `msdyn_iotdevice` rows: names, the
 * registration status values (ms-connected-service.md §2.2) and the JSON columns that feed the twin (§1.5).
 */
import { CcsError } from '../errors/index.js';
import type { RecordContext, RecordsService } from '../records/index.js';
import { eq } from '../store/index.js';

export const DEVICE = 'msdyn_iotdevice';
export const DEVICE_ID = 'msdyn_iotdeviceid';
/** The device's identity in the hub. */
export const HUB_ID = 'msdyn_deviceid';
export const SETTINGS = 'msdyn_devicesettings';
export const TAGS = 'msdyn_tags';

/** `msdyn_registrationstatus` (REGISTRATION_STATUS in metadata/standard/core.ts). */
export const REGISTRATION = {
  unknown: 192350000,
  unregistered: 192350001,
  inProgress: 192350002,
  registered: 192350003,
  error: 192350004,
} as const;

/** True for a JSON object (not an array, not null). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The object a twin JSON column holds: undefined when empty, else it must be a JSON object (the twin's tags and
 * desired properties are objects). Throws InvalidValue naming the column.
 */
export function parseTwinColumn(column: string, value: unknown): Record<string, unknown> | undefined {
  if (value === null || value === undefined || (typeof value === 'string' && value.trim() === '')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(String(value));
  } catch (e) {
    throw new CcsError('InvalidValue', `The value of '${column}' is not valid JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(parsed)) throw new CcsError('InvalidValue', `The value of '${column}' must be a JSON object.`);
  return parsed;
}

/** Splits a comma-separated parameter into trimmed items, keeping empty ones (positions matter in §3.3 lists). */
export function splitList(value: unknown): string[] {
  if (typeof value !== 'string' || value.trim() === '') return [];
  return value.split(',').map((s) => s.trim());
}

/** Ids of the device records whose hub identity is `hubId` (the alternate key makes it at most one). */
export async function deviceRecordsOf(records: RecordsService, ctx: RecordContext, hubId: string): Promise<string[]> {
  const rows = await records.query(ctx, DEVICE, { columns: [DEVICE_ID], where: eq(HUB_ID, hubId) });
  return rows.map((r) => String(r[DEVICE_ID]));
}
