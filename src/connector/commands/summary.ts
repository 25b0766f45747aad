import { COMMAND_STATUS_VALUE, REASON_MAX } from './status.js';

/** How many child commands of a fan-out are in each status. */
export interface ChildCounts {
  readonly inProgress: number;
  readonly sent: number;
  readonly delivered: number;
  readonly error: number;
  readonly expired: number;
}

/** A child command that failed, for the parent's reason. */
export interface ChildFailure {
  readonly deviceId: string;
  readonly expired: boolean;
  readonly reason: string;
}

/** Failures named in the parent's reason; the rest are counted. */
export const FAILURES_LISTED = 10;
const FAILURE_REASON_MAX = 200;

/**
 * The status of a command sent to many devices, from its children's: In Progress while any child is; else Error when
 * any child failed (Error or Expired), naming them; else Sent while any child waits for its device; else Delivered.
 * A pure function of the children, so it can be recomputed at any time (after a restart, or a child that Expired and
 * was then completed) and always says the same.
 */
export function summarise(counts: ChildCounts, failures: readonly ChildFailure[]): { status: number; reason: string } {
  const total = counts.inProgress + counts.sent + counts.delivered + counts.error + counts.expired;
  const devices = (n: number) => `${n} device${n === 1 ? '' : 's'}`;
  const tally = [
    counts.delivered ? `${counts.delivered} delivered` : '',
    counts.sent ? `${counts.sent} sent and waiting for the device` : '',
    counts.inProgress ? `${counts.inProgress} in progress` : '',
    counts.error ? `${counts.error} in error` : '',
    counts.expired ? `${counts.expired} expired` : '',
  ].filter(Boolean).join(', ');
  if (counts.inProgress > 0) return { status: COMMAND_STATUS_VALUE.inProgress, reason: `Sending to ${devices(total)}: ${tally}.` };
  const failed = counts.error + counts.expired;
  if (failed > 0) {
    const listed = failures.slice(0, FAILURES_LISTED).map((f) => `'${f.deviceId}'${f.expired ? ' (expired)' : ''}: ${clip(f.reason, FAILURE_REASON_MAX)}`);
    const more = failed > listed.length ? `; and ${failed - listed.length} more` : '';
    const reason = `${failed} of ${devices(total)} failed (${tally}). ${listed.join('; ')}${more}`;
    return { status: COMMAND_STATUS_VALUE.error, reason: clip(reason, REASON_MAX) };
  }
  if (counts.sent > 0) return { status: COMMAND_STATUS_VALUE.sent, reason: `Sent to ${devices(total)}: ${tally}.` };
  return { status: COMMAND_STATUS_VALUE.delivered, reason: `Delivered to all ${devices(total)}.` };
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
