/**
 * The template format (docs/templates.md): a JSON document naming its format in `$schema`, with one section per
 * kind of configuration. Records are written column → value as the Web API takes them, except that a lookup names
 * the record it points at by that record's natural key (a category by name, a device by device id), never by id,
 * so one template deploys into any instance.
 */
import { IOT_SETTINGS_ID } from '../../metadata/index.js';

/** The format this module reads and writes. A later, incompatible format gets a new value. */
export const TEMPLATE_SCHEMA = 'ccs-template/v1';

/** A section of records of one table, upserted by a natural key column. */
export interface RecordSection {
  readonly kind: 'records';
  readonly name: string;
  readonly table: string;
  /** The natural key: unique per item in a template, and how lookups elsewhere name these records. */
  readonly key: string;
  /** Whether the section's devices are registered with the hub after they are written. */
  readonly register?: boolean;
}

/** The sections in the order a template lists them and deploy applies them (each may refer to those above it). */
export const RECORD_SECTIONS: readonly RecordSection[] = [
  { kind: 'records', name: 'categories', table: 'msdyn_iotdevicecategory', key: 'msdyn_name' },
  { kind: 'records', name: 'propertyDefinitions', table: 'msdyn_iotpropertydefinition', key: 'msdyn_name' },
  { kind: 'records', name: 'commandDefinitions', table: 'msdyn_iotdevicecommanddefinition', key: 'msdyn_name' },
  { kind: 'records', name: 'devices', table: 'msdyn_iotdevice', key: 'msdyn_deviceid', register: true },
  { kind: 'records', name: 'rules', table: 'ccs_iotrule', key: 'ccs_name' },
  { kind: 'records', name: 'workflows', table: 'workflow', key: 'name' },
  { kind: 'records', name: 'webhooks', table: 'ccs_webhook', key: 'ccs_name' },
];

/** Every top-level member a template may have, in the order export writes them. */
export const TEMPLATE_MEMBERS = [
  '$schema',
  'name',
  'description',
  'tables',
  'records',
  'categories',
  'propertyDefinitions',
  'commandDefinitions',
  'devices',
  'connections',
  'rules',
  'workflows',
  'webhooks',
  'settings',
] as const;

export const SETTINGS_TABLE = 'msdyn_iotsettings';
export const SETTINGS_ID = IOT_SETTINGS_ID;
export const CONNECTION_TABLE = 'connection';
export const DEVICE_TABLE = 'msdyn_iotdevice';
export const DEVICE_KEY = 'msdyn_deviceid';
/** What `connections` items are called on the connection record (the connector names its own connections so). */
export const CONNECTION_NAME = 'Connected Device';

/**
 * Tables that are not configuration: the platform's own rows (users, the connection role, the hub provider) and
 * what devices and agents produce (alerts, commands, cases, runs, history). Export never writes their records and
 * leaves out lookups to the produced ones; lookups to platform rows are written by name and resolved on deploy.
 */
export const PLATFORM_TABLES: ReadonlySet<string> = new Set(['systemuser', 'connectionrole', 'msdyn_iotprovider', 'msdyn_iotproviderinstance']);
export const DATA_TABLES: ReadonlySet<string> = new Set([
  'msdyn_iotalert',
  'msdyn_iotdevicecommand',
  'incident',
  'asyncoperation',
  'annotation',
  'msdyn_iotdeviceregistrationhistory',
  'msdyn_iotdevicedatahistory',
]);

/**
 * Columns that hold state the platform keeps up to date (registration, connection, reported properties, the last
 * command): export leaves them out. Deploy still accepts a value for them. (Write-only columns, such as a webhook's
 * secret, are left out unless secrets are asked for.)
 */
export const NOT_EXPORTED_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  msdyn_iotdevice: [
    'msdyn_registrationstatus',
    'msdyn_registrationmessage',
    'msdyn_connectionstate',
    'msdyn_lastactivitytime',
    'msdyn_devicereportedproperties',
    'msdyn_lastcommandsent',
    'msdyn_lastcommandsenttime',
  ],
  msdyn_customerasset: ['msdyn_registrationstatus', 'msdyn_lastcommandsent', 'msdyn_lastcommandsenttime'],
  msdyn_iotsettings: ['msdyn_nextdevicedatapulltime'],
};

/** A template as parsed JSON: sections are checked by deploy, member by member. */
export type Template = Readonly<Record<string, unknown>>;
