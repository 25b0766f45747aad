/**
 * Import of Microsoft's `devicerules.json`, the Stream Analytics reference blob of the IoT template
 * (ms-connected-service.md §1.1–1.2):
 *
 *   [{"DeviceType":"Thermostat","Temperature":70.0,"Humidity":null,"TemperatureRuleOutput":"AlarmTemp","HumidityRuleOutput":null}]
 *
 * Each non-null threshold becomes one `ccs_iotrule`: `<Measure> > threshold` (the query's `Stream.X > Ref.X`), rule
 * output `<Measure>RuleOutput`, alert type Anomaly, 60 s suppression (its `LIMIT DURATION(minute, 1)`). Microsoft's
 * shipped query only implements the Temperature branch; every measure of the file is imported here, since a
 * threshold someone wrote in the file is one they want checked.
 *
 * `DeviceType` is the device category's name, `DeviceId` (the older remote-monitoring format) a hub device id; the
 * caller resolves them to the `ccs_category` / `ccs_device` lookups.
 */
import { CcsError } from '../errors/index.js';
import { parseCondition } from './condition.js';
import { ALERT_TYPE, DEFAULT_DESCRIPTION, DEFAULT_SUPPRESS_SECONDS, RULE_SCOPE } from './rule.js';

export interface ImportedRuleValues {
  readonly ccs_name: string;
  readonly ccs_scope: number;
  readonly ccs_condition: string;
  readonly ccs_alerttype: number;
  readonly ccs_ruleoutput: string | null;
  readonly ccs_description: string;
  readonly ccs_suppressseconds: number;
}

export interface ImportedRule {
  /** Column values of the `ccs_iotrule` to create; the scope's lookup is the caller's to resolve. */
  readonly values: ImportedRuleValues;
  /** `DeviceType`: the msdyn_iotdevicecategory name for `ccs_category` (scope Category). */
  readonly categoryName: string | null;
  /** `DeviceId`: the hub device id of the msdyn_iotdevice for `ccs_device` (scope Device). */
  readonly deviceId: string | null;
}

const FILE = 'devicerules.json';
const SUFFIX = 'ruleoutput';

function fail(message: string, path: string): never {
  throw new CcsError('InvalidValue', `${FILE}: ${message} (at ${path})`);
}

/** A field name as a measure path: bracket-quoted when it has characters that paths use. */
function measurePath(field: string): string {
  return /^[^.[\]]+$/.test(field) ? field : `[${JSON.stringify(field)}]`;
}

/** The rules equivalent to a `devicerules.json` (its text, or its parsed value). */
export function importDeviceRules(input: unknown): ImportedRule[] {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input.replace(/^\uFEFF/, ''));
    } catch (e) {
      fail(`is not valid JSON (${e instanceof Error ? e.message : String(e)})`, '$');
    }
  }
  // Stream Analytics also reads a single object as a one-row reference set.
  const entries = Array.isArray(value) ? value : [value];
  const rules: ImportedRule[] = [];
  entries.forEach((entry: unknown, i) => {
    const at = Array.isArray(value) ? `$[${i}]` : '$';
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail('each rule entry must be an object', at);
    const fields = entry as Record<string, unknown>;
    // Stream Analytics matches column names without regard to case; so do we for the fixed ones.
    const key = (name: string): string | undefined => Object.keys(fields).find((k) => k.toLowerCase() === name);
    const text = (k: string | undefined): string | null => {
      if (k === undefined || fields[k] === null || fields[k] === undefined) return null;
      if (typeof fields[k] !== 'string') fail(`'${k}' must be a string or null`, `${at}.${k}`);
      return (fields[k] as string).trim() || null;
    };
    const deviceTypeKey = key('devicetype');
    const deviceIdKey = key('deviceid');
    const categoryName = text(deviceTypeKey);
    const deviceId = categoryName === null ? text(deviceIdKey) : null;
    const scope = categoryName !== null ? RULE_SCOPE.Category : deviceId !== null ? RULE_SCOPE.Device : RULE_SCOPE.AllDevices;
    const scopeLabel = categoryName ?? deviceId ?? 'All devices';

    for (const [field, threshold] of Object.entries(fields)) {
      if (field === deviceTypeKey || field === deviceIdKey || field.toLowerCase().endsWith(SUFFIX)) continue;
      if (threshold === null) continue;
      if (typeof threshold !== 'number' || !Number.isFinite(threshold)) fail(`'${field}' must be a number (the threshold) or null`, `${at}.${field}`);
      const outputKey = Object.keys(fields).find((k) => k.toLowerCase() === `${field.toLowerCase()}${SUFFIX}`);
      const ruleOutput = text(outputKey);
      const condition = JSON.stringify({ measure: measurePath(field), op: 'gt', value: threshold });
      parseCondition(condition, `${FILE} ${at}.${field}`);
      const name = `${scopeLabel}: ${field} > ${threshold}`;
      rules.push({
        values: {
          ccs_name: name.length > 100 ? `${name.slice(0, 99)}…` : name,
          ccs_scope: scope,
          ccs_condition: condition,
          ccs_alerttype: ALERT_TYPE.Anomaly,
          ccs_ruleoutput: ruleOutput === null ? null : ruleOutput.slice(0, 100),
          ccs_description: DEFAULT_DESCRIPTION,
          ccs_suppressseconds: DEFAULT_SUPPRESS_SECONDS,
        },
        categoryName,
        deviceId,
      });
    }
  });
  return rules;
}
