/**
 * `msdyn_PullDataForIoTDevice` ("Pull Device Data", ms-connected-service.md §1.5, §2.9, §3.6): reads each device's
 * twin and connection state from the hub, writes one `msdyn_iotdevicedatahistory` row per device, and updates the
 * device's `msdyn_connectionstate`, `msdyn_lastactivitytime` and `msdyn_devicereportedproperties` (what Microsoft's
 * `RetrieveDeviceTwinsScope` branch and the plug-in on data-history create do).
 *
 * Decisions where the reference is silent: the parameter is `IoTDeviceIds` (comma-separated msdyn_iotdevice ids), as
 * for msdyn_RegisterIoTDevice, since Microsoft's console calls both the same way on selected devices; the action
 * returns nothing. A device without a hub identity gets a row with status Not Found and is otherwise left alone;
 * reported properties longer than the column (8,000) are left out of the device and the row, not truncated.
 */
import { formatDateTime } from '../../metadata/index.js';
import type { RecordContext, RecordsService } from '../../records/index.js';
import type { Row } from '../../store/index.js';
import type { Operation } from '../../webapi/index.js';
import type { ConnectorDeps } from '../deps.js';
import { DEVICE, DEVICE_ID, HUB_ID, splitList } from '../devices.js';
import { loadDevices } from '../registration.js';

export const PULL_DATA_FOR_IOT_DEVICE = 'msdyn_PullDataForIoTDevice';
const PARAM = 'IoTDeviceIds';
const HISTORY = 'msdyn_iotdevicedatahistory';
const REPORTED_MAX = 8000;
/** `msdyn_iotdevicedatahistory.msdyn_status`. */
const STATUS = { enabled: 192350000, disabled: 192350001, notFound: 192350002 } as const;

export function createPullDataForIoTDevice(deps: ConnectorDeps): Operation {
  return {
    def: {
      name: PULL_DATA_FOR_IOT_DEVICE,
      kind: 'action',
      parameters: [{ name: PARAM, type: 'Edm.String', nullable: false }],
    },
    invoke: async (ctx, params) => {
      const rows = await loadDevices(ctx.records, ctx.record, splitList(params[PARAM]), PARAM, PULL_DATA_FOR_IOT_DEVICE);
      for (const row of rows) await pull(deps, ctx.records, ctx.record, row);
      return undefined;
    },
  };
}

async function pull(deps: ConnectorDeps, records: RecordsService, ctx: RecordContext, row: Row): Promise<void> {
  const id = String(row[DEVICE_ID]);
  const deviceId = typeof row[HUB_ID] === 'string' && row[HUB_ID] !== '' ? row[HUB_ID] : undefined;
  const identity = deviceId ? await deps.hub.registry.get(deviceId) : undefined;
  const name = `Pull ${deviceId ?? id} ${formatDateTime(deps.clock())}`.slice(0, 100);
  if (!deviceId || !identity) {
    await records.create(ctx, HISTORY, {
      msdyn_name: name,
      msdyn_device: id,
      msdyn_iothubdeviceid: deviceId ?? '',
      msdyn_status: STATUS.notFound,
      msdyn_statusreason: deviceId ? 'The device has no identity in the hub.' : 'The device has no Device ID (msdyn_deviceid).',
    });
    return;
  }
  const twin = await deps.hub.getTwin(deviceId);
  const reportedText = JSON.stringify(twin.properties.reported);
  const reported = reportedText.length <= REPORTED_MAX ? { msdyn_devicereportedproperties: reportedText } : {};
  const state = {
    msdyn_connectionstate: identity.connectionState === 'Connected',
    ...(identity.lastActivityTime !== null ? { msdyn_lastactivitytime: formatDateTime(identity.lastActivityTime) } : {}),
  };
  await records.create(ctx, HISTORY, {
    msdyn_name: name,
    msdyn_device: id,
    msdyn_iothubdeviceid: deviceId,
    msdyn_status: identity.status === 'enabled' ? STATUS.enabled : STATUS.disabled,
    ...(identity.statusReason ? { msdyn_statusreason: identity.statusReason.slice(0, 128) } : {}),
    ...(identity.connectionStateUpdatedTime !== null ? { msdyn_connectionstateupdatedtime: formatDateTime(identity.connectionStateUpdatedTime) } : {}),
    ...state,
    ...reported,
  });
  await records.update(ctx, DEVICE, id, { ...state, ...reported });
}
