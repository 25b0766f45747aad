import type { Condition, StoreValue } from '../store/index.js';

export function eq(column: string, value: StoreValue): Condition {
  return { kind: 'compare', op: 'eq', left: { kind: 'column', column }, right: { kind: 'value', value } };
}

export function and(...items: Condition[]): Condition {
  return { kind: 'and', items };
}
