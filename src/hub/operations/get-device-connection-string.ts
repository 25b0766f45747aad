import { CcsError } from '../../errors/index.js';
import type { Operation } from '../../webapi/index.js';
import type { Hub } from '../types.js';

/** Role allowed to read device keys: the platform administrator only. */
const ADMIN_ROLE = 'admin';

/**
 * `msdyn_iotdevices(<id>)/Microsoft.Dynamics.CRM.ccs_GetDeviceConnectionString()`: the device connection string of
 * the record's hub identity (`msdyn_deviceid`), created on first call since the record owns its identity. Admins
 * only: the string carries the device key, which no record read ever shows.
 */
export function createGetDeviceConnectionString(hub: Pick<Hub, 'deviceConnectionString'>): Operation {
  return {
    def: {
      name: 'ccs_GetDeviceConnectionString',
      kind: 'function',
      boundTo: 'msdyn_iotdevice',
      parameters: [],
      returns: { properties: [{ name: 'ConnectionString', type: 'Edm.String' }] },
    },
    async invoke(ctx) {
      const principal = ctx.record.principal;
      if (principal.role !== ADMIN_ROLE) {
        throw new CcsError(
          'MissingPrivilege',
          `Principal user (Id=${principal.userId}, type=8, roleCount=1) is missing the administrator role needed to read device connection strings.`,
        );
      }
      const id = ctx.bound?.id;
      if (!id) throw new CcsError('BadRequest', 'ccs_GetDeviceConnectionString is bound to one msdyn_iotdevice record.');
      const row = await ctx.records.retrieve(ctx.record, 'msdyn_iotdevice', id, ['msdyn_deviceid']);
      if (!row) throw new CcsError('RecordNotFound', `msdyn_iotdevice With Id = ${id} Does Not Exist`);
      const deviceId = row['msdyn_deviceid'];
      if (typeof deviceId !== 'string' || deviceId === '') {
        throw new CcsError('InvalidValue', `The IoT device ${id} has no Device ID (msdyn_deviceid), so it has no hub identity.`);
      }
      return { ConnectionString: await hub.deviceConnectionString(deviceId, { create: true }) };
    },
  };
}
