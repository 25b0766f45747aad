/**
 * Which devices a command sent to many devices goes to (ms-connected-service.md §1.3 item 4, §2.4): every
 * registered device connected to the command's record, and/or every registered device of a category.
 *
 * - The record: `msdyn_customerasset` when set, else the record(s) the command's device (`msdyn_device`, or the
 *   device whose `msdyn_deviceid` it names) is connected to. "Connected" is a `connection` with record2 = the device
 *   and `record2roleid` = the Connected Device role, as Microsoft's console and msdyn_RegisterCustomEntity create it;
 *   record1 can be a record of any table.
 * - A command that names only a customer asset (no device) goes to the asset's connected devices too: Microsoft
 *   describes `msdyn_customerasset` as "the command will be sent to a device connected to this asset".
 * - A category (`ccs_category`, ours): the devices whose `msdyn_category` it is. When the command also goes to a
 *   record's connected devices, the category narrows them (the thermostats of this building) rather than adding
 *   every device of the category; a device named on a category command without "send to all" is ignored.
 * - "Registered": `msdyn_registrationstatus` Registered with a Device ID; other devices are left out.
 */
import { CONNECTED_DEVICE_ROLE_ID, lookupTypeColumn } from '../../metadata/index.js';
import type { RecordContext, RecordsService } from '../../records/index.js';
import type { Row } from '../../store/index.js';
import { and, chunks, eq, isIn } from '../../store/index.js';
import { DEVICE, DEVICE_ID, deviceRecordsOf, HUB_ID, REGISTRATION } from '../devices.js';
import { CATEGORY, SEND_TO_ALL } from './status.js';

const CONNECTION = 'connection';
const ASSET = 'msdyn_customerasset';

export interface FanOutDevice {
  /** msdyn_iotdevice id. */
  readonly recordId: string;
  /** Its identity in the hub. */
  readonly hubId: string;
}

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v !== '';
/** A stored Yes/No value (1 on both engines; `true` tolerated). */
const isTrue = (v: unknown): boolean => v === 1 || v === '1' || v === true;

/**
 * True for a command that goes to many devices through child commands: to all connected devices, to a category, or
 * naming only a customer asset ("the command will be sent to a device connected to this asset"). A child command
 * never fans out again.
 */
export function isFanOut(row: Row): boolean {
  if (row['ccs_parentcommand'] != null) return false;
  return nonEmpty(row[CATEGORY]) || isTrue(row[SEND_TO_ALL]) || onlyAsset(row);
}

/** A command that names a customer asset and no device. */
function onlyAsset(row: Row): boolean {
  return !nonEmpty(row['msdyn_device']) && !nonEmpty(row[HUB_ID]) && nonEmpty(row['msdyn_customerasset']);
}

/** The devices a fan-out command goes to, sorted by device id, or why there are none. */
export async function fanOutTargets(records: RecordsService, ctx: RecordContext, row: Row): Promise<{ devices: FanOutDevice[] } | { problem: string }> {
  const category = nonEmpty(row[CATEGORY]) ? row[CATEGORY] : undefined;
  const byRecord = isTrue(row[SEND_TO_ALL]) || onlyAsset(row);
  let candidates: string[] | undefined; // device record ids connected to the record; undefined: no record scope
  let scope: string;
  if (byRecord) {
    const found = await connectedToRecord(records, ctx, row);
    if ('problem' in found) return found;
    candidates = found.devices;
    scope = found.scope;
  } else {
    scope = '';
  }
  let categoryName = '';
  if (category) {
    const cat = await records.retrieve(ctx, 'msdyn_iotdevicecategory', category, ['msdyn_name']);
    if (!cat) return { problem: `The category ${category} (ccs_category) does not exist.` };
    categoryName = String(cat['msdyn_name'] ?? category);
    scope = scope ? `${scope} of category '${categoryName}'` : `of category '${categoryName}'`;
  }
  const registered = and(eq('msdyn_registrationstatus', REGISTRATION.registered));
  const rows: Row[] = [];
  const columns = [DEVICE_ID, HUB_ID];
  if (candidates) {
    for (const ids of chunks(candidates)) {
      const where = category ? and(isIn(DEVICE_ID, ids), registered, eq('msdyn_category', category)) : and(isIn(DEVICE_ID, ids), registered);
      rows.push(...(await records.query(ctx, DEVICE, { columns, where })));
    }
  } else {
    rows.push(...(await records.query(ctx, DEVICE, { columns, where: and(eq('msdyn_category', category!), registered) })));
  }
  const devices = rows
    .filter((r) => nonEmpty(r[HUB_ID]))
    .map((r) => ({ recordId: String(r[DEVICE_ID]), hubId: String(r[HUB_ID]) }))
    .sort((a, b) => (a.hubId < b.hubId ? -1 : a.hubId > b.hubId ? 1 : 0));
  if (devices.length === 0) return { problem: `No registered devices to send to: there is no registered device (status Registered, with a Device ID) ${scope}.` };
  return { devices };
}

/** Device records connected to the command's record, and words for that record. */
async function connectedToRecord(records: RecordsService, ctx: RecordContext, row: Row): Promise<{ devices: string[]; scope: string } | { problem: string }> {
  const asset = row['msdyn_customerasset'];
  if (nonEmpty(asset)) {
    return { devices: await devicesConnectedTo(records, ctx, [{ id: asset, table: ASSET }]), scope: `connected to customer asset ${asset}` };
  }
  let device = nonEmpty(row['msdyn_device']) ? row['msdyn_device'] : undefined;
  if (!device && nonEmpty(row[HUB_ID])) [device] = await deviceRecordsOf(records, ctx, row[HUB_ID]);
  if (!device) {
    return { problem: 'The command is to be sent to all connected devices, but names no record to find them from: set msdyn_customerasset or msdyn_device.' };
  }
  const links = await records.query(ctx, CONNECTION, {
    columns: ['record1id', lookupTypeColumn('record1id')],
    where: and(eq('record2id', device), eq(lookupTypeColumn('record2id'), DEVICE), eq('record2roleid', CONNECTED_DEVICE_ROLE_ID)),
  });
  const parents = links
    .filter((l) => nonEmpty(l['record1id']) && nonEmpty(l[lookupTypeColumn('record1id')]))
    .map((l) => ({ id: String(l['record1id']), table: String(l[lookupTypeColumn('record1id')]) }));
  if (parents.length === 0) {
    return { problem: `No registered devices to send to: the IoT device ${device} is not connected to any record (a connection with the Connected Device role), so it has no connected devices.` };
  }
  const named = parents.map((p) => `${p.table} ${p.id}`).join(', ');
  return { devices: await devicesConnectedTo(records, ctx, parents), scope: `connected to ${named}` };
}

async function devicesConnectedTo(records: RecordsService, ctx: RecordContext, parents: readonly { id: string; table: string }[]): Promise<string[]> {
  const ids = new Set<string>();
  for (const p of parents) {
    const rows = await records.query(ctx, CONNECTION, {
      columns: ['record2id'],
      where: and(
        eq('record1id', p.id),
        eq(lookupTypeColumn('record1id'), p.table),
        eq('record2roleid', CONNECTED_DEVICE_ROLE_ID),
        eq(lookupTypeColumn('record2id'), DEVICE),
      ),
    });
    for (const r of rows) if (nonEmpty(r['record2id'])) ids.add(r['record2id']);
  }
  return [...ids];
}
