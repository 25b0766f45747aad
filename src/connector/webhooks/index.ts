import type { ProcessDeps, StopProcess } from '../process-deps.js';

/** Webhooks: record events delivered to HTTP endpoints (issue 5 §6). */
export function startWebhooks(_deps: ProcessDeps): StopProcess {
  return async () => {};
}
