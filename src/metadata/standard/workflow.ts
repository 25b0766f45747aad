import type { TableDef } from '../types.js';
import type { SeedRow } from './index.js';

export const workflowTables: readonly TableDef[] = [];
export const workflowSeedRows: readonly SeedRow[] = [];
