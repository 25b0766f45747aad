/**
 * `msdyn_ParentIoTAlerts` ("IoT – Debounce IoT Alerts"), bound to `msdyn_iotalert`, `TimespanSeconds` Edm.Int32
 * 60–180, returns nothing (ms-connected-service.md §3.1; odata.md §1.9).
 *
 * Microsoft's rule (CFS-ALERTS "IoT alerts parenting"): an alert whose match fields equal another's (Alert
 * Aggregation Rules, default the device) and whose time is within the window of that alert gets that alert as its
 * parent, or that alert's own parent when it has one, so the hierarchy stays one level deep; the time is
 * `msdyn_alerttime`, else `createdon`.
 *
 * Microsoft describes one alert arriving after the others. Alerts created at once are processed in any order, and an
 * alert can become visible after a later one was processed, so ccs applies the rule in a form whose outcome does not
 * depend on that order: calling the action for an alert merges the group it belongs to with the groups of every
 * matching active alert within ±TimespanSeconds of it (and with the group its `msdyn_parentalerttoken` names, §3.1
 * rule 5); the merged group's parent is its earliest member, and every other member points at that parent. In
 * arrival order this is exactly Microsoft's rule; in any other order it converges on the same result. The read,
 * decision and writes run in one transaction holding a lock on the alert's match key, so concurrent calls for alerts
 * of one device take turns.
 */
import { CcsError } from '../../errors/index.js';
import { notFound, type RecordContext, type RecordsService } from '../../records/index.js';
import type { Condition, Queryable, Row, Transaction } from '../../store/index.js';
import type { Operation } from '../../webapi/index.js';
import { matchKey, readAggregationRule, ruleColumns, type AggregationRule } from '../aggregation-rule.js';
import { ACTIVE, ALERT, ALERT_ID, alertTime, alertTimeWithin, compareAlerts, PARENT, PARENT_TOKEN, TOKEN } from '../alerts.js';
import { and, chunks, eq, isIn, ne } from '../../store/index.js';
import type { ConnectorDeps } from '../deps.js';
import { withTransaction } from '../transaction.js';

export const PARENT_IOT_ALERTS = 'msdyn_ParentIoTAlerts';
const MIN_SECONDS = 60;
const MAX_SECONDS = 180;
/** Parent chains are one level deep when ccs maintains them; a client may have built longer ones (or a cycle). */
const MAX_HOPS = 32;
const BASE_COLUMNS = [ALERT_ID, 'msdyn_alerttime', 'createdon', 'statecode', TOKEN, PARENT, PARENT_TOKEN];

export function createParentIoTAlerts(deps: ConnectorDeps): Operation {
  return {
    def: {
      name: PARENT_IOT_ALERTS,
      kind: 'action',
      boundTo: ALERT,
      parameters: [{ name: 'TimespanSeconds', type: 'Edm.Int32', nullable: false, range: { min: MIN_SECONDS, max: MAX_SECONDS } }],
    },
    transactional: true,
    invoke: async (ctx, params) => {
      const seconds = params['TimespanSeconds'] as number; // presence, integer-ness and range checked by the registry
      const id = ctx.bound?.id;
      if (!id) throw new CcsError('BadRequest', `'${PARENT_IOT_ALERTS}' must be called on one msdyn_iotalert.`);
      await withTransaction({ store: deps.store, records: ctx.records }, ctx.record, (rc, tx) =>
        parentAlert(ctx.records, rc, tx, id, seconds * 1000));
      return undefined;
    },
  };
}

async function parentAlert(records: RecordsService, rc: RecordContext, tx: Transaction, id: string, windowMs: number): Promise<void> {
  const table = records.table(ALERT);
  const rule = await readAggregationRule(tx, table);
  const columns = [...new Set([...BASE_COLUMNS, ...ruleColumns(rule)])];
  const load = async (): Promise<Row> => {
    const row = await records.retrieve(rc, ALERT, id, columns);
    if (!row) throw notFound(table, id);
    return row;
  };
  // The lock's name comes from the alert's match values, so read it once to name the lock and again once holding it.
  const key = matchKey(rule, await load());
  await tx.lock(key?.lock ?? `${PARENT_IOT_ALERTS}:${id}`);
  const alert = await load();
  const groups = new Groups(tx, columns);

  const roots = new Map<string, Row>();
  const addRoot = (row: Row) => void roots.set(String(row[ALERT_ID]), row);
  const own = await groups.rootOf(alert);
  addRoot(own);
  const token = alert[PARENT_TOKEN];
  if (typeof token === 'string' && token !== '') {
    const named = await earliest(tx, columns, and(eq(TOKEN, token), ne(ALERT_ID, id)));
    if (named) addRoot(await groups.rootOf(named));
  }
  const neighbours = key ? await findNeighbours(tx, columns, rule, alert, String(own[ALERT_ID]), windowMs) : [];
  for (const n of neighbours) addRoot(await groups.rootOf(n));

  const parent = [...roots.values()].sort(compareAlerts)[0]!;
  const parentId = String(parent[ALERT_ID]);
  const merged = [...roots.keys()].filter((r) => r !== parentId);
  // Everyone in the merged groups points at the parent: the alert, neighbours, the other roots and their children.
  const members = new Map<string, Row>();
  for (const row of [alert, ...neighbours, ...roots.values(), ...(await groups.childrenOf(merged))]) {
    const rowId = String(row[ALERT_ID]);
    if (rowId !== parentId) members.set(rowId, row);
  }
  const parentToken = typeof parent[TOKEN] === 'string' && parent[TOKEN] !== '' ? parent[TOKEN] : undefined;
  for (const [memberId, row] of members) {
    // The token mirrors the parent when the parent has one; an older token still names a member of this group.
    if (row[PARENT] === parentId && (parentToken === undefined || row[PARENT_TOKEN] === parentToken)) continue;
    await records.update(rc, ALERT, memberId, { [PARENT]: parentId, ...(parentToken !== undefined ? { [PARENT_TOKEN]: parentToken } : {}) });
  }
  // A root found by following a dangling or cyclic chain is made top-level.
  if (parent[PARENT] != null) await records.update(rc, ALERT, parentId, { [PARENT]: null });
}

/** Matching active alerts within ±window of `alert` that are not already in its group. */
function findNeighbours(db: Queryable, columns: readonly string[], rule: AggregationRule, alert: Row, ownRoot: string, windowMs: number): Promise<Row[]> {
  const key = matchKey(rule, alert);
  if (!key) return Promise.resolve([]);
  const t = alertTime(alert);
  return db.select({
    table: ALERT,
    columns,
    where: and(...key.where, eq('statecode', ACTIVE), alertTimeWithin(t - windowMs, t + windowMs), ne(ALERT_ID, ownRoot), ne(PARENT, ownRoot)),
  });
}

async function earliest(db: Queryable, columns: readonly string[], where: Condition): Promise<Row | undefined> {
  const rows = await db.select({ table: ALERT, columns, where });
  return rows.sort(compareAlerts)[0];
}

/** Reads parent chains, remembering the rows it has seen. */
class Groups {
  readonly #byId = new Map<string, Row | null>();
  constructor(
    private readonly db: Queryable,
    private readonly columns: readonly string[],
  ) {}

  async #get(id: string): Promise<Row | null> {
    if (!this.#byId.has(id)) {
      const rows = await this.db.select({ table: ALERT, columns: this.columns, where: eq(ALERT_ID, id), limit: 1 });
      this.#byId.set(id, rows[0] ?? null);
    }
    return this.#byId.get(id)!;
  }

  /** The top of `row`'s chain: the last existing alert before a missing parent, a cycle or MAX_HOPS. */
  async rootOf(row: Row): Promise<Row> {
    let current = row;
    const seen = new Set<string>([String(row[ALERT_ID])]);
    for (let hop = 0; hop < MAX_HOPS; hop++) {
      const parentId = current[PARENT];
      if (typeof parentId !== 'string' || seen.has(parentId)) break;
      const parent = await this.#get(parentId);
      if (!parent) break;
      seen.add(parentId);
      current = parent;
    }
    return current;
  }

  async childrenOf(ids: readonly string[]): Promise<Row[]> {
    const out: Row[] = [];
    for (const part of chunks(ids)) out.push(...(await this.db.select({ table: ALERT, columns: this.columns, where: isIn(PARENT, part) })));
    return out;
  }
}
