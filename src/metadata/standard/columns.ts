/**
 * Small builders that keep the standard table definitions close to Microsoft's entity reference: one line per
 * attribute, with the same MaxLength, required level and option values.
 */
import type {
  BooleanColumn,
  ChoiceColumn,
  DateTimeColumn,
  DecimalColumn,
  GuidColumn,
  IntegerColumn,
  LookupColumn,
  OptionDef,
  RequiredLevel,
  StringColumn,
} from '../types.js';

interface Common {
  readonly requiredLevel?: RequiredLevel;
  readonly description?: string;
  readonly readOnly?: boolean;
}

export function text(logicalName: string, displayName: string, maxLength: number, o: Common = {}): StringColumn {
  return { logicalName, displayName, type: 'string', maxLength, ...o };
}

export function memo(logicalName: string, displayName: string, maxLength: number, o: Common = {}): StringColumn {
  return { logicalName, displayName, type: 'memo', maxLength, ...o };
}

export function whole(
  logicalName: string,
  displayName: string,
  o: Common & { readonly minValue?: number; readonly maxValue?: number } = {},
): IntegerColumn {
  return { logicalName, displayName, type: 'integer', ...o };
}

export function float(
  logicalName: string,
  displayName: string,
  o: Common & { readonly precision?: number; readonly minValue?: number; readonly maxValue?: number } = {},
): DecimalColumn {
  return { logicalName, displayName, type: 'double', ...o };
}

export function yesNo(
  logicalName: string,
  displayName: string,
  o: Common & { readonly trueLabel?: string; readonly falseLabel?: string; readonly defaultValue?: boolean } = {},
): BooleanColumn {
  return { logicalName, displayName, type: 'boolean', trueLabel: 'Yes', falseLabel: 'No', ...o };
}

export function dateTime(logicalName: string, displayName: string, o: Common = {}): DateTimeColumn {
  return { logicalName, displayName, type: 'datetime', ...o };
}

export function guid(logicalName: string, displayName: string, o: Common = {}): GuidColumn {
  return { logicalName, displayName, type: 'uniqueidentifier', ...o };
}

/** `[value, label]` pairs; a third element is the state a status value belongs to. */
export type OptionTuple = readonly [number, string] | readonly [number, string, number];

export function options(tuples: readonly OptionTuple[]): OptionDef[] {
  return tuples.map(([value, label, state]) => (state === undefined ? { value, label } : { value, label, state }));
}

/**
 * A choice column. `optionSetName` defaults to Dataverse's local option-set name `<table>_<column>`; pass the global
 * name where Microsoft uses one (`msdyn_iotsource`).
 */
export function choice(
  table: string,
  logicalName: string,
  displayName: string,
  tuples: readonly OptionTuple[],
  o: Common & { readonly defaultValue?: number; readonly optionSetName?: string; readonly type?: ChoiceColumn['type'] } = {},
): ChoiceColumn {
  const { optionSetName, type, ...rest } = o;
  return {
    logicalName,
    displayName,
    type: type ?? 'picklist',
    optionSet: { name: optionSetName ?? `${table}_${logicalName}`, options: options(tuples) },
    ...rest,
  };
}

/**
 * A single-target lookup named the way Dataverse names solution lookups: navigation property = the attribute's
 * SchemaName (`msdyn_Device`), relationship = `<prefix>_<target>_<table>_<SchemaName without prefix>`, and the
 * collection-valued partner on the target = the relationship name.
 */
export function lookup(
  table: string,
  logicalName: string,
  displayName: string,
  target: string,
  navigationProperty: string,
  o: Common & { readonly relationship?: string } = {},
): LookupColumn {
  const { relationship, ...rest } = o;
  const underscore = navigationProperty.indexOf('_');
  const prefix = navigationProperty.slice(0, underscore);
  const suffix = navigationProperty.slice(underscore + 1);
  const schemaName = relationship ?? `${prefix}_${target}_${table}_${suffix}`;
  return {
    logicalName,
    schemaName: navigationProperty,
    displayName,
    type: 'lookup',
    targets: [target],
    relationship: { schemaName, navigationProperty, partner: schemaName },
    ...rest,
  };
}

/** A lookup with a platform relationship name (core tables: `account_primary_contact`, nav = logical name). */
export function coreLookup(
  logicalName: string,
  displayName: string,
  target: string,
  relationship: string,
  o: Common = {},
): LookupColumn {
  return {
    logicalName,
    displayName,
    type: 'lookup',
    targets: [target],
    relationship: { schemaName: relationship, navigationProperty: logicalName, partner: relationship },
    ...o,
  };
}
