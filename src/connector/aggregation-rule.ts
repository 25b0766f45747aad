/**
 * IoT Settings → Alert Aggregation Rules: which alert columns must be equal for alerts to be grouped under one
 * parent (ms-connected-service.md §2.12, §3.1 rules 1–2). Microsoft shows the selection only in screenshots and
 * does not document how `msdyn_iotalertaggregationrule` (Memo) stores it, so ccs accepts a JSON array of
 * `msdyn_iotalert` column logical names (`["msdyn_device","msdyn_alerttype"]`) or the same names comma-separated.
 * Empty means the default rule: the same device.
 */
import { CcsError } from '../errors/index.js';
import { IOT_SETTINGS_ID, type Table } from '../metadata/index.js';
import type { Condition, Queryable, Row, StoreValue } from '../store/index.js';
import { ALERT_ID, PARENT, PARENT_TOKEN } from './alerts.js';
import { eq } from '../store/index.js';

const SETTINGS = 'msdyn_iotsettings';
const RULE = 'msdyn_iotalertaggregationrule';
const DEVICE = 'msdyn_device';
const DEVICE_ID = 'msdyn_deviceid';

/** Configured match columns, or undefined for the default rule. */
export type AggregationRule = readonly string[] | undefined;

function invalid(detail: string): CcsError {
  return new CcsError('InvalidValue', `IoT Settings '${RULE}' is not valid: ${detail}. Give a JSON array or a comma-separated list of msdyn_iotalert column names, or leave it empty to group by device.`);
}

export function parseAggregationRule(text: string | null | undefined, alert: Table): AggregationRule {
  const trimmed = (text ?? '').trim();
  if (trimmed === '') return undefined;
  let names: unknown;
  if (trimmed.startsWith('[')) {
    try {
      names = JSON.parse(trimmed);
    } catch {
      throw invalid('it starts with "[" but is not JSON');
    }
    if (!Array.isArray(names) || !names.every((n): n is string => typeof n === 'string')) throw invalid('the JSON must be an array of strings');
  } else {
    names = trimmed.split(',');
  }
  const columns = [...new Set((names as string[]).map((n) => n.trim().toLowerCase()).filter((n) => n !== ''))];
  if (columns.length === 0) return undefined;
  for (const name of columns) {
    const column = alert.column(name);
    // The hierarchy's own columns and platform-maintained ones cannot define "the same alert source".
    if (!column || column.readOnly || name === ALERT_ID || name === PARENT || name === PARENT_TOKEN) {
      throw invalid(`'${name}' is not a column alerts can be matched on`);
    }
  }
  return columns;
}

/** Reads the rule from the settings singleton. Configuration, so it is read without the caller's privileges. */
export async function readAggregationRule(db: Queryable, alert: Table): Promise<AggregationRule> {
  const rows = await db.select({ table: SETTINGS, columns: [RULE], where: eq('msdyn_iotsettingsid', IOT_SETTINGS_ID), limit: 1 });
  const value = rows[0]?.[RULE];
  return parseAggregationRule(typeof value === 'string' ? value : undefined, alert);
}

/** Columns to read from an alert to evaluate the rule. */
export function ruleColumns(rule: AggregationRule): readonly string[] {
  return rule ?? [DEVICE, DEVICE_ID];
}

export interface MatchKey {
  /** Conditions that select the alerts matching this one. */
  readonly where: readonly Condition[];
  /** A lock name shared by every alert with the same match values. */
  readonly lock: string;
}

/**
 * The match key of an alert, or undefined when it has nothing to match on (then it is never grouped by time).
 * Default rule: the device lookup when set; otherwise the device id string among alerts without a device lookup,
 * so that two alerts always agree on whether they match each other (and take the same lock).
 */
export function matchKey(rule: AggregationRule, alert: Row): MatchKey | undefined {
  let pairs: [string, StoreValue][];
  if (rule) {
    pairs = rule.map((c) => [c, alert[c] ?? null]);
    if (pairs.every(([, v]) => v === null)) return undefined;
  } else if (alert[DEVICE] != null) {
    pairs = [[DEVICE, alert[DEVICE]]];
  } else if (alert[DEVICE_ID] != null && alert[DEVICE_ID] !== '') {
    pairs = [[DEVICE, null], [DEVICE_ID, alert[DEVICE_ID]]];
  } else {
    return undefined;
  }
  return {
    where: pairs.map(([c, v]) => eq(c, v)),
    // Lower-cased: text columns compare without regard to case, so values equal to the store share a lock.
    lock: `msdyn_ParentIoTAlerts:${JSON.stringify(pairs.map(([c, v]) => [c, typeof v === 'string' ? v.toLowerCase() : v]))}`,
  };
}
