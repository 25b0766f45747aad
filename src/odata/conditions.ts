import type { CompareOp, Condition, Operand, StoreValue } from '../store/types.js';

/** Small constructors for the store's condition tree, and negation with OData's two-valued logic. */

export const TRUE: Condition = { kind: 'true' };
export const FALSE: Condition = { kind: 'false' };

export function value(v: StoreValue): Operand {
  return { kind: 'value', value: v };
}

export function compare(op: CompareOp, left: Operand, right: Operand): Condition {
  return { kind: 'compare', op, left, right };
}

export function isNull(operand: Operand): Condition {
  return compare('eq', operand, value(null));
}

export function and(items: readonly Condition[]): Condition {
  return items.length === 1 ? items[0]! : { kind: 'and', items };
}

export function or(items: readonly Condition[]): Condition {
  return items.length === 1 ? items[0]! : { kind: 'or', items };
}

/** `operand in (values)`; SQL's IN never matches null, OData's does, so a null in the list becomes `eq null`. */
export function inList(operand: Operand, values: readonly StoreValue[]): Condition {
  const present = values.filter((v) => v !== null);
  const list: Condition = present.length ? { kind: 'in', operand, values: present } : FALSE;
  return present.length === values.length ? list : or([list, isNull(operand)]);
}

const COMPLEMENT: Record<CompareOp, CompareOp> = { eq: 'ne', ne: 'eq', gt: 'le', ge: 'lt', lt: 'ge', le: 'gt' };

function isNullValue(o: Operand): boolean {
  return o.kind === 'value' && o.value === null;
}

function nullGuards(...operands: Operand[]): Condition[] {
  return operands.filter((o) => o.kind !== 'value').map(isNull);
}

/**
 * `not c`. OData's logic is two-valued (`name eq 'x'` is plainly false when name is null, so `not (name eq 'x')`
 * is true), SQL's is three-valued (NULL, and NOT NULL is NULL). Negation is therefore pushed down to the leaves,
 * where a comparison is replaced by its complement plus "or the operand is null"; SQL NOT is only ever put around
 * conditions whose null case is covered. `all(…)`, `not …`, NotIn and NotBetween all go through here, so their
 * results do not depend on how an adapter treats NULL.
 */
export function negate(c: Condition): Condition {
  switch (c.kind) {
    case 'true':
      return FALSE;
    case 'false':
      return TRUE;
    case 'and':
      return or(c.items.map(negate));
    case 'or':
      return and(c.items.map(negate));
    case 'not':
      // Only built below, around a condition whose null case is handled beside it.
      return c.item;
    case 'compare':
      if (isNullValue(c.right) || isNullValue(c.left)) {
        // `eq null` / `ne null` are IS NULL / IS NOT NULL: never unknown. Ordering against null is always false.
        if (c.op === 'eq' || c.op === 'ne') return { ...c, op: COMPLEMENT[c.op] };
        return TRUE;
      }
      // The store's `ne` keeps rows whose left side is null (Dataverse's meaning, part of the store contract), so
      // `ne` is two-valued already and `eq` against a value complements to a plain `ne`.
      if (c.op === 'ne') return { ...c, op: 'eq' };
      if (c.op === 'eq' && c.right.kind === 'value') return { ...c, op: 'ne' };
      return or([{ ...c, op: COMPLEMENT[c.op] }, ...nullGuards(c.left, c.right)]);
    case 'match':
    case 'in':
      return or([{ kind: 'not', item: c }, ...nullGuards(c.operand)]);
    case 'exists':
      return { kind: 'not', item: c };
  }
}
