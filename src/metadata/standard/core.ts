/**
 * The core CRM tables the IoT solution relates to: account, contact, systemuser, incident (case), customer asset,
 * connection and connection role. Only the columns CCS and typical clients use, with Dataverse's names, types and
 * MaxLengths (learn.microsoft.com entity reference).
 */
import type { TableDef } from '../types.js';
import { choice, coreLookup, dateTime, float, guid, lookup, memo, text, yesNo } from './columns.js';

/** Registration status shared by msdyn_iotdevice and msdyn_customerasset (ms-connected-service.md §2.2, §2.15). */
export const REGISTRATION_STATUS = [
  [192350000, 'Unknown'],
  [192350001, 'Unregistered'],
  [192350002, 'In Progress'],
  [192350003, 'Registered'],
  [192350004, 'Error'],
] as const;

export const account: TableDef = {
  logicalName: 'account',
  schemaName: 'Account',
  entitySetName: 'accounts',
  displayName: 'Account',
  displayCollectionName: 'Accounts',
  description: 'Business that represents a customer or potential customer.',
  primaryIdAttribute: 'accountid',
  primaryNameAttribute: 'name',
  columns: [
    text('name', 'Account Name', 160, { requiredLevel: 'ApplicationRequired' }),
    text('accountnumber', 'Account Number', 20),
    memo('description', 'Description', 2000),
    text('emailaddress1', 'Email', 100),
    text('telephone1', 'Main Phone', 50),
    text('websiteurl', 'Website', 200),
    text('address1_line1', 'Address 1: Street 1', 250),
    text('address1_city', 'Address 1: City', 80),
    text('address1_postalcode', 'Address 1: ZIP/Postal Code', 20),
    text('address1_country', 'Address 1: Country/Region', 80),
    coreLookup('primarycontactid', 'Primary Contact', 'contact', 'account_primary_contact'),
    coreLookup('parentaccountid', 'Parent Account', 'account', 'account_parent_account'),
  ],
  indexes: [['name'], ['accountnumber']],
};

export const contact: TableDef = {
  logicalName: 'contact',
  schemaName: 'Contact',
  entitySetName: 'contacts',
  displayName: 'Contact',
  displayCollectionName: 'Contacts',
  description: 'Person with whom a business unit has a relationship, such as customer, supplier, and colleague.',
  primaryIdAttribute: 'contactid',
  primaryNameAttribute: 'fullname',
  columns: [
    // Dataverse composes fullname from firstname and lastname; it stays writable here until the records service
    // does the same, so that clients that set it are not rejected.
    text('fullname', 'Full Name', 160),
    text('firstname', 'First Name', 50),
    text('lastname', 'Last Name', 50, { requiredLevel: 'ApplicationRequired' }),
    text('emailaddress1', 'Email', 100),
    text('telephone1', 'Business Phone', 50),
    text('mobilephone', 'Mobile Phone', 50),
    text('jobtitle', 'Job Title', 100),
    memo('description', 'Description', 2000),
    { logicalName: 'parentcustomerid', displayName: 'Company Name', type: 'customer', targets: ['account', 'contact'] },
  ],
  indexes: [['fullname'], ['emailaddress1']],
};

export const systemuser: TableDef = {
  logicalName: 'systemuser',
  schemaName: 'SystemUser',
  entitySetName: 'systemusers',
  displayName: 'User',
  displayCollectionName: 'Users',
  description: 'Person with access to the system and who owns objects in the database.',
  primaryIdAttribute: 'systemuserid',
  primaryNameAttribute: 'fullname',
  // Users have neither owner nor state in this model (Dataverse's systemuser is business-owned; isdisabled replaces state).
  ownership: 'None',
  columns: [
    text('fullname', 'Full Name', 200),
    text('firstname', 'First Name', 64),
    text('lastname', 'Last Name', 64),
    // SystemRequired in Dataverse; not enforced here because users are also created from API tokens by name only.
    text('domainname', 'User Name', 1024, { requiredLevel: 'ApplicationRequired', description: 'Sign-in name of the user.' }),
    text('internalemailaddress', 'Primary Email', 100),
    text('title', 'Title', 128),
    yesNo('isdisabled', 'Status', { trueLabel: 'Disabled', falseLabel: 'Enabled', defaultValue: false }),
    guid('azureactivedirectoryobjectid', 'Azure AD Object ID'),
  ],
  indexes: [['domainname'], ['internalemailaddress']],
};

export const incident: TableDef = {
  logicalName: 'incident',
  schemaName: 'Incident',
  entitySetName: 'incidents',
  displayName: 'Case',
  displayCollectionName: 'Cases',
  description: 'Service request case associated with a contract.',
  primaryIdAttribute: 'incidentid',
  primaryNameAttribute: 'title',
  columns: [
    text('title', 'Case Title', 200, { requiredLevel: 'ApplicationRequired' }),
    text('ticketnumber', 'Case Number', 100),
    memo('description', 'Description', 2000),
    choice('incident', 'caseorigincode', 'Origin', [
      [1, 'Phone'],
      [2, 'Email'],
      [3, 'Web'],
      [2483, 'Facebook'],
      [3986, 'Twitter'],
      [700610000, 'IoT'],
    ]),
    choice('incident', 'casetypecode', 'Case Type', [
      [1, 'Question'],
      [2, 'Problem'],
      [3, 'Request'],
    ]),
    choice('incident', 'prioritycode', 'Priority', [
      [1, 'High'],
      [2, 'Normal'],
      [3, 'Low'],
    ], { defaultValue: 2 }),
    // Dataverse enforces a customer on every case (SystemRequired); ApplicationRequired here leaves that to clients.
    { logicalName: 'customerid', displayName: 'Customer', type: 'customer', targets: ['account', 'contact'], requiredLevel: 'ApplicationRequired' },
    coreLookup('primarycontactid', 'Contact', 'contact', 'contact_as_primary_contact'),
    // Microsoft's relationship msdyn_msdyn_iotalert_incident_IoTAlert, navigation property msdyn_IoTAlert.
    lookup('incident', 'msdyn_iotalert', 'IoT Alert', 'msdyn_iotalert', 'msdyn_IoTAlert', {
      description: 'The IoT alert that initiated this case.',
    }),
    choice('incident', 'statecode', 'Status', [
      [0, 'Active'],
      [1, 'Resolved'],
      [2, 'Cancelled'],
    ], { type: 'state', defaultValue: 0, requiredLevel: 'SystemRequired' }),
    choice('incident', 'statuscode', 'Status Reason', [
      [1, 'In Progress', 0],
      [2, 'On Hold', 0],
      [3, 'Waiting for Details', 0],
      [4, 'Researching', 0],
      [5, 'Problem Solved', 1],
      [1000, 'Information Provided', 1],
      [6, 'Cancelled', 2],
      [2000, 'Merged', 2],
    ], { type: 'status', defaultValue: 1 }),
  ],
  indexes: [['ticketnumber'], ['title']],
};

export const msdyn_customerasset: TableDef = {
  logicalName: 'msdyn_customerasset',
  schemaName: 'msdyn_customerasset',
  entitySetName: 'msdyn_customerassets',
  displayName: 'Customer Asset',
  displayCollectionName: 'Customer Assets',
  description: 'Specify Customer Asset.',
  primaryIdAttribute: 'msdyn_customerassetid',
  primaryNameAttribute: 'msdyn_name',
  columns: [
    text('msdyn_name', 'Name', 100, { requiredLevel: 'ApplicationRequired' }),
    lookup('msdyn_customerasset', 'msdyn_account', 'Account', 'account', 'msdyn_account', {
      relationship: 'msdyn_account_msdyn_customerasset_Account',
      description: 'Parent customer of this asset.',
    }),
    text('msdyn_assettag', 'Asset Tag', 100),
    text('msdyn_deviceid', 'Device ID', 100, { description: 'Used only when the asset has a single connected device.' }),
    choice('msdyn_customerasset', 'msdyn_registrationstatus', 'Registration Status', REGISTRATION_STATUS, {
      description: 'Aggregate registration status of the connected devices.',
    }),
    lookup('msdyn_customerasset', 'msdyn_lastcommandsent', 'Last Command Sent', 'msdyn_iotdevicecommand', 'msdyn_LastCommandSent'),
    dateTime('msdyn_lastcommandsenttime', 'Last Command Sent Time'),
    float('msdyn_latitude', 'Latitude', { precision: 5, minValue: -90, maxValue: 90 }),
    float('msdyn_longitude', 'Longitude', { precision: 5, minValue: -180, maxValue: 180 }),
    dateTime('msdyn_manufacturingdate', 'Manufacturing Date'),
  ],
  indexes: [['msdyn_name'], ['msdyn_deviceid']],
};

export const connection: TableDef = {
  logicalName: 'connection',
  schemaName: 'Connection',
  entitySetName: 'connections',
  displayName: 'Connection',
  displayCollectionName: 'Connections',
  description: 'Relationship between two entities. CCS connects a record of any table to an IoT device this way.',
  primaryIdAttribute: 'connectionid',
  primaryNameAttribute: 'name',
  columns: [
    text('name', 'Connection Name', 500),
    memo('description', 'Description', 4000),
    {
      logicalName: 'record1id', displayName: 'Connected From', type: 'polymorphic', targets: ['*'],
      requiredLevel: 'ApplicationRequired', description: 'Record that is the source of the connection (the asset).',
    },
    {
      logicalName: 'record2id', displayName: 'Connected To', type: 'polymorphic', targets: ['*'],
      requiredLevel: 'ApplicationRequired', description: 'Record that is the target of the connection (the device).',
    },
    coreLookup('record1roleid', 'Role (From)', 'connectionrole', 'connection_role_connections1'),
    coreLookup('record2roleid', 'Role (To)', 'connectionrole', 'connection_role_connections2'),
    dateTime('effectivestart', 'Starting'),
    dateTime('effectiveend', 'Ending'),
  ],
  // "Devices connected to this asset" and "assets this device is connected to", by role.
  indexes: [['record1id', 'record2roleid'], ['record2id', 'record2roleid']],
};

export const connectionrole: TableDef = {
  logicalName: 'connectionrole',
  schemaName: 'ConnectionRole',
  entitySetName: 'connectionroles',
  displayName: 'Connection Role',
  displayCollectionName: 'Connection Roles',
  description: 'Role describing a relationship between two records.',
  primaryIdAttribute: 'connectionroleid',
  primaryNameAttribute: 'name',
  ownership: 'OrganizationOwned',
  columns: [
    text('name', 'Name', 100, { requiredLevel: 'SystemRequired' }),
    choice('connectionrole', 'category', 'Connection Role Category', [
      [1, 'Business'],
      [2, 'Family'],
      [3, 'Social'],
      [4, 'Sales'],
      [5, 'Other'],
      [1000, 'Stakeholder'],
      [1001, 'Sales Team'],
      [1002, 'Service'],
    ]),
    memo('description', 'Description', 4000),
  ],
};

export const coreTables: readonly TableDef[] = [account, contact, systemuser, incident, msdyn_customerasset, connection, connectionrole];
