/**
 * Workflows: records of table `workflow` whose steps run on record events, each run an `asyncoperation` row
 * (docs/workflows.md). The shipped workflows are first-start rows of src/metadata/standard/workflow.ts.
 */
import type { ProcessDeps, StopProcess } from '../process-deps.js';
import { WorkflowEngine, type WorkflowEngineOptions } from './engine.js';

export { WorkflowEngine, RUN_STATUS, DEFAULT_MAX_ATTEMPTS, MAX_DEPTH, type WorkflowEngineOptions } from './engine.js';
export { parseSteps, parseAttributeList, type Step, type ConditionExpr, type ValueExpr, type StepContext } from './steps.js';
export type { StepLogEntry } from './run-steps.js';

/**
 * Starts the engine: validates workflow records, turns record events into runs, resumes the runs a previous process
 * left. The returned function stops taking new runs and waits for the running ones.
 */
export function startWorkflows(deps: ProcessDeps, opts: WorkflowEngineOptions = {}): StopProcess {
  const engine = new WorkflowEngine(deps, opts);
  engine.start();
  return () => engine.stop();
}
