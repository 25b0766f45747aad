import type { ProcessDeps, StopProcess } from './process-deps.js';

/** The IoT Alert to Case business process (issue 5 §5). */
export function startCaseProcess(_deps: ProcessDeps): StopProcess {
  return async () => {};
}
