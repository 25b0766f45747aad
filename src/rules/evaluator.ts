/**
 * The rule evaluator: per-device state in, readings and time in, firings out. No clock, no I/O, no randomness:
 * the same readings produce the same firings, whether the state stayed in memory or went through a checkpoint.
 *
 * Semantics, and why:
 *
 * - A comparison keeps the last value it saw. A message without the measure, or with a value that is not a number
 *   (not JSON, a string, `null`, beyond ±1e100) leaves it as it was: devices that send temperature and humidity in
 *   separate messages must not re-arm a temperature rule with every humidity message. Before any value it is
 *   unknown.
 * - `all` / `any` combine the current truth of their parts (three-valued: unknown unless decided).
 * - A rule fires once when its condition becomes true, and re-arms only when it becomes false (unknown is neither).
 * - `for`: the comparison must have been true at every evaluation since it became true, for that long. It
 *   completes at the next reading or tick after that, and fires with the exact completion time.
 * - Windows are cut in 60 buckets (window / 60 each); a reading counts for at least the window and at most the
 *   window plus one bucket. `count` and `sum` of an empty window are 0; `avg`, `min`, `max` are unknown.
 * - `rateOfChange: PT1M` is the change per minute between the two latest readings of the measure:
 *   (v₂ − v₁) × 60000 / (t₂ − t₁), signed (rising is positive). Two readings with the same time give no new rate.
 * - `noDataFor` is true once the device (or the measure) has been silent that long, counted from the last message;
 *   for a new device from its first message.
 * - Suppression: a firing whose reading equals one the rule fired (or suppressed) for on this device less than
 *   `suppressSeconds` ago is suppressed, as Stream Analytics' `LAG … LIMIT DURATION(minute, 1)` does. The rule
 *   still counts as fired (it re-arms when false), and the suppression window slides with each repeat.
 * - Time: every deadline (a duration completing, a bucket leaving a window, a silence reaching its length) is
 *   processed at its own time, before any later reading; `tick(now)` processes those up to `now`. So firing times
 *   and tokens do not depend on how often ticks run. A reading older than the device's last processed time is taken
 *   at that time (time never runs backwards in a state).
 *
 * State ownership: `evaluate` and `tick` update the state they are given and return it (copying it per reading would
 * cost more than evaluating). Keep only the returned reference; snapshot with JSON for checkpoints.
 */
import {
  CONDITION_LIMITS,
  conditionToJson,
  isGroupCondition,
  type LeafCondition,
  type Operand,
  type RuleCondition,
  type Scalar,
} from './condition.js';
import type { Firing, FiringReading } from './firing.js';
import { parsePath, resolvePath, type CompiledPath } from './path.js';
import type { RuleDefinition } from './rule.js';
import { compileTemplate, formatValue, renderTemplate, type CompiledTemplate } from './template.js';

/** The device's record ids, as the caller knows them; they decide which category and device rules apply. */
export interface DeviceRef {
  /** msdyn_iotdevice id. */
  readonly recordId?: string | null;
  /** msdyn_iotdevicecategory id. */
  readonly categoryId?: string | null;
}

export interface Reading {
  /** The hub's device id. */
  readonly deviceId: string;
  /** Epoch milliseconds (the hub's enqueued time). */
  readonly time: number;
  /** The parsed JSON body; undefined when the body is not JSON. */
  readonly body: unknown;
  readonly messageId?: string | null;
  /** The device's reported properties, for thresholds read from them; when absent the last ones seen still hold. */
  readonly reported?: Readonly<Record<string, unknown>> | null;
  /** When absent, the ids given with earlier readings (kept in the state) still hold. */
  readonly device?: DeviceRef;
}

export interface Evaluation {
  /** The state given, updated. */
  readonly state: DeviceState;
  readonly firings: readonly Firing[];
  /** Firings withheld by suppression (for metrics). */
  readonly suppressed: number;
}

/** 0 false, 1 true, 2 unknown. */
type Truth = 0 | 1 | 2;
const FALSE = 0;
const TRUE = 1;
const UNKNOWN = 2;

/**
 * Per-comparison state. One shape for every kind, so that the evaluator's property accesses stay monomorphic;
 * plain JSON values only (no undefined, no NaN or Infinity).
 */
export interface LeafState {
  /** The current reading: last value, last aggregate, last rate, or seconds without data. */
  v: Scalar | null;
  /** Truth at the last evaluation. */
  lt: Truth;
  /** `for`: since when the comparison has been true. */
  since: number | null;
  /** Thresholds read from reported properties (value or min, and max). */
  t0: Scalar | null;
  t1: Scalar | null;
  /** Rate: the previous value. */
  pv: number | null;
  /** Rate: the previous value's time. No data: the time of the last data. */
  pt: number | null;
  /** Window: buckets `[start, count, sum, min, max, …]`, oldest first. */
  b: number[] | null;
  /** Window totals over the buckets. */
  n: number;
  s: number;
  lo: number | null;
  hi: number | null;
}

export interface RuleState {
  id: string;
  /** Hash of the condition the state was built for; another condition starts afresh. */
  h: string;
  /** Fired and not re-armed yet. */
  on: boolean;
  /** The next time this rule must be evaluated without a reading. */
  due: number | null;
  /** Recent firings `[reading, time]` for suppression, at most 8. */
  sup: [Scalar, number][];
  leaves: LeafState[];
}

/** Everything the evaluator remembers about one device. JSON-serialisable; treat as opaque. */
export interface DeviceState {
  format: 1;
  deviceId: string;
  /** Fingerprint of the rules `rules` is aligned with (those that apply to the device). */
  fp: string;
  /** The latest time processed. */
  now: number | null;
  /** The time of the latest reading. */
  seen: number | null;
  /** The earliest `due` of the device's rules: when `tick` has something to do. */
  due: number | null;
  recordId: string | null;
  categoryId: string | null;
  /** One per applicable rule, in the same order (an array: no dictionary lookup per rule per reading). */
  rules: RuleState[];
}

export interface Evaluator {
  /** Active rules, in the order given. */
  readonly rules: readonly RuleDefinition[];
  /** Changes whenever a rule is added, removed or gets another condition. */
  readonly fingerprint: string;
  /** The rules that apply to a device: those for all devices, for its category, and for itself, in order. */
  rulesFor(device?: DeviceRef): readonly RuleDefinition[];
  createState(deviceId: string): DeviceState;
  /** Evaluates one reading; `state` undefined starts a new device. */
  evaluate(state: DeviceState | undefined, reading: Reading): Evaluation;
  /** Processes what time alone changes, up to `now`. Cheap when nothing is due (`state.due`). */
  tick(state: DeviceState, now: number): Evaluation;
}

const K_VALUE = 0;
const K_AGGREGATE = 1;
const K_RATE = 2;
const K_NODATA = 3;

const OPS = ['gt', 'ge', 'lt', 'le', 'eq', 'ne', 'outside', 'between'];
const OP_GT = 0;
const OP_GE = 1;
const OP_LT = 2;
const OP_LE = 3;
const OP_EQ = 4;
const OP_NE = 5;
const OP_OUTSIDE = 6;

const AGGREGATES = ['avg', 'min', 'max', 'sum', 'count'];
const AG_AVG = 0;
const AG_MIN = 1;
const AG_MAX = 2;
const AG_SUM = 3;

/** Types a plain reading or threshold may have: numbers for numeric tests; any scalar for eq/ne. */
const ACCEPT_NUMBER = 1;
const ACCEPT_ANY = 7;

const BUCKETS = 60;
const MAX_SUPPRESSED_VALUES = 8;
/** Deadlines processed per call at most; far more than a rule set can have, a guard against a bug looping. */
const MAX_STEPS = 100_000;

interface CLeaf {
  readonly group: false;
  readonly index: number;
  readonly ast: LeafCondition;
  readonly kind: number;
  readonly readingType: string;
  /** Body path id, or -1. */
  readonly path: number;
  readonly op: number;
  /** Operands: a constant, or a reported-property path id (≥ 0) with a default. */
  readonly c0: Scalar | null;
  readonly p0: number;
  readonly d0: Scalar | null;
  readonly c1: Scalar | null;
  readonly p1: number;
  readonly d1: Scalar | null;
  readonly hasProperty: boolean;
  readonly accept: number;
  readonly forMs: number;
  readonly aggregate: number;
  /** min and max windows keep their extremes; the others do not need them. */
  readonly tracksExtremes: boolean;
  readonly windowMs: number;
  readonly bucketMs: number;
  readonly periodMs: number;
  readonly afterMs: number;
}

interface CGroup {
  readonly group: true;
  readonly any: boolean;
  readonly kids: readonly CNode[];
}

type CNode = CLeaf | CGroup;

interface CRule {
  readonly def: RuleDefinition;
  readonly id: string;
  readonly root: CNode;
  readonly leaves: readonly CLeaf[];
  readonly hash: string;
  readonly template: CompiledTemplate;
  readonly suppressMs: number;
}

/** The rules that apply to a kind of device, and their fingerprint, which a state aligned with them carries. */
interface RuleSet {
  readonly rules: readonly CRule[];
  readonly fp: string;
}

const NO_FIRINGS: readonly Firing[] = Object.freeze([]);

/** cyrb53: a fast 53-bit string hash; collisions only cost a rule its state. */
function hash(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

function isScalar(v: unknown): v is Scalar {
  return typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean';
}

/** A value we compare, or undefined: finite numbers within ±1e100, short strings, booleans, as `accept` allows. */
function comparable(x: unknown, accept: number): Scalar | undefined {
  if (typeof x === 'number') return Math.abs(x) <= CONDITION_LIMITS.maxMagnitude ? x : undefined;
  if (accept === ACCEPT_NUMBER) return undefined;
  if (typeof x === 'string') return x.length <= CONDITION_LIMITS.maxStringLength ? x : undefined;
  if (typeof x === 'boolean') return x;
  return undefined;
}

function isNumber(x: unknown): x is number {
  return typeof x === 'number' && Math.abs(x) <= CONDITION_LIMITS.maxMagnitude;
}

class RuleEvaluator implements Evaluator {
  readonly rules: readonly RuleDefinition[];
  readonly fingerprint: string;
  readonly #compiled: readonly CRule[];
  /** Rules for all devices; for each category and device that has rules of its own, the merged list. */
  readonly #forAll: RuleSet;
  readonly #categories = new Set<string>();
  readonly #devices = new Set<string>();
  readonly #merged = new Map<string, RuleSet>();

  readonly #bodyPaths: CompiledPath[] = [];
  readonly #propPaths: CompiledPath[] = [];
  /** Each path is resolved once per reading, however many rules read it. */
  readonly #bodyCache: unknown[] = [];
  readonly #bodyEpoch: number[] = [];
  readonly #propCache: unknown[] = [];
  readonly #propEpoch: number[] = [];
  #epoch = 0;

  // Scratch for the evaluation in progress (synchronous, so one set per evaluator is enough).
  #due = Infinity;
  /** The first comparison (in document order) that became true in the rule evaluation in progress. */
  #rose = -1;
  #out: Firing[] | null = null;
  #suppressed = 0;

  constructor(definitions: readonly RuleDefinition[]) {
    const bodyIds = new Map<string, number>();
    const propIds = new Map<string, number>();
    const pathId = (text: string, ids: Map<string, number>, paths: CompiledPath[]): number => {
      let id = ids.get(text);
      if (id === undefined) {
        const parsed = parsePath(text);
        if ('error' in parsed) throw new TypeError(`Invalid path '${text}': ${parsed.error}`);
        id = paths.length;
        paths.push(parsed);
        ids.set(text, id);
      }
      return id;
    };
    const compiled: CRule[] = [];
    const ids = new Set<string>();
    for (const def of definitions) {
      if (!def.active) continue;
      if (ids.has(def.id)) throw new TypeError(`Duplicate rule id ${def.id}`);
      ids.add(def.id);
      const leaves: CLeaf[] = [];
      const compile = (c: RuleCondition): CNode => {
        if (isGroupCondition(c)) return { group: true, any: c.kind === 'any', kids: c.conditions.map(compile) };
        const leaf = compileLeaf(c, leaves.length, (p) => pathId(p, bodyIds, this.#bodyPaths), (p) => pathId(p, propIds, this.#propPaths));
        leaves.push(leaf);
        return leaf;
      };
      const root = compile(def.condition);
      const rule: CRule = {
        def,
        id: def.id,
        root,
        leaves,
        hash: hash(JSON.stringify(conditionToJson(def.condition))),
        template: compileTemplate(def.description),
        suppressMs: def.suppressSeconds * 1000,
      };
      compiled.push(rule);
      if (def.scope.kind === 'category') this.#categories.add(def.scope.categoryId.toLowerCase());
      if (def.scope.kind === 'device') this.#devices.add(def.scope.deviceId.toLowerCase());
    }
    this.#compiled = compiled;
    this.rules = Object.freeze(compiled.map((r) => r.def));
    this.#forAll = ruleSet(compiled.filter((r) => r.def.scope.kind === 'all'));
    this.fingerprint = ruleSet(compiled).fp;
    for (let i = 0; i < this.#bodyPaths.length; i++) this.#bodyEpoch.push(-1);
    for (let i = 0; i < this.#propPaths.length; i++) this.#propEpoch.push(-1);
  }

  rulesFor(device: DeviceRef = {}): readonly RuleDefinition[] {
    return this.#applicable(device.categoryId?.toLowerCase() ?? null, device.recordId?.toLowerCase() ?? null).rules.map((r) => r.def);
  }

  #applicable(categoryId: string | null, recordId: string | null): RuleSet {
    const cat = categoryId !== null && this.#categories.has(categoryId) ? categoryId : null;
    const dev = recordId !== null && this.#devices.has(recordId) ? recordId : null;
    if (cat === null && dev === null) return this.#forAll;
    const key = `${cat ?? ''}\u0000${dev ?? ''}`;
    let set = this.#merged.get(key);
    if (set === undefined) {
      set = ruleSet(this.#compiled.filter((r) => {
        const s = r.def.scope;
        return s.kind === 'all' || (s.kind === 'category' && s.categoryId.toLowerCase() === cat) || (s.kind === 'device' && s.deviceId.toLowerCase() === dev);
      }));
      this.#merged.set(key, set);
    }
    return set;
  }

  createState(deviceId: string): DeviceState {
    return { format: 1, deviceId, fp: '', now: null, seen: null, due: null, recordId: null, categoryId: null, rules: [] };
  }

  evaluate(state: DeviceState | undefined, reading: Reading): Evaluation {
    const s = state ?? this.createState(reading.deviceId);
    if (s.deviceId !== reading.deviceId) throw new TypeError(`State of device '${s.deviceId}' given a reading of '${reading.deviceId}'`);
    if (!Number.isFinite(reading.time)) throw new TypeError(`Reading time must be epoch milliseconds, got ${reading.time}`);
    this.#out = null;
    this.#suppressed = 0;
    const device = reading.device;
    if (device !== undefined) {
      if (device.recordId !== undefined) s.recordId = device.recordId === null ? null : device.recordId.toLowerCase();
      if (device.categoryId !== undefined) s.categoryId = device.categoryId === null ? null : device.categoryId.toLowerCase();
    }
    const set = this.#applicable(s.categoryId, s.recordId);
    const t = s.now === null || reading.time > s.now ? reading.time : s.now;
    if (s.fp !== set.fp) this.#reconcile(s, set, t);
    const rules = set.rules;
    const states = s.rules;
    if (s.due !== null && s.due < t) this.#advance(s, rules, t, false);

    this.#epoch++;
    s.seen = t;
    let due = Infinity;
    for (let i = 0; i < rules.length; i++) {
      const rs = states[i];
      this.#evaluateRule(rules[i], rs, t, reading, s);
      if (rs.due !== null && rs.due < due) due = rs.due;
    }
    s.now = t;
    s.due = due === Infinity ? null : due;
    return { state: s, firings: this.#out ?? NO_FIRINGS, suppressed: this.#suppressed };
  }

  tick(s: DeviceState, now: number): Evaluation {
    this.#out = null;
    this.#suppressed = 0;
    // A device never seen has no timers yet: they start with its first message.
    if (s.seen === null) return { state: s, firings: NO_FIRINGS, suppressed: 0 };
    const set = this.#applicable(s.categoryId, s.recordId);
    if (s.fp !== set.fp) this.#reconcile(s, set, s.now);
    if (s.due !== null && s.due <= now) {
      this.#advance(s, set.rules, now, true);
      this.#updateDue(s);
    }
    return { state: s, firings: this.#out ?? NO_FIRINGS, suppressed: this.#suppressed };
  }

  /** Evaluates the rules whose deadlines come before `target` (or at it, when inclusive), in time order. */
  #advance(s: DeviceState, rules: readonly CRule[], target: number, inclusive: boolean): void {
    const states = s.rules;
    for (let step = 0; step < MAX_STEPS; step++) {
      let t = Infinity;
      for (let i = 0; i < states.length; i++) {
        const due = states[i].due;
        if (due !== null && due < t) t = due;
      }
      if (t === Infinity || t > target || (!inclusive && t === target)) return;
      if (s.now !== null && t < s.now) t = s.now;
      for (let i = 0; i < states.length; i++) {
        const rs = states[i];
        if (rs.due !== null && rs.due <= t) this.#evaluateRule(rules[i], rs, t, null, s);
      }
      s.now = t;
    }
  }

  #updateDue(s: DeviceState): void {
    let due = Infinity;
    for (const rs of s.rules) if (rs.due !== null && rs.due < due) due = rs.due;
    s.due = due === Infinity ? null : due;
  }

  /**
   * Aligns a state with the rules that apply to its device, when they changed (rules edited, the device moved to
   * another category, a checkpoint from another version): keeps the state of each rule that is still there with the
   * same condition and the expected shape, and starts the others. A new rule started at a reading is evaluated with
   * it; one started by a tick is due at once. No-data timers of new rules start at the device's last message.
   */
  #reconcile(s: DeviceState, set: RuleSet, now: number | null): void {
    const start = s.seen ?? now ?? 0;
    const old = new Map<string, unknown>();
    if (Array.isArray(s.rules)) {
      for (const rs of s.rules as unknown[]) {
        if (typeof rs === 'object' && rs !== null && typeof (rs as { id?: unknown }).id === 'string') old.set((rs as RuleState).id, rs);
      }
    }
    const states: RuleState[] = [];
    for (const rule of set.rules) {
      const kept = old.get(rule.id);
      if (kept !== undefined && isRuleState(kept, rule)) states.push(kept);
      else {
        const rs = newRuleState(rule, start);
        if (s.now !== null) rs.due = s.now;
        states.push(rs);
      }
    }
    s.rules = states;
    s.fp = set.fp;
    this.#updateDue(s);
  }

  #evaluateRule(rule: CRule, rs: RuleState, t: number, r: Reading | null, s: DeviceState): void {
    this.#due = Infinity;
    this.#rose = -1;
    const truth = this.#node(rule.root, rs.leaves, t, r);
    rs.due = this.#due === Infinity ? null : this.#due;
    if (truth === TRUE) {
      if (!rs.on) {
        rs.on = true;
        this.#fire(rule, rs, t, r, s);
      }
    } else if (truth === FALSE) {
      rs.on = false;
    }
  }

  #node(n: CNode, leaves: LeafState[], t: number, r: Reading | null): Truth {
    if (!n.group) return this.#leaf(n, leaves[n.index], t, r);
    // Every part is evaluated, decided or not: each has state to keep up to date with the reading.
    let sawTrue = false;
    let sawFalse = false;
    let sawUnknown = false;
    const kids = n.kids;
    for (let i = 0; i < kids.length; i++) {
      const v = this.#node(kids[i], leaves, t, r);
      if (v === TRUE) sawTrue = true;
      else if (v === FALSE) sawFalse = true;
      else sawUnknown = true;
    }
    if (n.any) return sawTrue ? TRUE : sawUnknown ? UNKNOWN : FALSE;
    return sawFalse ? FALSE : sawUnknown ? UNKNOWN : TRUE;
  }

  #leaf(l: CLeaf, ls: LeafState, t: number, r: Reading | null): Truth {
    if (r !== null && l.hasProperty && r.reported !== undefined && r.reported !== null) {
      if (l.p0 >= 0) ls.t0 = comparable(this.#prop(l.p0, r.reported), l.accept) ?? l.d0;
      if (l.p1 >= 0) ls.t1 = comparable(this.#prop(l.p1, r.reported), l.accept) ?? l.d1;
    }
    let raw: Truth;
    switch (l.kind) {
      case K_VALUE: {
        if (r !== null) {
          const x = comparable(this.#body(l.path, r), l.accept);
          if (x !== undefined) ls.v = x;
        }
        raw = this.#test(l, ls, ls.v);
        break;
      }
      case K_AGGREGATE: {
        const b = ls.b as number[];
        if (b.length > 0 && b[0] + l.bucketMs + l.windowMs <= t) evict(l, ls, b, t);
        if (r !== null) {
          if (l.aggregate === AGGREGATES.length - 1) {
            // count: messages, or messages carrying the measure (whatever its value)
            if (l.path < 0) insert(l, ls, b, t, 1);
            else {
              const x = this.#body(l.path, r);
              if (x !== undefined && x !== null) insert(l, ls, b, t, 1);
            }
          } else {
            const x = this.#body(l.path, r);
            if (isNumber(x)) insert(l, ls, b, t, x);
          }
        }
        ls.v = aggregateOf(l.aggregate, ls);
        raw = this.#test(l, ls, ls.v);
        if (b.length > 0) this.#dueAt(b[0] + l.bucketMs + l.windowMs);
        break;
      }
      case K_RATE: {
        if (r !== null) {
          const x = this.#body(l.path, r);
          if (isNumber(x)) {
            if (ls.pt !== null && ls.pv !== null && t > ls.pt) ls.v = ((x - ls.pv) * l.periodMs) / (t - ls.pt);
            ls.pv = x;
            ls.pt = t;
          }
        }
        raw = this.#test(l, ls, ls.v);
        break;
      }
      default: {
        if (r !== null) {
          if (l.path < 0) ls.pt = t;
          else {
            const x = this.#body(l.path, r);
            if (x !== undefined && x !== null) ls.pt = t;
          }
        }
        const last = ls.pt ?? t;
        ls.v = (t - last) / 1000;
        if (t - last >= l.afterMs) raw = TRUE;
        else {
          raw = FALSE;
          this.#dueAt(last + l.afterMs);
        }
      }
    }
    let truth = raw;
    if (l.forMs > 0) {
      if (raw === TRUE) {
        if (ls.since === null) ls.since = t;
        const end = ls.since + l.forMs;
        if (t < end) {
          truth = FALSE;
          this.#dueAt(end);
        }
      } else if (raw === FALSE) {
        ls.since = null;
      }
    }
    if (truth === TRUE && ls.lt !== TRUE && this.#rose < 0) this.#rose = l.index;
    ls.lt = truth;
    return truth;
  }

  #test(l: CLeaf, ls: LeafState, x: Scalar | null): Truth {
    if (x === null) return UNKNOWN;
    const a = l.p0 >= 0 ? ls.t0 : l.c0;
    if (a === null) return UNKNOWN;
    const op = l.op;
    if (op === OP_EQ || op === OP_NE) {
      if (typeof x !== typeof a) return UNKNOWN;
      return (x === a) === (op === OP_EQ) ? TRUE : FALSE;
    }
    if (typeof x !== 'number' || typeof a !== 'number') return UNKNOWN;
    switch (op) {
      case OP_GT:
        return x > a ? TRUE : FALSE;
      case OP_GE:
        return x >= a ? TRUE : FALSE;
      case OP_LT:
        return x < a ? TRUE : FALSE;
      case OP_LE:
        return x <= a ? TRUE : FALSE;
    }
    const b = l.p1 >= 0 ? ls.t1 : l.c1;
    if (typeof b !== 'number') return UNKNOWN;
    const inside = x >= a && x <= b;
    return inside === (op !== OP_OUTSIDE) ? TRUE : FALSE;
  }

  #dueAt(time: number): void {
    if (time < this.#due) this.#due = time;
  }

  #body(id: number, r: Reading): unknown {
    if (this.#bodyEpoch[id] === this.#epoch) return this.#bodyCache[id];
    const v = resolvePath(r.body, this.#bodyPaths[id]);
    this.#bodyCache[id] = v;
    this.#bodyEpoch[id] = this.#epoch;
    return v;
  }

  #prop(id: number, reported: Readonly<Record<string, unknown>>): unknown {
    if (this.#propEpoch[id] === this.#epoch) return this.#propCache[id];
    const v = resolvePath(reported, this.#propPaths[id]);
    this.#propCache[id] = v;
    this.#propEpoch[id] = this.#epoch;
    return v;
  }

  #fire(rule: CRule, rs: RuleState, t: number, r: Reading | null, s: DeviceState): void {
    const leaves = rule.leaves;
    // Report the comparison that made the rule true; the first true one if none changed (a reconciled state).
    let trigger = this.#rose;
    for (let i = 0; i < leaves.length && trigger < 0; i++) if (rs.leaves[i].lt === TRUE) trigger = i;
    if (trigger < 0) trigger = 0;
    const main = firingReading(leaves[trigger], rs.leaves[trigger]);

    if (rule.suppressMs > 0) {
      const sup = rs.sup;
      let kept = 0;
      let repeat = false;
      for (let i = 0; i < sup.length; i++) {
        const entry = sup[i];
        if (t - entry[1] >= rule.suppressMs) continue;
        if (entry[0] === main.reading) {
          repeat = true;
          entry[1] = t;
        }
        sup[kept++] = entry;
      }
      sup.length = kept;
      if (repeat) {
        this.#suppressed++;
        return;
      }
      if (sup.length >= MAX_SUPPRESSED_VALUES) sup.shift();
      sup.push([main.reading, t]);
    }

    const readings: FiringReading[] = [];
    for (let i = 0; i < leaves.length; i++) {
      if (i === trigger) readings.push(main);
      else if (rs.leaves[i].lt === TRUE) readings.push(firingReading(leaves[i], rs.leaves[i]));
    }
    const def = rule.def;
    // An empty id identifies nothing: it must not become the alert token.
    const messageId = r !== null && r.messageId ? r.messageId : null;
    const firing: Firing = {
      ruleId: def.id,
      ruleName: def.name,
      deviceId: s.deviceId,
      deviceRecordId: s.recordId,
      time: t,
      trigger: r !== null ? 'reading' : 'tick',
      messageId,
      eventToken: r === null ? `tick:${s.deviceId}:${t}` : messageId ?? `${s.deviceId}:${t}`,
      readingType: main.readingType,
      reading: main.reading,
      threshold: main.threshold,
      condition: main.condition,
      ruleOutput: def.ruleOutput,
      alertType: def.alertType,
      description: renderTemplate(rule.template, {
        readingtype: main.readingType,
        reading: formatValue(main.reading),
        threshold: formatValue(main.threshold),
        ruleoutput: def.ruleOutput ?? '',
        deviceid: s.deviceId,
        rulename: def.name,
      }),
      readings,
    };
    (this.#out ??= []).push(firing);
  }
}

function compileLeaf(c: LeafCondition, index: number, bodyPath: (p: string) => number, propPath: (p: string) => number): CLeaf {
  const base = {
    group: false as const,
    index,
    ast: c,
    path: c.measure === null ? -1 : bodyPath(c.measure),
    c0: null as Scalar | null,
    p0: -1,
    d0: null as Scalar | null,
    c1: null as Scalar | null,
    p1: -1,
    d1: null as Scalar | null,
    hasProperty: false,
    accept: ACCEPT_NUMBER,
    forMs: 0,
    aggregate: -1,
    tracksExtremes: false,
    windowMs: 0,
    bucketMs: 1,
    periodMs: 0,
    afterMs: 0,
  };
  if (c.kind === 'noData') {
    return { ...base, kind: K_NODATA, readingType: c.measure ?? 'noData', op: -1, c0: c.afterMs / 1000, afterMs: c.afterMs };
  }
  const test = c.test;
  const plain = c.source.kind === 'value';
  const accept = plain && (test.op === 'eq' || test.op === 'ne') ? ACCEPT_ANY : ACCEPT_NUMBER;
  const o0: Operand = 'value' in test ? test.value : test.min;
  const o1: Operand | null = 'value' in test ? null : test.max;
  const operand = o0.kind === 'constant' ? { c0: o0.value, p0: -1, d0: null } : { c0: null, p0: propPath(o0.path), d0: o0.default };
  const operand1 = o1 === null
    ? { c1: null, p1: -1, d1: null }
    : o1.kind === 'constant' ? { c1: o1.value, p1: -1, d1: null } : { c1: null, p1: propPath(o1.path), d1: o1.default };
  const source = c.source;
  return {
    ...base,
    ...operand,
    ...operand1,
    kind: source.kind === 'value' ? K_VALUE : source.kind === 'aggregate' ? K_AGGREGATE : K_RATE,
    readingType: c.measure ?? 'messages',
    op: OPS.indexOf(test.op),
    hasProperty: o0.kind === 'property' || o1?.kind === 'property',
    accept,
    forMs: c.forMs,
    aggregate: source.kind === 'aggregate' ? AGGREGATES.indexOf(source.aggregate) : -1,
    tracksExtremes: source.kind === 'aggregate' && (source.aggregate === 'min' || source.aggregate === 'max'),
    windowMs: source.kind === 'aggregate' ? source.windowMs : 0,
    bucketMs: source.kind === 'aggregate' ? Math.max(1, Math.ceil(source.windowMs / BUCKETS)) : 1,
    periodMs: source.kind === 'rate' ? source.periodMs : 0,
  };
}

function newLeafState(l: CLeaf, t: number): LeafState {
  return {
    v: null,
    lt: UNKNOWN,
    since: null,
    t0: l.p0 >= 0 ? l.d0 : null,
    t1: l.p1 >= 0 ? l.d1 : null,
    pv: null,
    pt: l.kind === K_NODATA ? t : null,
    b: l.kind === K_AGGREGATE ? [] : null,
    n: 0,
    s: 0,
    lo: null,
    hi: null,
  };
}

function ruleSet(rules: readonly CRule[]): RuleSet {
  return { rules, fp: hash(rules.map((r) => `${r.id}:${r.hash}`).join('\n')) };
}

function newRuleState(rule: CRule, t: number): RuleState {
  return { id: rule.id, h: rule.hash, on: false, due: null, sup: [], leaves: rule.leaves.map((l) => newLeafState(l, t)) };
}

/**
 * Drops the buckets that have left the window at `t`, taking them off the totals. The lowest and highest values are
 * kept only for min and max windows, and looked for again only when a dropped bucket held one of them.
 */
function evict(l: CLeaf, ls: LeafState, b: number[], t: number): void {
  let k = 0;
  let rescan = false;
  while (k < b.length && b[k] + l.bucketMs + l.windowMs <= t) {
    ls.n -= b[k + 1];
    ls.s -= b[k + 2];
    if (b[k + 3] === ls.lo || b[k + 4] === ls.hi) rescan = true;
    k += 5;
  }
  if (k === 0) return;
  // A plain loop: Array.prototype.copyWithin and splice are generic (slow) builtins on JS arrays.
  const len = b.length - k;
  for (let i = 0; i < len; i++) b[i] = b[i + k];
  b.length = len;
  if (b.length === 0) {
    // Exactly zero, not the rounding left over from subtracting.
    ls.n = 0;
    ls.s = 0;
    ls.lo = null;
    ls.hi = null;
  } else if (rescan && l.tracksExtremes) {
    let lo = b[3];
    let hi = b[4];
    for (let i = 5; i < b.length; i += 5) {
      if (b[i + 3] < lo) lo = b[i + 3];
      if (b[i + 4] > hi) hi = b[i + 4];
    }
    ls.lo = lo;
    ls.hi = hi;
  }
}

function insert(l: CLeaf, ls: LeafState, b: number[], t: number, x: number): void {
  const start = Math.floor(t / l.bucketMs) * l.bucketMs;
  const last = b.length - 5;
  // Time never runs backwards in a state, so a reading belongs to the newest bucket or a new one.
  if (last >= 0 && b[last] >= start) {
    b[last + 1] += 1;
    b[last + 2] += x;
    if (x < b[last + 3]) b[last + 3] = x;
    if (x > b[last + 4]) b[last + 4] = x;
  } else {
    b.push(start, 1, x, x, x);
  }
  ls.n += 1;
  ls.s += x;
  if (l.tracksExtremes) {
    if (ls.lo === null || x < ls.lo) ls.lo = x;
    if (ls.hi === null || x > ls.hi) ls.hi = x;
  }
}

function aggregateOf(aggregate: number, ls: LeafState): number | null {
  switch (aggregate) {
    case AG_AVG:
      return ls.n > 0 ? ls.s / ls.n : null;
    case AG_MIN:
      return ls.lo;
    case AG_MAX:
      return ls.hi;
    case AG_SUM:
      return ls.s;
    default:
      return ls.n;
  }
}

function firingReading(l: CLeaf, ls: LeafState): FiringReading {
  const reading = ls.v ?? 0;
  let threshold: Scalar;
  if (l.kind === K_NODATA) threshold = l.afterMs / 1000;
  else {
    const a = (l.p0 >= 0 ? ls.t0 : l.c0) ?? 0;
    if (l.op < OP_OUTSIDE) threshold = a;
    else {
      const b = (l.p1 >= 0 ? ls.t1 : l.c1) ?? 0;
      threshold = l.op === OP_OUTSIDE ? (typeof reading === 'number' && reading < (a as number) ? a : b) : `${a}..${b}`;
    }
  }
  return { readingType: l.readingType, reading, threshold, condition: l.ast };
}

function isNumOrNull(v: unknown): boolean {
  return v === null || (typeof v === 'number' && Number.isFinite(v));
}

function isScalarOrNull(v: unknown): boolean {
  return v === null || isScalar(v);
}

/** The shape check of a rule's state against the rule, for states that come from outside (checkpoints). */
function isRuleState(value: unknown, rule: CRule): value is RuleState {
  if (typeof value !== 'object' || value === null) return false;
  const rs = value as Partial<Record<keyof RuleState, unknown>>;
  if (rs.id !== rule.id || rs.h !== rule.hash || typeof rs.on !== 'boolean' || !isNumOrNull(rs.due)) return false;
  if (!Array.isArray(rs.sup) || rs.sup.length > MAX_SUPPRESSED_VALUES) return false;
  for (const e of rs.sup) if (!Array.isArray(e) || e.length !== 2 || !isScalar(e[0]) || !isNumOrNull(e[1]) || e[1] === null) return false;
  if (!Array.isArray(rs.leaves) || rs.leaves.length !== rule.leaves.length) return false;
  for (let i = 0; i < rule.leaves.length; i++) {
    const l = rule.leaves[i];
    const ls = rs.leaves[i] as Partial<Record<keyof LeafState, unknown>> | null;
    if (typeof ls !== 'object' || ls === null) return false;
    if (!isScalarOrNull(ls.v) || (ls.lt !== 0 && ls.lt !== 1 && ls.lt !== 2) || !isNumOrNull(ls.since)) return false;
    if (!isScalarOrNull(ls.t0) || !isScalarOrNull(ls.t1) || !isNumOrNull(ls.pv) || !isNumOrNull(ls.pt)) return false;
    if (typeof ls.n !== 'number' || typeof ls.s !== 'number' || !isNumOrNull(ls.lo) || !isNumOrNull(ls.hi)) return false;
    if (l.kind === K_NODATA && ls.pt === null) return false;
    if (l.kind === K_AGGREGATE) {
      const b = ls.b;
      if (!Array.isArray(b) || b.length % 5 !== 0 || b.length > (BUCKETS + 1) * 5 || !b.every((x) => typeof x === 'number' && Number.isFinite(x))) return false;
    } else if (ls.b !== null) {
      return false;
    }
  }
  return true;
}

/**
 * A state read back from a checkpoint, or undefined when it is not one (start the device afresh). The rules' parts
 * are checked against the rules at the next evaluation; what does not fit is dropped there.
 */
export function restoreState(value: unknown): DeviceState | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const s = value as Partial<Record<keyof DeviceState, unknown>>;
  if (s.format !== 1 || typeof s.deviceId !== 'string') return undefined;
  if (!isNumOrNull(s.now) || !isNumOrNull(s.seen) || !isNumOrNull(s.due)) return undefined;
  const id = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  if (!Array.isArray(s.rules)) return undefined;
  return {
    format: 1,
    deviceId: s.deviceId,
    // Forces a reconcile, which checks every rule's state.
    fp: '',
    now: s.now as number | null,
    seen: s.seen as number | null,
    due: s.due as number | null,
    recordId: id(s.recordId),
    categoryId: id(s.categoryId),
    rules: s.rules as RuleState[],
  };
}

/** Builds an evaluator for a rule set (inactive rules are left out). Build a new one when the rules change. */
export function createEvaluator(rules: readonly RuleDefinition[]): Evaluator {
  return new RuleEvaluator(rules);
}
