/**
 * The connector: the IoT processes of Microsoft's solution on top of the records and the hub
 * (ms-connected-service.md §3): its actions, each a module of its own in `actions/`, and the processes that react
 * to record and hub events — commands (./commands/), twin sync (./twin-sync.ts), device sync (./device-sync.ts).
 */
import type { OperationRegistry } from '../webapi/index.js';
import { createIoTCheckIfRecordExistsInEntity } from './actions/check-if-record-exists.js';
import { createCreateCaseFromIoTAlert } from './actions/create-case-from-alert.js';
import { createGetIoTAlertAggregation } from './actions/get-iot-alert-aggregation.js';
import { createJsonGetBoolean, createJsonGetNumber, createJsonGetString } from './actions/json-get.js';
import { createParentIoTAlerts } from './actions/parent-iot-alerts.js';
import { createPullDataForIoTDevice } from './actions/pull-data-for-iot-device.js';
import { createQueryDeviceReadings } from './actions/query-device-readings.js';
import { createRegisterCustomEntity } from './actions/register-custom-entity.js';
import { createRegisterIoTDevice } from './actions/register-iot-device.js';
import { createSendTestAlert } from './actions/send-test-alert.js';
import type { ConnectorDeps } from './deps.js';

export type { ConnectorDeps } from './deps.js';
export { startDeviceSync, type DeviceSyncDeps } from './device-sync.js';
export { startCommandSync, COMMAND_STATUS_VALUE, DEFAULT_COMMAND_TTL_SECONDS, type CommandSync, type CommandSyncDeps } from './commands/index.js';
export { startTwinSync, type TwinSyncDeps } from './twin-sync.js';
export { startWorkflows } from './workflows/index.js';
export { startWebhooks } from './webhooks/index.js';
export { startCaseProcess } from './case-process.js';
export type { ProcessDeps, StopProcess } from './process-deps.js';
export { parseAggregationRule, type AggregationRule } from './aggregation-rule.js';
export { parsePath, valueAt, type PathStep } from './json-path.js';

/** Registers the connector's actions under Microsoft's names; `$metadata` advertises them from the registry. */
export function registerConnectorActions(registry: OperationRegistry, deps: ConnectorDeps): void {
  registry.register(createJsonGetString());
  registry.register(createJsonGetNumber());
  registry.register(createJsonGetBoolean());
  registry.register(createParentIoTAlerts(deps));
  registry.register(createIoTCheckIfRecordExistsInEntity());
  registry.register(createGetIoTAlertAggregation());
  registry.register(createRegisterIoTDevice(deps));
  registry.register(createRegisterCustomEntity(deps));
  registry.register(createPullDataForIoTDevice(deps));
  registry.register(createQueryDeviceReadings(deps));
  registry.register(createSendTestAlert(deps));
  registry.register(createCreateCaseFromIoTAlert(deps));
}
