import type { Logger } from 'pino';
import type { Bus } from '../bus/index.js';
import type { HubRuntime } from '../hub/index.js';
import type { Metrics } from '../metrics/index.js';
import type { AlertPipeline } from '../pipeline/index.js';
import type { RecordContext, RecordsService } from '../records/index.js';
import type { Store } from '../store/index.js';
import type { OperationRegistry } from '../webapi/index.js';

/**
 * What the connector's long-running processes (workflows, the IoT Alert to Case process, webhooks) are given by the
 * composition root. Each `start*` returns its stop function.
 */
export interface ProcessDeps {
  readonly store: Store;
  readonly records: RecordsService;
  /** The platform's own context, with every privilege. */
  readonly system: RecordContext;
  readonly hub: HubRuntime;
  readonly bus: Bus;
  /** The Web API's action registry: workflows call actions through it. */
  readonly operations: OperationRegistry;
  readonly pipeline: AlertPipeline;
  readonly clock: () => number;
  readonly log: Logger;
  readonly metrics: Metrics;
}

export type StopProcess = () => Promise<void>;
