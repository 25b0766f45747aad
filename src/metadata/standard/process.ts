import type { TableDef } from '../types.js';
import type { SeedRow } from './index.js';

export const processTables: readonly TableDef[] = [];
export const processSeedRows: readonly SeedRow[] = [];
