/**
 * Templates over the Web API, for administrators: `ccs_DeployTemplate` (unbound action, `Template`: the template's
 * JSON text) and `ccs_ExportTemplate()` (unbound function). `ccs deploy --server` and `ccs export --server` use them,
 * so that a running server sees new tables at once.
 */
import { CcsError } from '../../errors/index.js';
import type { Principal } from '../../security/index.js';
import type { Operation, OperationRegistry } from '../../webapi/index.js';
import { deployTemplate, parseTemplateText, type TemplateDeps } from './deploy.js';
import { exportTemplate } from './export.js';

export const DEPLOY_TEMPLATE = 'ccs_DeployTemplate';
export const EXPORT_TEMPLATE = 'ccs_ExportTemplate';

/** Templates change tables, devices and processes, and export reads all of it: the platform administrator only. */
function demandAdmin(principal: Principal, op: string): void {
  if (principal.role !== 'admin') {
    throw new CcsError('MissingPrivilege', `Principal user (Id=${principal.userId}, type=8, roleCount=1) is missing the administrator role needed for ${op}.`);
  }
}

export function createDeployTemplate(deps: TemplateDeps): Operation {
  return {
    def: {
      name: DEPLOY_TEMPLATE,
      kind: 'action',
      parameters: [{ name: 'Template', type: 'Edm.String', nullable: false }],
      returns: {
        properties: [
          { name: 'Created', type: 'Edm.Int32' },
          { name: 'Updated', type: 'Edm.Int32' },
          { name: 'Unchanged', type: 'Edm.Int32' },
          { name: 'Report', type: 'Edm.String' },
        ],
      },
    },
    async invoke(ctx, params) {
      demandAdmin(ctx.record.principal, DEPLOY_TEMPLATE);
      const report = await deployTemplate(deps, ctx.record, parseTemplateText(String(params['Template'])));
      const sum = (k: 'created' | 'updated' | 'unchanged') => Object.values(report.sections).reduce((n, c) => n + c[k], 0);
      return { Created: sum('created'), Updated: sum('updated'), Unchanged: sum('unchanged'), Report: JSON.stringify(report) };
    },
  };
}

export function createExportTemplate(): Operation {
  return {
    def: {
      name: EXPORT_TEMPLATE,
      kind: 'function',
      parameters: [{ name: 'IncludeSecrets', type: 'Edm.Boolean' }],
      returns: {
        properties: [
          { name: 'Template', type: 'Edm.String' },
          { name: 'Warnings', type: 'Collection(Edm.String)' },
        ],
      },
    },
    async invoke(ctx, params) {
      demandAdmin(ctx.record.principal, EXPORT_TEMPLATE);
      const { template, warnings } = await exportTemplate(ctx.records, ctx.record, { includeSecrets: params['IncludeSecrets'] === true });
      return { Template: JSON.stringify(template, null, 2), Warnings: [...warnings] };
    },
  };
}

/** Registers `ccs_DeployTemplate` and `ccs_ExportTemplate`. */
export function registerTemplateOperations(registry: OperationRegistry, deps: TemplateDeps): void {
  registry.register(createDeployTemplate(deps));
  registry.register(createExportTemplate());
}
