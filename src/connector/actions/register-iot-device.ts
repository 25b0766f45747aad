/**
 * `msdyn_RegisterIoTDevice` ("IoT – Register Device"), unbound, `IoTDeviceIds`: comma-separated msdyn_iotdevice ids
 * (ms-connected-service.md §3.2; public C# sample `OrganizationRequest("msdyn_RegisterIoTDevice")`). Returns
 * nothing, like Microsoft's; the outcome is on each device (`msdyn_registrationstatus`, `msdyn_registrationmessage`)
 * and in its registration history. Microsoft routes the call through the device's provider (§1.4); ccs has one
 * provider, its own hub, so the call registers directly. Registration itself: ../registration.ts.
 */
import type { Operation } from '../../webapi/index.js';
import type { ConnectorDeps } from '../deps.js';
import { splitList } from '../devices.js';
import { loadDevices, registerDevice } from '../registration.js';

export const REGISTER_IOT_DEVICE = 'msdyn_RegisterIoTDevice';
const PARAM = 'IoTDeviceIds';

export function createRegisterIoTDevice(deps: ConnectorDeps): Operation {
  return {
    def: {
      name: REGISTER_IOT_DEVICE,
      kind: 'action',
      parameters: [{ name: PARAM, type: 'Edm.String', nullable: false }],
    },
    invoke: async (ctx, params) => {
      const rows = await loadDevices(ctx.records, ctx.record, splitList(params[PARAM]), PARAM, REGISTER_IOT_DEVICE);
      for (const row of rows) await registerDevice(deps, ctx.records, ctx.record, row);
      return undefined;
    },
  };
}
