/**
 * Executes a workflow's steps for one run attempt, writing one log entry per executed step. Actions go through the
 * Web API's operation registry with the same parameter validation as an HTTP call; records are written through the
 * records service in the run's context.
 */
import { CcsError } from '../../errors/index.js';
import { formatDateTime } from '../../metadata/index.js';
import { OperationRegistry } from '../../webapi/index.js';
import { evaluate, resolveValue, resolveValues, type RunScope } from './evaluate.js';
import { describeStep, type Step } from './steps.js';

export interface StepLogEntry {
  readonly attempt: number;
  readonly path: string;
  readonly step: string;
  readonly at: string;
  /** Conditions: the branch taken. */
  readonly result?: boolean;
  readonly output?: unknown;
  readonly error?: string;
}

export interface RunOutcome {
  readonly outcome: 'succeeded' | 'canceled';
  readonly message?: string;
}

/** A step failed. `retryable` is false when another attempt cannot change the outcome (the call itself is wrong). */
export class StepFailedError extends Error {
  override readonly name = 'StepFailedError';
  constructor(
    readonly step: Step,
    override readonly cause: unknown,
    readonly retryable: boolean,
  ) {
    super(`${step.path} (${describeStep(step)}): ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

export interface RunStepsDeps {
  readonly operations: OperationRegistry;
  readonly clock: () => number;
  readonly attempt: number;
  /** Entries are appended as steps run. */
  readonly log: StepLogEntry[];
  /**
   * Whether a step that lost a write race is tried again at once (default). Not inside one transaction for the whole
   * run: there the run as a whole is rolled back and executed again step by step.
   */
  readonly conflictRetries?: boolean;
}

/**
 * Whether every step works only in the store and quickly (conditions, creates, updates, stops, and actions marked
 * `transactional`), so that a run can execute in a single transaction: no step waits for a device or the network
 * while holding it.
 */
export function runsInOneTransaction(steps: readonly Step[], operations: OperationRegistry, primaryEntity: string): boolean {
  return steps.every((step) => {
    if (step.kind === 'condition') return runsInOneTransaction(step.then, operations, primaryEntity) && runsInOneTransaction(step.else, operations, primaryEntity);
    if (step.kind !== 'action') return true;
    return operations.get(step.name, step.bound ? primaryEntity : undefined)?.transactional === true;
  });
}

/** An output too large for the log is summarised, so that one chatty action cannot fill the run's row. */
const MAX_LOGGED_OUTPUT = 4000;

function loggable(value: unknown): unknown {
  if (value === undefined) return null;
  const text = JSON.stringify(value);
  return text !== undefined && text.length > MAX_LOGGED_OUTPUT ? `${text.slice(0, MAX_LOGGED_OUTPUT)}… (${text.length} characters)` : value;
}

export async function runSteps(steps: readonly Step[], scope: RunScope, deps: RunStepsDeps): Promise<RunOutcome> {
  return (await runList(steps, scope, deps)) ?? { outcome: 'succeeded' };
}

async function runList(steps: readonly Step[], scope: RunScope, deps: RunStepsDeps): Promise<RunOutcome | undefined> {
  for (const step of steps) {
    const entry = { attempt: deps.attempt, path: step.path, step: describeStep(step), at: formatDateTime(deps.clock()) };
    if (step.kind === 'stop') {
      deps.log.push({ ...entry, ...(step.message !== undefined ? { output: step.message } : {}) });
      return { outcome: step.outcome, ...(step.message !== undefined ? { message: step.message } : {}) };
    }
    if (step.kind === 'condition') {
      let result: boolean;
      try {
        result = await evaluate(step.condition, scope);
      } catch (e) {
        deps.log.push({ ...entry, error: (e as Error).message });
        throw new StepFailedError(step, e, true);
      }
      deps.log.push({ ...entry, result });
      const stopped = await runList(result ? step.then : step.else, scope, deps);
      if (stopped) return stopped;
      continue;
    }
    let output: unknown;
    try {
      output = deps.conflictRetries === false ? await runOne(step, scope, deps) : await withConflictRetries(() => runOne(step, scope, deps));
    } catch (e) {
      deps.log.push({ ...entry, error: e instanceof StepFailedError ? (e.cause as Error).message : (e as Error).message });
      if (e instanceof StepFailedError) throw e;
      throw new StepFailedError(step, e, true);
    }
    deps.log.push({ ...entry, output: loggable(output) });
    if ('as' in step && step.as !== undefined) scope.outputs.set(step.as, output);
  }
  return undefined;
}

/** Immediate tries of a step that lost an optimistic-concurrency race, before it counts as a failed attempt. */
const CONFLICT_TRIES = 4;

/**
 * A step that lost a race with another writer of the same record (412 VersionMismatch) is tried again at once: its
 * write did not happen (an action's writes roll back with its transaction), and the next try reads the winner's.
 */
async function withConflictRetries<T>(fn: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof CcsError && e.code === 'VersionMismatch') || i >= CONFLICT_TRIES) throw e;
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * i));
    }
  }
}

async function runOne(step: Exclude<Step, { kind: 'stop' | 'condition' }>, scope: RunScope, deps: RunStepsDeps): Promise<unknown> {
  switch (step.kind) {
    case 'action': {
      const op = deps.operations.get(step.name, step.bound ? scope.table.logicalName : undefined);
      if (!op) throw new StepFailedError(step, new Error(`The action ${step.name} is no longer available.`), false);
      const params = await resolveValues(step.parameters, scope);
      try {
        // The same check the Web API makes before invoking: a wrong call fails with the message a client would get.
        OperationRegistry.validate(op.def, params);
      } catch (e) {
        throw new StepFailedError(step, e, false);
      }
      const bound = step.bound ? { table: scope.table, id: scope.recordId } : undefined;
      const result = await op.invoke({ records: scope.records, record: scope.ctx, bound }, params);
      return result ?? {};
    }
    case 'create': {
      const id = await scope.records.create(scope.ctx, step.table, await resolveValues(step.values, scope));
      return { id };
    }
    case 'update': {
      const resolved = step.id === undefined ? scope.recordId : await resolveValue(step.id, scope);
      // A lookup with several targets resolves to `{ id, table }`.
      const id = typeof resolved === 'object' && resolved !== null && 'id' in resolved ? (resolved as { id: unknown }).id : resolved;
      if (typeof id !== 'string') {
        throw new StepFailedError(step, new Error(`The id of the ${step.table} record to update is ${id === null ? 'empty' : 'not a GUID'}.`), true);
      }
      await scope.records.update(scope.ctx, step.table, id, await resolveValues(step.values, scope));
      return { id };
    }
  }
}
