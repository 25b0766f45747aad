/**
 * `msdyn_IoTCheckIfRecordExistsInEntity`: unbound action, in `EntitiesLogicalNames` (comma-separated table logical
 * names), out `IsRecordExists` — true when at least one record exists in any of the tables. Microsoft's console
 * calls it with "msdyn_iotdevice,msdyn_iotalert" to decide whether IoT is in use (ms-connected-service.md §3.6,
 * CCS-JS `CCSIndicatorUtils.checkIfIoTDeviceOrAlertFromCustomAction`).
 *
 * Decisions: a name that is not a table is a 400 naming the parameter (Microsoft's behaviour is not documented);
 * records are counted with the caller's read privilege, like any other read.
 */
import { CcsError } from '../../errors/index.js';
import type { Operation } from '../../webapi/index.js';

const NAME = 'msdyn_IoTCheckIfRecordExistsInEntity';
const PARAM = 'EntitiesLogicalNames';

export function createIoTCheckIfRecordExistsInEntity(): Operation {
  return {
    def: {
      name: NAME,
      kind: 'action',
      parameters: [{ name: PARAM, type: 'Edm.String', nullable: false }],
      returns: { properties: [{ name: 'IsRecordExists', type: 'Edm.Boolean', nullable: false }] },
    },
    invoke: async (ctx, params) => {
      const names = String(params[PARAM]).split(',').map((n) => n.trim().toLowerCase()).filter((n) => n !== '');
      if (names.length === 0) throw new CcsError('InvalidValue', `Parameter '${PARAM}' of '${NAME}' must name at least one table.`);
      const unknown = names.filter((n) => !ctx.records.model.table(n));
      if (unknown.length) throw new CcsError('InvalidValue', `Parameter '${PARAM}' of '${NAME}' names tables that do not exist: ${unknown.join(', ')}.`);
      for (const name of names) {
        const table = ctx.records.table(name);
        const rows = await ctx.records.query(ctx.record, name, { columns: [table.primaryIdAttribute], limit: 1 });
        if (rows.length > 0) return { IsRecordExists: true };
      }
      return { IsRecordExists: false };
    },
  };
}
