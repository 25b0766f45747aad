/**
 * Record events → delivery records. For each event, every active webhook on its table and message whose filter the
 * record matches gets a `ccs_webhookdelivery` (status Pending) holding the exact JSON to post; the sender (./sender.ts)
 * takes it from there. Events are handled one at a time in the order they were published, so a webhook created just
 * before a change sees it.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { CcsError } from '../../errors/index.js';
import type { RecordContext, RecordEvent, RecordsService } from '../../records/index.js';
import { compileFilter } from '../../odata/index.js';
import { and, eq } from '../../store/index.js';
import { AnnotationFilter, Serializer } from '../../webapi/index.js';
import { DELIVERY, DELIVERY_STATUS, toDefinition, WEBHOOK, type Message, type WebhookDefinition } from './definition.js';

const MESSAGE_OF: Record<RecordEvent['type'], Message> = { created: 'create', updated: 'update', deleted: 'delete' };

export interface DispatcherDeps {
  readonly records: RecordsService;
  readonly system: RecordContext;
  readonly clock: () => number;
  readonly log: Logger;
  /** Called after delivery records were written. */
  readonly onQueued: () => void;
}

export class Dispatcher {
  #webhooks: WebhookDefinition[] = [];
  #tables = new Set<string>();
  #chain: Promise<void> = Promise.resolve();
  #reloadsPending = 0;
  #stopped = false;

  constructor(private readonly deps: DispatcherDeps) {}

  /** Reads the active webhooks again: on start, after a change to one, and now and then for other nodes' changes. */
  reload(): void {
    this.#reloadsPending++;
    this.#enqueue(async () => {
      try {
        const rows = await this.deps.records.query(this.deps.system, WEBHOOK, { where: eq('statecode', 0) });
        this.#webhooks = rows.map(toDefinition).filter((d): d is WebhookDefinition => d !== undefined);
        this.#tables = new Set(this.#webhooks.map((w) => w.table));
      } finally {
        this.#reloadsPending--;
      }
    });
  }

  onEvent(e: RecordEvent): void {
    if (this.#stopped) return;
    if (e.table === WEBHOOK) this.reload();
    // While a reload is pending the list may be about to include this table: queue the event behind it.
    if (!this.#tables.has(e.table) && this.#reloadsPending === 0) return;
    const occurredOn = this.deps.clock();
    this.#enqueue(() => this.#dispatch(e, occurredOn));
  }

  /** Handles what is queued; later events are ignored. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#chain;
  }

  /** Waits until everything queued so far is handled. */
  idle(): Promise<void> {
    return this.#chain;
  }

  #enqueue(work: () => Promise<void>): void {
    this.#chain = this.#chain.then(work).catch((err: unknown) => this.deps.log.error({ err }, 'a webhook event could not be queued'));
  }

  async #dispatch(e: RecordEvent, occurredOn: number): Promise<void> {
    const message = MESSAGE_OF[e.type];
    const hooks = this.#webhooks.filter((w) => w.table === e.table && w.messages.has(message));
    if (hooks.length === 0) return;
    const { records, system } = this.deps;
    const table = records.table(e.table);
    const pk = table.primaryIdAttribute;
    let record: Record<string, unknown> = { [pk]: e.id };
    if (message !== 'delete') {
      const row = await records.retrieve(system, e.table, e.id);
      // Deleted since: its delete event follows.
      if (!row) return;
      [record] = (await new Serializer(records, system, AnnotationFilter.fromPrefer(undefined)).entities(table, [{ row, expanded: {} }])) as [Record<string, unknown>];
    }
    let queued = 0;
    for (const hook of hooks) {
      if (hook.filter && message !== 'delete' && !(await this.#matches(hook, e.table, e.id))) continue;
      const id = randomUUID();
      const payload = JSON.stringify({ id, table: e.table, message, occurredon: new Date(occurredOn).toISOString(), record, webhook: hook.name });
      await records.create(system, DELIVERY, {
        ccs_webhookdeliveryid: id,
        ccs_name: `${e.table}.${message} ${e.id}`,
        ccs_webhook: hook.id,
        ccs_table: e.table,
        ccs_recordid: e.id,
        ccs_message: message,
        ccs_payload: payload,
        ccs_status: DELIVERY_STATUS.pending,
        ccs_attempts: 0,
        ccs_nextattempton: new Date(occurredOn).toISOString(),
      });
      queued++;
    }
    if (queued > 0) this.deps.onQueued();
  }

  /** The filter is checked by asking the store for the record with it: the same compiler and SQL as `$filter`. */
  async #matches(hook: WebhookDefinition, tableName: string, id: string): Promise<boolean> {
    const { records, system, clock, log } = this.deps;
    const table = records.table(tableName);
    let where;
    try {
      where = compileFilter(hook.filter!, table, records.model, new Map(), () => new Date(clock()));
    } catch (e) {
      // The table changed since the webhook was saved.
      if (!(e instanceof CcsError)) throw e;
      log.warn({ err: e, webhook: hook.name }, 'the filter of a webhook no longer compiles; its events are not sent');
      return false;
    }
    const rows = await records.query(system, tableName, { columns: [table.primaryIdAttribute], where: and(eq(table.primaryIdAttribute, id), where), limit: 1 });
    return rows.length > 0;
  }
}
