import type { TableDef } from '../types.js';
import type { SeedRow } from './index.js';

export const webhookTables: readonly TableDef[] = [];
export const webhookSeedRows: readonly SeedRow[] = [];
