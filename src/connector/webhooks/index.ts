/**
 * Webhooks: record events delivered to HTTP endpoints.
 *
 * A `ccs_webhook` names a table, the messages (create, update, delete), an optional OData `$filter` the record must
 * match, the URL and a secret. Every matching event becomes a `ccs_webhookdelivery` written before anything is sent
 * (./dispatcher.ts), and the sender (./sender.ts) posts it:
 *
 *   POST <ccs_url>
 *   content-type: application/json
 *   x-ccs-signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with ccs_secret>
 *   x-ccs-delivery: <delivery id>
 *   x-ccs-event: <table>.<message>
 *
 *   {"id": <delivery id>, "table", "message", "occurredon", "record": <the record as the Web API returns it; for a
 *    delete only its id>, "webhook": <ccs_name>}
 *
 * with retries and exponential backoff until `ccs_maxattempts` (default 8). Pending and retrying deliveries survive a
 * restart. The secret is write-only (`IsValidForRead` false): no read, `$select` or `$filter` returns it.
 */
import type { ProcessDeps, StopProcess } from '../process-deps.js';
import { checkWebhook, WEBHOOK } from './definition.js';
import { Dispatcher, WEBHOOK_CONSUMER } from './dispatcher.js';
import { Sender, type SenderOptions } from './sender.js';

export { signature, backoff, DELIVERY_STATUS, DEFAULT_MAX_ATTEMPTS } from './definition.js';
export type { SenderOptions as WebhookOptions, Timers } from './sender.js';

/** How often the list of webhooks is read again anyway (changes made anywhere also arrive as record events). */
const RELOAD_MS = 30_000;

export function startWebhooks(deps: ProcessDeps, opts: SenderOptions = {}): StopProcess {
  const { records, system, clock, log } = deps;
  const removeValidator = records.addValidator(WEBHOOK, (row) => checkWebhook(row, records.model));
  const sender = new Sender({ records, system, clock, log }, opts);
  const dispatcher = new Dispatcher({ records, system, clock, log, onQueued: () => sender.kick() });
  const consumer = records.consume(WEBHOOK_CONSUMER, (events) => dispatcher.handle(events), { onLease: () => dispatcher.onLease() });
  dispatcher.reload();
  sender.start();
  const timers = opts.timers;
  let reloadTimer: unknown;
  const scheduleReload = () => {
    const fn = () => {
      dispatcher.reload();
      scheduleReload();
    };
    reloadTimer = timers ? timers.setTimeout(fn, RELOAD_MS) : setTimeout(fn, RELOAD_MS).unref();
  };
  scheduleReload();
  return async () => {
    removeValidator();
    if (timers) timers.clearTimeout(reloadTimer);
    else clearTimeout(reloadTimer as ReturnType<typeof setTimeout>);
    // The batch in hand becomes deliveries; later events wait in the event log for the next start.
    await consumer.stop();
    await dispatcher.stop();
    await sender.stop();
  };
}
