/**
 * Workflows and their runs, under Dataverse's names: `workflow` (a background process on a table's record events) and
 * `asyncoperation` (one run of it, the "system job"). The step grammar in `ccs_steps` and the engine that runs them
 * live in src/connector/workflows; docs/workflows.md describes both.
 */
import type { TableDef } from '../types.js';
import type { SeedRow } from './index.js';
import { choice, coreLookup, dateTime, guid, memo, text, whole, yesNo } from './columns.js';

export const workflow: TableDef = {
  logicalName: 'workflow',
  schemaName: 'Workflow',
  entitySetName: 'workflows',
  displayName: 'Process',
  displayCollectionName: 'Processes',
  description: 'A background process that runs steps when records of a table are created, updated or deleted.',
  primaryIdAttribute: 'workflowid',
  primaryNameAttribute: 'name',
  columns: [
    text('name', 'Process Name', 100, { requiredLevel: 'SystemRequired', description: 'Name of the process; unique, it is also the key templates use.' }),
    memo('description', 'Description', 100000),
    // Dataverse's EntityName attribute: the table's logical name as text.
    text('primaryentity', 'Primary Entity', 100, { requiredLevel: 'SystemRequired', description: 'Logical name of the table whose record events start the process.' }),
    choice('workflow', 'category', 'Category', [
      [0, 'Workflow'],
      [1, 'Dialog'],
      [2, 'Business Rule'],
      [3, 'Action'],
      [4, 'Business Process Flow'],
      [5, 'Modern Flow'],
    ], { defaultValue: 0 }),
    choice('workflow', 'mode', 'Mode', [
      [0, 'Background'],
      [1, 'Real-time'],
    ], { defaultValue: 0 }),
    choice('workflow', 'statecode', 'Status', [
      [0, 'Draft'],
      [1, 'Activated'],
    ], { type: 'state', defaultValue: 0, requiredLevel: 'SystemRequired' }),
    choice('workflow', 'statuscode', 'Status Reason', [
      [1, 'Draft', 0],
      [2, 'Activated', 1],
    ], { type: 'status', defaultValue: 1 }),
    whole('rank', 'Rank', { description: 'Processes started by the same record event run one after another in ascending rank, then name. Empty: 0.' }),
    yesNo('triggeroncreate', 'Trigger On Create', { defaultValue: false }),
    memo('triggeronupdateattributelist', 'Trigger On Update Attribute List', 10000, {
      description: 'Comma-separated column logical names: an update that writes any of them starts the process (statecode: on state change).',
    }),
    yesNo('triggerondelete', 'Trigger On Delete', { defaultValue: false }),
    memo('ccs_steps', 'Steps', 1048576, { description: 'The steps, as a JSON array (docs/workflows.md).' }),
    whole('ccs_maxattempts', 'Maximum Attempts', { minValue: 1, maxValue: 10, description: 'Attempts of a failing run before it ends Failed. Empty: 3.' }),
  ],
  alternateKeys: [{ name: 'ccs_workflownamekey', columns: ['name'] }],
  indexes: [['primaryentity', 'statecode']],
};

export const asyncoperation: TableDef = {
  logicalName: 'asyncoperation',
  schemaName: 'AsyncOperation',
  entitySetName: 'asyncoperations',
  displayName: 'System Job',
  displayCollectionName: 'System Jobs',
  description: 'A run of a background process: its state, attempts, outcome and step log. The queue of pending runs.',
  primaryIdAttribute: 'asyncoperationid',
  primaryNameAttribute: 'name',
  columns: [
    text('name', 'System Job Name', 256),
    choice('asyncoperation', 'operationtype', 'System Job Type', [[10, 'Workflow']], { defaultValue: 10 }),
    coreLookup('workflowactivationid', 'Process', 'workflow', 'Workflow_AsyncOperations', { description: 'The process this run belongs to.' }),
    {
      logicalName: 'regardingobjectid', displayName: 'Regarding', type: 'polymorphic', targets: ['*'],
      description: 'The record whose event started the run.',
    },
    choice('asyncoperation', 'statecode', 'Status', [
      [0, 'Ready'],
      [1, 'Suspended'],
      [2, 'Locked'],
      [3, 'Completed'],
    ], { type: 'state', defaultValue: 0, requiredLevel: 'SystemRequired' }),
    choice('asyncoperation', 'statuscode', 'Status Reason', [
      [0, 'Waiting For Resources', 0],
      [10, 'Waiting', 1],
      [20, 'In Progress', 2],
      [30, 'Succeeded', 3],
      [31, 'Failed', 3],
      [32, 'Canceled', 3],
    ], { type: 'status', defaultValue: 0 }),
    dateTime('startedon', 'Started On', { description: 'When the current (last) attempt started.' }),
    dateTime('completedon', 'Completed On'),
    dateTime('postponeuntil', 'Postpone Until', { description: 'When the next attempt is due, while waiting to retry.' }),
    whole('retrycount', 'Retry Count', { minValue: 0 }),
    whole('errorcode', 'Error Code'),
    memo('message', 'Message', 100000),
    memo('friendlymessage', 'Friendly Message', 100000),
    guid('correlationid', 'Correlation Id', { description: 'Shared by the runs one record event started.' }),
    { logicalName: 'sequence', displayName: 'Sequence', type: 'bigint', description: 'Order in which runs were submitted.' },
    text('hostid', 'Host', 100, { description: 'The node that took the run\'s current attempt.' }),
    whole('depth', 'Depth', { description: 'How many runs led to the record event that started this one.' }),
    choice('asyncoperation', 'ccs_triggerevent', 'Trigger Event', [
      [192350000, 'Create'],
      [192350001, 'Update'],
      [192350002, 'Delete'],
    ]),
    memo('ccs_steplog', 'Step Log', 1048576, { description: 'JSON: one entry per executed step with its output or error.' }),
    {
      logicalName: 'ccs_eventsequence', displayName: 'Event Sequence', type: 'bigint',
      description: 'The sequence number of the durable record event that started the run: with the process, unique, so a replayed event starts no second run.',
    },
  ],
  alternateKeys: [{ name: 'ccs_asyncoperation_event', columns: ['ccs_eventsequence', 'workflowactivationid'] }],
  indexes: [['statecode', 'sequence'], ['correlationid']],
};

export const workflowTables: readonly TableDef[] = [workflow, asyncoperation];

/** The shipped workflows' fixed ids. */
export const WORKFLOW_IDS = {
  parentIoTAlerts: 'c3a1d6e2-5b7f-4e0a-9d21-6f3b8a4c0e01',
  createCaseFromAlert: 'c3a1d6e2-5b7f-4e0a-9d21-6f3b8a4c0e02',
  pullDeviceDataOnAlert: 'c3a1d6e2-5b7f-4e0a-9d21-6f3b8a4c0e03',
} as const;

const steps = (value: unknown) => JSON.stringify(value, null, 2);
const draft = { statecode: 0, statuscode: 1 };
const activated = { statecode: 1, statuscode: 2 };
const common = { primaryentity: 'msdyn_iotalert', category: 0, mode: 0, triggeroncreate: true, triggerondelete: false, ccs_maxattempts: 3 };

/**
 * Microsoft's "IoT - Parent IoT Alerts" (on by default, 60 s, ms-connected-service.md §3.1), and two of ours, off by
 * default, for what Microsoft leaves to Power Automate (§4.4): a case for alerts of devices that have an account, and
 * the automatic device data pull on alerts (§1.2 step 4).
 */
export const workflowSeedRows: readonly SeedRow[] = [
  {
    table: 'workflow',
    id: WORKFLOW_IDS.parentIoTAlerts,
    row: {
      ...common,
      ...activated,
      name: 'IoT - Parent IoT Alerts',
      description: 'Groups alerts of the same device (or of the IoT Settings aggregation rule) raised within 60 seconds under the first one.',
      rank: 1,
      ccs_steps: steps([{ action: 'msdyn_ParentIoTAlerts', bound: true, parameters: { TimespanSeconds: 60 } }]),
    },
  },
  {
    table: 'workflow',
    id: WORKFLOW_IDS.createCaseFromAlert,
    row: {
      ...common,
      ...draft,
      name: 'IoT - Create case from alert',
      description: 'Opens a case with origin IoT for the account of the alert\'s device; alerts grouped under a parent add a note to its case.',
      rank: 2,
      ccs_steps: steps([
        {
          condition: { op: 'notnull', value: { $record: 'msdyn_device.msdyn_account' } },
          then: [{ action: 'ccs_CreateCaseFromIoTAlert', bound: true, as: 'case' }],
        },
      ]),
    },
  },
  {
    table: 'workflow',
    id: WORKFLOW_IDS.pullDeviceDataOnAlert,
    row: {
      ...common,
      ...draft,
      name: 'IoT - Pull device data on alert',
      description: 'Pulls the connection state and reported properties of the alert\'s device from the hub.',
      rank: 3,
      ccs_steps: steps([
        {
          condition: { op: 'notnull', value: { $record: 'msdyn_device' } },
          then: [{ action: 'msdyn_PullDataForIoTDevice', parameters: { IoTDeviceIds: { $record: 'msdyn_device' } } }],
        },
      ]),
    },
  },
];
