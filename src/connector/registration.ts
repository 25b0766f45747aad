/**
 * Device registration (ms-connected-service.md §1.4, §3.2): what Microsoft's `CRM-To-IoT-V2` Logic App branch
 * `RegisterAndEnableDevicesWithIotHubScope` does against IoT Hub, done in-process against ccs's hub. For each device
 * record: status In Progress, create or enable the hub identity, apply `msdyn_tags` to the twin's tags and
 * `msdyn_devicesettings` to its desired properties (Microsoft passes them as `DeviceTags` / `DeviceProperties`),
 * then Registered, or Error with `msdyn_registrationmessage`; one `msdyn_iotdeviceregistrationhistory` row per
 * attempt (§2.8: Microsoft's columns are not published; ours are `ccs_*`).
 *
 * Decisions where the reference is silent:
 * - A device without `msdyn_deviceid` is registered under its record id, written back to `msdyn_deviceid`
 *   (Microsoft: "if the device id is empty, IoT Hub generates one and it is synced back", CFS-REGISTER). The record
 *   id is unique, a valid IoT Hub device id, and stable, so registering again reuses the same identity.
 * - Tags and desired properties are merged into the twin (IoT Hub's twin PATCH), not replaced: what a service
 *   client set directly on the twin survives a re-registration. `null` in the JSON deletes a key.
 * - A hub refusal (invalid device id, invalid JSON in a column…) is a per-device Error, not a failure of the call,
 *   as in Microsoft's asynchronous flow; unknown record ids fail the whole call before anything is done.
 */
import { CcsError } from '../errors/index.js';
import type { Hub } from '../hub/index.js';
import { formatDateTime, isGuid } from '../metadata/index.js';
import { notFound, type RecordContext, type RecordsService } from '../records/index.js';
import type { Row } from '../store/index.js';
import { DEVICE, DEVICE_ID, HUB_ID, parseTwinColumn, REGISTRATION, SETTINGS, TAGS } from './devices.js';

const HISTORY = 'msdyn_iotdeviceregistrationhistory';
/** `msdyn_iotdeviceregistrationhistory.msdyn_action` Register. */
const ACTION_REGISTER = 192350000;
const DEVICE_COLUMNS = [DEVICE_ID, 'msdyn_name', HUB_ID, SETTINGS, TAGS];

export interface RegistrationDeps {
  readonly hub: Pick<Hub, 'registry' | 'updateTwin'>;
  readonly clock: () => number;
}

export interface RegistrationResult {
  readonly id: string;
  readonly deviceId: string;
  readonly status: number;
  readonly message: string;
}

/** Loads the device records `ids` names; a malformed or unknown id fails before any work (404 / 400). */
export async function loadDevices(records: RecordsService, ctx: RecordContext, ids: readonly string[], param: string, op: string): Promise<Row[]> {
  if (ids.length === 0 || ids.some((id) => id === '')) {
    throw new CcsError('InvalidValue', `Parameter '${param}' of '${op}' must be a comma-separated list of msdyn_iotdevice ids.`);
  }
  const bad = ids.filter((id) => !isGuid(id));
  if (bad.length) throw new CcsError('InvalidValue', `Parameter '${param}' of '${op}' holds values that are not GUIDs: ${bad.join(', ')}.`);
  const rows: Row[] = [];
  for (const id of new Set(ids.map((i) => i.toLowerCase()))) {
    const row = await records.retrieve(ctx, DEVICE, id, DEVICE_COLUMNS);
    if (!row) throw notFound(records.table(DEVICE), id);
    rows.push(row);
  }
  return rows;
}

/** Registers one device record with the hub; see the module comment. */
export async function registerDevice(deps: RegistrationDeps, records: RecordsService, ctx: RecordContext, row: Row): Promise<RegistrationResult> {
  const id = String(row[DEVICE_ID]);
  const given = typeof row[HUB_ID] === 'string' && row[HUB_ID] !== '' ? row[HUB_ID] : undefined;
  const deviceId = given ?? id;
  await records.update(ctx, DEVICE, id, { msdyn_registrationstatus: REGISTRATION.inProgress, msdyn_registrationmessage: null });

  let status: number = REGISTRATION.registered;
  let message: string;
  let unexpected: unknown;
  try {
    const tags = parseTwinColumn(TAGS, row[TAGS]);
    const desired = parseTwinColumn(SETTINGS, row[SETTINGS]);
    const identity = await deps.hub.registry.get(deviceId);
    if (!identity) {
      await deps.hub.registry.create({ deviceId });
      message = `Registered as '${deviceId}': created the device identity in the hub.`;
    } else if (identity.status === 'disabled') {
      await deps.hub.registry.update({ deviceId, status: 'enabled', statusReason: null });
      message = `Registered as '${deviceId}': enabled the existing device identity.`;
    } else {
      message = `Registered as '${deviceId}': the device identity already existed and is enabled.`;
    }
    if (tags || desired) await deps.hub.updateTwin(deviceId, { ...(tags ? { tags } : {}), ...(desired ? { properties: { desired } } : {}) });
  } catch (e) {
    status = REGISTRATION.error;
    if (e instanceof CcsError) message = e.message;
    else {
      message = 'Registration failed with an unexpected error; see the server log.';
      unexpected = e;
    }
  }

  await records.update(ctx, DEVICE, id, {
    ...(given === undefined && status === REGISTRATION.registered ? { [HUB_ID]: deviceId } : {}),
    msdyn_registrationstatus: status,
    msdyn_registrationmessage: message,
  });
  await records.create(ctx, HISTORY, {
    msdyn_name: `Register ${deviceId}`.slice(0, 100),
    msdyn_device: id,
    msdyn_action: ACTION_REGISTER,
    ccs_registrationstatus: status,
    ccs_registrationmessage: message.slice(0, 2000),
    ccs_deviceid: deviceId.slice(0, 100),
    ccs_registrationtime: formatDateTime(deps.clock()),
  });
  // The outcome is on the record; an unexpected error still reaches the caller (logged in full as a 500).
  if (unexpected !== undefined) throw unexpected;
  return { id, deviceId, status, message };
}
