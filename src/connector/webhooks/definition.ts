/**
 * What a `ccs_webhook` row means, and the checks that refuse a bad one before it is stored: each failure is a 400
 * naming the column.
 */
import { createHmac } from 'node:crypto';
import { CcsError } from '../../errors/index.js';
import type { Model } from '../../metadata/index.js';
import { compileFilter } from '../../odata/index.js';
import type { Row } from '../../store/index.js';

export const WEBHOOK = 'ccs_webhook';
export const WEBHOOK_ID = 'ccs_webhookid';
export const DELIVERY = 'ccs_webhookdelivery';
export const DELIVERY_ID = 'ccs_webhookdeliveryid';
export const DEFAULT_MAX_ATTEMPTS = 8;
export const MESSAGES = ['create', 'update', 'delete'] as const;
export type Message = (typeof MESSAGES)[number];

export const DELIVERY_STATUS = { pending: 192350000, delivered: 192350001, retrying: 192350002, failed: 192350003 } as const;

/** An active webhook as the dispatcher uses it. */
export interface WebhookDefinition {
  readonly id: string;
  readonly name: string;
  readonly table: string;
  readonly messages: ReadonlySet<Message>;
  readonly filter?: string;
  /** When the webhook was created (ms): it receives the events that occur from then on. */
  readonly createdOn: number;
}

function invalid(column: string, why: string): never {
  throw new CcsError('InvalidValue', `Invalid value for '${column}' of ccs_webhook: ${why}`);
}

function text(row: Readonly<Row>, column: string): string | undefined {
  const v = row[column];
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

/** `create,update` → the set; undefined when a name is not a message. */
export function parseMessages(value: unknown): Set<Message> | undefined {
  if (typeof value !== 'string') return undefined;
  const out = new Set<Message>();
  for (const raw of value.split(',')) {
    const name = raw.trim().toLowerCase();
    if (name === '') continue;
    if (!(MESSAGES as readonly string[]).includes(name)) return undefined;
    out.add(name as Message);
  }
  return out.size > 0 ? out : undefined;
}

/** Refuses a webhook row that could not work: a bad URL, an unknown table, no messages, a filter that does not compile. */
export function checkWebhook(row: Readonly<Row>, model: Model): void {
  if (!text(row, 'ccs_name')) invalid('ccs_name', 'a name is required.');
  const url = text(row, 'ccs_url');
  if (!url) invalid('ccs_url', 'a URL is required.');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    invalid('ccs_url', `'${url.slice(0, 200)}' is not an absolute URL.`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') invalid('ccs_url', `the scheme must be http or https, not '${parsed.protocol.replace(/:$/, '')}'.`);
  if (!text(row, 'ccs_secret')) invalid('ccs_secret', 'a secret is required: deliveries are signed with it.');
  const tableName = text(row, 'ccs_table')?.toLowerCase();
  if (!tableName) invalid('ccs_table', 'the logical name of a table is required.');
  const table = model.table(tableName);
  if (!table) invalid('ccs_table', `there is no table named '${tableName.slice(0, 100)}'.`);
  // Each delivery writes a delivery record: subscribing to those would feed itself forever.
  if (table.logicalName === DELIVERY) invalid('ccs_table', `the events of '${DELIVERY}' cannot be subscribed to.`);
  if (!parseMessages(row['ccs_messages'])) invalid('ccs_messages', `expected a comma-separated list of ${MESSAGES.join(', ')}.`);
  const filter = text(row, 'ccs_filter');
  if (filter) {
    try {
      compileFilter(filter, table, model);
    } catch (e) {
      if (!(e instanceof CcsError)) throw e;
      invalid('ccs_filter', e.message);
    }
  }
}

export function toDefinition(row: Row): WebhookDefinition | undefined {
  const messages = parseMessages(row['ccs_messages']);
  const table = typeof row['ccs_table'] === 'string' ? row['ccs_table'].trim().toLowerCase() : '';
  if (!messages || table === '') return undefined;
  const filter = typeof row['ccs_filter'] === 'string' && row['ccs_filter'].trim() !== '' ? row['ccs_filter'].trim() : undefined;
  return { id: String(row[WEBHOOK_ID]), name: String(row['ccs_name']), table, messages, createdOn: Number(row['createdon'] ?? 0), ...(filter ? { filter } : {}) };
}

/** `sha256=<hex>`: the HMAC-SHA256 of the exact body bytes with the webhook's secret. */
export function signature(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/** Exponential backoff after attempt `attempt` (1-based): base, 2×base, 4×base… up to `capMs`. */
export function backoff(attempt: number, baseMs: number, capMs: number): number {
  return Math.min(capMs, baseMs * 2 ** Math.min(attempt - 1, 30));
}
