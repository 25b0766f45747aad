import type { Store } from '../store/index.js';

/** What the connector's actions need beyond the operation context: the store, to open transactions. */
export interface ConnectorDeps {
  readonly store: Store;
}
