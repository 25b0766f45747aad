/**
 * `$batch` for the Web API, independent of the HTTP framework: the route hands over the raw body, its Content-Type,
 * the service root and a handler for single requests, and writes back what `executeBatch` returns.
 * Wire format: reference/odata.md §1.10 (Dataverse) and §2.5 (what DynamicsWebApi 2.5.0 sends and parses).
 */
export {
  executeBatch,
  type BatchOptions,
  type BatchResult,
  type Handler,
  type InnerRequest,
  type InnerResponse,
} from './execute.js';
export { MAX_REQUESTS_PER_BATCH } from './parse.js';
