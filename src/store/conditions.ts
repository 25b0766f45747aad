import type { CompareOp, Condition, StoreValue } from './types.js';

/** Small builders for the store's condition tree; values are always bound parameters. */
export function compare(column: string, op: CompareOp, value: StoreValue): Condition {
  return { kind: 'compare', op, left: { kind: 'column', column }, right: { kind: 'value', value } };
}

/** `column = value`; `eq(c, null)` is `IS NULL`. */
export const eq = (column: string, value: StoreValue): Condition => compare(column, 'eq', value);

/** `column <> value`, keeping rows where the column is null (the store's `ne`, as Dataverse's). */
export const ne = (column: string, value: StoreValue): Condition => compare(column, 'ne', value);

/** `column IS NULL`: the compiler turns `eq null` into IS NULL (checked in the store contract suite). */
export const isNull = (column: string): Condition => eq(column, null);

export const and = (...items: Condition[]): Condition => ({ kind: 'and', items });
export const or = (...items: Condition[]): Condition => ({ kind: 'or', items });

export function isIn(column: string, values: readonly StoreValue[]): Condition {
  return { kind: 'in', operand: { kind: 'column', column }, values };
}

/** Splits a list into chunks, to keep `IN (…)` lists well under the engines' bound-parameter limits. */
export function chunks<T>(items: readonly T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
