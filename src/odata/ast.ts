import type { CompareOp } from '../store/types.js';

/**
 * The syntax tree of a `$filter` (or `$orderby` item), before anything is checked against metadata. Literals keep
 * their lexical type, because what a literal means depends on the column it meets (`1` for a choice, `'1'` for
 * text), which only the compile stage knows.
 */
export type Literal =
  | { readonly type: 'null' }
  | { readonly type: 'boolean'; readonly value: boolean }
  /** `text` is the lexeme without OData's type suffix; it tells `1` (Edm.Int32) from `1.0` (Edm.Decimal). */
  | { readonly type: 'number'; readonly value: number; readonly text: string }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'guid'; readonly value: string }
  | { readonly type: 'datetime'; readonly text: string }
  | { readonly type: 'json'; readonly value: unknown }
  | { readonly type: 'typed'; readonly typeName: string; readonly value: string };

export type Expr =
  | { readonly kind: 'literal'; readonly literal: Literal; readonly pos: number }
  /** `name`, `nav/name`, `a/nav/name` (inside a lambda, the first segment is the range variable). */
  | { readonly kind: 'path'; readonly segments: readonly string[]; readonly pos: number }
  | { readonly kind: 'compare'; readonly op: CompareOp; readonly left: Expr; readonly right: Expr; readonly pos: number }
  /** OData 4.01 `x in ('a','b')`. */
  | { readonly kind: 'in'; readonly operand: Expr; readonly values: readonly Expr[]; readonly pos: number }
  /** And/or chains are n-ary so that `a or b or c …` stays one level deep however long it is. */
  | { readonly kind: 'and' | 'or'; readonly items: readonly Expr[] }
  | { readonly kind: 'not'; readonly item: Expr; readonly pos: number }
  /** A built-in OData function: `contains(name,'x')`, `tolower(name)`. */
  | { readonly kind: 'call'; readonly name: string; readonly args: readonly Expr[]; readonly pos: number }
  /** `Microsoft.Dynamics.CRM.In(PropertyName='x',PropertyValues=[…])`: named arguments. */
  | { readonly kind: 'qualifiedCall'; readonly name: string; readonly args: ReadonlyMap<string, Expr>; readonly pos: number }
  /** `path/any(v: body)`, `path/any()`, `path/all(v: body)`. */
  | {
      readonly kind: 'lambda';
      readonly path: readonly string[];
      readonly op: 'any' | 'all';
      readonly variable?: string;
      readonly body?: Expr;
      readonly pos: number;
    };

export interface OrderByItem {
  readonly expr: Expr;
  readonly descending: boolean;
}
