/**
 * The IoT Hub-compatible gateway. Transports and the rest of ccs use `createHub` and the `Hub` contract
 * (./types.ts); SAS, connection-string and TLS helpers are exported for the CLI, the simulator and tests.
 */
export type * from './types.js';
export { createHub, DEFAULT_MQTTS_PORT, DEFAULT_TELEMETRY_RETENTION_DAYS, type HubDeps, type HubRuntime } from './hub.js';
export { createNodeId, isNodeId, type HubClusterOptions } from './cluster.js';
export {
  buildDeviceConnectionString,
  buildServiceConnectionString,
  createSasToken,
  deviceTokenFromConnectionString,
  encodeUriComponentStrict,
  isExpired,
  isSignedWith,
  parseConnectionString,
  parseDeviceConnectionString,
  parseSasToken,
  parseServiceConnectionString,
  resourceCovers,
  stripPort,
  type DeviceConnectionString,
  type SasToken,
  type ServiceConnectionString,
} from './sas.js';
export { ensureTlsMaterial, type TlsMaterial, type TlsOptions } from './tls.js';
export { POLICY_RIGHTS } from './registry.js';
export { C2D_MAX_BYTES, C2D_MAX_PENDING, C2D_DEFAULT_TTL_MS, C2D_MAX_TTL_MS } from './c2d.js';
export { aggregateDeviceTelemetry, D2C_MAX_BYTES, type ReadingAggregates } from './telemetry-log.js';
export { METHOD_MAX_PAYLOAD_BYTES } from './methods.js';
export { HUB_TABLES } from './tables.js';
