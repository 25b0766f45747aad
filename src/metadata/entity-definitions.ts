/**
 * The subset of Dataverse's metadata Web API that clients use at run time: EntityMetadata / AttributeMetadata JSON
 * for `GET EntityDefinitions`, and parsing of `POST EntityDefinitions` and `POST EntityDefinitions(...)/Attributes`
 * bodies as Dataverse documents them (learn.microsoft.com: create-update-entity-definitions-using-web-api,
 * create-update-column-definitions-using-web-api).
 */
import { createHash } from 'node:crypto';

import { CcsError } from '../errors/index.js';
import { isChoice, isLookup, isMultiTarget, lookupValueProperty, SYSTEM_COLUMNS, withCommonColumns, type Model, type Table } from './model.js';
import { lookupTypeColumn } from './physical.js';
import type { ColumnDef, LookupColumn, OptionDef, RequiredLevel, TableDef } from './types.js';

const LANGUAGE_CODE = 1033;
const CRM = 'Microsoft.Dynamics.CRM';

// ---------------------------------------------------------------------------------------------------------------
// Identifiers

/** Namespace of ccs metadata ids (random, fixed forever: ids must not change between releases). */
const METADATA_NAMESPACE = Buffer.from('6f1c2a4e9b3d4c1fa8e27d5b0c9e3a71', 'hex');

/**
 * A stable GUID for a metadata item, derived like a UUID v5 (RFC 9562 §5.5) from its name: the same table or column
 * has the same MetadataId on every instance and after every restart, without storing it.
 */
export function metadataId(name: string): string {
  const h = createHash('sha1').update(METADATA_NAMESPACE).update(name).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** English plural as Dataverse forms collection names: `+s`, `+es` after s/x/ch/sh, `y` → `ies` after a consonant. */
export function pluralize(name: string): string {
  if (/(s|x|ch|sh)$/i.test(name)) return `${name}es`;
  if (/[^aeiou]y$/i.test(name)) return `${name.slice(0, -1)}ies`;
  return `${name}s`;
}

// ---------------------------------------------------------------------------------------------------------------
// Output: EntityMetadata / AttributeMetadata JSON

function labelJson(text: string | undefined, key: string): Record<string, unknown> {
  if (!text) return { LocalizedLabels: [], UserLocalizedLabel: null };
  const label = { Label: text, LanguageCode: LANGUAGE_CODE, IsManaged: false, MetadataId: metadataId(`label:${key}`), HasChanged: null };
  return { LocalizedLabels: [label], UserLocalizedLabel: label };
}

/** Columns every table gets from the platform, whatever the table (never custom attributes). */
function isPlatformColumn(table: Table, column: ColumnDef): boolean {
  return (
    column.logicalName === table.primaryIdAttribute ||
    (SYSTEM_COLUMNS as readonly string[]).includes(column.logicalName) ||
    ['statecode', 'statuscode', 'ownerid'].includes(column.logicalName)
  );
}

/** SchemaName of a column: as created, else the navigation property of a solution lookup (`msdyn_Device`). */
function columnSchemaName(column: ColumnDef): string {
  if (column.schemaName) return column.schemaName;
  if (isLookup(column)) {
    const nav = column.relationship?.navigationProperty;
    if (nav && nav !== column.logicalName && nav.toLowerCase() === column.logicalName) return nav;
  }
  return column.logicalName;
}

/** Dataverse's AttributeType and the AttributeMetadata subtype for each column type. */
const ATTRIBUTE_TYPES: Record<ColumnDef['type'], readonly [attributeType: string, metadataType: string]> = {
  string: ['String', 'StringAttributeMetadata'],
  memo: ['Memo', 'MemoAttributeMetadata'],
  integer: ['Integer', 'IntegerAttributeMetadata'],
  bigint: ['BigInt', 'BigIntAttributeMetadata'],
  decimal: ['Decimal', 'DecimalAttributeMetadata'],
  double: ['Double', 'DoubleAttributeMetadata'],
  boolean: ['Boolean', 'BooleanAttributeMetadata'],
  datetime: ['DateTime', 'DateTimeAttributeMetadata'],
  primarykey: ['Uniqueidentifier', 'UniqueIdentifierAttributeMetadata'],
  uniqueidentifier: ['Uniqueidentifier', 'UniqueIdentifierAttributeMetadata'],
  picklist: ['Picklist', 'PicklistAttributeMetadata'],
  state: ['State', 'StateAttributeMetadata'],
  status: ['Status', 'StatusAttributeMetadata'],
  lookup: ['Lookup', 'LookupAttributeMetadata'],
  customer: ['Customer', 'LookupAttributeMetadata'],
  owner: ['Owner', 'LookupAttributeMetadata'],
  polymorphic: ['Lookup', 'LookupAttributeMetadata'],
};

/** Dataverse's default range of Decimal and Double columns. */
const NUMBER_LIMIT = 100_000_000_000;

function optionSetJson(table: Table, column: ColumnDef & { optionSet: { name: string; options: readonly OptionDef[] } }, type: string) {
  const key = `${table.logicalName}.${column.logicalName}`;
  const statusOf = (state: number) => {
    const status = table.column('statuscode');
    return status && isChoice(status) ? status.optionSet.options.find((o) => o.state === state)?.value : undefined;
  };
  return {
    MetadataId: metadataId(`optionset:${key}`),
    Name: column.optionSet.name,
    IsGlobal: false,
    OptionSetType: type,
    Options: column.optionSet.options.map((o) => ({
      Value: o.value,
      Label: labelJson(o.label, `${key}:${o.value}`),
      ...(column.type === 'status' ? { State: o.state ?? null } : {}),
      ...(column.type === 'state' ? { DefaultStatus: statusOf(o.value) ?? null, InvariantName: o.label.replace(/\s+/g, '') } : {}),
    })),
  };
}

/** AttributeMetadata JSON of one column, with the properties of its subtype (MaxLength, OptionSet, Targets, …). */
export function attributeDefinitionJson(table: Table, column: ColumnDef): Record<string, unknown> {
  const [attributeType, metadataType] = ATTRIBUTE_TYPES[column.type];
  const key = `${table.logicalName}.${column.logicalName}`;
  const isPrimaryId = column.logicalName === table.primaryIdAttribute;
  const readOnly = column.readOnly === true;
  const json: Record<string, unknown> = {
    '@odata.type': `#${CRM}.${metadataType}`,
    MetadataId: metadataId(`attribute:${key}`),
    LogicalName: column.logicalName,
    SchemaName: columnSchemaName(column),
    EntityLogicalName: table.logicalName,
    AttributeType: attributeType,
    AttributeTypeName: { Value: `${attributeType}Type` },
    AttributeOf: null,
    DisplayName: labelJson(column.displayName, `attribute:${key}:display`),
    Description: labelJson(column.description, `attribute:${key}:description`),
    RequiredLevel: { Value: column.requiredLevel ?? 'None', CanBeChanged: true, ManagedPropertyLogicalName: 'canmodifyrequirementlevelsettings' },
    IsCustomAttribute: column.isCustomAttribute ?? (table.isCustomEntity === true && !isPlatformColumn(table, column)),
    IsPrimaryId: isPrimaryId,
    IsPrimaryName: column.logicalName === table.primaryNameAttribute,
    IsLogical: false,
    IsValidForCreate: !readOnly,
    IsValidForUpdate: !readOnly && !isPrimaryId,
    IsValidForRead: column.isValidForRead !== false,
  };
  switch (column.type) {
    case 'string':
      return { ...json, MaxLength: column.maxLength, DatabaseLength: column.maxLength * 2, Format: 'Text', FormatName: { Value: 'Text' } };
    case 'memo':
      return { ...json, MaxLength: column.maxLength, DatabaseLength: column.maxLength * 2, Format: 'TextArea' };
    case 'integer':
      return { ...json, Format: 'None', MinValue: column.minValue ?? -2147483648, MaxValue: column.maxValue ?? 2147483647 };
    case 'bigint':
      return { ...json, MinValue: column.minValue ?? Number.MIN_SAFE_INTEGER, MaxValue: column.maxValue ?? Number.MAX_SAFE_INTEGER };
    case 'decimal':
    case 'double':
      return {
        ...json,
        Precision: column.precision ?? 2,
        MinValue: column.minValue ?? -NUMBER_LIMIT,
        MaxValue: column.maxValue ?? NUMBER_LIMIT,
      };
    case 'boolean':
      return {
        ...json,
        DefaultValue: column.defaultValue ?? false,
        OptionSet: {
          MetadataId: metadataId(`optionset:${key}`),
          Name: `${table.logicalName}_${column.logicalName}`,
          IsGlobal: false,
          OptionSetType: 'Boolean',
          TrueOption: { Value: 1, Label: labelJson(column.trueLabel ?? 'Yes', `${key}:1`) },
          FalseOption: { Value: 0, Label: labelJson(column.falseLabel ?? 'No', `${key}:0`) },
        },
      };
    case 'datetime':
      return { ...json, Format: 'DateAndTime', DateTimeBehavior: { Value: 'UserLocal' } };
    case 'picklist':
      return { ...json, DefaultFormValue: column.defaultValue ?? -1, OptionSet: optionSetJson(table, column, 'Picklist') };
    case 'state':
      return { ...json, DefaultFormValue: column.defaultValue ?? -1, OptionSet: optionSetJson(table, column, 'State') };
    case 'status':
      return { ...json, DefaultFormValue: column.defaultValue ?? -1, OptionSet: optionSetJson(table, column, 'Status') };
    case 'lookup':
    case 'customer':
    case 'owner':
    case 'polymorphic':
      // `['*']` (connection.record1id) means any table.
      return { ...json, Targets: [...column.targets] };
    default:
      return json;
  }
}

/**
 * EntityMetadata JSON of a table, without its Attributes (Dataverse returns those only with `$expand=Attributes`; use
 * `attributeDefinitionJson` for each column).
 */
export function entityDefinitionJson(table: Table): Record<string, unknown> {
  const name = table.logicalName;
  return {
    MetadataId: metadataId(`entity:${name}`),
    LogicalName: name,
    SchemaName: table.schemaName,
    EntitySetName: table.entitySetName,
    LogicalCollectionName: pluralize(name),
    CollectionSchemaName: pluralize(table.schemaName),
    PrimaryIdAttribute: table.primaryIdAttribute,
    PrimaryNameAttribute: table.primaryNameAttribute,
    DisplayName: labelJson(table.displayName, `entity:${name}:display`),
    DisplayCollectionName: labelJson(table.displayCollectionName ?? table.displayName, `entity:${name}:collection`),
    Description: labelJson(table.description, `entity:${name}:description`),
    OwnershipType: table.ownership ?? 'UserOwned',
    IsCustomEntity: table.isCustomEntity ?? false,
    IsActivity: false,
    IsIntersect: false,
    IsValidForAdvancedFind: true,
    HasActivities: false,
    HasNotes: false,
    IsLogicalEntity: false,
    IsManaged: table.isCustomEntity !== true,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Input: POST EntityDefinitions and POST EntityDefinitions(...)/Attributes

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isArray(value: unknown): value is readonly unknown[] {
  return Array.isArray(value);
}

function invalid(message: string): never {
  throw new CcsError('InvalidMetadata', message);
}

const IDENTIFIER = /^[A-Za-z][A-Za-z0-9_]*$/;
/** A customization prefix of 2 to 8 letters and digits, an underscore, then the name proper. */
const PREFIXED = /^([A-Za-z][A-Za-z0-9]{1,7})_[A-Za-z0-9]/;
/** `mscrm` is Dataverse's own; `ccs` is ours (platform tables such as ccs_meta, and our columns on standard tables). */
const RESERVED_PREFIXES = ['mscrm', 'ccs'];
const MAX_NAME_LENGTH = 50;

/** Validates a SchemaName: identifier, customization prefix, length. `what` names the item in messages. */
function validSchemaName(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') invalid(`${what}: 'SchemaName' is required.`);
  if (!IDENTIFIER.test(value)) {
    invalid(`${what}: 'SchemaName' '${value}' is not valid: use letters, digits and underscores, starting with a letter.`);
  }
  const prefix = PREFIXED.exec(value)?.[1];
  if (!prefix) invalid(`${what}: 'SchemaName' '${value}' must start with a customization prefix and an underscore, such as 'new_'.`);
  if (RESERVED_PREFIXES.includes(prefix.toLowerCase())) invalid(`${what}: the customization prefix '${prefix}' is reserved.`);
  if (value.length > MAX_NAME_LENGTH) invalid(`${what}: 'SchemaName' '${value}' is longer than ${MAX_NAME_LENGTH} characters.`);
  return value;
}

/** Text of a Label (`{ LocalizedLabels: [{ Label, LanguageCode }], UserLocalizedLabel }`); a plain string is accepted too. */
function labelText(value: unknown, field: string, what: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value.trim() || undefined;
  if (!isObject(value)) invalid(`${what}: '${field}' must be a Label with LocalizedLabels.`);
  const labels: { text: string; language: unknown }[] = [];
  if (isObject(value['UserLocalizedLabel']) && typeof value['UserLocalizedLabel']['Label'] === 'string') {
    labels.push({ text: value['UserLocalizedLabel']['Label'], language: value['UserLocalizedLabel']['LanguageCode'] });
  }
  const localized = value['LocalizedLabels'] ?? [];
  if (!isArray(localized)) invalid(`${what}: '${field}.LocalizedLabels' must be an array.`);
  for (const l of localized) {
    if (!isObject(l) || typeof l['Label'] !== 'string') invalid(`${what}: each of '${field}.LocalizedLabels' needs a 'Label' string.`);
    labels.push({ text: l['Label'], language: l['LanguageCode'] });
  }
  const chosen = labels.find((l) => l.language === LANGUAGE_CODE && l.text.trim()) ?? labels.find((l) => l.text.trim());
  return chosen?.text.trim();
}

/** Accepts `Microsoft.Dynamics.CRM.X`, `#Microsoft.Dynamics.CRM.X` or `X`; returns `X`. */
function odataTypeName(value: unknown, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') invalid(`${what}: '@odata.type' must be a string.`);
  return value.replace(/^#/, '').replace(`${CRM}.`, '');
}

function requiredLevel(value: unknown, what: string): RequiredLevel {
  if (value === undefined || value === null) return 'None';
  const level = isObject(value) ? value['Value'] : value;
  if (level === 'None' || level === 'Recommended' || level === 'ApplicationRequired') return level;
  if (level === 'SystemRequired') invalid(`${what}: 'RequiredLevel' SystemRequired is reserved for platform attributes.`);
  invalid(`${what}: 'RequiredLevel.Value' must be None, Recommended or ApplicationRequired.`);
}

function integerIn(value: unknown, field: string, min: number, max: number, what: string, fallback?: number): number | undefined {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    invalid(`${what}: '${field}' must be a whole number from ${min} to ${max}.`);
  }
  return value;
}

function numberIn(value: unknown, field: string, min: number, max: number, what: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    invalid(`${what}: '${field}' must be a number from ${min} to ${max}.`);
  }
  return value;
}

function range(min: number | undefined, max: number | undefined, what: string): void {
  if (min !== undefined && max !== undefined && min > max) invalid(`${what}: 'MinValue' must not be greater than 'MaxValue'.`);
}

/** Attribute kinds that can be created, by AttributeType and by AttributeMetadata subtype. */
const CREATABLE: Record<string, string> = {
  String: 'StringAttributeMetadata',
  Memo: 'MemoAttributeMetadata',
  Integer: 'IntegerAttributeMetadata',
  BigInt: 'BigIntAttributeMetadata',
  Decimal: 'DecimalAttributeMetadata',
  Double: 'DoubleAttributeMetadata',
  Boolean: 'BooleanAttributeMetadata',
  DateTime: 'DateTimeAttributeMetadata',
  Picklist: 'PicklistAttributeMetadata',
  Lookup: 'LookupAttributeMetadata',
};

function attributeKind(body: Json, what: string): string {
  const fromType = body['AttributeType'];
  if (fromType !== undefined && typeof fromType !== 'string') invalid(`${what}: 'AttributeType' must be a string.`);
  const fromOData = odataTypeName(body['@odata.type'], what);
  if (fromType === undefined && fromOData === undefined) invalid(`${what}: 'AttributeType' or '@odata.type' is required.`);
  const kind = fromType ?? Object.keys(CREATABLE).find((k) => CREATABLE[k] === fromOData);
  if (kind === undefined || CREATABLE[kind] === undefined) {
    invalid(`${what}: attributes of type '${fromType ?? fromOData}' are not supported; use one of ${Object.keys(CREATABLE).join(', ')}.`);
  }
  if (fromOData !== undefined && fromOData !== CREATABLE[kind]) {
    invalid(`${what}: '@odata.type' ${fromOData} does not match 'AttributeType' ${kind}.`);
  }
  return kind;
}

/** What an attribute being created must not collide with. */
interface AttributeContext {
  readonly table: string;
  /** Physical column names in use (logical names plus the `_type` columns of several-target lookups). */
  readonly columns: Set<string>;
  /** Property and navigation names in use on the table, lower-cased (OData names must differ beyond case). */
  readonly names: Set<string>;
  /** Whether a lookup target exists; absent when no model is at hand. */
  readonly tableExists?: (name: string) => boolean;
  /** Navigation names in use on another table, lower-cased, for the collection-valued partner of a lookup. */
  readonly namesOn?: (table: string) => Set<string> | undefined;
}

function namesOf(table: Pick<Table, 'columns' | 'navigations'>): Set<string> {
  return new Set([
    ...table.columns.map((c) => (isLookup(c) ? lookupValueProperty(c.logicalName) : c.logicalName).toLowerCase()),
    ...table.navigations.map((n) => n.name.toLowerCase()),
  ]);
}

function columnsOf(columns: readonly ColumnDef[]): Set<string> {
  const names = new Set<string>();
  for (const c of columns) {
    names.add(c.logicalName);
    if (isLookup(c) && isMultiTarget(c)) names.add(lookupTypeColumn(c.logicalName));
  }
  return names;
}

function optionsOf(value: unknown, what: string): OptionDef[] {
  if (!isArray(value) || value.length === 0) invalid(`${what}: 'OptionSet.Options' must list at least one option.`);
  const seen = new Set<number>();
  return value.map((o, i) => {
    if (!isObject(o)) invalid(`${what}: 'OptionSet.Options[${i}]' must be an object with Value and Label.`);
    const v = integerIn(o['Value'], `OptionSet.Options[${i}].Value`, -2147483648, 2147483647, what);
    if (v === undefined) invalid(`${what}: 'OptionSet.Options[${i}].Value' is required.`);
    if (seen.has(v)) invalid(`${what}: option value ${v} appears more than once in 'OptionSet.Options'.`);
    seen.add(v);
    const label = labelText(o['Label'], `OptionSet.Options[${i}].Label`, what);
    if (!label) invalid(`${what}: 'OptionSet.Options[${i}].Label' is required.`);
    return { value: v, label };
  });
}

function booleanLabel(optionSet: Json, field: 'TrueOption' | 'FalseOption', value: 0 | 1, what: string): string | undefined {
  const option = optionSet[field];
  if (option === undefined) return undefined;
  if (!isObject(option)) invalid(`${what}: 'OptionSet.${field}' must be an object with Value and Label.`);
  if (option['Value'] !== undefined && option['Value'] !== value) invalid(`${what}: 'OptionSet.${field}.Value' must be ${value}.`);
  return labelText(option['Label'], `OptionSet.${field}.Label`, what);
}

function lookupColumn(body: Json, base: Omit<LookupColumn, 'type' | 'targets'>, schemaName: string, ctx: AttributeContext, what: string): LookupColumn {
  const targets = body['Targets'];
  if (!isArray(targets) || targets.length === 0 || !targets.every((t): t is string => typeof t === 'string' && t !== '')) {
    invalid(`${what}: 'Targets' must list the logical names of the tables the lookup refers to.`);
  }
  if (new Set(targets).size !== targets.length) invalid(`${what}: 'Targets' lists a table more than once.`);
  for (const t of targets) {
    if (t === '*') invalid(`${what}: 'Targets' must name tables; '*' is not allowed.`);
    if (ctx.tableExists && !ctx.tableExists(t)) invalid(`${what}: 'Targets' names '${t}', which is not a table.`);
  }
  const logical = base.logicalName;
  if (targets.length > 1) {
    // Several targets: one navigation property per target, `<column>_<target>`, and a `_type` column beside the id.
    if (ctx.columns.has(lookupTypeColumn(logical))) invalid(`${what}: the column '${lookupTypeColumn(logical)}' is already in use.`);
    for (const t of targets) {
      if (ctx.names.has(`${logical}_${t}`)) invalid(`${what}: the navigation property '${logical}_${t}' is already in use.`);
    }
    return { ...base, type: 'polymorphic', targets: [...targets] };
  }
  // One target: named the way Dataverse names solution lookups (navigation property = SchemaName, relationship
  // `<prefix>_<target>_<table>_<name>`, collection-valued partner = relationship).
  const target = targets[0]!;
  const underscore = schemaName.indexOf('_');
  const relationship = `${schemaName.slice(0, underscore)}_${target}_${ctx.table}_${schemaName.slice(underscore + 1)}`;
  if (ctx.names.has(schemaName.toLowerCase())) invalid(`${what}: the navigation property '${schemaName}' is already in use.`);
  const partnerNames = target === ctx.table ? ctx.names : ctx.namesOn?.(target);
  if (partnerNames?.has(relationship.toLowerCase())) {
    invalid(`${what}: the navigation property '${relationship}' is already in use on '${target}'.`);
  }
  return { ...base, type: 'lookup', targets: [target], relationship: { schemaName: relationship, navigationProperty: schemaName, partner: relationship } };
}

/** Parses one AttributeMetadata body into a column definition. */
function parseAttribute(body: unknown, ctx: AttributeContext, position: string): ColumnDef {
  if (!isObject(body)) invalid(`${position}: expected an AttributeMetadata object.`);
  const schemaName = validSchemaName(body['SchemaName'], position);
  const what = `Attribute '${schemaName}'`;
  const kind = attributeKind(body, what);
  const logicalName = schemaName.toLowerCase();
  if (body['LogicalName'] !== undefined && body['LogicalName'] !== logicalName) {
    invalid(`${what}: 'LogicalName' must be the SchemaName in lower case ('${logicalName}').`);
  }
  if (ctx.columns.has(logicalName) || ctx.names.has(logicalName)) {
    throw new CcsError('DuplicateKey', `${what}: an attribute named '${logicalName}' already exists on '${ctx.table}'.`);
  }
  const description = labelText(body['Description'], 'Description', what);
  const base = {
    logicalName,
    schemaName,
    isCustomAttribute: true,
    displayName: labelText(body['DisplayName'], 'DisplayName', what) ?? schemaName,
    requiredLevel: requiredLevel(body['RequiredLevel'], what),
    ...(description ? { description } : {}),
  };
  switch (kind) {
    case 'String':
      return { ...base, type: 'string', maxLength: integerIn(body['MaxLength'], 'MaxLength', 1, 4000, what, 100)! };
    case 'Memo':
      return { ...base, type: 'memo', maxLength: integerIn(body['MaxLength'], 'MaxLength', 1, 1048576, what, 2000)! };
    case 'Integer':
    case 'BigInt': {
      const [lo, hi] = kind === 'Integer' ? [-2147483648, 2147483647] : [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
      const minValue = integerIn(body['MinValue'], 'MinValue', lo, hi, what);
      const maxValue = integerIn(body['MaxValue'], 'MaxValue', lo, hi, what);
      range(minValue, maxValue, what);
      return {
        ...base,
        type: kind === 'Integer' ? 'integer' : 'bigint',
        ...(minValue !== undefined ? { minValue } : {}),
        ...(maxValue !== undefined ? { maxValue } : {}),
      };
    }
    case 'Decimal':
    case 'Double': {
      // Dataverse: Decimal precision 0–10, Double 0–5; both range over ±100,000,000,000.
      const precision = integerIn(body['Precision'], 'Precision', 0, kind === 'Decimal' ? 10 : 5, what, 2)!;
      const minValue = numberIn(body['MinValue'], 'MinValue', -NUMBER_LIMIT, NUMBER_LIMIT, what);
      const maxValue = numberIn(body['MaxValue'], 'MaxValue', -NUMBER_LIMIT, NUMBER_LIMIT, what);
      range(minValue, maxValue, what);
      return {
        ...base,
        type: kind === 'Decimal' ? 'decimal' : 'double',
        precision,
        ...(minValue !== undefined ? { minValue } : {}),
        ...(maxValue !== undefined ? { maxValue } : {}),
      };
    }
    case 'Boolean': {
      const optionSet = body['OptionSet'];
      if (optionSet !== undefined && !isObject(optionSet)) invalid(`${what}: 'OptionSet' must have TrueOption and FalseOption.`);
      const defaultValue = body['DefaultValue'];
      if (defaultValue !== undefined && defaultValue !== null && typeof defaultValue !== 'boolean') {
        invalid(`${what}: 'DefaultValue' must be true or false.`);
      }
      return {
        ...base,
        type: 'boolean',
        trueLabel: (optionSet && booleanLabel(optionSet, 'TrueOption', 1, what)) || 'Yes',
        falseLabel: (optionSet && booleanLabel(optionSet, 'FalseOption', 0, what)) || 'No',
        ...(typeof defaultValue === 'boolean' ? { defaultValue } : {}),
      };
    }
    case 'DateTime': {
      const format = body['Format'];
      if (format !== undefined && format !== null && format !== 'DateOnly' && format !== 'DateAndTime') {
        invalid(`${what}: 'Format' must be DateOnly or DateAndTime.`);
      }
      return { ...base, type: 'datetime' };
    }
    case 'Picklist': {
      if (body['GlobalOptionSet@odata.bind'] !== undefined) invalid(`${what}: global choices are not supported; define 'OptionSet.Options' on the attribute.`);
      const optionSet = body['OptionSet'];
      if (!isObject(optionSet)) invalid(`${what}: 'OptionSet' with 'Options' is required for a Picklist attribute.`);
      if (optionSet['IsGlobal'] === true) invalid(`${what}: 'OptionSet.IsGlobal': global choices are not supported.`);
      const options = optionsOf(optionSet['Options'], what);
      const name = typeof optionSet['Name'] === 'string' && IDENTIFIER.test(optionSet['Name']) ? optionSet['Name'] : `${ctx.table}_${logicalName}`;
      const dfv = body['DefaultFormValue'];
      let defaultValue: number | undefined;
      if (dfv !== undefined && dfv !== null && dfv !== -1) {
        if (typeof dfv !== 'number' || !options.some((o) => o.value === dfv)) invalid(`${what}: 'DefaultFormValue' must be one of the option values.`);
        defaultValue = dfv;
      }
      return { ...base, type: 'picklist', optionSet: { name, options }, ...(defaultValue !== undefined ? { defaultValue } : {}) };
    }
    case 'Lookup':
      return lookupColumn(body, base, schemaName, ctx, what);
    default:
      // attributeKind only returns the kinds above.
      return invalid(`${what}: attributes of type '${kind}' are not supported.`);
  }
}

function addToContext(ctx: AttributeContext, column: ColumnDef): void {
  for (const name of columnsOf([column])) ctx.columns.add(name);
  ctx.names.add((isLookup(column) ? lookupValueProperty(column.logicalName) : column.logicalName).toLowerCase());
  if (isLookup(column)) {
    if (isMultiTarget(column)) for (const t of column.targets) ctx.names.add(`${column.logicalName}_${t}`.toLowerCase());
    else if (column.relationship?.navigationProperty) ctx.names.add(column.relationship.navigationProperty.toLowerCase());
  }
}

/**
 * Parses the body of `POST EntityDefinitions(LogicalName='x')/Attributes` (or `(<MetadataId>)/Attributes`) into a
 * column of `table`. Pass the model to have lookup targets checked. Bad input throws `InvalidMetadata` naming the
 * field; a name already in use throws `DuplicateKey`.
 */
export function columnDefFromAttributeMetadata(body: unknown, table: Table, model?: Model): ColumnDef {
  if (isObject(body) && body['IsPrimaryName'] === true) {
    invalid(`'IsPrimaryName': table '${table.logicalName}' already has a primary name attribute.`);
  }
  const ctx: AttributeContext = {
    table: table.logicalName,
    columns: columnsOf(table.columns),
    names: namesOf(table),
    ...(model
      ? {
          tableExists: (name: string) => model.table(name) !== undefined,
          namesOn: (name: string) => {
            const t = model.table(name);
            return t ? namesOf(t) : undefined;
          },
        }
      : {}),
  };
  return parseAttribute(body, ctx, 'Attribute');
}

/**
 * Parses the body of `POST EntityDefinitions` into a custom table definition, validated against `existing`: a
 * SchemaName with a customization prefix, exactly one primary name String attribute, no clash with an existing
 * table, entity set or intersect table.
 */
export function tableDefFromEntityMetadata(body: unknown, existing: Model): TableDef {
  if (!isObject(body)) invalid('The request body must be an EntityMetadata object.');
  const odataType = odataTypeName(body['@odata.type'], 'Table');
  if (odataType !== undefined && odataType !== 'EntityMetadata') invalid(`Table: '@odata.type' must be ${CRM}.EntityMetadata.`);
  const schemaName = validSchemaName(body['SchemaName'], 'Table');
  const what = `Table '${schemaName}'`;
  const logicalName = schemaName.toLowerCase();
  if (body['LogicalName'] !== undefined && body['LogicalName'] !== logicalName) {
    invalid(`${what}: 'LogicalName' must be the SchemaName in lower case ('${logicalName}').`);
  }
  if (body['IsActivity'] === true) invalid(`${what}: 'IsActivity': activity tables are not supported.`);
  const ownership = body['OwnershipType'] ?? 'UserOwned';
  if (ownership !== 'UserOwned' && ownership !== 'OrganizationOwned') invalid(`${what}: 'OwnershipType' must be UserOwned or OrganizationOwned.`);
  const displayName = labelText(body['DisplayName'], 'DisplayName', what);
  if (!displayName) invalid(`${what}: 'DisplayName' is required.`);
  const displayCollectionName = labelText(body['DisplayCollectionName'], 'DisplayCollectionName', what);
  const description = labelText(body['Description'], 'Description', what);

  let entitySetName = pluralize(logicalName);
  const givenSet = body['EntitySetName'];
  if (givenSet !== undefined && givenSet !== null) {
    if (typeof givenSet !== 'string' || !IDENTIFIER.test(givenSet) || givenSet.length > 64) {
      invalid(`${what}: 'EntitySetName' must be an identifier of letters, digits and underscores.`);
    }
    entitySetName = givenSet;
  }

  if (existing.table(logicalName)) throw new CcsError('DuplicateKey', `A table with the name '${logicalName}' already exists.`);
  const bySet = existing.tableBySet(entitySetName);
  if (bySet) throw new CcsError('DuplicateKey', `The entity set name '${entitySetName}' is already used by table '${bySet.logicalName}'.`);
  if (existing.manyToMany.some((r) => r.intersectEntityName === logicalName)) {
    throw new CcsError('DuplicateKey', `The name '${logicalName}' is already used by the relationship table of the same name.`);
  }

  const attributes = body['Attributes'];
  if (!isArray(attributes) || attributes.length === 0) {
    invalid(`${what}: 'Attributes' must contain the primary name attribute (a String attribute with IsPrimaryName true).`);
  }
  const primary = attributes.filter((a) => isObject(a) && a['IsPrimaryName'] === true);
  if (primary.length !== 1) invalid(`${what}: exactly one attribute in 'Attributes' must have IsPrimaryName true; found ${primary.length}.`);

  const shell: TableDef = {
    logicalName,
    schemaName,
    entitySetName,
    displayName,
    primaryIdAttribute: `${logicalName}id`,
    primaryNameAttribute: '',
    columns: [],
    isCustomEntity: true,
    ownership,
  };
  const common = withCommonColumns(shell);
  const ctx: AttributeContext = {
    table: logicalName,
    columns: columnsOf(common),
    // The platform lookups (createdby, modifiedby, ownerid) are navigation properties of the same name.
    names: new Set([
      ...common.map((c) => (isLookup(c) ? lookupValueProperty(c.logicalName) : c.logicalName)),
      ...common.filter(isLookup).map((c) => c.logicalName),
    ]),
    tableExists: (name) => name === logicalName || existing.table(name) !== undefined,
    namesOn: (name) => {
      const t = existing.table(name);
      return t ? namesOf(t) : undefined;
    },
  };
  const columns: ColumnDef[] = [];
  let primaryName: ColumnDef | undefined;
  for (const [i, a] of attributes.entries()) {
    const column = parseAttribute(a, ctx, `Attributes[${i}]`);
    if (isObject(a) && a['IsPrimaryName'] === true) {
      if (column.type !== 'string') invalid(`${what}: the primary name attribute '${column.schemaName ?? column.logicalName}' must be a String attribute.`);
      primaryName = column;
    }
    addToContext(ctx, column);
    columns.push(column);
  }
  if (!primaryName) invalid(`${what}: the primary name attribute is missing.`);
  const primaryNameColumn = primaryName;
  return {
    ...shell,
    primaryNameAttribute: primaryNameColumn.logicalName,
    // The primary name first, as Dataverse lists it.
    columns: [primaryNameColumn, ...columns.filter((c) => c !== primaryNameColumn)],
    ...(displayCollectionName ? { displayCollectionName } : {}),
    ...(description ? { description } : {}),
  };
}
