/**
 * Rules: the `ccs_iotrule` model, the condition grammar, and the evaluator that turns readings into firings. Pure:
 * no store, bus or clock here; the worker that feeds readings and writes alerts composes these.
 */
export {
  AGGREGATES,
  COMPARE_OPS,
  CONDITION_LIMITS,
  RANGE_OPS,
  conditionLeaves,
  conditionToJson,
  isGroupCondition,
  parseCondition,
  type Aggregate,
  type ComparisonCondition,
  type CompareOp,
  type GroupCondition,
  type LeafCondition,
  type NoDataCondition,
  type Operand,
  type RangeOp,
  type RuleCondition,
  type Scalar,
  type Source,
  type Test,
} from './condition.js';
export { formatIsoDuration, parseIsoDuration } from './duration.js';
export { parsePath, resolvePath, type CompiledPath } from './path.js';
export {
  ALERT_TYPE,
  DEFAULT_DESCRIPTION,
  DEFAULT_SUPPRESS_SECONDS,
  RULE_SCOPE,
  ruleFromRecord,
  validateRuleRecord,
  type RuleDefinition,
  type RuleScope,
} from './rule.js';
export { DESCRIPTION_MAX_LENGTH, compileTemplate, formatValue, renderTemplate, type CompiledTemplate } from './template.js';
export { toAlertData, type AlertData, type Firing, type FiringReading } from './firing.js';
export {
  createEvaluator,
  restoreState,
  type DeviceRef,
  type DeviceState,
  type Evaluation,
  type Evaluator,
  type LeafState,
  type Reading,
  type RuleState,
} from './evaluator.js';
export { importDeviceRules, type ImportedRule, type ImportedRuleValues } from './devicerules.js';
