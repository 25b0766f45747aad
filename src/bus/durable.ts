/** Redelivery settings shared by the adapters for durable subscriptions (`SubscribeOptions.durable`). */
export interface RedeliveryOptions {
  /** Delay before a message whose handler threw is delivered again. Default 1,000 ms. */
  readonly retryDelayMs?: number;
  /** Deliveries of one message before it is reported and dropped. Default 5. */
  readonly maxDeliver?: number;
}

export const DEFAULT_RETRY_DELAY_MS = 1000;
export const DEFAULT_MAX_DELIVER = 5;

/** Durable names become NATS consumer names, which must be one plain token. */
export function assertDurableName(name: string): void {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(name)) {
    throw new TypeError(`Bus durable name must be letters, digits, '_' or '-', got '${name}'`);
  }
}
