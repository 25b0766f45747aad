/**
 * Record events → delivery records. For each event, every active webhook on its table and message whose filter the
 * record matches gets a `ccs_webhookdelivery` (status Pending) holding the exact JSON to post; the sender (./sender.ts)
 * takes it from there. Events come from the durable consumer `webhooks` (RecordsService.consume): at least once, in
 * commit order, wherever the record was written, so a webhook created just before a change sees it and a crash
 * between a write and its deliveries loses none. A delivery names its event (`ccs_eventsequence`, unique with the
 * webhook): an event handed over again is not queued twice.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { CcsError } from '../../errors/index.js';
import type { DurableRecordEvent, RecordContext, RecordEvent, RecordsService } from '../../records/index.js';
import { compileFilter } from '../../odata/index.js';
import { and, eq } from '../../store/index.js';
import { AnnotationFilter, Serializer } from '../../webapi/index.js';
import { DELIVERY, DELIVERY_STATUS, toDefinition, WEBHOOK, type Message, type WebhookDefinition } from './definition.js';

const MESSAGE_OF: Record<RecordEvent['type'], Message> = { created: 'create', updated: 'update', deleted: 'delete' };

/** The durable record event consumer's name: its checkpoint and lease are stored under it. */
export const WEBHOOK_CONSUMER = 'webhooks';

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
  #loaded = false;
  #chain: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(private readonly deps: DispatcherDeps) {}

  /** Reads the active webhooks again: on start, and now and then as a safety net (webhook events reload too). */
  reload(): void {
    this.#enqueue(() => this.#reload());
  }

  async #reload(): Promise<void> {
    const rows = await this.deps.records.query(this.deps.system, WEBHOOK, { where: eq('statecode', 0) });
    this.#webhooks = rows.map(toDefinition).filter((d): d is WebhookDefinition => d !== undefined);
    this.#tables = new Set(this.#webhooks.map((w) => w.table));
    this.#loaded = true;
  }

  /** This process now handles the webhook events: webhooks changed meanwhile through another process count. */
  onLease(): Promise<void> {
    return this.#serialise(() => this.#reload());
  }

  /**
   * Turns a batch of durable events into deliveries, in order. Resolves once they are stored (the consumer then
   * moves past the batch); rejects if any could not be, and the consumer hands the same events over again.
   */
  handle(events: readonly DurableRecordEvent[]): Promise<void> {
    return this.#serialise(async () => {
      if (this.#stopped) throw new Error('The webhook dispatcher has stopped.');
      if (!this.#loaded) await this.#reload();
      let queued = 0;
      for (const e of events) {
        // A change to a webhook applies from the next event on.
        if (e.table === WEBHOOK) await this.#reload();
        else if (this.#tables.has(e.table)) queued += await this.#dispatch(e);
      }
      if (queued > 0) this.deps.onQueued();
    });
  }

  /** Waits for the work in hand; later events are refused (and stay in the event log). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#chain;
  }

  /** Waits until everything queued so far is handled. */
  idle(): Promise<void> {
    return this.#chain;
  }

  #enqueue(work: () => Promise<void>): void {
    void this.#serialise(work).catch((err: unknown) => this.deps.log.error({ err }, 'the webhooks could not be read'));
  }

  /** Runs `work` after everything queued before it; the returned promise settles with it. */
  #serialise(work: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(work);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Writes the event's deliveries; resolves to how many were new. */
  async #dispatch(e: DurableRecordEvent): Promise<number> {
    const message = MESSAGE_OF[e.type];
    // A replayed event (after a restart or a lease change) goes only to webhooks that existed when it occurred.
    const hooks = this.#webhooks.filter((w) => w.table === e.table && w.messages.has(message) && w.createdOn <= e.occurredOn);
    if (hooks.length === 0) return 0;
    const occurredOn = e.occurredOn;
    const { records, system } = this.deps;
    const table = records.table(e.table);
    const pk = table.primaryIdAttribute;
    let record: Record<string, unknown> = { [pk]: e.id };
    if (message !== 'delete') {
      const row = await records.retrieve(system, e.table, e.id);
      // Deleted since: its delete event follows.
      if (!row) return 0;
      [record] = (await new Serializer(records, system, AnnotationFilter.fromPrefer(undefined)).entities(table, [{ row, expanded: {} }])) as [Record<string, unknown>];
    }
    let queued = 0;
    for (const hook of hooks) {
      if (hook.filter && message !== 'delete' && !(await this.#matches(hook, e.table, e.id))) continue;
      const id = randomUUID();
      const payload = JSON.stringify({ id, table: e.table, message, occurredon: new Date(occurredOn).toISOString(), record, webhook: hook.name });
      try {
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
          ccs_eventsequence: e.sequence,
        });
      } catch (err) {
        // Queued when the event was handed over before.
        if (err instanceof CcsError && err.code === 'DuplicateKey') continue;
        // The webhook was deleted since the list was read: nothing to deliver to.
        if (err instanceof CcsError && err.code === 'RecordNotFound') continue;
        throw err;
      }
      queued++;
    }
    return queued;
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
