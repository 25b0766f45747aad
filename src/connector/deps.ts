import type { Hub } from '../hub/index.js';
import type { Store } from '../store/index.js';

/** What the connector's actions need beyond the operation context. */
export interface ConnectorDeps {
  /** To open transactions. */
  readonly store: Store;
  /**
   * Registration creates and enables identities and writes twins; the device data pull reads them; the readings query
   * reads a device's telemetry; the test alert accepts a reading for a device.
   */
  readonly hub: Pick<Hub, 'registry' | 'updateTwin' | 'getTwin' | 'readDeviceTelemetry' | 'ingest'>;
  readonly clock: () => number;
}
