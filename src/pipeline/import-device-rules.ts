import type { RecordsService } from '../records/index.js';
import type { Store } from '../store/index.js';
import type { Operation } from '../webapi/index.js';
import { importDeviceRulesFile } from './rule-import.js';

export const IMPORT_DEVICE_RULES = 'ccs_ImportDeviceRules';

/**
 * `ccs_ImportDeviceRules` (unbound action, ours): `DeviceRules`, the text of a `devicerules.json`, becomes
 * `ccs_iotrule` records (rule-import.ts). Answers `RuleIds`, the rules created, and `Skipped`, the names of rules
 * that existed already. A file that is not valid, or names a category or device that does not exist, is a 400 that
 * says where, and creates nothing.
 */
export function createImportDeviceRules(deps: { readonly store: Store; readonly records: RecordsService }): Operation {
  return {
    def: {
      name: IMPORT_DEVICE_RULES,
      kind: 'action',
      parameters: [{ name: 'DeviceRules', type: 'Edm.String', nullable: false }],
      returns: {
        properties: [
          { name: 'RuleIds', type: 'Collection(Edm.Guid)' },
          { name: 'Skipped', type: 'Collection(Edm.String)' },
        ],
      },
    },
    async invoke(ctx, params) {
      const { created, skipped } = await importDeviceRulesFile(deps, ctx.record, params['DeviceRules']);
      return { RuleIds: created, Skipped: skipped };
    },
  };
}
