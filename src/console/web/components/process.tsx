/**
 * The IoT Alert to Case process bar of the alert and case pages: the stages (table `processstage`, in `ccs_order`)
 * with the current one and those passed. Moving a stage is the PATCH Dataverse's own stage bar sends (the alert's
 * `stageid`, or the process instance's `activestageid`); the server decides which moves are allowed, and its message
 * is shown under the bar.
 */
import type { JSX } from 'preact';
import { query } from '../api';
import { useAction, useAsync } from '../hooks';
import { ErrorNote, StageBar } from './ui';

export const IOT_TO_CASE_PROCESS_ID = '006c4c42-2abe-4b61-9149-56df5b9625f9';

export interface Stage {
  readonly id: string;
  readonly name: string;
}

export async function loadStages(processId: string, signal?: AbortSignal): Promise<Stage[]> {
  const rows = (await query(`processstages?$select=stagename,ccs_order&$filter=processid eq ${processId}&$orderby=ccs_order`, { signal })).value;
  return rows.map((s) => ({ id: String(s['processstageid']), name: String(s['stagename']) }));
}

export function ProcessStageBar(props: {
  processId: string;
  /** The current stage; none: the process has not started, so its first stage is current. */
  current: string | undefined;
  /** `traversedpath`: the stage ids visited, comma-separated. */
  traversed: unknown;
  /** Moves the process to a stage; absent when the user may not. */
  move?: (stageId: string) => Promise<void>;
}): JSX.Element | null {
  const stages = useAsync(async (signal) => {
    try {
      return await loadStages(props.processId, signal);
    } catch {
      return []; // no process stages in this model, or not readable by this role
    }
  }, [props.processId]);
  const moving = useAction();
  if (!stages.data || stages.data.length === 0) return null;
  const passed = String(props.traversed ?? '').split(',').filter(Boolean);
  const current = props.current ?? (passed.length === 0 ? stages.data[0]?.id : undefined);
  const move = props.move;
  const onMove = move ? (stageId: string) => moving.run(() => move(stageId)) : undefined;
  return (
    <div class="process">
      <StageBar stages={stages.data} current={current} passed={passed} label="IoT Alert to Case process" onMove={onMove} busy={moving.busy !== undefined} testId="stage-bar" />
      {onMove && <p class="help">Choose a stage to move the process there: the next one, or back to an earlier one.</p>}
      <ErrorNote error={moving.error} title="The stage was not changed" />
    </div>
  );
}
