/**
 * `msdyn_RegisterCustomEntity` ("IoT – Register Custom Entity"), unbound, returns nothing (ms-connected-service.md
 * §3.3): `EntityIds` (comma-separated record ids, required), `EntityLogicalName` (required), `DeviceIds` and `Names`
 * (optional, comma-separated, by position). For each record: find or create an IoT device, connect it to the record
 * with a `connection` (record1 = the record, record2 = the device, `record2roleid` = the Connected Device role,
 * §1.4 "Connect to asset", §2.15), then register the device (../registration.ts). Any table works, standard or
 * created through EntityDefinitions: the only thing asked of it is a primary key.
 *
 * Decisions where the reference is silent:
 * - The device for position i: the one whose `msdyn_deviceid` is `DeviceIds[i]` when given (created with that id
 *   when there is none); else a device already connected to the record with the Connected Device role, so calling
 *   the action again does not pile up devices; else a new device. A new device is named `Names[i]`, else after the
 *   record's primary name, else after its device id or table.
 * - A new device gets `msdyn_account` (what lets CCS raise cases for it, §2.15): the record itself when it is an
 *   account, else the record's own `msdyn_account` when its table has one (customer assets do).
 * - When the record's table has `msdyn_registrationstatus` (customer assets do), it is set to the aggregate of all
 *   its connected devices (§2.15: "aggregate of connected devices"): Error if any is in error, In Progress if any
 *   is, Registered if all are, else Unregistered.
 * - More `DeviceIds` or `Names` than `EntityIds`, an unknown table, or `msdyn_iotdevice` itself is a 400 naming the
 *   parameter; an unknown record id is a 404, all checked before anything is written.
 */
import { CcsError } from '../../errors/index.js';
import { CONNECTED_DEVICE_ROLE_ID, isChoice, isGuid, isLookup, lookupTypeColumn, type Table } from '../../metadata/index.js';
import { notFound, type RecordContext, type RecordsService } from '../../records/index.js';
import type { Row } from '../../store/index.js';
import type { Operation } from '../../webapi/index.js';
import { and, eq, isIn } from '../../store/index.js';
import type { ConnectorDeps } from '../deps.js';
import { DEVICE, DEVICE_ID, deviceRecordsOf, HUB_ID, REGISTRATION, splitList } from '../devices.js';
import { loadDevices, registerDevice } from '../registration.js';

export const REGISTER_CUSTOM_ENTITY = 'msdyn_RegisterCustomEntity';
const CONNECTION = 'connection';
const STATUS = 'msdyn_registrationstatus';

export function createRegisterCustomEntity(deps: ConnectorDeps): Operation {
  return {
    def: {
      name: REGISTER_CUSTOM_ENTITY,
      kind: 'action',
      parameters: [
        { name: 'EntityIds', type: 'Edm.String', nullable: false },
        { name: 'EntityLogicalName', type: 'Edm.String', nullable: false },
        { name: 'DeviceIds', type: 'Edm.String' },
        { name: 'Names', type: 'Edm.String' },
      ],
    },
    invoke: async (ctx, params) => {
      const bad = (param: string, why: string) => new CcsError('InvalidValue', `Parameter '${param}' of '${REGISTER_CUSTOM_ENTITY}' ${why}`);
      const tableName = String(params['EntityLogicalName']).trim().toLowerCase();
      const table = ctx.records.model.table(tableName);
      if (!table) throw bad('EntityLogicalName', `names a table that does not exist: '${tableName}'.`);
      if (table.logicalName === DEVICE) throw bad('EntityLogicalName', `cannot be '${DEVICE}'; register devices with msdyn_RegisterIoTDevice.`);
      const ids = splitList(params['EntityIds']);
      if (ids.length === 0 || ids.some((id) => !isGuid(id))) throw bad('EntityIds', 'must be a comma-separated list of record ids (GUIDs).');
      const deviceIds = splitList(params['DeviceIds']);
      const names = splitList(params['Names']);
      if (deviceIds.length > ids.length) throw bad('DeviceIds', `has ${deviceIds.length} items for ${ids.length} records.`);
      if (names.length > ids.length) throw bad('Names', `has ${names.length} items for ${ids.length} records.`);

      const rows: Row[] = [];
      for (const id of ids) {
        const row = await ctx.records.retrieve(ctx.record, table.logicalName, id.toLowerCase());
        if (!row) throw notFound(table, id);
        rows.push(row);
      }
      const touched = new Set<string>();
      for (const [i, row] of rows.entries()) {
        const deviceRecord = await findOrCreateDevice(ctx.records, ctx.record, table, row, deviceIds[i] || undefined, names[i] || undefined);
        await connect(ctx.records, ctx.record, table, String(row[table.primaryIdAttribute]), deviceRecord);
        // A device listed twice (same DeviceIds entry for two records) is registered once.
        if (touched.has(deviceRecord)) continue;
        touched.add(deviceRecord);
        const [device] = await loadDevices(ctx.records, ctx.record, [deviceRecord], 'EntityIds', REGISTER_CUSTOM_ENTITY);
        await registerDevice(deps, ctx.records, ctx.record, device!);
      }
      const status = table.column(STATUS);
      if (status && isChoice(status) && status.optionSet.options.some((o) => o.value === REGISTRATION.registered)) {
        for (const row of rows) await aggregateStatus(ctx.records, ctx.record, table, String(row[table.primaryIdAttribute]));
      }
      return undefined;
    },
  };
}

/** Devices connected to `recordId` with the Connected Device role (record1 = the record, record2 = a device). */
async function connectedDevices(records: RecordsService, ctx: RecordContext, table: Table, recordId: string): Promise<string[]> {
  const rows = await records.query(ctx, CONNECTION, {
    columns: ['record2id'],
    where: and(
      eq('record1id', recordId),
      eq(lookupTypeColumn('record1id'), table.logicalName),
      eq('record2roleid', CONNECTED_DEVICE_ROLE_ID),
      eq(lookupTypeColumn('record2id'), DEVICE),
    ),
  });
  return [...new Set(rows.map((r) => String(r['record2id'])))];
}

async function findOrCreateDevice(
  records: RecordsService,
  ctx: RecordContext,
  table: Table,
  row: Row,
  deviceId: string | undefined,
  name: string | undefined,
): Promise<string> {
  const recordId = String(row[table.primaryIdAttribute]);
  if (deviceId !== undefined) {
    const [existing] = await deviceRecordsOf(records, ctx, deviceId);
    if (existing) return existing;
  } else {
    const [connected] = await connectedDevices(records, ctx, table, recordId);
    if (connected) return connected;
  }
  const primaryName = table.primaryNameAttribute ? row[table.primaryNameAttribute] : undefined;
  const fallback = typeof primaryName === 'string' && primaryName !== '' ? primaryName : (deviceId ?? `${table.displayName} device`);
  return records.create(ctx, DEVICE, {
    msdyn_name: (name ?? fallback).slice(0, 100),
    ...(deviceId !== undefined ? { [HUB_ID]: deviceId } : {}),
    ...accountOf(table, row),
  });
}

function accountOf(table: Table, row: Row): Record<string, string> {
  if (table.logicalName === 'account') return { msdyn_account: String(row[table.primaryIdAttribute]) };
  const column = table.column('msdyn_account');
  const value = row['msdyn_account'];
  if (column && isLookup(column) && column.targets.includes('account') && typeof value === 'string') return { msdyn_account: value };
  return {};
}

/** Creates the connection record → device unless it exists. */
async function connect(records: RecordsService, ctx: RecordContext, table: Table, recordId: string, deviceRecord: string): Promise<void> {
  if ((await connectedDevices(records, ctx, table, recordId)).includes(deviceRecord)) return;
  await records.create(ctx, CONNECTION, {
    name: 'Connected Device',
    record1id: { id: recordId, table: table.logicalName },
    record2id: { id: deviceRecord, table: DEVICE },
    record2roleid: CONNECTED_DEVICE_ROLE_ID,
  });
}

async function aggregateStatus(records: RecordsService, ctx: RecordContext, table: Table, recordId: string): Promise<void> {
  const devices = await connectedDevices(records, ctx, table, recordId);
  if (devices.length === 0) return;
  const rows = await records.query(ctx, DEVICE, { columns: [DEVICE_ID, STATUS], where: isIn(DEVICE_ID, devices) });
  const statuses = rows.map((r) => r[STATUS]);
  const status = statuses.includes(REGISTRATION.error)
    ? REGISTRATION.error
    : statuses.includes(REGISTRATION.inProgress)
      ? REGISTRATION.inProgress
      : statuses.every((s) => s === REGISTRATION.registered)
        ? REGISTRATION.registered
        : REGISTRATION.unregistered;
  await records.update(ctx, table.logicalName, recordId, { [STATUS]: status });
}
