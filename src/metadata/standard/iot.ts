/**
 * The tables of Microsoft's IoT solution (Connected Customer Service / Connected Field Service), with Microsoft's
 * column names, types, MaxLengths, required levels, option values and navigation properties
 * (ms-connected-service.md §2; MicrosoftDocs entity reference). Columns of our own carry the `ccs_` prefix.
 */
import type { TableDef } from '../types.js';
import { REGISTRATION_STATUS } from './core.js';
import { choice, dateTime, float, guid, lookup, memo, text, whole, yesNo } from './columns.js';

/** Columns every IoT table names `msdyn_name` (String 100). */
function name(requiredLevel: 'ApplicationRequired' | 'None' = 'ApplicationRequired') {
  return text('msdyn_name', 'Name', 100, { requiredLevel });
}

export const msdyn_iotalert: TableDef = {
  logicalName: 'msdyn_iotalert',
  schemaName: 'msdyn_iotalert',
  entitySetName: 'msdyn_iotalerts',
  displayName: 'IoT Alert',
  displayCollectionName: 'IoT Alerts',
  description: 'An alert raised by an IoT device or by a rule on its telemetry.',
  primaryIdAttribute: 'msdyn_iotalertid',
  primaryNameAttribute: 'msdyn_description',
  columns: [
    text('msdyn_description', 'Description', 100, { requiredLevel: 'ApplicationRequired', description: 'A description for the alert.' }),
    memo('msdyn_alertdata', 'Alert Data', 8192, { description: 'Data sent from the device about the alert.' }),
    dateTime('msdyn_alerttime', 'Alert Time', { description: 'The time the alert was issued.' }),
    text('msdyn_alerttoken', 'Alert Token', 100, { description: 'The unique reference to the event id on the IoT hub.' }),
    choice('msdyn_iotalert', 'msdyn_alerttype', 'Alert Type', [
      [192350000, 'Anomaly'],
      [192350001, 'Info'],
      [192350002, 'Preventive Maintenance'],
      [192350003, 'Test'],
    ]),
    text('msdyn_alerturl', 'Alert URL', 100, { description: 'External URL to view more information about the IoT alert.' }),
    text('msdyn_deviceid', 'Device ID', 100, { description: 'The ID of the IoT device that sent the alert.' }),
    lookup('msdyn_iotalert', 'msdyn_device', 'Device', 'msdyn_iotdevice', 'msdyn_Device', {
      description: 'The IoT device for which this alert was raised.',
    }),
    lookup('msdyn_iotalert', 'msdyn_customerasset', 'Customer Asset', 'msdyn_customerasset', 'msdyn_CustomerAsset', {
      description: 'The asset connected to the IoT device that raised the alert.',
    }),
    lookup('msdyn_iotalert', 'msdyn_case', 'Case', 'incident', 'msdyn_Case', { description: 'Case created for this IoT alert.' }),
    lookup('msdyn_iotalert', 'msdyn_parentalert', 'Parent Alert', 'msdyn_iotalert', 'msdyn_ParentAlert', {
      relationship: 'msdyn_iotalert_msdyn_iotalert',
      description: 'Reference to a parent alert. This field is inferred if Parent Alert Token is set.',
    }),
    text('msdyn_parentalerttoken', 'Parent Alert Token', 100, { description: 'Reference to a previously created parent IoT alert.' }),
    lookup('msdyn_iotalert', 'msdyn_lastcommandsent', 'Last Command Sent', 'msdyn_iotdevicecommand', 'msdyn_LastCommandSent'),
    dateTime('msdyn_lastcommandsenttime', 'Last Command Sent Time'),
    choice('msdyn_iotalert', 'msdyn_suggestedpriority', 'Suggested Priority', [
      [192350000, 'Calculating'],
      [192350001, 'High'],
      [192350002, 'Low'],
    ]),
    float('msdyn_alertpriorityscore', 'Alert Priority Score'),
    // Business process flow bookkeeping: the alert is the primary table of "IoT Alert to Case Process".
    guid('processid', 'Process Id', { description: 'Contains the id of the process associated with the entity.' }),
    guid('stageid', 'Stage Id', { description: 'Contains the id of the stage where the entity is located.' }),
    text('traversedpath', 'Traversed Path', 1250),
  ],
  // Debouncing looks for recent alerts of a device; the alert writer is idempotent on the token (not unique: many
  // alerts carry no token).
  indexes: [['msdyn_device', 'msdyn_alerttime'], ['msdyn_alerttime'], ['msdyn_alerttoken'], ['msdyn_parentalerttoken'], ['msdyn_deviceid']],
};

export const msdyn_iotdevice: TableDef = {
  logicalName: 'msdyn_iotdevice',
  schemaName: 'msdyn_iotdevice',
  entitySetName: 'msdyn_iotdevices',
  displayName: 'IoT Device',
  displayCollectionName: 'IoT Devices',
  description: 'Represents a connected device that can be registered with an IoT provider.',
  primaryIdAttribute: 'msdyn_iotdeviceid',
  primaryNameAttribute: 'msdyn_name',
  columns: [
    name(),
    text('msdyn_deviceid', 'Device ID', 100, { description: 'The ID of the device in the IoT provider (IoT Hub device identity).' }),
    choice('msdyn_iotdevice', 'msdyn_registrationstatus', 'Registration Status', REGISTRATION_STATUS),
    memo('msdyn_registrationmessage', 'Registration Message', 2000, { description: 'Explains the registration status.' }),
    lookup('msdyn_iotdevice', 'msdyn_account', 'Account', 'account', 'msdyn_Account', { description: 'Parent customer of this device.' }),
    lookup('msdyn_iotdevice', 'msdyn_category', 'Category', 'msdyn_iotdevicecategory', 'msdyn_Category'),
    lookup('msdyn_iotdevice', 'msdyn_iotproviderinstance', 'IoT Provider Instance', 'msdyn_iotproviderinstance', 'msdyn_IoTProviderInstance'),
    yesNo('msdyn_connectionstate', 'Connection State', { trueLabel: 'Connected', falseLabel: 'Disconnected', defaultValue: false }),
    dateTime('msdyn_lastactivitytime', 'Last Activity Time'),
    memo('msdyn_devicereportedproperties', 'Device Reported Properties', 8000, { description: 'Twin reported properties (JSON).' }),
    memo('msdyn_devicesettings', 'Device Settings', 8000, { description: 'Editable (desired) twin properties (JSON).' }),
    memo('msdyn_tags', 'Tags', 8000, { description: 'Twin tags (JSON).' }),
    choice('msdyn_iotdevice', 'msdyn_issimulated', 'Is Simulated', [
      [192350000, 'Yes'],
      [192350001, 'No'],
    ], { requiredLevel: 'Recommended' }),
    whole('msdyn_timezone', 'Time Zone', { minValue: -1500, maxValue: 1500 }),
    lookup('msdyn_iotdevice', 'msdyn_lastcommandsent', '[Deprecated] Last Command Sent', 'msdyn_iotdevicecommand', 'msdyn_LastCommandSent'),
    dateTime('msdyn_lastcommandsenttime', '[Deprecated] Last Command Sent Time'),
  ],
  // A device identity is unique in its hub; several devices may still have none (not yet registered), which a
  // unique index allows (NULLs are distinct on SQLite and PostgreSQL).
  alternateKeys: [{ name: 'ccs_deviceidkey', columns: ['msdyn_deviceid'] }],
  indexes: [['msdyn_name']],
};

export const msdyn_iotdevicecategory: TableDef = {
  logicalName: 'msdyn_iotdevicecategory',
  schemaName: 'msdyn_iotdevicecategory',
  entitySetName: 'msdyn_iotdevicecategories',
  displayName: 'IoT Device Category',
  displayCollectionName: 'IoT Device Categories',
  description: 'Used to categorize IoT devices.',
  primaryIdAttribute: 'msdyn_iotdevicecategoryid',
  primaryNameAttribute: 'msdyn_name',
  columns: [name()],
};

export const COMMAND_STATUS = [
  [192350000, 'In Progress'],
  [192350001, 'Sent'],
  [192350002, 'Error'],
  // Ours, continuing Microsoft's numbering: the device acknowledged / the message expired undelivered.
  [192350003, 'Delivered'],
  [192350004, 'Expired'],
] as const;

export const msdyn_iotdevicecommand: TableDef = {
  logicalName: 'msdyn_iotdevicecommand',
  schemaName: 'msdyn_iotdevicecommand',
  entitySetName: 'msdyn_iotdevicecommands',
  displayName: 'IoT Device Command',
  displayCollectionName: 'IoT Device Commands',
  description: 'Represents an outgoing message to a device connected to an IoT provider.',
  primaryIdAttribute: 'msdyn_iotdevicecommandid',
  primaryNameAttribute: 'msdyn_name',
  columns: [
    name(),
    memo('msdyn_message', 'Message', 8192, { description: 'Message to send to the IoT device. E.g.: A Json string.' }),
    text('msdyn_deviceid', 'Device ID', 100, { description: 'The ID of the IoT device to send the message to.' }),
    lookup('msdyn_iotdevicecommand', 'msdyn_device', 'Device', 'msdyn_iotdevice', 'msdyn_Device', {
      description: 'IoT device to send the message to.',
    }),
    lookup('msdyn_iotdevicecommand', 'msdyn_parentalert', 'Primary Alert', 'msdyn_iotalert', 'msdyn_ParentAlert', {
      description: 'Reference to a primary alert in response to which the message is being sent.',
    }),
    lookup('msdyn_iotdevicecommand', 'msdyn_customerasset', 'Customer Asset', 'msdyn_customerasset', 'msdyn_CustomerAsset', {
      description: 'The command will be sent to a device connected to this asset.',
    }),
    lookup('msdyn_iotdevicecommand', 'msdyn_command', 'Command', 'msdyn_iotdevicecommanddefinition', 'msdyn_Command', {
      description: 'This optional field denotes the command definition that is used to construct the command string.',
    }),
    choice('msdyn_iotdevicecommand', 'msdyn_commandstatus', 'Command Status', COMMAND_STATUS, {
      defaultValue: 192350000,
      description: 'Describes the status of the command. If this stays at "In Progress" for a long time, verify the IoT endpoint configuration.',
    }),
    memo('msdyn_commandstatusreason', 'Command Status Reason', 2000, { description: 'A reason field that explains the command status.' }),
    yesNo('msdyn_sendtoallconnecteddevices', 'Send To All Connected Devices', { defaultValue: false }),
    // Ours: Microsoft leaves the C2D expiry to IoT Hub's default (1 h); ccs lets a command set it, up to IoT Hub's
    // 2-day maximum (iot-hub-devguide-messages-c2d.md).
    whole('ccs_timetolive', 'Time To Live (seconds)', {
      minValue: 1,
      maxValue: 172800,
      description: 'How long the hub keeps the message for a device that is offline before the command expires. Empty: 3600. For a direct method: how long to wait for the answer (5 to 300 s). Empty: 30.',
    }),
    // Ours: a direct method's answer, and the fan-out of one command to many devices (one child command per device).
    memo('ccs_responsepayload', 'Response Payload', 131072, { description: "The device's answer to a direct method (JSON)." }),
    whole('ccs_responsestatus', 'Response Status', { description: 'The status code the device answered a direct method with.' }),
    lookup('msdyn_iotdevicecommand', 'ccs_parentcommand', 'Parent Command', 'msdyn_iotdevicecommand', 'ccs_ParentCommand', {
      description: 'The command sent to many devices (all connected devices, or a category) that this one was sent for.',
    }),
    lookup('msdyn_iotdevicecommand', 'ccs_category', 'Category', 'msdyn_iotdevicecategory', 'ccs_Category', {
      description: 'Send the command to every registered device of this category (one child command per device).',
    }),
  ],
  indexes: [['msdyn_device', 'createdon'], ['msdyn_commandstatus'], ['ccs_parentcommand', 'msdyn_commandstatus']],
};

export const msdyn_iotdevicecommanddefinition: TableDef = {
  logicalName: 'msdyn_iotdevicecommanddefinition',
  schemaName: 'msdyn_iotdevicecommanddefinition',
  entitySetName: 'msdyn_iotdevicecommanddefinitions',
  displayName: 'IoT Device Command Definition',
  displayCollectionName: 'IoT Device Command Definitions',
  description: 'Metadata for commands that a device or a device category supports.',
  primaryIdAttribute: 'msdyn_iotdevicecommanddefinitionid',
  primaryNameAttribute: 'msdyn_name',
  columns: [
    name(),
    // Ours: Microsoft sends every command as a cloud-to-device message; ccs can also call a direct method.
    choice('msdyn_iotdevicecommanddefinition', 'ccs_deliverymethod', 'Delivery Method', [
      [192350000, 'Cloud-to-device message'],
      [192350001, 'Direct method'],
    ], { defaultValue: 192350000, description: 'How commands of this definition reach the device.' }),
    text('ccs_methodname', 'Method Name', 256, { description: 'The direct method to call. Empty: the definition name.' }),
  ],
};

export const msdyn_iotpropertydefinition: TableDef = {
  logicalName: 'msdyn_iotpropertydefinition',
  schemaName: 'msdyn_iotpropertydefinition',
  entitySetName: 'msdyn_iotpropertydefinitions',
  displayName: 'IoT Property Definition',
  displayCollectionName: 'IoT Property Definitions',
  description: 'Defines a device property or a parameter that can be used for one or more command definitions.',
  primaryIdAttribute: 'msdyn_iotpropertydefinitionid',
  primaryNameAttribute: 'msdyn_name',
  columns: [
    name(),
    choice('msdyn_iotpropertydefinition', 'msdyn_type', 'Type', [
      [192350000, 'String'],
      [192350001, 'Object'],
      [192350002, 'Date and Time'],
      [192350003, 'Boolean'],
      [192350004, 'Whole Number'],
      [192350005, 'Decimal Number'],
    ], { requiredLevel: 'ApplicationRequired', defaultValue: 192350000, description: 'The data type of the parameter.' }),
    yesNo('msdyn_editable', 'Editable', { defaultValue: true }),
    yesNo('msdyn_visible', 'Visible', { defaultValue: true }),
    memo('msdyn_additionalproperties', 'Additional Properties', 2000),
    text('msdyn_unit', 'Unit', 100, { description: 'Unit String for property definition' }),
    lookup('msdyn_iotpropertydefinition', 'msdyn_parentproperty', 'Parent Property', 'msdyn_iotpropertydefinition', 'msdyn_ParentProperty', {
      relationship: 'msdyn_msdyn_iotpropertydefinition_msdyn_iotpropertydefinition_ParentParameter',
      description: 'Refers to the parent property when building a nested property.',
    }),
  ],
};

export const msdyn_iotdeviceproperty: TableDef = {
  logicalName: 'msdyn_iotdeviceproperty',
  schemaName: 'msdyn_iotdeviceproperty',
  entitySetName: 'msdyn_iotdeviceproperties',
  displayName: 'IoT Device Property',
  displayCollectionName: 'IoT Device Properties',
  description: 'Attaches a property definition to a device category, as a desired property or a tag.',
  primaryIdAttribute: 'msdyn_iotdevicepropertyid',
  primaryNameAttribute: 'msdyn_name',
  columns: [
    name('None'),
    lookup('msdyn_iotdeviceproperty', 'msdyn_property', 'Property', 'msdyn_iotpropertydefinition', 'msdyn_Property', {
      requiredLevel: 'ApplicationRequired',
    }),
    lookup('msdyn_iotdeviceproperty', 'msdyn_devicecategory', 'Device Category', 'msdyn_iotdevicecategory', 'msdyn_DeviceCategory', {
      requiredLevel: 'ApplicationRequired',
    }),
    yesNo('msdyn_istag', 'Mark This As Tag?', {
      defaultValue: false,
      description: 'True if this property is marked as a tag for the device; False if this property is a device property.',
    }),
  ],
};

export const msdyn_iotdeviceregistrationhistory: TableDef = {
  logicalName: 'msdyn_iotdeviceregistrationhistory',
  schemaName: 'msdyn_iotdeviceregistrationhistory',
  entitySetName: 'msdyn_iotdeviceregistrationhistories',
  displayName: 'IoT Device Registration History',
  displayCollectionName: 'IoT Device Registration History',
  description: 'Tracks registration activities on an IoT device.',
  primaryIdAttribute: 'msdyn_iotdeviceregistrationhistoryid',
  primaryNameAttribute: 'msdyn_name',
  columns: [
    name(),
    lookup('msdyn_iotdeviceregistrationhistory', 'msdyn_device', 'Device', 'msdyn_iotdevice', 'msdyn_Device', { description: 'IoT device' }),
    choice('msdyn_iotdeviceregistrationhistory', 'msdyn_action', 'Action', [
      [192350000, 'Register'],
      [192350001, 'Unregister'],
      [192350002, 'Activate'],
      [192350003, 'Deactivate'],
    ]),
    // Microsoft does not publish the other columns; these record the outcome of each attempt.
    choice('msdyn_iotdeviceregistrationhistory', 'ccs_registrationstatus', 'Registration Status', REGISTRATION_STATUS),
    memo('ccs_registrationmessage', 'Registration Message', 2000),
    text('ccs_deviceid', 'Device ID', 100, { description: 'The device identity in the IoT provider at the time of the attempt.' }),
    dateTime('ccs_registrationtime', 'Registration Time'),
  ],
  indexes: [['msdyn_device', 'ccs_registrationtime']],
};

export const msdyn_iotdevicedatahistory: TableDef = {
  logicalName: 'msdyn_iotdevicedatahistory',
  schemaName: 'msdyn_iotdevicedatahistory',
  // Microsoft's EntitySetName really is the singular (CollectionSchemaName msdyn_iotdevicedatahistories is not the
  // set name): entity reference msdyn_iotdevicedatahistory.md and the CRM-To-IoT Logic App path.
  entitySetName: 'msdyn_iotdevicedatahistory',
  displayName: 'IoT Device Data History',
  displayCollectionName: 'IoT Device Data History',
  description: 'Holds the device data every time a device data pull occurs between the system and an IoT provider.',
  primaryIdAttribute: 'msdyn_iotdevicedatahistoryid',
  primaryNameAttribute: 'msdyn_name',
  columns: [
    name('None'),
    lookup('msdyn_iotdevicedatahistory', 'msdyn_device', 'Device', 'msdyn_iotdevice', 'msdyn_Device', {
      description: 'The device for which the device data is',
    }),
    text('msdyn_iothubdeviceid', 'Device ID', 100, {
      requiredLevel: 'ApplicationRequired',
      description: 'Identifier for the device in the IoT provider',
    }),
    yesNo('msdyn_connectionstate', 'Connection State', { trueLabel: 'Connected', falseLabel: 'Disconnected', defaultValue: false }),
    dateTime('msdyn_connectionstateupdatedtime', 'Connection State Updated Time'),
    dateTime('msdyn_lastactivitytime', 'Last Activity Time', { description: 'The time of last device data pull' }),
    choice('msdyn_iotdevicedatahistory', 'msdyn_status', 'Status', [
      [192350000, 'Enabled'],
      [192350001, 'Disabled'],
      [192350002, 'Not Found'],
    ], { requiredLevel: 'ApplicationRequired', description: 'Device Status (Disabled, Enabled or Not Found)' }),
    text('msdyn_statusreason', 'Status Reason', 128),
    memo('msdyn_devicereportedproperties', 'Device Reported Properties', 8000),
  ],
  indexes: [['msdyn_device', 'createdon']],
};

export const IOT_SOURCE = [
  [192350000, 'Other'],
  [192350001, 'Azure IoT Suite'],
  [192350002, 'Azure IoT Central'],
] as const;

export const msdyn_iotprovider: TableDef = {
  logicalName: 'msdyn_iotprovider',
  schemaName: 'msdyn_iotprovider',
  entitySetName: 'msdyn_iotproviders',
  displayName: 'IoT Provider',
  displayCollectionName: 'IoT Providers',
  description: 'A provider technology and the names of the actions that implement it.',
  primaryIdAttribute: 'msdyn_iotproviderid',
  primaryNameAttribute: 'msdyn_name',
  columns: [
    name(),
    choice('msdyn_iotprovider', 'msdyn_iotsource', 'IoT source', IOT_SOURCE, {
      optionSetName: 'msdyn_iotsource',
      requiredLevel: 'ApplicationRequired',
    }),
    text('msdyn_registeraction', 'Register device', 100),
    text('msdyn_pulldevicedataaction', 'Pull device data', 100),
    text('msdyn_querydevicereadingsaction', 'Get time series device readings', 100),
    text('msdyn_getaggregateddevicereadingsaction', 'Get aggregated device readings', 100),
    text('msdyn_sendcommandaction', 'Send Command Action', 100),
    text('msdyn_updatedevicedataaction', 'Update Device Data Action', 100),
  ],
};

export const msdyn_iotproviderinstance: TableDef = {
  logicalName: 'msdyn_iotproviderinstance',
  schemaName: 'msdyn_iotproviderinstance',
  entitySetName: 'msdyn_iotproviderinstances',
  displayName: 'IoT Provider Instance',
  displayCollectionName: 'IoT Provider Instances',
  description: "The organization's instance of an IoT provider (one per IoT hub).",
  primaryIdAttribute: 'msdyn_iotproviderinstanceid',
  primaryNameAttribute: 'msdyn_name',
  columns: [
    name(),
    lookup('msdyn_iotproviderinstance', 'msdyn_iotprovider', 'IoT Provider', 'msdyn_iotprovider', 'msdyn_IoTProvider', {
      requiredLevel: 'ApplicationRequired',
      description: 'The IoT Provider of which this record is an instance.',
    }),
    text('msdyn_providerinstanceid', 'Provider Instance Id', 100),
    text('msdyn_timeseriesinsightsurl', 'Time Series Insights URL', 400),
    text('msdyn_url', 'URL', 400),
  ],
};

export const msdyn_iotsettings: TableDef = {
  logicalName: 'msdyn_iotsettings',
  schemaName: 'msdyn_iotsettings',
  entitySetName: 'msdyn_iotsettingses',
  displayName: 'IoT Settings',
  displayCollectionName: 'IoT Settings',
  description: 'Organization-wide IoT settings (a single row with a fixed id).',
  primaryIdAttribute: 'msdyn_iotsettingsid',
  primaryNameAttribute: 'msdyn_name',
  columns: [
    name(),
    lookup('msdyn_iotsettings', 'msdyn_defaultiotproviderinstance', 'Default IoT Provider Instance', 'msdyn_iotproviderinstance',
      'msdyn_DefaultIoTProviderInstance', { description: 'The IoT Provider Instance to which IoT Devices should belong by default.' }),
    choice('msdyn_iotsettings', 'msdyn_defaultiotsource', 'Default IoT Source', IOT_SOURCE, { optionSetName: 'msdyn_iotsource' }),
    text('msdyn_deploymentappurl', 'Deployment App URL', 100),
    text('msdyn_commandnameproperty', 'Command Name Property', 100, {
      description: 'Property that carries the command name in device commands ("CommandName" when empty).',
    }),
    text('msdyn_commandparametersproperty', 'Command Parameters Property', 100, {
      description: 'Property that carries the command parameters in device commands ("Parameters" when empty).',
    }),
    yesNo('msdyn_scheduleddevicedatapull', 'Scheduled Data Pull', {
      trueLabel: 'On', falseLabel: 'Off', defaultValue: false, requiredLevel: 'ApplicationRequired',
    }),
    whole('msdyn_devicedatapullfrequency', 'Device Data Pull Frequency', { minValue: 60, maxValue: 2147483647 }),
    dateTime('msdyn_nextdevicedatapulltime', 'Next Device Data Pull Time'),
    memo('msdyn_iotalertaggregationrule', 'IoT Alert Aggregation Rule', 8000, {
      description: 'Select the columns that will be used to determine the aggregation of similar IoT alerts.',
    }),
    yesNo('msdyn_enableiotsuggestions', 'Enable IoT suggestions', { defaultValue: false }),
    yesNo('msdyn_enhancedbackgroundprocessing', 'Use Enhanced Background Processing', { defaultValue: false }),
    yesNo('msdyn_showwelcome', 'Show Welcome', { defaultValue: true }),
  ],
};

export const msdyn_iotfieldmapping: TableDef = {
  logicalName: 'msdyn_iotfieldmapping',
  schemaName: 'msdyn_iotfieldmapping',
  entitySetName: 'msdyn_iotfieldmappings',
  displayName: 'IoT Field Mapping',
  displayCollectionName: 'IoT Field Mappings',
  description: 'Maps values inside alert JSON to fields.',
  primaryIdAttribute: 'msdyn_iotfieldmappingid',
  primaryNameAttribute: 'msdyn_modelinputfieldname',
  columns: [
    text('msdyn_modelinputfieldname', 'Model Input Field Name', 100),
    text('msdyn_fieldname', 'Field Name', 100, { requiredLevel: 'ApplicationRequired' }),
    choice('msdyn_iotfieldmapping', 'msdyn_mappingtype', 'Mapping Type', [
      [192350000, 'Device identifier'],
      [192350001, 'Rule identifier'],
      [192350002, 'Device property'],
    ], { optionSetName: 'msdyn_iotmappingtype', requiredLevel: 'ApplicationRequired' }),
    choice('msdyn_iotfieldmapping', 'msdyn_searchtype', 'Search Type', [
      [192350000, 'Direct Path'],
      [192350001, 'Key Value Path'],
    ], { optionSetName: 'msdyn_iotsearchtype' }),
    text('msdyn_directpathorkeypath', 'Direct Path or Key Path', 1000),
    text('msdyn_valuepath', 'Value Path', 1000),
    choice('msdyn_iotfieldmapping', 'msdyn_fielddataformat', 'Field Data Format', [
      [192350000, 'Direct'],
      [192350001, 'JSON'],
    ], { optionSetName: 'msdyn_iotfielddataformat', requiredLevel: 'ApplicationRequired', defaultValue: 192350000 }),
  ],
};

export const iotTables: readonly TableDef[] = [
  msdyn_iotalert,
  msdyn_iotdevice,
  msdyn_iotdevicecategory,
  msdyn_iotdevicecommand,
  msdyn_iotdevicecommanddefinition,
  msdyn_iotpropertydefinition,
  msdyn_iotdeviceproperty,
  msdyn_iotdeviceregistrationhistory,
  msdyn_iotdevicedatahistory,
  msdyn_iotprovider,
  msdyn_iotproviderinstance,
  msdyn_iotsettings,
  msdyn_iotfieldmapping,
];
