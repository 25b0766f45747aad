/**
 * `msdyn_GetIoTAlertAggregation`: the alert counters behind the IoT summary tiles. Microsoft's console names the
 * action (ms-connected-service.md §3.6, CCS-JS `AlertAction`) but its contract is not public, so ccs defines one:
 *
 * - in (all optional): `IoTDeviceId` (Edm.Guid, the `msdyn_iotdevice`), `From`, `To` (Edm.DateTimeOffset; From
 *   inclusive, To exclusive) — the names of Microsoft's `msdyn_IoTGetDeviceEvents` (§3.6);
 * - out: `TotalCount` (active alerts), `ParentAlertCount` (active top-level alerts, i.e. distinct issues after
 *   debouncing, §3.1) and `AlertTypeCountsJson`, a JSON object of active alert counts by `msdyn_alerttype` value,
 *   with every option of the option set (also ones added later) — a JSON output as Microsoft's IoT actions use.
 *
 * Only active alerts count (statecode 0). The time is `msdyn_alerttime`, else `createdon`, as for parenting.
 * Counts run in the store (one COUNT per figure), never by loading alerts, and with the caller's read privilege.
 */
import { CcsError } from '../../errors/index.js';
import { isChoice } from '../../metadata/index.js';
import type { Condition } from '../../store/index.js';
import type { Operation } from '../../webapi/index.js';
import { ACTIVE, ALERT, alertTimeWithin, PARENT } from '../alerts.js';
import { and, eq } from '../../store/index.js';

const NAME = 'msdyn_GetIoTAlertAggregation';

function instant(params: Readonly<Record<string, unknown>>, name: string): number | undefined {
  const value = params[name];
  if (value === undefined || value === null) return undefined;
  const ms = typeof value === 'string' && /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) throw new CcsError('InvalidValue', `Parameter '${name}' of '${NAME}' must be a date and time such as 2024-05-01T00:00:00Z.`);
  return ms;
}

export function createGetIoTAlertAggregation(): Operation {
  return {
    def: {
      name: NAME,
      kind: 'action',
      parameters: [
        { name: 'IoTDeviceId', type: 'Edm.Guid' },
        { name: 'From', type: 'Edm.DateTimeOffset' },
        { name: 'To', type: 'Edm.DateTimeOffset' },
      ],
      returns: {
        properties: [
          { name: 'TotalCount', type: 'Edm.Int32', nullable: false },
          { name: 'ParentAlertCount', type: 'Edm.Int32', nullable: false },
          { name: 'AlertTypeCountsJson', type: 'Edm.String', nullable: false },
        ],
      },
    },
    invoke: async (ctx, params) => {
      const from = instant(params, 'From');
      const to = instant(params, 'To');
      if (from !== undefined && to !== undefined && from > to) throw new CcsError('InvalidValue', `Parameter 'From' of '${NAME}' is after 'To'.`);
      const device = params['IoTDeviceId'];
      const base: Condition[] = [eq('statecode', ACTIVE), alertTimeWithin(from, to, { toExclusive: true })];
      if (typeof device === 'string') base.push(eq('msdyn_device', device.toLowerCase()));
      const count = (...extra: Condition[]) => ctx.records.count(ctx.record, ALERT, and(...base, ...extra));

      const typeColumn = ctx.records.table(ALERT).column('msdyn_alerttype');
      const byType: Record<string, number> = {};
      for (const option of typeColumn && isChoice(typeColumn) ? typeColumn.optionSet.options : []) {
        byType[String(option.value)] = await count(eq('msdyn_alerttype', option.value));
      }
      return {
        TotalCount: await count(),
        ParentAlertCount: await count(eq(PARENT, null)),
        AlertTypeCountsJson: JSON.stringify(byType),
      };
    },
  };
}
