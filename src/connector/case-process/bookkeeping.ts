/**
 * Keeps an alert and its process instance in step. Dataverse mirrors a business process flow's active stage on the
 * primary record (`processid`, `stageid`, `traversedpath` on msdyn_iotalert) and on the instance
 * (`activestageid`, `traversedpath`); either side may be moved by a client, and ccs writes the other to match. All
 * decisions for one alert run under one lock, in the caller's transaction, so every writer sees the last one's result.
 */
import { CcsError } from '../../errors/index.js';
import { formatDateTime } from '../../metadata/index.js';
import type { InputValues, RecordContext, RecordsService } from '../../records/index.js';
import { eq, type Queryable, type Row, type Transaction } from '../../store/index.js';
import { ACTIVE, ALERT, ALERT_ID, PARENT, PARENT_TOKEN } from '../alerts.js';
import { CREATE_CASE, CREATED, pathTo, PROCESS_ID, PROCESS_NAME, RESOLVE, stageId, stageIndex } from './stages.js';

export const INSTANCE = 'msdyn_iottocaseprocess';
export const INSTANCE_ID = 'businessprocessflowinstanceid';
export const INSTANCE_ALERT = 'bpf_msdyn_iotalertid';
export const INSTANCE_CASE = 'bpf_incidentid';
export const CASE = 'msdyn_case';
const INACTIVE = 1;
const ALERT_COLUMNS = [ALERT_ID, 'processid', 'stageid', 'traversedpath', CASE, PARENT, PARENT_TOKEN, 'statecode'];
const INSTANCE_COLUMNS = [INSTANCE_ID, INSTANCE_ALERT, INSTANCE_CASE, 'activestageid', 'traversedpath', 'processid', 'statecode', 'createdon'];

export interface ProcessChange {
  /** Whose stage wins when the two sides differ: the side a client just moved. Default the alert's. */
  readonly source?: 'alert' | 'instance';
  /**
   * Start the process for an active alert that is not in it yet and is top-level — now, or (`createdTopLevel`) when it
   * was created: debouncing may give it a parent before this runs, and the alert still started its own process.
   */
  readonly start?: boolean;
  readonly createdTopLevel?: boolean;
  /** The alert's case: linked to the alert when it has none, and the process moves to Create Case at least. */
  readonly incidentId?: string;
  /** Link `incidentId` even when the alert names another case (one that no longer exists). */
  readonly replaceCase?: boolean;
  /** The case is resolved: the alert is deactivated and its process finishes at Resolve. */
  readonly finish?: boolean;
}

export interface ProcessOutcome {
  /** The active stage afterwards, or undefined when the alert is not in the process. */
  readonly stage?: number;
  /** The stage before, -1 for a process started now. */
  readonly previous?: number;
  readonly incidentId?: string;
}

/**
 * Runs `fn` again when it fails because another writer changed a record between its read and its write (the
 * records service refuses such a write with VersionMismatch). `fn` must run in a transaction of its own, so a failed
 * attempt left nothing behind.
 */
export async function retryOnVersionMismatch<T>(fn: () => Promise<T>, attempts = 8): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof CcsError && e.code === 'VersionMismatch') || i >= attempts) throw e;
      await new Promise((r) => setTimeout(r, Math.random() * 10 * i));
    }
  }
}

export function processLock(alertId: string): string {
  return `ccs-case-process:${alertId}`;
}

/** The alert's process instance: the active one, else the latest. */
export async function instanceOf(db: Queryable, alertId: string): Promise<Row | undefined> {
  const rows = await db.select({ table: INSTANCE, columns: INSTANCE_COLUMNS, where: eq(INSTANCE_ALERT, alertId) });
  return rows.sort((a, b) => Number(a['statecode']) - Number(b['statecode']) || Number(b['createdon']) - Number(a['createdon']))[0];
}

function isTopLevel(alert: Row): boolean {
  return alert[PARENT] == null && (alert[PARENT_TOKEN] == null || alert[PARENT_TOKEN] === '');
}

/** The writes that bring an alert and its process instance to one stage; empty when they already agree. */
interface ProcessPlan {
  readonly outcome: ProcessOutcome;
  readonly alertPatch: InputValues;
  /** The instance to create, or the patch of the existing one (`id`). */
  readonly instance?: { readonly create: InputValues } | { readonly id: string; readonly patch: InputValues };
}

/** Whether carrying out `plan` writes anything. */
function writes(plan: ProcessPlan): boolean {
  const i = plan.instance;
  return Object.keys(plan.alertPatch).length > 0 || (i !== undefined && ('create' in i || Object.keys(i.patch).length > 0));
}

/** Decides what `change` means for an alert as stored and its instance: a pure function of what was read. */
function planProcess(alert: Row, instance: Row | undefined, change: ProcessChange, now: number): ProcessPlan {
  const linked = (row: Row | undefined, column: string) => (typeof row?.[column] === 'string' ? (row[column] as string) : undefined);
  // An alert keeps the case it has; another incident naming the alert does not take it over.
  const incidentId = (change.replaceCase ? change.incidentId : undefined)
    ?? linked(alert, CASE)
    ?? change.incidentId
    ?? (instance && Number(instance['statecode']) === ACTIVE ? linked(instance, INSTANCE_CASE) : undefined);
  const alertPatch: Record<string, unknown> = {};
  if (incidentId && alert[CASE] !== incidentId) alertPatch[CASE] = incidentId;
  const alertActive = Number(alert['statecode']) === ACTIVE;
  if (change.finish && alertActive) Object.assign(alertPatch, { statecode: 1, statuscode: 2 });

  let previous: number;
  if (!instance && change.start && alertActive && (change.createdTopLevel || isTopLevel(alert)) && alert['processid'] == null) {
    previous = -1;
  } else if (!instance || Number(instance['statecode']) !== ACTIVE) {
    // Not in the process, or its process is over: only the case link and the state change.
    return { outcome: { incidentId }, alertPatch };
  } else {
    const alertStage = stageIndex(alert['stageid']);
    const instanceStage = stageIndex(instance['activestageid']);
    previous = change.source === 'instance' ? (instanceStage >= 0 ? instanceStage : alertStage) : alertStage >= 0 ? alertStage : instanceStage;
    if (previous < 0) previous = CREATED;
  }
  let stage = Math.max(previous, CREATED);
  if (incidentId && stage < CREATE_CASE) stage = CREATE_CASE;
  if (change.finish) stage = RESOLVE;
  const path = pathTo(stage);
  const outcome = { stage, previous, incidentId };

  if (alert['processid'] !== PROCESS_ID) alertPatch['processid'] = PROCESS_ID;
  if (alert['stageid'] !== stageId(stage)) alertPatch['stageid'] = stageId(stage);
  if (alert['traversedpath'] !== path) alertPatch['traversedpath'] = path;

  const at = formatDateTime(now);
  if (!instance) {
    const create: InputValues = {
      bpf_name: PROCESS_NAME,
      [INSTANCE_ALERT]: alert[ALERT_ID] as string,
      activestageid: stageId(stage),
      activestagestartedon: at,
      traversedpath: path,
      processid: PROCESS_ID,
      ...(incidentId ? { [INSTANCE_CASE]: incidentId } : {}),
      ...(change.finish ? { statecode: INACTIVE, statuscode: 2, completedon: at } : {}),
    };
    return { outcome, alertPatch, instance: { create } };
  }
  const patch: InputValues = {
    ...(instance['activestageid'] !== stageId(stage) ? { activestageid: stageId(stage), activestagestartedon: at } : {}),
    ...(instance['traversedpath'] !== path ? { traversedpath: path } : {}),
    ...(instance['processid'] !== PROCESS_ID ? { processid: PROCESS_ID } : {}),
    ...(incidentId && instance[INSTANCE_CASE] !== incidentId ? { [INSTANCE_CASE]: incidentId } : {}),
    ...(change.finish ? { statecode: INACTIVE, statuscode: 2, completedon: at } : {}),
  };
  return { outcome, alertPatch, instance: { id: String(instance[INSTANCE_ID]), patch } };
}

/**
 * Whether `change` would write anything, from what is committed now (no lock, no transaction). Work that record
 * events start is mostly the echo of this process's own writes; telling so from a read is much cheaper than a
 * transaction. Safe because an event is published after its write committed: the read sees at least that write,
 * and any later write raises an event of its own. Undefined when the alert does not exist.
 */
export async function processNeedsSync(records: RecordsService, rc: RecordContext, alertId: string, change: ProcessChange, now: number): Promise<ProcessOutcome | undefined | 'sync'> {
  const alert = await records.retrieve(rc, ALERT, alertId, ALERT_COLUMNS);
  if (!alert) return undefined;
  const plan = planProcess(alert, await instanceOf(rc.db, alertId), change, now);
  return writes(plan) ? 'sync' : plan.outcome;
}

/**
 * Brings alert `alertId` and its process instance to one stage after `change`; writes only what differs. Returns
 * undefined when the alert does not exist.
 */
export async function syncProcess(
  records: RecordsService,
  rc: RecordContext,
  tx: Transaction,
  alertId: string,
  change: ProcessChange,
  now: number,
): Promise<ProcessOutcome | undefined> {
  await tx.lock(processLock(alertId));
  const alert = await records.retrieve(rc, ALERT, alertId, ALERT_COLUMNS);
  if (!alert) return undefined;
  const plan = planProcess(alert, await instanceOf(tx, alertId), change, now);
  if (Object.keys(plan.alertPatch).length > 0) await records.update(rc, ALERT, alertId, plan.alertPatch);
  const i = plan.instance;
  if (i && 'create' in i) await records.create(rc, INSTANCE, i.create);
  else if (i && Object.keys(i.patch).length > 0) await records.update(rc, INSTANCE, i.id, i.patch);
  return plan.outcome;
}
