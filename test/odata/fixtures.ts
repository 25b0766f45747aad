import { Model, type ManyToManyRelationshipDef, type TableDef } from '../../src/metadata/index.js';

/**
 * A small model shaped like Dataverse's and Microsoft's IoT tables: enough lookups (single, self, multi-target),
 * 1:N and N:N navigations, choices, dates and alternate keys to exercise every construct of the query layer.
 */
const account: TableDef = {
  logicalName: 'account',
  schemaName: 'Account',
  entitySetName: 'accounts',
  displayName: 'Account',
  primaryIdAttribute: 'accountid',
  primaryNameAttribute: 'name',
  columns: [
    { logicalName: 'name', type: 'string', maxLength: 160, displayName: 'Account Name' },
    { logicalName: 'accountnumber', type: 'string', maxLength: 20, displayName: 'Account Number' },
    { logicalName: 'description', type: 'memo', maxLength: 2000, displayName: 'Description' },
    { logicalName: 'revenue', type: 'decimal', displayName: 'Annual Revenue' },
    { logicalName: 'numberofemployees', type: 'integer', displayName: 'Number of Employees' },
    { logicalName: 'donotemail', type: 'boolean', displayName: 'Do not allow Emails' },
    {
      logicalName: 'industrycode', type: 'picklist', displayName: 'Industry',
      optionSet: { name: 'account_industrycode', options: [{ value: 1, label: 'Accounting' }, { value: 2, label: 'Agriculture' }] },
    },
    { logicalName: 'primarycontactid', type: 'lookup', targets: ['contact'], displayName: 'Primary Contact',
      relationship: { schemaName: 'account_primary_contact', navigationProperty: 'primarycontactid', partner: 'account_primary_contact' } },
    { logicalName: 'parentaccountid', type: 'lookup', targets: ['account'], displayName: 'Parent Account',
      relationship: { schemaName: 'account_parent_account', navigationProperty: 'parentaccountid', partner: 'account_parent_account' } },
  ],
  alternateKeys: [{ name: 'accountnumber_key', columns: ['accountnumber'] }],
};

const contact: TableDef = {
  logicalName: 'contact',
  schemaName: 'Contact',
  entitySetName: 'contacts',
  displayName: 'Contact',
  primaryIdAttribute: 'contactid',
  primaryNameAttribute: 'fullname',
  columns: [
    { logicalName: 'fullname', type: 'string', maxLength: 160, displayName: 'Full Name' },
    { logicalName: 'firstname', type: 'string', maxLength: 50, displayName: 'First Name' },
    { logicalName: 'lastname', type: 'string', maxLength: 50, displayName: 'Last Name' },
    { logicalName: 'emailaddress1', type: 'string', maxLength: 100, displayName: 'Email' },
    { logicalName: 'birthdate', type: 'datetime', displayName: 'Birthday' },
    { logicalName: 'parentcustomerid', type: 'customer', targets: ['account', 'contact'], displayName: 'Company Name' },
  ],
  alternateKeys: [{ name: 'name_email', columns: ['firstname', 'emailaddress1'] }],
};

const device: TableDef = {
  logicalName: 'msdyn_iotdevice',
  schemaName: 'msdyn_iotdevice',
  entitySetName: 'msdyn_iotdevices',
  displayName: 'IoT Device',
  primaryIdAttribute: 'msdyn_iotdeviceid',
  primaryNameAttribute: 'msdyn_name',
  isCustomEntity: true,
  columns: [
    { logicalName: 'msdyn_name', type: 'string', maxLength: 100, displayName: 'Device Name' },
    { logicalName: 'msdyn_deviceid', type: 'string', maxLength: 100, displayName: 'Device ID' },
    { logicalName: 'msdyn_account', type: 'lookup', targets: ['account'], displayName: 'Account',
      relationship: { schemaName: 'msdyn_account_msdyn_iotdevice_Account', navigationProperty: 'msdyn_Account', partner: 'msdyn_account_msdyn_iotdevice_Account' } },
    { logicalName: 'msdyn_lastactivitytime', type: 'datetime', displayName: 'Last Activity Time' },
    { logicalName: 'msdyn_connectionstate', type: 'picklist', displayName: 'Connection State',
      optionSet: { name: 'msdyn_iotdevice_msdyn_connectionstate', options: [{ value: 192350000, label: 'Connected' }, { value: 192350001, label: 'Disconnected' }] } },
    { logicalName: 'msdyn_isregistered', type: 'boolean', displayName: 'Registered' },
    { logicalName: 'msdyn_reading', type: 'double', displayName: 'Last Reading' },
    { logicalName: 'msdyn_sequence', type: 'bigint', displayName: 'Sequence' },
  ],
  alternateKeys: [{ name: 'msdyn_deviceid_key', columns: ['msdyn_deviceid'] }],
};

const alert: TableDef = {
  logicalName: 'msdyn_iotalert',
  schemaName: 'msdyn_iotalert',
  entitySetName: 'msdyn_iotalerts',
  displayName: 'IoT Alert',
  primaryIdAttribute: 'msdyn_iotalertid',
  primaryNameAttribute: 'msdyn_description',
  isCustomEntity: true,
  columns: [
    { logicalName: 'msdyn_description', type: 'string', maxLength: 200, displayName: 'Description' },
    { logicalName: 'msdyn_alertdata', type: 'memo', maxLength: 100000, displayName: 'Alert Data' },
    { logicalName: 'msdyn_alerttime', type: 'datetime', displayName: 'Alert Time' },
    { logicalName: 'msdyn_alerttoken', type: 'string', maxLength: 100, displayName: 'Alert Token' },
    { logicalName: 'msdyn_alerttype', type: 'picklist', displayName: 'Alert Type',
      optionSet: { name: 'msdyn_iotalert_msdyn_alerttype', options: [{ value: 192350000, label: 'Anomaly' }, { value: 192350001, label: 'Information' }, { value: 192350002, label: 'Preventive Maintenance' }, { value: 192350003, label: 'Test' }] } },
    { logicalName: 'msdyn_device', type: 'lookup', targets: ['msdyn_iotdevice'], displayName: 'Device',
      relationship: { schemaName: 'msdyn_msdyn_iotdevice_msdyn_iotalert_Device', navigationProperty: 'msdyn_Device', partner: 'msdyn_msdyn_iotdevice_msdyn_iotalert_Device' } },
    { logicalName: 'msdyn_parentalert', type: 'lookup', targets: ['msdyn_iotalert'], displayName: 'Parent Alert',
      relationship: { schemaName: 'msdyn_msdyn_iotalert_msdyn_iotalert_ParentAlert', navigationProperty: 'msdyn_ParentAlert', partner: 'msdyn_msdyn_iotalert_msdyn_iotalert_ParentAlert' } },
  ],
  alternateKeys: [{ name: 'msdyn_alerttoken_key', columns: ['msdyn_alerttoken'] }],
};

export const contactDevices: ManyToManyRelationshipDef = {
  schemaName: 'ccs_contact_msdyn_iotdevice',
  entity1LogicalName: 'contact',
  entity2LogicalName: 'msdyn_iotdevice',
  intersectEntityName: 'ccs_contact_msdyn_iotdevice',
  entity1NavigationPropertyName: 'ccs_contact_msdyn_iotdevice',
  entity2NavigationPropertyName: 'ccs_msdyn_iotdevice_contact',
};

export function createModel(): Model {
  return new Model([account, contact, device, alert], [contactDevices]);
}

export const model = createModel();
export const accounts = model.table('account')!;
export const contacts = model.table('contact')!;
export const devices = model.table('msdyn_iotdevice')!;
export const alerts = model.table('msdyn_iotalert')!;

/** A fixed "now": Wednesday 2024-05-15 13:45:00 UTC. */
export const NOW = Date.UTC(2024, 4, 15, 13, 45, 0);
export const clock = (): Date => new Date(NOW);
