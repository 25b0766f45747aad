import type { ProcessDeps, StopProcess } from '../process-deps.js';

/** Workflows: records of table `workflow` run on record events (issue 5 §4). */
export function startWorkflows(_deps: ProcessDeps): StopProcess {
  return async () => {};
}
