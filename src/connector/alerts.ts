/**
 * What the IoT actions share about `msdyn_iotalert` rows: names, an alert's time and the order of alerts.
 * ms-connected-service.md §2.1 (columns), §3.1 (time used = `msdyn_alerttime`, else `createdon`).
 */
import type { Condition, Row } from '../store/index.js';
import { and, compare, eq, or } from '../store/index.js';

export const ALERT = 'msdyn_iotalert';
export const ALERT_ID = 'msdyn_iotalertid';
export const ALERT_TIME = 'msdyn_alerttime';
export const PARENT = 'msdyn_parentalert';
export const PARENT_TOKEN = 'msdyn_parentalerttoken';
export const TOKEN = 'msdyn_alerttoken';
export const ACTIVE = 0;

/** An alert's time in epoch milliseconds: `msdyn_alerttime`, else `createdon` (§3.1 rule 3). */
export function alertTime(row: Row): number {
  const t = row[ALERT_TIME];
  return typeof t === 'number' ? t : Number(row['createdon']);
}

/**
 * The total order of alerts: by alert time, then `createdon`, then id. The tie-breakers make "the earliest" one
 * alert even when many arrive in the same millisecond, identically on every engine (ids are lower-case GUIDs).
 */
export function compareAlerts(a: Row, b: Row): number {
  const byTime = alertTime(a) - alertTime(b);
  if (byTime !== 0) return byTime;
  const byCreated = Number(a['createdon']) - Number(b['createdon']);
  if (byCreated !== 0) return byCreated;
  const ia = String(a[ALERT_ID]);
  const ib = String(b[ALERT_ID]);
  return ia < ib ? -1 : ia > ib ? 1 : 0;
}

/**
 * Alerts whose time is within `[from, to]` (`to` exclusive when asked). The store has no COALESCE, so the two cases
 * of the alert time are spelled out.
 */
export function alertTimeWithin(from: number | undefined, to: number | undefined, opts: { toExclusive?: boolean } = {}): Condition {
  const range = (column: string): Condition[] => [
    ...(from !== undefined ? [compare(column, 'ge', from)] : []),
    ...(to !== undefined ? [compare(column, opts.toExclusive ? 'lt' : 'le', to)] : []),
  ];
  if (from === undefined && to === undefined) return { kind: 'true' };
  // A comparison with a null alert time is never true, so the first branch needs no IS NOT NULL.
  return or(and(...range(ALERT_TIME)), and(eq(ALERT_TIME, null), ...range('createdon')));
}
