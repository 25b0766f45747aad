/**
 * A rule as the evaluator sees it, and its conversion from a `ccs_iotrule` record. Defaults that the metadata cannot
 * carry (text and number columns have none there) are applied here, once, so every reader of the table agrees.
 */
import { CcsError } from '../errors/index.js';
import { parseCondition, type RuleCondition } from './condition.js';

/** `ccs_iotrule.ccs_scope` values (ours, continuing Microsoft's numbering). */
export const RULE_SCOPE = Object.freeze({ AllDevices: 192350000, Category: 192350001, Device: 192350002 });

/** Microsoft's `msdyn_alerttype` values, used as is by `ccs_iotrule.ccs_alerttype`. */
export const ALERT_TYPE = Object.freeze({ Anomaly: 192350000, Info: 192350001, PreventiveMaintenance: 192350002, Test: 192350003 });

/** Microsoft's description (ms-connected-service.md §1.2, IoT-To-CRM Logic App). */
export const DEFAULT_DESCRIPTION = '{readingtype} reading of {reading} exceeded a threshold of {threshold}';
/** Stream Analytics' `LIMIT DURATION(minute, 1)` duplicate suppression. */
export const DEFAULT_SUPPRESS_SECONDS = 60;
export const MAX_SUPPRESS_SECONDS = 86_400;

export type RuleScope =
  | { readonly kind: 'all' }
  | { readonly kind: 'category'; readonly categoryId: string }
  /** `deviceId` is the msdyn_iotdevice record id (the ccs_device lookup), not the hub's device id. */
  | { readonly kind: 'device'; readonly deviceId: string };

export interface RuleDefinition {
  readonly id: string;
  readonly name: string;
  readonly scope: RuleScope;
  readonly condition: RuleCondition;
  readonly alertType: number;
  /** Template; see `renderDescription`. */
  readonly description: string;
  readonly ruleOutput: string | null;
  readonly suppressSeconds: number;
  readonly active: boolean;
}

type Row = Readonly<Record<string, unknown>>;

function fail(field: string, message: string): never {
  throw new CcsError('InvalidValue', `${field}: ${message}`);
}

/** A lookup's id, from a store row (`ccs_category`) or a Web API row (`_ccs_category_value`). */
function lookupId(row: Row, column: string): string | null {
  const v = row[column] ?? row[`_${column}_value`];
  if (v === null || v === undefined || v === '') return null;
  if (typeof v !== 'string') fail(column, 'must be the id of a record');
  return v.toLowerCase();
}

function optionalString(row: Row, column: string, max: number): string | null {
  const v = row[column];
  if (v === null || v === undefined || v === '') return null;
  if (typeof v !== 'string') fail(column, 'must be a string');
  if (v.length > max) fail(column, `must be at most ${max} characters`);
  return v;
}

function optionalInteger(row: Row, column: string): number | null {
  const v = row[column];
  if (v === null || v === undefined) return null;
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(column, 'must be a whole number');
  return v;
}

/**
 * Checks the column values of a rule and returns its definition. Used by the rule loader (every row) and by the
 * records service before a create or an update is stored (with the merged values, without an id).
 */
export function ruleFromRecord(row: Row): RuleDefinition {
  const id = row.ccs_iotruleid;
  if (typeof id !== 'string' || id === '') fail('ccs_iotruleid', 'is required');
  return parseRule(row, id.toLowerCase());
}

/** `ruleFromRecord` for values not stored yet: throws the same errors, returns nothing. */
export function validateRuleRecord(row: Row): void {
  parseRule(row, '');
}

function parseRule(row: Row, id: string): RuleDefinition {
  const name = optionalString(row, 'ccs_name', 100);
  if (name === null) fail('ccs_name', 'is required');
  if (row.ccs_condition === null || row.ccs_condition === undefined || row.ccs_condition === '') fail('ccs_condition', 'is required');
  if (typeof row.ccs_condition !== 'string') fail('ccs_condition', 'must be a JSON string');
  const condition = parseCondition(row.ccs_condition, 'ccs_condition');

  const categoryId = lookupId(row, 'ccs_category');
  const deviceId = lookupId(row, 'ccs_device');
  // An unset scope follows the lookup that is set, so that naming a device alone does not make a rule for all.
  const scopeValue = optionalInteger(row, 'ccs_scope') ?? (deviceId !== null ? RULE_SCOPE.Device : categoryId !== null ? RULE_SCOPE.Category : RULE_SCOPE.AllDevices);
  let scope: RuleScope;
  switch (scopeValue) {
    case RULE_SCOPE.AllDevices:
      scope = { kind: 'all' };
      break;
    case RULE_SCOPE.Category:
      if (categoryId === null) fail('ccs_category', `is required when ccs_scope is Category (${RULE_SCOPE.Category})`);
      scope = { kind: 'category', categoryId };
      break;
    case RULE_SCOPE.Device:
      if (deviceId === null) fail('ccs_device', `is required when ccs_scope is Device (${RULE_SCOPE.Device})`);
      scope = { kind: 'device', deviceId };
      break;
    default:
      fail('ccs_scope', `must be one of ${Object.values(RULE_SCOPE).join(', ')}`);
  }

  const alertType = optionalInteger(row, 'ccs_alerttype') ?? ALERT_TYPE.Anomaly;
  if (!(Object.values(ALERT_TYPE) as number[]).includes(alertType)) fail('ccs_alerttype', `must be one of ${Object.values(ALERT_TYPE).join(', ')}`);

  const suppressSeconds = optionalInteger(row, 'ccs_suppressseconds') ?? DEFAULT_SUPPRESS_SECONDS;
  if (suppressSeconds < 0 || suppressSeconds > MAX_SUPPRESS_SECONDS) fail('ccs_suppressseconds', `must be between 0 and ${MAX_SUPPRESS_SECONDS}`);

  const statecode = row.statecode;
  return Object.freeze({
    id,
    name,
    scope: Object.freeze(scope),
    condition,
    alertType,
    description: optionalString(row, 'ccs_description', 500) ?? DEFAULT_DESCRIPTION,
    ruleOutput: optionalString(row, 'ccs_ruleoutput', 100),
    suppressSeconds,
    active: statecode === undefined || statecode === null || statecode === 0,
  });
}
