/**
 * The stages of "IoT Alert to Case Process" and the rules for moving between them (ms-connected-service.md §4.2).
 *
 * The flow is linear, so the traversed path (Dataverse's comma-separated stage ids, first stage first) is always the
 * stages from the first up to the active one: moving forward appends, moving back trims. A move may go one stage
 * forward or any number back; skipping forward is refused, as the stage bar does. The case stages (Identify onwards)
 * need a case, and an alert with a case stays at Create Case or later.
 */
import { CcsError } from '../../errors/index.js';
import { IOT_TO_CASE_PROCESS_ID, IOT_TO_CASE_STAGES } from '../../metadata/index.js';

export const PROCESS_ID = IOT_TO_CASE_PROCESS_ID;
export const PROCESS_NAME = 'IoT Alert to Case Process';
export const STAGES = IOT_TO_CASE_STAGES;
export const CREATED = 0;
export const CREATE_CASE = 1;
export const IDENTIFY = 2;
export const RESOLVE = STAGES.length - 1;

/** The position of stage `id` in the flow, or -1 when it is not one of its stages. */
export function stageIndex(id: unknown): number {
  if (typeof id !== 'string') return -1;
  const lower = id.toLowerCase();
  return STAGES.findIndex((s) => s.id === lower);
}

export function stageId(index: number): string {
  return STAGES[index]!.id;
}

/** The traversed path of a process whose active stage is `index`. */
export function pathTo(index: number): string {
  return STAGES.slice(0, index + 1).map((s) => s.id).join(',');
}

/** The active stage a traversed path ends at; -1 for an empty path, undefined for one that is not a path of this flow. */
export function pathEnd(path: unknown): number | undefined {
  if (path === null || path === undefined || path === '') return -1;
  if (typeof path !== 'string') return undefined;
  const ids = path.split(',').map((s) => s.trim().toLowerCase());
  if (ids.length > STAGES.length || ids.some((id, i) => id !== STAGES[i]!.id)) return undefined;
  return ids.length - 1;
}

/** What a stage check needs of an alert or a process instance, under the names of its own table. */
export interface StageState {
  /** `msdyn_iotalert` or `msdyn_iottocaseprocess`, and its stage column, for messages. */
  readonly table: string;
  readonly stageColumn: string;
  /** The record is in the process only when `processid` names it (the alert; an instance may be created without). */
  readonly requireProcessId?: boolean;
  readonly id: unknown;
  readonly stage: unknown;
  readonly path: unknown;
  readonly processId: unknown;
  readonly hasCase: boolean;
  readonly active: boolean;
}

function refuse(message: string): never {
  throw new CcsError('InvalidValue', message);
}

/**
 * Checks a row as it will be stored. The stored path ends at the stage the record is at, so a row whose stage is the
 * end of its path is at rest (the platform writes stage and path together); any other stage is a move from the end
 * of the path, and must be a legal one.
 */
export function checkStage(s: StageState): void {
  const what = `${s.table} ${String(s.id)}`;
  if (s.stage === null || s.stage === undefined) {
    if (pathEnd(s.path) !== -1) refuse(`'${s.stageColumn}' of ${what} cannot be cleared while it is in the ${PROCESS_NAME}.`);
    return;
  }
  if (s.requireProcessId && (s.processId === null || s.processId === undefined)) {
    refuse(`${what} is not in the ${PROCESS_NAME}: only alerts created without a parent alert have a stage.`);
  }
  if (s.processId !== null && s.processId !== undefined && String(s.processId).toLowerCase() !== PROCESS_ID) {
    refuse(`'processid' of ${what} must be the ${PROCESS_NAME} (${PROCESS_ID}).`);
  }
  const to = stageIndex(s.stage);
  if (to < 0) {
    refuse(`'${s.stageColumn}' of ${what}: ${String(s.stage)} is not a stage of the ${PROCESS_NAME}; its stages are ${STAGES.map((x) => `${x.name} (${x.id})`).join(', ')}.`);
  }
  const from = pathEnd(s.path);
  if (from === undefined) refuse(`'traversedpath' of ${what} is not a path of the ${PROCESS_NAME}: it must list its stage ids in order from '${STAGES[0].name}'.`);
  if (to === from) return;
  const name = STAGES[to]!.name;
  if (from < 0) {
    if (to !== CREATED) refuse(`${what} must start the ${PROCESS_NAME} at stage '${STAGES[CREATED].name}', not '${name}'.`);
    return;
  }
  if (!s.active) refuse(`${what} is inactive: its stage cannot change.`);
  if (to > from + 1) {
    refuse(`Cannot move ${what} from stage '${STAGES[from]!.name}' to '${name}': stages cannot be skipped; the next stage is '${STAGES[from + 1]!.name}'.`);
  }
  if (to >= IDENTIFY && !s.hasCase) refuse(`Cannot move ${what} to stage '${name}': create the case first (stage '${STAGES[CREATE_CASE].name}').`);
  if (to < CREATE_CASE && s.hasCase) refuse(`Cannot move ${what} back to stage '${name}': it has a case, so it stays at '${STAGES[CREATE_CASE].name}' or later.`);
}
