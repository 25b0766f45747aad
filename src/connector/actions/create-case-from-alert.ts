/**
 * `ccs_CreateCaseFromIoTAlert`, bound to `msdyn_iotalert`: the case an alert is worked under. Microsoft creates it
 * from the "Create Case" stage of the IoT Alert to Case process or from a Power Automate flow (ms-connected-service.md
 * §3.6, §4.2, §4.4) and publishes no action for it; ccs names one so that workflows, the process and clients share
 * one implementation.
 *
 * - in: `Title` (Edm.String, default the alert's description), `CustomerId` (Edm.Guid, an account or a contact;
 *   default the account of the alert's device, `msdyn_iotdevice.msdyn_account`, which is what lets CCS raise cases
 *   for a device, §2.15); neither → 400.
 * - out: `IncidentId` (Edm.Guid), `Created` (Edm.Boolean: whether this call created the case).
 * - A top-level alert gets an `incident` with origin IoT (700610000), the customer, the title and `msdyn_iotalert` =
 *   the alert, and the alert's `msdyn_case` points at it. An alert that already has a case returns it unchanged.
 * - A child alert (one with `msdyn_parentalert`) is the same issue as its parent: it joins the parent's case (which is
 *   created first when the parent has none), and a note (`annotation`) on the case records the child's description
 *   and data.
 *
 * Every case decision for one alert group (a top-level alert and its children) runs in one transaction holding a lock
 * named after the group's top-level alert, so children handled at once take turns and find the case the first one
 * made: one case per group.
 */
import { CcsError } from '../../errors/index.js';
import { notFound, type RecordContext, type RecordsService } from '../../records/index.js';
import { eq, isTransaction, type Row, type Store, type Transaction } from '../../store/index.js';
import type { Operation } from '../../webapi/index.js';
import { ALERT, ALERT_ID, PARENT } from '../alerts.js';
import type { ConnectorDeps } from '../deps.js';
import { processLock, retryOnVersionMismatch, syncProcess } from '../case-process/bookkeeping.js';
import { withTransaction } from '../transaction.js';

export const CREATE_CASE_FROM_IOT_ALERT = 'ccs_CreateCaseFromIoTAlert';
/** `incident.caseorigincode` IoT (CCS-JS CaseOriginConstants). */
export const CASE_ORIGIN_IOT = 700610000;
const INCIDENT = 'incident';
const CASE = 'msdyn_case';
/** Parent chains are one level deep when ccs maintains them; a client may have built longer ones (or a cycle). */
const MAX_HOPS = 32;
const ALERT_COLUMNS = [ALERT_ID, 'msdyn_description', 'msdyn_alertdata', 'msdyn_alerttime', 'msdyn_device', PARENT, CASE];

export interface CaseRequest {
  /** The case title; default the description of the alert the case is created for. */
  readonly title?: string;
  /** An account or contact id; default the account of the alert's device. */
  readonly customerId?: string;
}

export interface CaseOutcome {
  readonly incidentId: string;
  /** True when this call created the case; false when the alert (or its parent) already had one. */
  readonly created: boolean;
}

export function createCreateCaseFromIoTAlert(deps: ConnectorDeps): Operation {
  return {
    def: {
      name: CREATE_CASE_FROM_IOT_ALERT,
      kind: 'action',
      boundTo: ALERT,
      parameters: [
        { name: 'Title', type: 'Edm.String' },
        { name: 'CustomerId', type: 'Edm.Guid' },
      ],
      returns: {
        properties: [
          { name: 'IncidentId', type: 'Edm.Guid', nullable: false },
          { name: 'Created', type: 'Edm.Boolean', nullable: false },
        ],
      },
    },
    invoke: async (ctx, params) => {
      const id = ctx.bound?.id;
      if (!id) throw new CcsError('BadRequest', `'${CREATE_CASE_FROM_IOT_ALERT}' must be called on one msdyn_iotalert.`);
      const title = typeof params['Title'] === 'string' && params['Title'].trim() !== '' ? params['Title'].trim() : undefined;
      const customerId = typeof params['CustomerId'] === 'string' ? params['CustomerId'].toLowerCase() : undefined;
      const outcome = await caseForAlert({ store: deps.store, records: ctx.records, clock: deps.clock }, ctx.record, id, { title, customerId });
      return { IncidentId: outcome.incidentId, Created: outcome.created };
    },
  };
}

/**
 * The case of alert `alertId`, created (or joined, for a child alert) when it has none; the alerts linked to it move
 * to the process stage Create Case. Runs in the caller's transaction when there is one, else in its own (tried again
 * when another writer changed an alert meanwhile); record events are published once it commits.
 */
export async function caseForAlert(
  deps: { readonly store: Store; readonly records: RecordsService; readonly clock: () => number },
  ctx: RecordContext,
  alertId: string,
  request: CaseRequest = {},
): Promise<CaseOutcome> {
  const run = () => withTransaction(deps, ctx, (rc, tx) => new CaseMaker(deps.records, rc, tx, request, deps.clock()).caseOf(alertId));
  if (isTransaction(ctx.db)) return run();
  return retryOnVersionMismatch(run);
}

class CaseMaker {
  readonly #locked = new Set<string>();

  constructor(
    private readonly records: RecordsService,
    private readonly rc: RecordContext,
    private readonly tx: Transaction,
    private readonly request: CaseRequest,
    private readonly now: number,
  ) {}

  async caseOf(alertId: string): Promise<CaseOutcome> {
    let alert = await this.#alert(alertId);
    const existing = await this.#caseOfRow(alert);
    if (existing) return { incidentId: existing, created: false };
    // Lock the group, then read again: another transaction may have made the case, or moved the alert to another
    // group, while this one waited. A group that changed is locked too, until the top-level alert is stable.
    let root = await this.#rootOf(alert);
    for (;;) {
      const key = String(root[ALERT_ID]);
      if (!this.#locked.has(key)) {
        await this.tx.lock(`${CREATE_CASE_FROM_IOT_ALERT}:${key}`);
        this.#locked.add(key);
      }
      alert = await this.#alert(alertId);
      const again = await this.#rootOf(alert);
      if (String(again[ALERT_ID]) === key) {
        root = again;
        break;
      }
      root = again;
    }
    const already = await this.#caseOfRow(alert);
    if (already) return { incidentId: already, created: false };
    // The process locks of the alerts about to be written, before any row is: a transaction never waits for one of
    // those while holding a row another transaction (debouncing, say) waits for.
    for (const key of [...new Set([String(root[ALERT_ID]), alertId])].sort()) await this.tx.lock(processLock(key));

    if (String(root[ALERT_ID]) === alertId) {
      return { incidentId: await this.#createCase(alert, [alert]), created: true };
    }
    // A child alert: the parent's case, made first when the parent has none.
    let incidentId = await this.#caseOfRow(root);
    let created = false;
    if (!incidentId) {
      incidentId = await this.#createCase(root, [root, alert]);
      created = true;
    }
    await this.records.create(this.rc, 'annotation', {
      subject: truncate(`IoT alert: ${String(alert['msdyn_description'] ?? '')}`, 500),
      notetext: noteText(alert),
      objectid: { id: incidentId, table: INCIDENT },
      objecttypecode: INCIDENT,
      isdocument: false,
    });
    await syncProcess(this.records, this.rc, this.tx, alertId, { incidentId, replaceCase: true }, this.now);
    return { incidentId, created };
  }

  async #alert(id: string): Promise<Row> {
    const row = await this.records.retrieve(this.rc, ALERT, id, ALERT_COLUMNS);
    if (!row) throw notFound(this.records.table(ALERT), id);
    return row;
  }

  /** The alert's case, when it has one that still exists (a deleted case leaves the lookup behind). */
  async #caseOfRow(alert: Row): Promise<string | undefined> {
    const id = alert[CASE];
    if (typeof id !== 'string') return undefined;
    const found = await this.tx.select({ table: INCIDENT, columns: ['incidentid'], where: eq('incidentid', id), limit: 1 });
    return found.length > 0 ? id : undefined;
  }

  /** The top of the alert's parent chain: the last existing alert before a missing parent, a cycle or MAX_HOPS. */
  async #rootOf(alert: Row): Promise<Row> {
    let current = alert;
    const seen = new Set<string>([String(alert[ALERT_ID])]);
    for (let hop = 0; hop < MAX_HOPS; hop++) {
      const parentId = current[PARENT];
      if (typeof parentId !== 'string' || seen.has(parentId)) break;
      const parent = await this.records.retrieve(this.rc, ALERT, parentId, ALERT_COLUMNS);
      if (!parent) break;
      seen.add(parentId);
      current = parent;
    }
    return current;
  }

  /** Creates the case for `alert` (top-level) and links the alert to it. `customerFrom`: alerts whose device may name the customer. */
  async #createCase(alert: Row, customerFrom: readonly Row[]): Promise<string> {
    const customer = await this.#customer(customerFrom);
    const alertId = String(alert[ALERT_ID]);
    const incidentId = await this.records.create(this.rc, INCIDENT, {
      title: truncate(this.request.title ?? (String(alert['msdyn_description'] ?? '').trim() || 'IoT alert'), 200),
      caseorigincode: CASE_ORIGIN_IOT,
      customerid: customer,
      msdyn_iotalert: alertId,
    });
    await syncProcess(this.records, this.rc, this.tx, alertId, { incidentId, replaceCase: true }, this.now);
    return incidentId;
  }

  async #customer(alerts: readonly Row[]): Promise<{ id: string; table: string }> {
    const given = this.request.customerId;
    if (given) {
      for (const table of ['account', 'contact']) {
        if (await this.records.retrieve(this.rc, table, given, [this.records.table(table).primaryIdAttribute])) return { id: given, table };
      }
      throw new CcsError('InvalidValue', `Parameter 'CustomerId' of '${CREATE_CASE_FROM_IOT_ALERT}' names no account or contact: ${given}.`);
    }
    for (const alert of alerts) {
      const device = alert['msdyn_device'];
      if (typeof device !== 'string') continue;
      const row = await this.records.retrieve(this.rc, 'msdyn_iotdevice', device, ['msdyn_account']);
      const account = row?.['msdyn_account'];
      if (typeof account === 'string') return { id: account, table: 'account' };
    }
    throw new CcsError(
      'BadRequest',
      `Cannot create a case for IoT alert ${String(alerts[0]![ALERT_ID])}: it has no customer. Set the account of the alert's device ` +
        `(msdyn_iotdevice.msdyn_account) or pass 'CustomerId' to '${CREATE_CASE_FROM_IOT_ALERT}'.`,
    );
  }
}

function noteText(alert: Row): string {
  const lines = [String(alert['msdyn_description'] ?? '')];
  const time = alert['msdyn_alerttime'];
  if (typeof time === 'number') lines.push(`Alert time: ${new Date(time).toISOString()}`);
  lines.push(`Alert: ${String(alert[ALERT_ID])}`);
  const data = alert['msdyn_alertdata'];
  if (typeof data === 'string' && data !== '') lines.push('', 'Alert data:', data);
  return truncate(lines.join('\n'), 100000);
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max);
}
