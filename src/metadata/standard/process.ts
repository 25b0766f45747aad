/**
 * Notes and the "IoT Alert to Case Process" business process flow (ms-connected-service.md §2.14, §4.2).
 *
 * Dataverse keeps a business process flow as a `workflow` row (category 4) with its stages in `processstage`, and
 * one row per running instance in a table of its own named after the flow (`msdyn_iottocaseprocess`). ccs seeds the
 * stages under the flow's id and keeps instances in that table, with Dataverse's column names; the behaviour (stage
 * moves, case creation, finishing) lives in src/connector/case-process.
 */
import type { TableDef } from '../types.js';
import type { SeedRow } from './index.js';
import { choice, coreLookup, dateTime, guid, memo, text, whole, yesNo } from './columns.js';

/** `annotation` (Note): text and attachments on a record. Only the columns ccs writes and clients commonly read. */
export const annotation: TableDef = {
  logicalName: 'annotation',
  schemaName: 'Annotation',
  entitySetName: 'annotations',
  displayName: 'Note',
  displayCollectionName: 'Notes',
  description: 'Note that is attached to one or more objects, including other notes.',
  primaryIdAttribute: 'annotationid',
  primaryNameAttribute: 'subject',
  columns: [
    text('subject', 'Title', 500),
    memo('notetext', 'Description', 100000),
    {
      logicalName: 'objectid',
      displayName: 'Regarding',
      type: 'polymorphic',
      targets: ['incident', 'msdyn_iotalert', 'msdyn_iotdevice', 'account'],
      description: 'Unique identifier of the object with which the note is associated.',
    },
    // Dataverse fills this from objectid; here a client may send it, and ccs refuses a value that disagrees.
    text('objecttypecode', 'Object Type', 100, { description: 'Type of entity with which the note is associated.' }),
    text('filename', 'File Name', 255),
    yesNo('isdocument', 'Is Document', { trueLabel: 'Attachment', falseLabel: 'Note', defaultValue: false }),
  ],
};

/** The flow's id and unique name (Microsoft's: ms-connected-service.md §2.14). */
export const IOT_TO_CASE_PROCESS_ID = '006c4c42-2abe-4b61-9149-56df5b9625f9';
export const IOT_TO_CASE_PROCESS = 'msdyn_iottocaseprocess';

/** The five stages, in order (§4.2). Ids are ours and fixed, so every instance names the same rows. */
export const IOT_TO_CASE_STAGES = [
  { id: '512e59be-dd0d-4645-bb6e-7c65fbf9a602', name: 'Created', category: null, table: 'msdyn_iotalert' },
  { id: '487ea329-da6f-41f3-a4bc-a05325791090', name: 'Create Case', category: null, table: 'msdyn_iotalert' },
  { id: 'a9c9f913-5adb-4242-a1c6-2b33a03ee839', name: 'Identify', category: 4, table: 'incident' },
  { id: 'efcdc6f0-30e3-4d0b-8ac6-cb236a6ef320', name: 'Research', category: 5, table: 'incident' },
  { id: '0fbfa351-7f23-4937-aea7-168f922b546e', name: 'Resolve', category: 6, table: 'incident' },
] as const;

export const processstage: TableDef = {
  logicalName: 'processstage',
  schemaName: 'ProcessStage',
  entitySetName: 'processstages',
  displayName: 'Process Stage',
  displayCollectionName: 'Process Stages',
  description: 'Stage associated with a process.',
  primaryIdAttribute: 'processstageid',
  primaryNameAttribute: 'stagename',
  ownership: 'None',
  columns: [
    text('stagename', 'Stage Name', 100),
    // Dataverse's global option set processstage_category.
    choice('processstage', 'stagecategory', 'Stage Category', [
      [0, 'Qualify'],
      [1, 'Develop'],
      [2, 'Propose'],
      [3, 'Close'],
      [4, 'Identify'],
      [5, 'Research'],
      [6, 'Resolve'],
      [7, 'Approval'],
    ], { optionSetName: 'processstage_category' }),
    // A lookup to `workflow` in Dataverse; a plain id here, so the stages do not depend on how flows are stored.
    guid('processid', 'Process', { description: 'Unique identifier of the process.' }),
    text('primaryentitytypecode', 'Primary Entity', 100, { description: 'Logical name of the table the stage works on.' }),
    whole('ccs_order', 'Order', { minValue: 0, maxValue: 1000, description: 'Position of the stage in its process, from 0.' }),
  ],
  indexes: [['processid', 'ccs_order']],
};

export const msdyn_iottocaseprocess: TableDef = {
  logicalName: 'msdyn_iottocaseprocess',
  schemaName: 'msdyn_iottocaseprocess',
  entitySetName: 'msdyn_iottocaseprocesses',
  displayName: 'IoT Alert to Case Process',
  displayCollectionName: 'IoT Alert to Case Process',
  description: 'Base entity for process IoT Alert to Case Process',
  primaryIdAttribute: 'businessprocessflowinstanceid',
  primaryNameAttribute: 'bpf_name',
  columns: [
    text('bpf_name', 'Name', 200, { requiredLevel: 'ApplicationRequired' }),
    coreLookup('bpf_msdyn_iotalertid', 'IoT Alert', 'msdyn_iotalert', 'bpf_msdyn_iotalert_msdyn_iottocaseprocess', {
      description: 'Unique identifier for IoT Alert associated with IoT Alert to Case Process.',
    }),
    coreLookup('bpf_incidentid', 'Case', 'incident', 'bpf_incident_msdyn_iottocaseprocess', {
      description: 'Unique identifier for Case associated with IoT Alert to Case Process.',
    }),
    coreLookup('activestageid', 'Active Stage', 'processstage', 'lk_msdyn_iottocaseprocess_activestageid', {
      description: 'Unique identifier of the active stage for the Business Process Flow instance.',
    }),
    dateTime('activestagestartedon', 'Active Stage Started On'),
    dateTime('completedon', 'Completed On'),
    guid('processid', 'Process', { description: 'Unique identifier of the Business Process Flow.' }),
    text('traversedpath', 'Traversed Path', 1250, { description: 'Comma-delimited ids of the stages visited.' }),
    choice('msdyn_iottocaseprocess', 'statecode', 'Status', [
      [0, 'Active'],
      [1, 'Inactive'],
    ], { type: 'state', defaultValue: 0 }),
    choice('msdyn_iottocaseprocess', 'statuscode', 'Status Reason', [
      [1, 'Active', 0],
      [2, 'Finished', 1],
      [3, 'Aborted', 1],
    ], { type: 'status', defaultValue: 1 }),
  ],
};

export const processTables: readonly TableDef[] = [annotation, processstage, msdyn_iottocaseprocess];

export const processSeedRows: readonly SeedRow[] = IOT_TO_CASE_STAGES.map((s, order) => ({
  table: 'processstage',
  id: s.id,
  row: { stagename: s.name, stagecategory: s.category, processid: IOT_TO_CASE_PROCESS_ID, primaryentitytypecode: s.table, ccs_order: order },
}));
