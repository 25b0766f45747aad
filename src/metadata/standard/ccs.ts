/**
 * Tables of our own (prefix `ccs_`), for what Microsoft's solution keeps outside Dataverse. Option values continue
 * Microsoft's numbering (192350000…) so they read like the rest of the IoT solution.
 */
import type { TableDef } from '../types.js';
import { choice, lookup, memo, text, whole } from './columns.js';

/**
 * Alert rules. Microsoft keeps its thresholds in a `devicerules.json` blob read by Stream Analytics
 * (ms-connected-service.md §1.2); ccs keeps them as records, managed through the Web API like any other table.
 * The condition grammar, the defaults of the text and number columns (which the metadata cannot carry) and the
 * evaluation live in src/rules.
 */
export const ccs_iotrule: TableDef = {
  logicalName: 'ccs_iotrule',
  schemaName: 'ccs_iotrule',
  entitySetName: 'ccs_iotrules',
  displayName: 'IoT Rule',
  displayCollectionName: 'IoT Rules',
  description: 'A condition on device telemetry that raises an IoT alert when it becomes true.',
  primaryIdAttribute: 'ccs_iotruleid',
  primaryNameAttribute: 'ccs_name',
  columns: [
    text('ccs_name', 'Name', 100, { requiredLevel: 'ApplicationRequired' }),
    choice('ccs_iotrule', 'ccs_scope', 'Scope', [
      [192350000, 'All devices'],
      [192350001, 'Category'],
      [192350002, 'Device'],
    ], { defaultValue: 192350000, description: 'The devices the rule applies to: all, those of a category, or one device.' }),
    lookup('ccs_iotrule', 'ccs_category', 'Category', 'msdyn_iotdevicecategory', 'ccs_Category', {
      description: 'The device category the rule applies to when the scope is Category.',
    }),
    lookup('ccs_iotrule', 'ccs_device', 'Device', 'msdyn_iotdevice', 'ccs_Device', {
      description: 'The device the rule applies to when the scope is Device.',
    }),
    memo('ccs_condition', 'Condition', 8000, {
      requiredLevel: 'ApplicationRequired',
      description: 'The condition, as JSON: {"measure":"Temperature","op":"gt","value":70}, durations, windows, rate of change, no data, all/any.',
    }),
    // Microsoft's alert type values (msdyn_iotalert.msdyn_alerttype): the alert a rule raises carries it as is.
    choice('ccs_iotrule', 'ccs_alerttype', 'Alert Type', [
      [192350000, 'Anomaly'],
      [192350001, 'Info'],
      [192350002, 'Preventive Maintenance'],
      [192350003, 'Test'],
    ], { defaultValue: 192350000 }),
    text('ccs_description', 'Description', 500, {
      description: 'Template of the alert description; {readingtype}, {reading}, {threshold}, {ruleoutput}, {deviceid}, {rulename} are '
        + 'replaced. Empty: "{readingtype} reading of {reading} exceeded a threshold of {threshold}".',
    }),
    text('ccs_ruleoutput', 'Rule Output', 100, { description: 'Carried into the alert data as "ruleoutput" (devicerules.json <Measure>RuleOutput).' }),
    whole('ccs_suppressseconds', 'Suppress Seconds', {
      minValue: 0,
      maxValue: 86400,
      description: 'An identical reading from the same device within this many seconds raises no second alert. Empty: 60.',
    }),
  ],
};

export const ccsTables: readonly TableDef[] = [ccs_iotrule];
