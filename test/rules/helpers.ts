import {
  createEvaluator,
  ruleFromRecord,
  type DeviceRef,
  type DeviceState,
  type Evaluator,
  type Firing,
  type RuleDefinition,
} from '../../src/rules/index.js';

/** Epoch milliseconds of the tests' "time zero": real epoch values, as the hub's enqueued times are. */
export const T0 = Date.UTC(2024, 0, 1);
export const S = 1000;
export const M = 60 * S;

let nextId = 0;

/** A rule from a condition (as a `ccs_iotrule` row would give it); `extra` are further column values. */
export function rule(condition: unknown, extra: Record<string, unknown> = {}): RuleDefinition {
  return ruleFromRecord({
    ccs_iotruleid: `rule-${++nextId}`,
    ccs_name: 'test rule',
    ccs_condition: JSON.stringify(condition),
    ...extra,
  });
}

/** One device driven through an evaluator, with times relative to T0. */
export class Device {
  state: DeviceState | undefined;
  suppressed = 0;
  #n = 0;

  constructor(
    readonly evaluator: Evaluator,
    readonly id = 'device-1',
  ) {}

  send(at: number, body: unknown, opts: { reported?: Record<string, unknown>; device?: DeviceRef; messageId?: string } = {}): Firing[] {
    const r = this.evaluator.evaluate(this.state, {
      deviceId: this.id,
      time: T0 + at,
      body,
      messageId: opts.messageId ?? `msg-${++this.#n}`,
      ...(opts.reported === undefined ? {} : { reported: opts.reported }),
      ...(opts.device === undefined ? {} : { device: opts.device }),
    });
    this.state = r.state;
    this.suppressed += r.suppressed;
    return [...r.firings];
  }

  tick(at: number): Firing[] {
    if (this.state === undefined) return [];
    const r = this.evaluator.tick(this.state, T0 + at);
    this.state = r.state;
    this.suppressed += r.suppressed;
    return [...r.firings];
  }

  /** Serialises the state and reads it back, as a restart from a checkpoint would. */
  restart(evaluator: Evaluator = this.evaluator): Device {
    const copy = new Device(evaluator, this.id);
    copy.state = this.state === undefined ? undefined : (JSON.parse(JSON.stringify(this.state)) as DeviceState);
    return copy;
  }
}

export function device(rules: RuleDefinition | RuleDefinition[], id?: string): Device {
  return new Device(createEvaluator(Array.isArray(rules) ? rules : [rules]), id);
}

/** Relative times (ms after T0) of firings. */
export function times(firings: readonly Firing[]): number[] {
  return firings.map((f) => f.time - T0);
}
