/**
 * Webhooks (ours, prefix `ccs_`): subscriptions to record events delivered as signed JSON to an HTTP endpoint, and
 * the log of every delivery. Microsoft's solution forwards Dataverse events through Service Bus and Logic Apps; ccs
 * posts them itself. The rules (URL, table, messages, filter) and the delivery live in src/connector/webhooks.
 */
import type { TableDef } from '../types.js';
import type { SeedRow } from './index.js';
import { choice, dateTime, guid, lookup, memo, text, whole } from './columns.js';

export const WEBHOOK_STATUS = [
  [192350000, 'Pending'],
  [192350001, 'Delivered'],
  [192350002, 'Retrying'],
  [192350003, 'Failed'],
] as const;

export const ccs_webhook: TableDef = {
  logicalName: 'ccs_webhook',
  schemaName: 'ccs_webhook',
  entitySetName: 'ccs_webhooks',
  displayName: 'Webhook',
  displayCollectionName: 'Webhooks',
  description: 'Record events of a table, posted as signed JSON to an HTTP endpoint.',
  primaryIdAttribute: 'ccs_webhookid',
  primaryNameAttribute: 'ccs_name',
  columns: [
    text('ccs_name', 'Name', 100, { requiredLevel: 'ApplicationRequired', description: 'Unique name; templates refer to the webhook by it.' }),
    text('ccs_url', 'URL', 2000, { requiredLevel: 'ApplicationRequired', description: 'The http(s) endpoint events are posted to.' }),
    {
      ...text('ccs_secret', 'Secret', 500, {
        requiredLevel: 'ApplicationRequired',
        description: 'Key of the HMAC-SHA256 signature in the x-ccs-signature header. Write-only: never returned.',
      }),
      isValidForRead: false,
    },
    text('ccs_table', 'Table', 100, { requiredLevel: 'ApplicationRequired', description: 'Logical name of the table whose events are sent.' }),
    text('ccs_messages', 'Messages', 100, {
      requiredLevel: 'ApplicationRequired',
      description: 'Comma-separated events to send: create, update, delete.',
    }),
    memo('ccs_filter', 'Filter', 4000, { description: 'An OData $filter the record must match after the change (not applied to deletes).' }),
    whole('ccs_maxattempts', 'Max Attempts', { minValue: 1, maxValue: 100, description: 'Attempts per delivery before it is marked Failed. Empty: 8.' }),
  ],
  alternateKeys: [{ name: 'ccs_webhook_name', columns: ['ccs_name'] }],
};

export const ccs_webhookdelivery: TableDef = {
  logicalName: 'ccs_webhookdelivery',
  schemaName: 'ccs_webhookdelivery',
  entitySetName: 'ccs_webhookdeliveries',
  displayName: 'Webhook Delivery',
  displayCollectionName: 'Webhook Deliveries',
  description: 'One record event to post to a webhook, with the outcome of each attempt.',
  primaryIdAttribute: 'ccs_webhookdeliveryid',
  primaryNameAttribute: 'ccs_name',
  columns: [
    text('ccs_name', 'Name', 200, { description: '<table>.<message> <record id>.' }),
    lookup('ccs_webhookdelivery', 'ccs_webhook', 'Webhook', 'ccs_webhook', 'ccs_Webhook'),
    text('ccs_table', 'Table', 100),
    guid('ccs_recordid', 'Record Id'),
    text('ccs_message', 'Message', 20, { description: 'create, update or delete.' }),
    memo('ccs_payload', 'Payload', 1048576, { description: 'The JSON body posted, exactly as signed.' }),
    choice('ccs_webhookdelivery', 'ccs_status', 'Status', WEBHOOK_STATUS, { defaultValue: 192350000 }),
    whole('ccs_attempts', 'Attempts', { minValue: 0 }),
    whole('ccs_laststatuscode', 'Last Status Code', { description: 'HTTP status of the last attempt; empty when no response came.' }),
    memo('ccs_lasterror', 'Last Error', 2000),
    dateTime('ccs_nextattempton', 'Next Attempt On'),
    dateTime('ccs_deliveredon', 'Delivered On'),
    {
      logicalName: 'ccs_eventsequence', displayName: 'Event Sequence', type: 'bigint',
      description: 'The sequence number of the durable record event delivered: with the webhook, unique, so a replayed event is not queued twice.',
    },
  ],
  alternateKeys: [{ name: 'ccs_webhookdelivery_event', columns: ['ccs_eventsequence', 'ccs_webhook'] }],
  // The sender looks for due deliveries by status and time.
  indexes: [['ccs_status', 'ccs_nextattempton']],
};

export const webhookTables: readonly TableDef[] = [ccs_webhook, ccs_webhookdelivery];
export const webhookSeedRows: readonly SeedRow[] = [];
