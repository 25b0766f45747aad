/**
 * The "IoT Alert to Case Process" business process flow (ms-connected-service.md §2.14, §4.2): Created → Create Case
 * → Identify → Research → Resolve, one instance (`msdyn_iottocaseprocess`) per top-level alert.
 *
 * - A new top-level alert (created with no parent alert and no parent token) starts an instance at Created, even when
 *   debouncing makes it a child a moment later; the alert's `processid`, `stageid` and `traversedpath` mirror the
 *   instance's stage. An alert created as a child has no process of its own: its parent's case is its case.
 * - A client moves the process by PATCHing the instance's `activestageid` or the alert's `stageid`: validators
 *   refuse unknown stages and skips with a 400 before anything is stored (./stages.ts), and the other side follows.
 *   A plain PATCH is all a client needs (the stage bar of Dataverse does the same), so there is no stage action.
 * - Entering Create Case makes the case with `ccs_CreateCaseFromIoTAlert`'s code when the alert has none; a failure
 *   (no customer) is logged and the process waits at Create Case, where the action can be called.
 * - A case made or linked for the alert (the action, `msdyn_case` set, or an incident created with `msdyn_iotalert`)
 *   moves the process to Create Case at least.
 * - Resolving a case (incident statecode 1) deactivates its alerts and their children (statecode 1, statuscode 2)
 *   and finishes their processes at Resolve (instance statecode 1, statuscode 2 Finished).
 *
 * An alert created inside a transaction (the rules pipeline writes alerts in one) enters the process in it, through
 * a create hook. Otherwise record events drive the work, one alert at a time in this process and under a per-alert
 * lock across processes; the work an event starts is first decided from a read, and skipped when there is none.
 * Events are not durable, so on start a sweep catches up: active top-level alerts without a process get one, and
 * active alerts whose case is resolved are finished.
 */
import type { Row } from '../../store/index.js';
import { and, compare, eq, isIn, ne } from '../../store/index.js';
import { chunks } from '../../store/index.js';
import { CcsError } from '../../errors/index.js';
import { lookupTypeColumn } from '../../metadata/index.js';
import type { RecordContext, RecordEvent } from '../../records/index.js';
import { caseForAlert } from '../actions/create-case-from-alert.js';
import { ACTIVE, ALERT, ALERT_ID, PARENT, PARENT_TOKEN } from '../alerts.js';
import type { ProcessDeps, StopProcess } from '../process-deps.js';
import { withTransaction } from '../transaction.js';
import {
  CASE,
  INSTANCE,
  INSTANCE_ALERT,
  INSTANCE_CASE,
  INSTANCE_ID,
  processNeedsSync,
  retryOnVersionMismatch,
  syncProcess,
  type ProcessChange,
} from './bookkeeping.js';
import { checkStage, CREATE_CASE } from './stages.js';

export { checkStage, CREATE_CASE, CREATED, IDENTIFY, PROCESS_ID, RESOLVE, STAGES, pathTo, stageIndex } from './stages.js';
export { syncProcess, type ProcessChange, type ProcessOutcome } from './bookkeeping.js';

const INCIDENT = 'incident';
const RESOLVED = 1;
const PAGE = 200;
const STARTED_IN_CREATE_MAX = 10_000;
const ALERT_SIDE = new Set(['stageid', 'traversedpath', 'processid', CASE]);
const INSTANCE_SIDE = new Set(['activestageid', 'traversedpath', 'processid', INSTANCE_CASE, INSTANCE_ALERT]);

/** Created without a parent (or its token): a top-level alert, whatever debouncing does to it afterwards. */
function isCreatedTopLevel(columns: readonly string[]): boolean {
  return !columns.includes(PARENT) && !columns.includes(PARENT_TOKEN);
}

export function startCaseProcess(deps: ProcessDeps): StopProcess {
  const { records, system, store, log, clock } = deps;
  /** The platform, under a principal of this process's own: the events of its own writes are recognised and skipped. */
  const self: RecordContext = { ...system, principal: { ...system.principal } };
  /** Alerts whose process the create hook started: their created event has nothing left to do. */
  const startedInCreate = new Set<string>();
  let stopping = false;
  /** Work per key (an alert, or an incident being resolved), chained so one key's work runs in order. */
  const chains = new Map<string, Promise<void>>();

  const removers = [
    records.addValidator(ALERT, (row) =>
      checkStage({
        table: ALERT, stageColumn: 'stageid', requireProcessId: true, id: row[ALERT_ID], stage: row['stageid'], path: row['traversedpath'],
        processId: row['processid'], hasCase: row[CASE] != null, active: Number(row['statecode'] ?? ACTIVE) === ACTIVE,
      }), [ALERT_ID, 'stageid', 'traversedpath', 'processid', CASE, 'statecode']),
    records.addValidator(INSTANCE, (row) => {
      if (row[INSTANCE_ALERT] == null) throw new CcsError('RequiredValueMissing', `A value for the required column '${INSTANCE_ALERT}' is missing.`);
      checkStage({
        table: INSTANCE, stageColumn: 'activestageid', id: row[INSTANCE_ID], stage: row['activestageid'], path: row['traversedpath'],
        processId: row['processid'], hasCase: row[INSTANCE_CASE] != null, active: Number(row['statecode'] ?? ACTIVE) === ACTIVE,
      });
    }, [INSTANCE_ALERT, INSTANCE_ID, 'activestageid', 'traversedpath', 'processid', INSTANCE_CASE, 'statecode']),
    // An alert created in a transaction (the rules pipeline's, a $batch change set) enters its process in it: one
    // commit, and no moment when the new alert has no stage. The event below then finds nothing left to do.
    records.addCreateHook(ALERT, async (rc, id, columns) => {
      await syncProcess(records, { ...rc, principal: self.principal }, rc.db, id, { start: true, createdTopLevel: isCreatedTopLevel(columns) }, clock());
      // A create rolled back later leaves its id here: forgotten with the rest once there are many.
      if (startedInCreate.size >= STARTED_IN_CREATE_MAX) startedInCreate.clear();
      startedInCreate.add(id);
    }),
    // Dataverse derives objecttypecode from objectid; a client that sends both must agree with itself.
    records.addValidator('annotation', (row) => {
      const type = row[lookupTypeColumn('objectid')];
      const code = row['objecttypecode'];
      if (typeof code === 'string' && typeof type === 'string' && code.toLowerCase() !== type) {
        throw new CcsError('InvalidValue', `'objecttypecode' is '${code}' but 'objectid' refers to a '${type}' record.`);
      }
    }),
  ];

  function enqueue(key: string, work: () => Promise<void>): Promise<void> {
    if (stopping) return Promise.resolve();
    const previous = chains.get(key) ?? Promise.resolve();
    const next = previous
      .then(work)
      .catch((err: unknown) => {
        if (!stopping) log.error({ err, key }, 'the IoT Alert to Case process failed to update a record');
      })
      .finally(() => {
        if (chains.get(key) === next) chains.delete(key);
      });
    chains.set(key, next);
    return next;
  }

  async function sync(alertId: string, change: ProcessChange): Promise<void> {
    const known = await processNeedsSync(records, self, alertId, change, clock());
    const outcome = known !== 'sync' ? known : await retryOnVersionMismatch(() =>
      withTransaction({ store, records }, self, (rc, tx) => syncProcess(records, rc, tx, alertId, change, clock())));
    if (outcome?.stage === CREATE_CASE && !outcome.incidentId && !change.finish) {
      try {
        await caseForAlert({ store, records, clock }, self, alertId);
      } catch (e) {
        if (!(e instanceof CcsError) || e.code === 'VersionMismatch') throw e;
        log.warn({ err: e, alert: alertId }, 'the case for an IoT alert entering Create Case could not be created');
      }
    }
  }

  const alertTask = (alertId: string, change: ProcessChange): Promise<void> => enqueue(`alert:${alertId}`, () => sync(alertId, change));

  async function fromInstance(instanceId: string): Promise<void> {
    const row = await records.retrieve(system, INSTANCE, instanceId, [INSTANCE_ALERT]);
    const alertId = row?.[INSTANCE_ALERT];
    if (typeof alertId === 'string') void alertTask(alertId, { source: 'instance' });
  }

  async function fromIncident(incidentId: string, columns: readonly string[]): Promise<void> {
    const incident = await records.retrieve(system, INCIDENT, incidentId, ['msdyn_iotalert', 'statecode']);
    if (!incident) return;
    const alertId = incident['msdyn_iotalert'];
    if (typeof alertId === 'string' && columns.includes('msdyn_iotalert')) void alertTask(alertId, { incidentId });
    if (columns.includes('statecode') && Number(incident['statecode']) === RESOLVED) await resolve(incidentId, typeof alertId === 'string' ? alertId : undefined);
  }

  /** Deactivates the alerts of a resolved case, and the children of those alerts, finishing their processes. */
  async function resolve(incidentId: string, sourceAlert: string | undefined): Promise<void> {
    const ids = new Set<string>();
    for (const r of await records.query(system, ALERT, { columns: [ALERT_ID], where: eq(CASE, incidentId) })) ids.add(String(r[ALERT_ID]));
    // The alert that opened the case, unless it has moved on to another case.
    if (sourceAlert) {
      const source = await records.retrieve(system, ALERT, sourceAlert, [CASE]);
      if (source && (source[CASE] == null || source[CASE] === incidentId)) ids.add(sourceAlert);
    }
    for (const part of chunks([...ids])) {
      const children = await records.query(system, ALERT, { columns: [ALERT_ID, CASE], where: and(isIn(PARENT, part), eq('statecode', ACTIVE)) });
      // A child on another case keeps it; its own case decides its fate.
      for (const c of children) if (c[CASE] == null || c[CASE] === incidentId) ids.add(String(c[ALERT_ID]));
    }
    await Promise.all([...ids].map((id) => alertTask(id, { finish: true, incidentId })));
  }

  const off = records.onEvent((e: RecordEvent) => {
    // Its own writes keep an alert and its instance in step already: the echo would find nothing to do.
    if (e.principal === self.principal) return;
    if (e.table === ALERT) {
      if (e.type === 'created') {
        if (!startedInCreate.delete(e.id)) void alertTask(e.id, { start: true, createdTopLevel: isCreatedTopLevel(e.columns) });
      }
      else if (e.type === 'updated' && e.columns.some((c) => ALERT_SIDE.has(c))) void alertTask(e.id, { source: 'alert' });
    } else if (e.table === INSTANCE) {
      if (e.type !== 'deleted' && e.columns.some((c) => INSTANCE_SIDE.has(c))) void enqueue(`instance:${e.id}`, () => fromInstance(e.id));
    } else if (e.table === INCIDENT && e.type !== 'deleted') {
      if (e.columns.includes('msdyn_iotalert') || e.columns.includes('statecode')) void enqueue(`incident:${e.id}`, () => fromIncident(e.id, e.columns));
    }
  });

  /** Catches up with what happened while no process was listening. */
  async function sweep(): Promise<void> {
    let after = '';
    for (;;) {
      const rows = await records.query(system, ALERT, {
        columns: [ALERT_ID],
        where: and(eq('statecode', ACTIVE), eq('processid', null), eq(PARENT, null), compare(ALERT_ID, 'gt', after)),
        orderBy: [{ column: ALERT_ID }],
        limit: PAGE,
      });
      if (stopping || rows.length === 0) break;
      // A page at a time, so a large backlog does not queue up in memory.
      await Promise.all(rows.map((r) => alertTask(String(r[ALERT_ID]), { start: true })));
      after = String(rows[rows.length - 1]![ALERT_ID]);
    }
    after = '';
    for (;;) {
      const rows: Row[] = await records.query(system, ALERT, {
        columns: [ALERT_ID, CASE],
        where: and(eq('statecode', ACTIVE), ne(CASE, null), compare(ALERT_ID, 'gt', after)),
        orderBy: [{ column: ALERT_ID }],
        limit: PAGE,
      });
      if (stopping || rows.length === 0) break;
      const cases = [...new Set(rows.map((r) => String(r[CASE])))];
      const resolved = await records.query(system, INCIDENT, { columns: ['incidentid'], where: and(isIn('incidentid', cases), eq('statecode', RESOLVED)) });
      await Promise.all(resolved.map((i) => enqueue(`incident:${String(i['incidentid'])}`, () => resolve(String(i['incidentid']), undefined))));
      after = String(rows[rows.length - 1]![ALERT_ID]);
    }
  }
  const swept = sweep().catch((err: unknown) => {
    if (!stopping) log.error({ err }, 'the IoT Alert to Case process could not catch up on start');
  });

  return async () => {
    stopping = true;
    off();
    for (const remove of removers) remove();
    await swept;
    // Work queued while draining is dropped (stopping), so this ends.
    while (chains.size > 0) await Promise.allSettled([...chains.values()]);
  };
}
