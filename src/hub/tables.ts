import type { PhysicalTable } from '../store/types.js';

/**
 * The hub's own tables. They are platform tables outside the Web API model (like `ccs_apitoken`), so keys never
 * appear in record reads: `msdyn_iotdevice` only names its identity through `msdyn_deviceid`.
 */

/** Device identities (IoT Hub registry). Device ids are case-sensitive in IoT Hub, so the key column is too. */
export const DEVICE_TABLE: PhysicalTable = {
  name: 'ccs_hubdevice',
  primaryKey: 'deviceid',
  columns: [
    { name: 'deviceid', type: 'text' },
    { name: 'etag', type: 'text' },
    { name: 'generationid', type: 'text' },
    { name: 'status', type: 'text' },
    { name: 'statusreason', type: 'text' },
    { name: 'statusupdatedtime', type: 'bigint' },
    { name: 'primarykey', type: 'text' },
    { name: 'secondarykey', type: 'text' },
    { name: 'connectionstate', type: 'text' },
    { name: 'connectionstateupdatedtime', type: 'bigint' },
    { name: 'lastactivitytime', type: 'bigint' },
    { name: 'createdon', type: 'bigint' },
  ],
  indexes: [],
};

/** Shared access policies with their keys and rights (comma-separated). */
export const POLICY_TABLE: PhysicalTable = {
  name: 'ccs_hubpolicy',
  primaryKey: 'keyname',
  columns: [
    { name: 'keyname', type: 'text' },
    { name: 'primarykey', type: 'text' },
    { name: 'secondarykey', type: 'text' },
    { name: 'rights', type: 'text' },
  ],
  indexes: [],
};

/** Device twins: tags, desired and reported documents as JSON, with their versions. */
export const TWIN_TABLE: PhysicalTable = {
  name: 'ccs_hubtwin',
  primaryKey: 'deviceid',
  columns: [
    { name: 'deviceid', type: 'text' },
    { name: 'etag', type: 'text' },
    { name: 'version', type: 'bigint' },
    { name: 'tags', type: 'text' },
    { name: 'desired', type: 'text' },
    { name: 'desiredversion', type: 'bigint' },
    { name: 'reported', type: 'text' },
    { name: 'reportedversion', type: 'bigint' },
  ],
  indexes: [],
};

/** Cloud-to-device queue: one row per pending message, ordered per device by `seq`. */
export const C2D_TABLE: PhysicalTable = {
  name: 'ccs_hubc2d',
  primaryKey: 'id',
  columns: [
    { name: 'id', type: 'text' },
    { name: 'deviceid', type: 'text' },
    { name: 'seq', type: 'bigint' },
    { name: 'messageid', type: 'text' },
    { name: 'correlationid', type: 'text' },
    { name: 'userid', type: 'text' },
    { name: 'contenttype', type: 'text' },
    { name: 'contentencoding', type: 'text' },
    { name: 'properties', type: 'text' },
    { name: 'body', type: 'text' },
    { name: 'enqueuedtime', type: 'bigint' },
    { name: 'expirytime', type: 'bigint' },
    { name: 'deliverycount', type: 'integer' },
    { name: 'locktoken', type: 'text' },
    { name: 'lockeduntil', type: 'bigint' },
  ],
  indexes: [{ columns: ['deviceid', 'seq'] }, { columns: ['expirytime'] }],
};

/**
 * The durable telemetry log: what a PUBACK (or an HTTPS 204) promises. `body` is the text when the payload is valid
 * UTF-8 without NUL (`bodyencoding` = `utf8`), else base64.
 */
export const TELEMETRY_TABLE: PhysicalTable = {
  name: 'ccs_telemetry',
  primaryKey: 'sequence',
  columns: [
    { name: 'sequence', type: 'bigint' },
    { name: 'deviceid', type: 'text' },
    { name: 'enqueuedtime', type: 'bigint' },
    { name: 'properties', type: 'text' },
    { name: 'system', type: 'text' },
    { name: 'body', type: 'text' },
    { name: 'bodyencoding', type: 'text' },
    { name: 'transport', type: 'text' },
  ],
  // Only append-ordered indexes: an index on (deviceid, …) puts each message of a group on a different page and turns
  // every group commit into megabytes of WAL (measured: ingest fell from 50k/s to 20k/s within 250k rows). Per-device
  // reads belong to the telemetry store; the log is read in sequence order.
  indexes: [{ columns: ['enqueuedtime'] }],
};

/** Named counters (the telemetry sequence), advanced by compare-and-set so several hub nodes can share them. */
export const COUNTER_TABLE: PhysicalTable = {
  name: 'ccs_hubcounter',
  primaryKey: 'name',
  columns: [
    { name: 'name', type: 'text' },
    { name: 'value', type: 'bigint' },
  ],
  indexes: [],
};

/**
 * Scale-out: the nodes of an installation (one row per running process, written at start and by its heartbeat), so
 * that a node that stopped without saying so can be recognised by its stale heartbeat.
 */
export const NODE_TABLE: PhysicalTable = {
  name: 'ccs_hubnode',
  primaryKey: 'nodeid',
  columns: [
    { name: 'nodeid', type: 'text' },
    { name: 'roles', type: 'text' },
    { name: 'startedtime', type: 'bigint' },
    { name: 'heartbeattime', type: 'bigint' },
  ],
  indexes: [{ columns: ['heartbeattime'] }],
};

/**
 * Scale-out: which node holds each connected device's connection. `connectionid` names the connection, so that every
 * change is a compare-and-set on it: a node only ever removes or replaces the connection it read.
 */
export const PRESENCE_TABLE: PhysicalTable = {
  name: 'ccs_hubpresence',
  primaryKey: 'deviceid',
  columns: [
    { name: 'deviceid', type: 'text' },
    { name: 'nodeid', type: 'text' },
    { name: 'connectionid', type: 'text' },
    { name: 'connectedtime', type: 'bigint' },
  ],
  indexes: [{ columns: ['nodeid'] }],
};

export const HUB_TABLES: readonly PhysicalTable[] = [DEVICE_TABLE, POLICY_TABLE, TWIN_TABLE, C2D_TABLE, TELEMETRY_TABLE, COUNTER_TABLE, NODE_TABLE, PRESENCE_TABLE];
