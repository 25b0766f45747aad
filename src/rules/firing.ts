/**
 * What a rule produces when it fires: everything the alert writer needs for Microsoft's `msdyn_iotalert` mapping
 * (ms-connected-service.md §1.2), and nothing it would have to look up in the rule again.
 */
import type { LeafCondition, Scalar } from './condition.js';

/** One comparison of the rule that was true when it fired. */
export interface FiringReading {
  /** The measure (`Temperature`), or `noData` / `messages` for conditions without one. */
  readonly readingType: string;
  /** The reading compared: the value, the aggregate over the window, the rate, or the seconds without data. */
  readonly reading: Scalar;
  /** The threshold compared with: for `outside`, the bound crossed; for `between`, "min..max". */
  readonly threshold: Scalar;
  readonly condition: LeafCondition;
}

export interface Firing extends FiringReading {
  readonly ruleId: string;
  readonly ruleName: string;
  /** The hub's device id (msdyn_iotalert.msdyn_deviceid). */
  readonly deviceId: string;
  /** The msdyn_iotdevice record id, when the caller passed it with the reading. */
  readonly deviceRecordId: string | null;
  /** Epoch milliseconds: the reading's time, or the moment a duration, a window or a silence completed. */
  readonly time: number;
  /** `reading`: a message made the condition true; `tick`: time did (durations, windows, no data). */
  readonly trigger: 'reading' | 'tick';
  readonly messageId: string | null;
  /**
   * The message id for reading-triggered firings (`<deviceId>:<time>` when the message has none). For tick-triggered
   * ones `tick:<deviceId>:<time>`: the time is derived from the readings (not from when the tick ran), so a replay
   * after a restart produces the same token. The alert writer makes it unique per rule (token + rule id).
   */
  readonly eventToken: string;
  readonly ruleOutput: string | null;
  /** msdyn_alerttype value. */
  readonly alertType: number;
  /** The rule's template rendered, at most 100 characters (msdyn_description). */
  readonly description: string;
  /** Every comparison that was true, in the order of the condition; the first one that became true is above. */
  readonly readings: readonly FiringReading[];
}

/** Microsoft's alert item: the JSON Stream Analytics sends and `msdyn_alertdata` stores (lower-case keys). */
export interface AlertData {
  readonly deviceid: string;
  readonly readingtype: string;
  readonly reading: Scalar;
  readonly threshold: Scalar;
  readonly ruleoutput: string | null;
  readonly time: string;
  readonly eventtoken: string;
}

export function toAlertData(f: Firing): AlertData {
  return {
    deviceid: f.deviceId,
    readingtype: f.readingType,
    reading: f.reading,
    threshold: f.threshold,
    ruleoutput: f.ruleOutput,
    time: new Date(f.time).toISOString(),
    eventtoken: f.eventToken,
  };
}
