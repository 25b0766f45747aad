/**
 * The rules pipeline: telemetry from the bus through the rule evaluator (src/rules) to `msdyn_iotalert` records,
 * with per-device state checkpointed to the store and replayed from the telemetry log after a restart.
 */
export { createAlertPipeline, parseBody, type AlertPipeline, type AlertPipelineDeps } from './pipeline.js';
export { alertToken, createAlertWriter, type AlertWriter } from './alert-writer.js';
export { createDeviceDirectory, type DeviceDirectory, type DeviceInfo } from './device-directory.js';
export { createRuleLoader, registerRuleValidation, type RuleLoader } from './rule-loader.js';
export { RULE_STATE_TABLE } from './tables.js';
export { importDeviceRulesFile, type DeviceRulesImport } from './rule-import.js';
export { createImportDeviceRules, IMPORT_DEVICE_RULES } from './import-device-rules.js';
