import type { PhysicalTable } from '../store/index.js';

/**
 * Checkpoints of the rules engine: one row per device with its evaluator state (JSON), its partition
 * (partitions.ts) and the last telemetry record applied to it (sequence and enqueued time). The row with the empty
 * device id (not a valid IoT Hub device id) holds the installation's watermark: every telemetry record up to it has
 * been applied (the lowest of the partition watermarks in `ccs_rulewatermark`; older versions kept only this one,
 * and it is still the default of a partition without a row). A platform table, outside the Web API model.
 */
export const RULE_STATE_TABLE: PhysicalTable = {
  name: 'ccs_rulestate',
  primaryKey: 'deviceid',
  columns: [
    { name: 'deviceid', type: 'text' },
    { name: 'state', type: 'text' },
    { name: 'sequence', type: 'bigint' },
    /** Enqueued time of that last record (epoch ms); see isApplied in pipeline.ts. */
    { name: 'enqueuedtime', type: 'bigint' },
    { name: 'updatedon', type: 'bigint' },
    /** The device's partition; null in rows written by versions before partitioning (computed when read). */
    { name: 'partition', type: 'integer' },
  ],
  indexes: [{ columns: ['partition'] }],
};

/** The installation watermark row's key. */
export const WATERMARK_KEY = '';

/**
 * Rules workers that are running: each writes its heartbeat here, and the live ones (recent heartbeat) share the
 * partitions. A worker removes its row when it stops; the rows of workers that died are removed by the others once
 * their heartbeat is stale.
 */
export const RULE_WORKER_TABLE: PhysicalTable = {
  name: 'ccs_ruleworker',
  primaryKey: 'workerid',
  columns: [
    { name: 'workerid', type: 'text' },
    { name: 'heartbeat', type: 'bigint' },
    { name: 'startedon', type: 'bigint' },
  ],
  indexes: [],
};

/**
 * One row per partition: its watermark (every telemetry record of the partition's devices up to `sequence` has been
 * applied to the checkpointed states) and the worker holding it. A worker takes a partition only when no live
 * worker holds it (compare-and-set on `workerid`), and gives it up by checkpointing and then clearing `workerid`, so
 * two workers never evaluate one device at the same time.
 */
export const RULE_WATERMARK_TABLE: PhysicalTable = {
  name: 'ccs_rulewatermark',
  primaryKey: 'partition',
  columns: [
    { name: 'partition', type: 'integer' },
    { name: 'sequence', type: 'bigint' },
    /** The worker holding the partition; null when none does. */
    { name: 'workerid', type: 'text' },
    { name: 'updatedon', type: 'bigint' },
  ],
  indexes: [],
};
