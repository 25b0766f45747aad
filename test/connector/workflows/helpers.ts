import { eventually, type Connector } from '../helpers.js';

/** An asyncoperation as the Web API returns it. */
export interface RunView {
  readonly asyncoperationid: string;
  readonly name: string;
  readonly operationtype: number;
  readonly statecode: number;
  readonly statuscode: number;
  readonly retrycount: number | null;
  readonly message: string | null;
  readonly friendlymessage: string | null;
  readonly errorcode: number | null;
  readonly ccs_steplog: string | null;
  readonly correlationid: string | null;
  readonly sequence: number | null;
  readonly startedon: string | null;
  readonly completedon: string | null;
  readonly postponeuntil: string | null;
  readonly _workflowactivationid_value: string;
  readonly _regardingobjectid_value: string | null;
}

export const STATUS = { waiting: 10, inProgress: 20, succeeded: 30, failed: 31, canceled: 32 } as const;

/** Creates a workflow through the Web API: background, activated, on create unless told otherwise. */
export function createWorkflow(c: Connector, def: Record<string, unknown> & { steps?: unknown }): Promise<string> {
  const { steps, ...rest } = def;
  return c.api.create<Record<string, unknown>, string>({
    collection: 'workflows',
    data: {
      category: 0,
      mode: 0,
      statecode: 1,
      statuscode: 2,
      triggeroncreate: true,
      ...(steps !== undefined ? { ccs_steps: JSON.stringify(steps) } : {}),
      ...rest,
    },
  });
}

/** The runs started by a record's events, in submission order. */
export async function runsOf(c: Connector, recordId: string): Promise<RunView[]> {
  return (await c.api.retrieveAll<RunView>({
    collection: 'asyncoperations',
    filter: `_regardingobjectid_value eq ${recordId}`,
    orderBy: ['sequence asc'],
  })).value;
}

/** Waits until the record has `n` runs (of `workflowId` when given) and all of them have completed. */
export function completedRuns(c: Connector, recordId: string, n: number, opts: { workflowId?: string; ms?: number } = {}): Promise<RunView[]> {
  return eventually(async () => {
    const runs = (await runsOf(c, recordId)).filter((r) => !opts.workflowId || r._workflowactivationid_value === opts.workflowId);
    return runs.length >= n && runs.every((r) => r.statecode === 3) ? runs : undefined;
  }, opts.ms ?? 20_000, `${n} completed runs for ${recordId}`);
}
