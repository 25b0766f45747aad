/**
 * The tables, relationships and first-start rows every ccs instance has: the core CRM tables the IoT solution uses
 * and Microsoft's IoT tables, under Microsoft's names.
 */
import type { ManyToManyRelationshipDef, TableDef } from '../types.js';
import { coreTables } from './core.js';
import { iotTables } from './iot.js';
import { ccsTables } from './ccs.js';
import { processSeedRows, processTables } from './process.js';
import { webhookSeedRows, webhookTables } from './webhook.js';
import { workflowSeedRows, workflowTables } from './workflow.js';

export { COMMAND_STATUS, IOT_SOURCE } from './iot.js';
export { REGISTRATION_STATUS } from './core.js';
export { IOT_TO_CASE_PROCESS, IOT_TO_CASE_PROCESS_ID, IOT_TO_CASE_STAGES } from './process.js';

export const standardTables: TableDef[] = [...coreTables, ...iotTables, ...ccsTables, ...workflowTables, ...processTables, ...webhookTables];

/**
 * N:N relationships. Dataverse names the navigation property after the relationship on both sides, and the
 * intersect table after the relationship too.
 */
export const standardManyToMany: ManyToManyRelationshipDef[] = [
  {
    // Cases ↔ customer assets (CCS-JS fetch; ms-connected-service.md §2.15).
    schemaName: 'msdyn_incident_msdyn_customerasset',
    entity1LogicalName: 'incident',
    entity2LogicalName: 'msdyn_customerasset',
    intersectEntityName: 'msdyn_incident_msdyn_customerasset',
    entity1NavigationPropertyName: 'msdyn_incident_msdyn_customerasset',
    entity2NavigationPropertyName: 'msdyn_incident_msdyn_customerasset',
  },
  {
    // Commands a device category supports.
    schemaName: 'msdyn_iotdevicecategorycommands',
    entity1LogicalName: 'msdyn_iotdevicecategory',
    entity2LogicalName: 'msdyn_iotdevicecommanddefinition',
    intersectEntityName: 'msdyn_iotdevicecategorycommands',
    entity1NavigationPropertyName: 'msdyn_iotdevicecategorycommands',
    entity2NavigationPropertyName: 'msdyn_iotdevicecategorycommands',
  },
  {
    // Parameters of a command definition.
    schemaName: 'msdyn_iotdevicecommandparameters',
    entity1LogicalName: 'msdyn_iotdevicecommanddefinition',
    entity2LogicalName: 'msdyn_iotpropertydefinition',
    intersectEntityName: 'msdyn_iotdevicecommandparameters',
    entity1NavigationPropertyName: 'msdyn_iotdevicecommandparameters',
    entity2NavigationPropertyName: 'msdyn_iotdevicecommandparameters',
  },
];

/** The "Connected Device" connection role: asset (record1) → device (record2). CCS-JS `Connection.IoTRoleId`. */
export const CONNECTED_DEVICE_ROLE_ID = '9c86f660-5f5b-e611-810b-00155dbd6a1d';
/** The IoT Settings singleton. CCS-JS. */
export const IOT_SETTINGS_ID = '76cd1aaa-0dfd-4c17-8915-9df22ee05137';
/** Ours: the IoT Hub provider row and the instance that stands for ccs's own hub. */
export const IOT_HUB_PROVIDER_ID = '5b1b6a41-3f7e-4c1e-9d0e-2a6f0c7b9e11';
export const DEFAULT_PROVIDER_INSTANCE_ID = '0c5f2d7e-8a43-4b6b-b1f4-7d2e9a3c6f50';

export interface SeedRow {
  readonly table: string;
  readonly id: string;
  /** Column values as a Web API client would send them; lookups as raw ids keyed by the column's logical name. */
  readonly row: Readonly<Record<string, unknown>>;
}

/** The platform's own first-start rows: the connection role, the IoT Hub provider and the settings singleton. */
const baseSeedRows: SeedRow[] = [
  {
    table: 'connectionrole',
    id: CONNECTED_DEVICE_ROLE_ID,
    row: { name: 'Connected Device', category: 5, description: 'An IoT device connected to a record (asset, account or any IoT-enabled table).' },
  },
  {
    table: 'msdyn_iotprovider',
    id: IOT_HUB_PROVIDER_ID,
    row: {
      msdyn_name: 'IoT Hub',
      msdyn_iotsource: 192350001,
      // The IoT Hub provider's action names (ms-connected-service.md §2.10).
      msdyn_registeraction: 'msdyn_IoTHubRegisterDevice',
      msdyn_pulldevicedataaction: 'msdyn_IoTHubPullDeviceData',
      msdyn_querydevicereadingsaction: 'msdyn_IoTHubQueryDeviceReadings',
    },
  },
  {
    table: 'msdyn_iotproviderinstance',
    id: DEFAULT_PROVIDER_INSTANCE_ID,
    row: { msdyn_name: 'ccs', msdyn_iotprovider: IOT_HUB_PROVIDER_ID, msdyn_providerinstanceid: 'ccs' },
  },
  {
    table: 'msdyn_iotsettings',
    id: IOT_SETTINGS_ID,
    row: {
      msdyn_name: 'IoT Settings',
      msdyn_defaultiotproviderinstance: DEFAULT_PROVIDER_INSTANCE_ID,
      msdyn_defaultiotsource: 192350001,
      msdyn_scheduleddevicedatapull: false,
      msdyn_enableiotsuggestions: false,
      msdyn_enhancedbackgroundprocessing: false,
      msdyn_showwelcome: false,
    },
  },
];

/** Rows created on first start, in dependency order (a row's lookups point at rows above it). */
export const standardSeedRows: SeedRow[] = [...baseSeedRows, ...workflowSeedRows, ...processSeedRows, ...webhookSeedRows];
