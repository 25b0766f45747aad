/**
 * The workflow engine. Record events start the active workflows of their table whose trigger matches; each start is
 * a run, stored as an `asyncoperation` row before anything executes, so the run table is the durable queue: runs a
 * stopped process left waiting or in progress are picked up again on the next start.
 *
 * Events come from the durable consumer `workflows` (RecordsService.consume): every committed record write reaches
 * the engine at least once, also after a crash between the write and its runs, and in scale-out wherever the record
 * was written — one node (the consumer's lease holder) turns the events into runs and executes them. A run names its
 * event (`ccs_eventsequence`, unique with the workflow), so an event handed over again starts no second run.
 *
 * Order: the runs one record event starts execute one after another in rank order (the parent workflow has parented
 * an alert before the case workflow looks at it), and the runs of one record execute in the order of its events.
 * Runs of different records execute concurrently, a few at a time. A failing run waits (with growing delays) and is
 * attempted again, up to the workflow's `ccs_maxattempts`; the record's later runs wait for it.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { CcsError, ERRORS } from '../../errors/index.js';
import { formatDateTime, lookupTypeColumn, type Model } from '../../metadata/index.js';
import type { Counter } from '../../metrics/index.js';
import type { DurableRecordEvent, RecordContext, RecordEvent, RecordEventConsumer, RecordsService } from '../../records/index.js';
import type { Principal } from '../../security/index.js';
import { and, chunks, createGroupCommit, eq, isIn, ne, type GroupCommit, type Row, type Store } from '../../store/index.js';
import type { OperationRegistry } from '../../webapi/index.js';
import type { ProcessDeps } from '../process-deps.js';
import { recordColumns } from './evaluate.js';
import { runSteps, runsInOneTransaction, StepFailedError, type StepLogEntry } from './run-steps.js';
import { describeStep, parseAttributeList, parseSteps, type Step } from './steps.js';

export const WORKFLOW = 'workflow';
export const RUN = 'asyncoperation';
const WORKFLOW_ID = 'workflowid';
const RUN_ID = 'asyncoperationid';
/** asyncoperation.statuscode. */
export const RUN_STATUS = { waiting: 10, inProgress: 20, succeeded: 30, failed: 31, canceled: 32 } as const;
/** asyncoperation.statecode: Waiting (10) belongs to Suspended, as in Dataverse. */
const RUN_STATE_SUSPENDED = 1;
const RUN_COMPLETED = 3;
const OPERATION_WORKFLOW = 10;
const WORKFLOW_ACTIVATED = 1;
const CATEGORY_WORKFLOW = 0;
const TRIGGER_EVENT = { created: 192350000, updated: 192350001, deleted: 192350002 } as const;
export const DEFAULT_MAX_ATTEMPTS = 3;
/** Runs started by records a run wrote, started by records a run wrote…: a loop is cut at this depth (Dataverse: 8). */
export const MAX_DEPTH = 8;
/** ccs_steplog is a memo of 1,048,576 characters; older entries make way for newer ones. */
const MAX_LOG_CHARS = 1_000_000;
const MAX_MESSAGE_CHARS = 100_000;
/**
 * Scale-out: a node starting up cannot tell a run another node is executing from one a crashed node left In
 * Progress; it takes such a run over only once it has been in progress this long.
 */
const CLUSTER_TAKEOVER_MS = 10 * 60_000;
/** Scale-out: the list of active workflows is read again this often, besides after each workflow event. */
const CLUSTER_REFRESH_MS = 30_000;
/** The durable record event consumer's name: its checkpoint and lease are stored under it. */
export const WORKFLOW_CONSUMER = 'workflows';

export interface WorkflowEngineOptions {
  /** Records whose runs execute at the same time. */
  readonly concurrency?: number;
  /** Delay before the second attempt; each further one doubles it, up to `maxRetryDelayMs`. */
  readonly retryDelayMs?: number;
  readonly maxRetryDelayMs?: number;
}

interface ActiveWorkflow {
  readonly id: string;
  readonly name: string;
  readonly table: string;
  readonly rank: number;
  readonly onCreate: boolean;
  readonly onUpdate: ReadonlySet<string>;
  readonly onDelete: boolean;
  /** Its steps as the list was read; parsed once, when a run first needs them (null: they cannot run). */
  readonly stepsText: string | null;
  parsed?: { readonly steps: readonly Step[]; readonly recordColumns: readonly string[] } | null;
}

type Cache = ReadonlyMap<string, readonly ActiveWorkflow[]>;

/** The runs one event starts. */
interface Planned {
  readonly event: DurableRecordEvent;
  readonly workflows: readonly ActiveWorkflow[];
  readonly depth: number;
}
type Outcome = 'done' | { readonly retryInMs: number };

function num(v: unknown): number | undefined {
  if (v === null || v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

function clip(text: string, max = MAX_MESSAGE_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Dataverse reports error codes as signed 32-bit integers (0x80040217 → -2147220969). */
function errorCodeOf(e: unknown): number {
  const hex = e instanceof CcsError ? ERRORS[e.code].hex : ERRORS.Internal.hex;
  return Number.parseInt(hex, 16) | 0;
}

/** What a client reading the run may see: CcsError messages are for clients; anything else stays in the log. */
function publicMessage(e: unknown): string {
  return e instanceof CcsError ? e.message : 'An unexpected error occurred; the server log has the details.';
}

/** Whether a record event starts a workflow. Writing statuscode writes statecode too (the two move together). */
function triggers(w: ActiveWorkflow, e: Pick<RecordEvent, 'type' | 'columns'>): boolean {
  if (e.type === 'created') return w.onCreate;
  if (e.type === 'deleted') return w.onDelete;
  for (const c of e.columns) {
    const column = c.toLowerCase();
    if (w.onUpdate.has(column)) return true;
    if ((column === 'statuscode' && w.onUpdate.has('statecode')) || (column === 'statecode' && w.onUpdate.has('statuscode'))) return true;
  }
  return false;
}

export class WorkflowEngine {
  readonly #store: Store;
  readonly #records: RecordsService;
  readonly #system: RecordContext;
  readonly #operations: OperationRegistry;
  readonly #clock: () => number;
  readonly #log: Logger;
  /** This node's id in a scale-out installation; undefined when the process is alone with its store. */
  readonly #nodeId: string | undefined;
  readonly #runsCounter: Counter;
  readonly #concurrency: number;
  readonly #retryDelayMs: number;
  readonly #maxRetryDelayMs: number;

  /** Active workflows by table; replaced (as a promise, so events wait for it) whenever a workflow changes. */
  #cache: Promise<Cache> = Promise.resolve(new Map());
  #lastCache: Cache = new Map();
  /** The same active workflows by id. */
  #activeById = new Map<string, ActiveWorkflow>();
  /** Transactions of single-transaction runs, shared by the runs executing at once. */
  readonly #group: GroupCommit;
  /** Runs this process created and has not executed yet, as created: their first execution need not read them. */
  readonly #fresh = new Map<string, Row>();
  /** Resolves once the runs left by a previous process are queued; new runs queue behind them. */
  #resumed: Promise<void> = Promise.resolve();
  #consumer: RecordEventConsumer | undefined;
  /** Per record: its queued run ids, in order. */
  readonly #queues = new Map<string, string[]>();
  readonly #queued = new Set<string>();
  /** Records waiting for a worker; each record is here, running, or sleeping until a retry, never twice. */
  readonly #ready: string[] = [];
  readonly #scheduled = new Set<string>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #inflight = new Set<Promise<void>>();
  /** Runs a previous process left in progress: taken over on start, not mistaken for another worker's. */
  readonly #takeOver = new Set<string>();
  /** Unexpected failures (store down) per run, to space out attempts that never reach the run's row. */
  readonly #hiccups = new Map<string, number>();
  /** The principal of each executing run, for the depth of the runs its writes start. */
  readonly #depthOf = new WeakMap<Principal, number>();
  #active = 0;
  #sequence = 0;
  /** Times this process took the workflow consumer's lease. */
  #leases = 0;
  #stopping = false;
  #refreshTimer: NodeJS.Timeout | undefined;
  #removeValidator: (() => void) | undefined;

  constructor(deps: ProcessDeps, opts: WorkflowEngineOptions = {}) {
    this.#store = deps.store;
    this.#records = deps.records;
    this.#system = deps.system;
    this.#operations = deps.operations;
    this.#clock = deps.clock;
    this.#log = deps.log.child({ component: 'workflows' });
    this.#nodeId = deps.hub.nodeId;
    this.#runsCounter = deps.metrics.counter('ccs_workflow_runs_total', 'Workflow runs finished, by outcome.', ['outcome']);
    this.#concurrency = opts.concurrency ?? 4;
    this.#group = createGroupCommit(deps.store, { writers: 1 });
    this.#retryDelayMs = opts.retryDelayMs ?? 1000;
    this.#maxRetryDelayMs = opts.maxRetryDelayMs ?? 300_000;
  }

  get #model(): Model {
    return this.#records.model;
  }

  start(): void {
    this.#removeValidator = this.#records.addValidator(WORKFLOW, (row) => this.validate(row));
    this.#consumer = this.#records.consume(WORKFLOW_CONSUMER, (events) => this.#intake(events), { onLease: () => this.#onLease() });
    this.#cache = this.#loadCache();
    this.#resumed = this.#resume().catch((e) => this.#log.error({ err: e }, 'could not resume workflow runs'));
    if (this.#nodeId !== undefined) {
      this.#refreshTimer = setInterval(() => {
        this.#cache = this.#loadCache();
      }, CLUSTER_REFRESH_MS);
      this.#refreshTimer.unref();
    }
  }

  /**
   * Starts no further runs and waits for the running ones; queued runs stay in the table for the next start, and
   * record events not yet turned into runs (those the running ones raise too) stay in the event log.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#refreshTimer);
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    await this.#resumed;
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    await this.#consumer?.stop();
    this.#removeValidator?.();
  }

  /**
   * This process now turns events into runs. Workflow changes handled meanwhile by another process are read again;
   * after the first time (a takeover), the runs the previous holder left waiting are queued here too.
   */
  async #onLease(): Promise<void> {
    this.#cache = this.#loadCache();
    await this.#cache;
    if (this.#leases++ > 0 && !this.#stopping) {
      this.#resumed = this.#resumed.then(() => this.#resume()).catch((e) => this.#log.error({ err: e }, 'could not resume workflow runs'));
    }
  }

  /** Refuses a workflow that cannot run: unknown table or columns, steps outside the grammar. */
  validate(row: Readonly<Row>): void {
    const table = row['primaryentity'];
    if (typeof table !== 'string' || !this.#model.table(table)) {
      throw new CcsError('InvalidValue', `primaryentity: unknown table '${String(table ?? '')}'`);
    }
    if (table === RUN) throw new CcsError('InvalidValue', `primaryentity: runs (${RUN}) cannot start workflows`);
    const def = this.#model.table(table)!;
    for (const column of parseAttributeList(row['triggeronupdateattributelist'] as string | null)) {
      if (!def.column(column)) throw new CcsError('InvalidValue', `triggeronupdateattributelist: unknown column '${column}' of ${table}`);
    }
    parseSteps(row['ccs_steps'] as string | null, { model: this.#model, operations: this.#operations, primaryEntity: table });
  }

  // ---- triggers ----------------------------------------------------------------------------------------------

  async #loadCache(): Promise<Cache> {
    try {
      const rows = await this.#records.query(this.#system, WORKFLOW, {
        columns: ['name', 'primaryentity', 'rank', 'triggeroncreate', 'triggeronupdateattributelist', 'triggerondelete', 'ccs_steps'],
        where: and(eq('statecode', WORKFLOW_ACTIVATED), eq('category', CATEGORY_WORKFLOW)),
      });
      const byTable = new Map<string, ActiveWorkflow[]>();
      const byId = new Map<string, ActiveWorkflow>();
      for (const r of rows) {
        const table = String(r['primaryentity']);
        const list = byTable.get(table) ?? [];
        const workflow: ActiveWorkflow = {
          id: String(r[WORKFLOW_ID]),
          name: String(r['name']),
          table,
          rank: num(r['rank']) ?? 0,
          onCreate: Number(r['triggeroncreate']) === 1,
          onUpdate: new Set(parseAttributeList(r['triggeronupdateattributelist'] as string | null)),
          onDelete: Number(r['triggerondelete']) === 1,
          stepsText: (r['ccs_steps'] as string | null) ?? null,
        };
        list.push(workflow);
        byTable.set(table, list);
        byId.set(workflow.id, workflow);
      }
      this.#activeById = byId;
      for (const list of byTable.values()) list.sort((a, b) => a.rank - b.rank || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      this.#lastCache = byTable;
      return byTable;
    } catch (e) {
      this.#log.error({ err: e }, 'could not load the active workflows; keeping the previous list');
      return this.#lastCache;
    }
  }

  /**
   * Turns a batch of durable record events into runs: one transaction for the batch, runs in event order (and rank
   * order within an event). Resolving lets the consumer move past the batch, so it resolves only once the runs are
   * stored; a failure hands the same events over again.
   */
  async #intake(events: readonly DurableRecordEvent[]): Promise<void> {
    const planned: Planned[] = [];
    for (const e of events) {
      if (e.table === RUN) continue;
      // Events after a workflow change see the new list: each event waits for the list as it was when it happened.
      if (e.table === WORKFLOW) this.#cache = this.#loadCache();
      const matching = ((await this.#cache).get(e.table) ?? []).filter((w) => triggers(w, e));
      if (matching.length === 0) continue;
      // The depth is known for events this process's runs raised; an event read back after a restart counts from 0.
      const depth = (e.principal ? (this.#depthOf.get(e.principal) ?? -1) : -1) + 1;
      if (depth > MAX_DEPTH) {
        this.#log.warn({ table: e.table, id: e.id, workflows: matching.map((w) => w.name) }, `workflow runs not started: ${MAX_DEPTH} runs deep (a loop?)`);
        continue;
      }
      planned.push({ event: e, workflows: matching, depth });
    }
    if (planned.length === 0) return;
    let created: { key: string; id: string }[];
    try {
      created = await this.#createRuns(planned, false);
    } catch (e) {
      if (!(e instanceof CcsError && e.code === 'DuplicateKey')) throw e;
      // Some of these events were handed over before (a replay after a crash or a lease change): start only the
      // runs that do not exist yet.
      created = await this.#createRuns(planned, true);
    }
    await this.#resumed;
    for (const { key, id } of created) this.#push(key, id);
  }

  async #createRuns(planned: readonly Planned[], skipExisting: boolean): Promise<{ key: string; id: string }[]> {
    const created: { key: string; id: string; row?: Row }[] = [];
    const pending: RecordEvent[] = [];
    await this.#store.transaction(async (tx) => {
      created.length = 0;
      const existing = new Set<string>();
      if (skipExisting) {
        for (const slice of chunks(planned.map((p) => p.event.sequence))) {
          const rows = await tx.select({ table: RUN, columns: ['ccs_eventsequence', 'workflowactivationid'], where: isIn('ccs_eventsequence', slice) });
          for (const r of rows) existing.add(`${String(r['ccs_eventsequence'])}:${String(r['workflowactivationid'])}`);
        }
      }
      const rc: RecordContext = { ...this.#system, db: tx, pending };
      for (const { event: e, workflows, depth } of planned) {
        const correlationid = randomUUID();
        for (const w of workflows) {
          if (existing.has(`${e.sequence}:${w.id}`)) continue;
          let run: { id: string; row?: Row };
          try {
            run = await this.#createRun(rc, e, w, correlationid, depth);
          } catch (err) {
            // Refused before anything was written (the record or the workflow was deleted since the event): the
            // event's remaining runs are not started, as the event would otherwise come back for ever. Store errors
            // (a duplicate run among them) fail the batch.
            if (!(err instanceof CcsError) || err.code === 'DuplicateKey') throw err;
            this.#log.warn({ err, table: e.table, id: e.id, event: e.type, workflow: w.name }, 'workflow run not started');
            break;
          }
          created.push({ key: `${e.table}:${e.id}`, ...run });
        }
      }
    });
    this.#records.publish(pending);
    for (const { id, row } of created) if (row) this.#fresh.set(id, row);
    return created;
  }

  /** Creates a run; resolves to its id and, for a run on a record that exists, its row as created. */
  async #createRun(rc: RecordContext, e: DurableRecordEvent, w: ActiveWorkflow, correlationid: string, depth: number): Promise<{ id: string; row?: Row }> {
    const values: Record<string, unknown> = {
      name: w.name,
      operationtype: OPERATION_WORKFLOW,
      workflowactivationid: w.id,
      statecode: RUN_STATE_SUSPENDED,
      statuscode: RUN_STATUS.waiting,
      correlationid,
      sequence: this.#nextSequence(),
      depth,
      retrycount: 0,
      ccs_triggerevent: TRIGGER_EVENT[e.type],
      ccs_eventsequence: e.sequence,
    };
    // A deleted record cannot be checked as a lookup target any more; the run still names it.
    if (e.type !== 'deleted') values['regardingobjectid'] = { id: e.id, table: e.table };
    const id = await this.#records.create(rc, RUN, values);
    if (e.type === 'deleted') {
      await rc.db.update(RUN, { regardingobjectid: e.id, [lookupTypeColumn('regardingobjectid')]: e.table }, eq(RUN_ID, id));
      return { id };
    }
    return { id, row: { ...values, [RUN_ID]: id, regardingobjectid: e.id, versionnumber: 1 } };
  }

  /** Submission order across restarts: microseconds of the wall clock, strictly increasing within the process. */
  #nextSequence(): number {
    this.#sequence = Math.max(this.#sequence + 1, Date.now() * 1000);
    return this.#sequence;
  }

  // ---- queue --------------------------------------------------------------------------------------------------

  async #resume(): Promise<void> {
    const rows = await this.#store.select({
      table: RUN,
      columns: [RUN_ID, 'statuscode', 'postponeuntil', 'startedon', 'regardingobjectid', lookupTypeColumn('regardingobjectid')],
      where: and(eq('operationtype', OPERATION_WORKFLOW), ne('statecode', RUN_COMPLETED)),
      orderBy: [{ column: 'sequence' }, { column: 'createdon' }],
    });
    if (rows.length === 0) return;
    this.#log.info({ runs: rows.length }, 'resuming workflow runs');
    const delays = new Map<string, number>();
    for (const r of rows) {
      const id = String(r[RUN_ID]);
      const regarding = r['regardingobjectid'];
      const key = typeof regarding === 'string' ? `${String(r[lookupTypeColumn('regardingobjectid')])}:${regarding}` : `${RUN}:${id}`;
      if (num(r['statuscode']) === RUN_STATUS.inProgress) {
        // Alone, a run in progress was left by this process's predecessor. In a cluster it may be another node's.
        if (this.#nodeId !== undefined && (num(r['startedon']) ?? 0) > this.#clock() - CLUSTER_TAKEOVER_MS) continue;
        this.#takeOver.add(id);
      }
      const due = num(r['postponeuntil']);
      if (!this.#queues.has(key) && due !== undefined && num(r['statuscode']) === RUN_STATUS.waiting) {
        delays.set(key, Math.min(Math.max(due - this.#clock(), 0), this.#maxRetryDelayMs));
      }
      this.#push(key, id, delays.get(key));
    }
  }

  #push(key: string, runId: string, delayMs?: number): void {
    if (this.#stopping || this.#queued.has(runId)) return;
    this.#queued.add(runId);
    const queue = this.#queues.get(key);
    if (queue) queue.push(runId);
    else this.#queues.set(key, [runId]);
    if (this.#scheduled.has(key)) return;
    this.#scheduled.add(key);
    if (delayMs) this.#sleep(key, delayMs);
    else {
      this.#ready.push(key);
      this.#pump();
    }
  }

  #sleep(key: string, ms: number): void {
    this.#timers.set(key, setTimeout(() => {
      this.#timers.delete(key);
      this.#ready.push(key);
      this.#pump();
    }, ms));
  }

  #pump(): void {
    while (!this.#stopping && this.#active < this.#concurrency && this.#ready.length > 0) {
      const key = this.#ready.shift()!;
      this.#active++;
      const p: Promise<void> = this.#drain(key)
        .catch((err) => this.#log.error({ err, key }, 'workflow queue failed'))
        .finally(() => {
          this.#active--;
          this.#inflight.delete(p);
          this.#pump();
        });
      this.#inflight.add(p);
    }
  }

  /** Runs a record's queued runs in order until its queue is empty or its head has to wait for a retry. */
  async #drain(key: string): Promise<void> {
    const queue = this.#queues.get(key) ?? [];
    while (queue.length > 0) {
      if (this.#stopping) return;
      const runId = queue[0]!;
      const outcome = await this.#executeSafely(runId);
      if (outcome !== 'done') {
        if (!this.#stopping) this.#sleep(key, outcome.retryInMs);
        return;
      }
      queue.shift();
      this.#queued.delete(runId);
    }
    this.#queues.delete(key);
    this.#scheduled.delete(key);
  }

  #retryDelay(attempt: number): number {
    return Math.min(this.#retryDelayMs * 2 ** Math.max(attempt - 1, 0), this.#maxRetryDelayMs);
  }

  async #executeSafely(runId: string): Promise<Outcome> {
    try {
      const outcome = await this.#execute(runId);
      this.#hiccups.delete(runId);
      return outcome;
    } catch (err) {
      if (this.#stopping) return 'done';
      const n = (this.#hiccups.get(runId) ?? 0) + 1;
      this.#hiccups.set(runId, n);
      // The run is this process's; if it got as far as In Progress, the next try picks it up from there.
      this.#takeOver.add(runId);
      this.#log.error({ err, run: runId }, 'workflow run could not be processed; trying again');
      return { retryInMs: this.#retryDelay(n) };
    }
  }

  // ---- one run ------------------------------------------------------------------------------------------------

  /**
   * The first attempt of a run whose steps all work in the store (runsInOneTransaction) executes in a single
   * transaction, shared with the runs executing at the same moment (group commit; one group at a time, as the steps'
   * locks come in no known order): the steps' writes and the run's outcome commit together, so a crash or a failing
   * step leaves the run waiting as it was, and the run goes from Waiting to its outcome at once. Resolves to undefined
   * when the run does not qualify or did not complete that way (a step failed, or the run changed meanwhile): the
   * step-by-step path then executes it, with its In Progress state, failure messages and retries.
   */
  async #executeInOneTransaction(run: Row, runId: string): Promise<'done' | undefined> {
    const workflowId = run['workflowactivationid'];
    const regardingId = run['regardingobjectid'];
    if (typeof workflowId !== 'string' || typeof regardingId !== 'string' || num(run['ccs_triggerevent']) === TRIGGER_EVENT.deleted) return undefined;
    // The list of active workflows has the definition; a workflow no longer in it takes the step-by-step path.
    const workflow = this.#activeById.get(workflowId);
    const table = workflow && this.#model.table(workflow.table);
    if (!workflow || !table) return undefined;
    if (workflow.parsed === undefined) {
      try {
        const steps = parseSteps(workflow.stepsText, { model: this.#model, operations: this.#operations, primaryEntity: workflow.table });
        workflow.parsed = { steps, recordColumns: [...recordColumns(steps, table)] };
      } catch {
        workflow.parsed = null;
      }
    }
    const tableName = workflow.table;
    if (!workflow.parsed || !runsInOneTransaction(workflow.parsed.steps, this.#operations, tableName)) return undefined;
    const { steps } = workflow.parsed;
    // What the steps read of the record, and its key: an existence check when they read nothing.
    const record = await this.#records.retrieve(this.#system, tableName, regardingId, workflow.parsed.recordColumns);
    if (!record) return undefined;
    const startedMs = this.#clock();
    const principal: Principal = { ...this.#system.principal };
    this.#depthOf.set(principal, num(run['depth']) ?? 0);
    let statuscode: number;
    let pending: RecordEvent[];
    try {
      ({ statuscode, pending } = await this.#group.run(async (tx) => {
        const pending: RecordEvent[] = [];
        const log: StepLogEntry[] = [];
        const scope = {
          records: this.#records, ctx: { db: tx, principal, pending }, table, recordId: regardingId, record,
          outputs: new Map<string, unknown>(), now: new Date(startedMs).toISOString(), related: new Map<string, Row | null>(),
        };
        const result = await runSteps(steps, scope, { operations: this.#operations, clock: this.#clock, attempt: 1, log, conflictRetries: false });
        const outcome = result.outcome === 'succeeded' ? RUN_STATUS.succeeded : RUN_STATUS.canceled;
        await this.#records.update({ ...this.#system, db: tx, pending }, RUN, runId, {
          statuscode: outcome, startedon: formatDateTime(startedMs), completedon: formatDateTime(this.#clock()), postponeuntil: null, hostid: this.#nodeId ?? null,
          message: result.message === undefined ? null : clip(result.message), ccs_steplog: logText([], log),
        }, { ifVersion: num(run['versionnumber']) });
        return { statuscode: outcome, pending };
      }));
    } catch {
      return undefined;
    }
    this.#records.publish(pending);
    this.#runsCounter.inc({ outcome: statuscode === RUN_STATUS.succeeded ? 'succeeded' : 'canceled' });
    return 'done';
  }

  async #execute(runId: string): Promise<Outcome> {
    const fresh = this.#fresh.get(runId);
    this.#fresh.delete(runId);
    const run = fresh ?? (await this.#records.retrieve(this.#system, RUN, runId));
    // Gone, finished, or canceled by a user (statuscode 32) while it waited.
    if (!run || num(run['statecode']) === RUN_COMPLETED) return 'done';
    const status = num(run['statuscode']);
    if (status === RUN_STATUS.inProgress && !this.#takeOver.has(runId)) return 'done'; // another worker's
    if (status === RUN_STATUS.waiting && !num(run['retrycount']) && !this.#takeOver.has(runId)) {
      if ((await this.#executeInOneTransaction(run, runId)) === 'done') return 'done';
    }
    this.#takeOver.delete(runId);
    const startedMs = this.#clock();
    const startedon = formatDateTime(startedMs);
    try {
      await this.#records.update(this.#system, RUN, runId, { statuscode: RUN_STATUS.inProgress, startedon, postponeuntil: null, hostid: this.#nodeId ?? null }, { ifVersion: num(run['versionnumber']) });
    } catch (e) {
      if (e instanceof CcsError && (e.code === 'VersionMismatch' || e.code === 'RecordNotFound')) return 'done'; // changed meanwhile: someone else has it
      throw e;
    }
    const version = (num(run['versionnumber']) ?? 0) + 1;
    const attempt = (num(run['retrycount']) ?? 0) + 1;
    const previousLog = parseLog(run['ccs_steplog']);
    const finish = async (statuscode: number, values: Record<string, unknown>): Promise<void> => {
      try {
        await this.#records.update(this.#system, RUN, runId, { statuscode, ...values }, { ifVersion: version });
      } catch (e) {
        // A user canceled the run while it executed: their word stands.
        if (e instanceof CcsError && (e.code === 'VersionMismatch' || e.code === 'RecordNotFound')) return;
        throw e;
      }
    };
    const completed = (statuscode: number, values: Record<string, unknown>) =>
      finish(statuscode, { completedon: formatDateTime(this.#clock()), ...values }).then(() => {
        this.#runsCounter.inc({ outcome: statuscode === RUN_STATUS.succeeded ? 'succeeded' : statuscode === RUN_STATUS.failed ? 'failed' : 'canceled' });
        return 'done' as const;
      });

    const workflowId = run['workflowactivationid'];
    const workflow = typeof workflowId === 'string' ? await this.#records.retrieve(this.#system, WORKFLOW, workflowId) : undefined;
    if (!workflow) return completed(RUN_STATUS.canceled, { message: 'The workflow of this run no longer exists.' });
    const tableName = String(workflow['primaryentity']);
    const table = this.#model.table(tableName);
    const regardingId = run['regardingobjectid'];
    const maxAttempts = num(workflow['ccs_maxattempts']) ?? DEFAULT_MAX_ATTEMPTS;
    let steps;
    try {
      if (!table || typeof regardingId !== 'string') throw new CcsError('InvalidValue', `primaryentity: unknown table '${tableName}'`);
      steps = parseSteps(workflow['ccs_steps'] as string | null, { model: this.#model, operations: this.#operations, primaryEntity: tableName });
    } catch (e) {
      const message = clip(`The workflow '${String(workflow['name'])}' cannot run: ${publicMessage(e)}`);
      return completed(RUN_STATUS.failed, { message, friendlymessage: message, errorcode: errorCodeOf(e) });
    }
    const deleted = num(run['ccs_triggerevent']) === TRIGGER_EVENT.deleted;
    const record = deleted ? null : ((await this.#records.retrieve(this.#system, tableName, regardingId)) ?? null);
    if (!deleted && !record) {
      return completed(RUN_STATUS.canceled, { message: `The ${tableName} record ${regardingId} that started this run no longer exists.` });
    }

    // The run acts as the platform; its own principal object tells the events its writes raise how deep they are.
    const principal: Principal = { ...this.#system.principal };
    this.#depthOf.set(principal, num(run['depth']) ?? 0);
    const log: StepLogEntry[] = [];
    const scope = {
      records: this.#records,
      ctx: { db: this.#store, principal },
      table: table!,
      recordId: regardingId,
      record,
      outputs: new Map<string, unknown>(),
      now: new Date(startedMs).toISOString(),
      related: new Map<string, Row | null>(),
    };
    try {
      const result = await runSteps(steps, scope, { operations: this.#operations, clock: this.#clock, attempt, log });
      const statuscode = result.outcome === 'succeeded' ? RUN_STATUS.succeeded : RUN_STATUS.canceled;
      return completed(statuscode, { message: result.message === undefined ? null : clip(result.message), friendlymessage: null, errorcode: null, ccs_steplog: logText(previousLog, log) });
    } catch (e) {
      if (!(e instanceof StepFailedError)) throw e;
      const cause = e.cause;
      if (!(cause instanceof CcsError)) this.#log.error({ err: cause, run: runId, workflow: workflow['name'], step: e.step.path }, 'workflow step failed');
      const where = `${e.step.path} (${describeStep(e.step)})`;
      const detail = publicMessage(cause);
      const message = clip(`${where}: ${detail}`);
      if (e.retryable && attempt < maxAttempts) {
        const delay = this.#retryDelay(attempt);
        await finish(RUN_STATUS.waiting, {
          retrycount: attempt,
          postponeuntil: formatDateTime(this.#clock() + delay),
          message,
          errorcode: errorCodeOf(cause),
          ccs_steplog: logText(previousLog, log),
        });
        return { retryInMs: delay };
      }
      const attempts = attempt === 1 ? '1 attempt' : `${attempt} attempts`;
      return completed(RUN_STATUS.failed, {
        message,
        friendlymessage: clip(`The workflow '${String(workflow['name'])}' failed at step ${where} after ${attempts}: ${detail}`),
        errorcode: errorCodeOf(cause),
        ccs_steplog: logText(previousLog, log),
      });
    }
  }
}

function parseLog(text: unknown): StepLogEntry[] {
  if (typeof text !== 'string' || text === '') return [];
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? (parsed as StepLogEntry[]) : [];
  } catch {
    return [];
  }
}

/** The log of every attempt so far; the oldest entries go first when it outgrows the column. */
function logText(previous: readonly StepLogEntry[], current: readonly StepLogEntry[]): string {
  const entries = [...previous, ...current];
  let text = JSON.stringify(entries);
  while (text.length > MAX_LOG_CHARS && entries.length > 1) {
    entries.splice(0, Math.ceil(entries.length / 4));
    text = JSON.stringify(entries);
  }
  return text.length > MAX_LOG_CHARS ? '[]' : text;
}
