/**
 * Twin sync, device record → hub (ms-connected-service.md §1.5 "Update twin"): editing `msdyn_tags` or
 * `msdyn_devicesettings` of a registered `msdyn_iotdevice` patches the twin's tags or desired properties, what
 * Microsoft's `CRM-To-IoT-V2` branch `UpdateDeviceTwinScope` does with `IoTHub-ServiceApp/UpdateDeviceTwin`. The other
 * direction (reported properties, connection state, last activity → the record) is ./device-sync.ts.
 *
 * - The columns must hold JSON objects (or nothing): a validator refuses anything else with a 400 naming the column,
 *   so a bad value never reaches the record, let alone the twin.
 * - The patch is a merge, as IoT Hub's twin PATCH: keys present are set, `null` deletes, absent keys stay. Microsoft
 *   sends the column as the patch (`DeviceProperties` = `msdyn_devicesettings`), with the same effect.
 * - Only registered devices (`msdyn_registrationstatus` Registered) are synced; registration applies both columns,
 *   so nothing edited before it is lost. A hub failure is logged: the record keeps the value, and registering the
 *   device again applies it.
 */
import { CcsError } from '../errors/index.js';
import type { Hub, TwinPatch } from '../hub/index.js';
import type { RecordContext, RecordsService } from '../records/index.js';
import { DEVICE, HUB_ID, parseTwinColumn, REGISTRATION, SETTINGS, TAGS } from './devices.js';

export interface TwinSyncDeps {
  readonly hub: Pick<Hub, 'updateTwin'>;
  readonly records: RecordsService;
  readonly system: RecordContext;
  readonly log: { error(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void };
}

/** Starts the validator and the sync; returns the stop function (waits for patches in hand). */
export function startTwinSync(deps: TwinSyncDeps): () => Promise<void> {
  const { records, system, log } = deps;
  const removeValidator = records.addValidator(DEVICE, (row) => {
    parseTwinColumn(SETTINGS, row[SETTINGS]);
    parseTwinColumn(TAGS, row[TAGS]);
  });
  // Patches apply in the order the edits were made.
  let queue: Promise<unknown> = Promise.resolve();

  async function sync(id: string, columns: readonly string[]): Promise<void> {
    const row = await records.retrieve(system, DEVICE, id, [HUB_ID, 'msdyn_registrationstatus', SETTINGS, TAGS]);
    if (!row || row['msdyn_registrationstatus'] !== REGISTRATION.registered) return;
    const deviceId = row[HUB_ID];
    if (typeof deviceId !== 'string' || deviceId === '') return;
    const tags = columns.includes(TAGS) ? parseTwinColumn(TAGS, row[TAGS]) : undefined;
    const desired = columns.includes(SETTINGS) ? parseTwinColumn(SETTINGS, row[SETTINGS]) : undefined;
    if (!tags && !desired) return;
    const patch: TwinPatch = { ...(tags ? { tags } : {}), ...(desired ? { properties: { desired } } : {}) };
    try {
      await deps.hub.updateTwin(deviceId, patch);
    } catch (e) {
      if (!(e instanceof CcsError)) throw e;
      log.warn({ err: e, deviceId }, 'the device twin could not be updated from the device record');
    }
  }

  const off = records.onEvent((e) => {
    if (e.table !== DEVICE || e.type !== 'updated' || !(e.columns.includes(SETTINGS) || e.columns.includes(TAGS))) return;
    queue = queue.then(() => sync(e.id, e.columns)).catch((err: unknown) => log.error({ err, device: e.id }, 'updating the device twin failed'));
  });
  return async () => {
    off();
    removeValidator();
    await queue;
  };
}
