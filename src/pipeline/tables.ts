import type { PhysicalTable } from '../store/index.js';

/**
 * Checkpoints of the rules engine: one row per device with its evaluator state (JSON) and the last telemetry record
 * applied to it (sequence and enqueued time), and one row with the empty device id (not a valid IoT Hub device id)
 * holding the watermark: every telemetry record up to it has been applied. A platform table, outside the Web API model.
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
  ],
  indexes: [],
};

/** The watermark row's key. */
export const WATERMARK_KEY = '';
