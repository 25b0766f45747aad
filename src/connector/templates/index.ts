/**
 * Templates: the configuration of an instance as one portable JSON document (docs/templates.md). `deployTemplate`
 * creates or updates, idempotently, what a template describes; `exportTemplate` writes the current configuration in
 * the same format; `ccs_DeployTemplate` / `ccs_ExportTemplate` offer both over the Web API.
 */
export { TEMPLATE_SCHEMA, type Template } from './format.js';
export { TemplateError } from './problems.js';
export {
  deployTemplate,
  formatDeployReport,
  parseTemplateText,
  type DeployReport,
  type DeviceRegistration,
  type SectionCounts,
  type TemplateDeps,
} from './deploy.js';
export { exportTemplate, type ExportOptions, type ExportResult } from './export.js';
export { createDeployTemplate, createExportTemplate, DEPLOY_TEMPLATE, EXPORT_TEMPLATE, registerTemplateOperations } from './operations.js';
