import { CcsError } from '../errors/index.js';
import type { RecordContext, RecordEvent, RecordsService } from '../records/index.js';
import { importDeviceRules, type ImportedRule } from '../rules/index.js';
import type { Store } from '../store/index.js';
import { and, eq, isNull, isTransaction } from '../store/index.js';
import { DEVICE_TABLE } from './device-directory.js';
import { RULE_TABLE } from './rule-loader.js';

const CATEGORY_TABLE = 'msdyn_iotdevicecategory';

export interface DeviceRulesImport {
  /** Ids of the `ccs_iotrule` records created, in file order. */
  readonly created: readonly string[];
  /** Names of the rules left alone because the same rule (name, condition and scope) exists already. */
  readonly skipped: readonly string[];
}

function fail(message: string): never {
  throw new CcsError('InvalidValue', `devicerules.json: ${message}`);
}

/** The one record whose `column` is `value`, or a refusal naming what the file said. */
async function resolve(records: RecordsService, ctx: RecordContext, table: string, column: string, value: string, field: string): Promise<string> {
  const key = records.table(table).primaryIdAttribute;
  const rows = await records.query(ctx, table, { columns: [key], where: eq(column, value), limit: 2 });
  if (rows.length === 0) fail(`${field} '${value}' names no ${table} (no record with ${column} '${value}')`);
  if (rows.length > 1) fail(`${field} '${value}' is ambiguous: more than one ${table} has ${column} '${value}'`);
  return String(rows[0]![key]);
}

/**
 * Imports Microsoft's `devicerules.json` (src/rules/devicerules.ts says how each entry becomes rules): resolves each
 * `DeviceType` to the device category of that name and each `DeviceId` to the device record with that Device ID,
 * then creates the rules in one transaction, as `ctx` (so its privileges apply and the rules are its own). A file that
 * names a category or device that does not exist creates nothing. Importing the same file again creates nothing new:
 * a rule with the same name, condition and scope is skipped.
 */
export async function importDeviceRulesFile(
  deps: { readonly store: Store; readonly records: RecordsService },
  ctx: RecordContext,
  input: unknown,
): Promise<DeviceRulesImport> {
  const { store, records } = deps;
  const rules = importDeviceRules(input);
  const categories = new Map<string, string>();
  const devices = new Map<string, string>();
  for (const r of rules) {
    if (r.categoryName !== null && !categories.has(r.categoryName)) {
      categories.set(r.categoryName, await resolve(records, ctx, CATEGORY_TABLE, 'msdyn_name', r.categoryName, 'DeviceType'));
    }
    if (r.deviceId !== null && !devices.has(r.deviceId)) {
      devices.set(r.deviceId, await resolve(records, ctx, DEVICE_TABLE, 'msdyn_deviceid', r.deviceId, 'DeviceId'));
    }
  }
  const lookups = (r: ImportedRule) => ({
    ccs_category: r.categoryName === null ? null : categories.get(r.categoryName)!,
    ccs_device: r.deviceId === null ? null : devices.get(r.deviceId)!,
  });

  const write = async (rc: RecordContext): Promise<DeviceRulesImport> => {
    const created: string[] = [];
    const skipped: string[] = [];
    for (const r of rules) {
      const { ccs_category, ccs_device } = lookups(r);
      const same = await records.query(rc, RULE_TABLE, {
        columns: ['ccs_iotruleid'],
        where: and(
          eq('ccs_name', r.values.ccs_name),
          eq('ccs_condition', r.values.ccs_condition),
          eq('ccs_scope', r.values.ccs_scope),
          ccs_category === null ? isNull('ccs_category') : eq('ccs_category', ccs_category),
          ccs_device === null ? isNull('ccs_device') : eq('ccs_device', ccs_device),
        ),
        limit: 1,
      });
      if (same.length > 0) {
        skipped.push(r.values.ccs_name);
        continue;
      }
      const values: Record<string, unknown> = { ...r.values };
      if (ccs_category !== null) values['ccs_category'] = ccs_category;
      if (ccs_device !== null) values['ccs_device'] = ccs_device;
      created.push(await records.create(rc, RULE_TABLE, values));
    }
    return { created, skipped };
  };
  // Inside a $batch change set the request runs in a transaction already (its events go out when it commits).
  if (isTransaction(ctx.db)) return write(ctx);
  const pending: RecordEvent[] = [];
  const outcome = await store.transaction((tx) => write({ ...ctx, db: tx, pending }));
  records.publish(pending);
  return outcome;
}

