import type { CompareOp } from '../store/types.js';
import type { Expr, Literal, OrderByItem } from './ast.js';
import { invalidQuery, MAX_DEPTH, MAX_EXPRESSION_LENGTH, notImplemented, syntaxError } from './errors.js';
import { describeToken, tokenize, type Punct, type Token } from './lexer.js';

const COMPARE = new Set<string>(['eq', 'ne', 'gt', 'ge', 'lt', 'le']);
/** Valid OData operators that Dataverse does not support in `$filter` either. */
const UNSUPPORTED_OPERATORS = new Set<string>(['add', 'sub', 'mul', 'div', 'divby', 'mod', 'has']);

/** Shared by a parser and the parsers it starts for parameter aliases, so limits hold across substitutions. */
interface Limits {
  depth: number;
  /** Characters still allowed to be parsed, alias substitutions included: `@p eq 1 or @p eq 1 …` cannot explode. */
  budget: number;
}

export type Aliases = ReadonlyMap<string, string>;

/**
 * Parses a `$filter` expression. Grammar, lowest precedence first (Dataverse's subset of OData's):
 *
 *   or         := and ('or' and)*
 *   and        := unary ('and' unary)*
 *   unary      := 'not' unary | comparison
 *   comparison := primary (('eq'|'ne'|'gt'|'ge'|'lt'|'le') primary | 'in' list)?
 *   primary    := literal | alias | '(' or ')' | name '(' args ')' | path ('/' ('any'|'all') lambda)?
 *
 * `not` takes a whole comparison (`not name eq 'x'` means `not (name eq 'x')`), which is what people mean;
 * comparisons do not chain, which keeps the tree's depth bounded by explicit nesting.
 */
export function parseFilter(text: string, aliases: Aliases = new Map()): Expr {
  return new Parser(text, aliases, { depth: 0, budget: MAX_EXPRESSION_LENGTH - text.length }, false).parseWhole();
}

/** Parses `$orderby`: `expr [asc|desc] (, expr [asc|desc])*`. */
export function parseOrderBy(text: string, aliases: Aliases = new Map()): OrderByItem[] {
  return new Parser(text, aliases, { depth: 0, budget: MAX_EXPRESSION_LENGTH - text.length }, false).parseOrderBy();
}

/** Parses one literal, as used in keys and function parameters (no aliases: the caller resolves those). */
export function parseLiteralToken(token: Token, text: string): Literal {
  switch (token.kind) {
    case 'string':
      return { type: 'string', value: token.value };
    case 'number': {
      const plain = token.text.replace(/[mMdDfFlL]$/, '');
      return { type: 'number', value: Number(plain), text: plain };
    }
    case 'guid':
      return { type: 'guid', value: token.value };
    case 'datetime':
      return { type: 'datetime', text: token.text };
    case 'json':
      return { type: 'json', value: token.value };
    case 'typed':
      return { type: 'typed', typeName: token.type, value: token.value };
    case 'name':
      if (token.text === 'true' || token.text === 'false') return { type: 'boolean', value: token.text === 'true' };
      if (token.text === 'null') return { type: 'null' };
      break;
    default:
      break;
  }
  return syntaxError(text, token.pos, `Expected a literal value but found ${describeToken(token)}.`);
}

class Parser {
  readonly #tokens: Token[];
  #index = 0;

  constructor(
    readonly text: string,
    readonly aliases: Aliases,
    readonly limits: Limits,
    /** Alias values may not refer to aliases: no cycles, and substitution stays one level deep. */
    readonly inAlias: boolean,
  ) {
    this.#tokens = tokenize(text);
  }

  parseWhole(): Expr {
    const expr = this.parseOr();
    const t = this.peek();
    if (t.kind !== 'end') this.fail(t, `Unexpected ${describeToken(t)}.`);
    return expr;
  }

  parseOrderBy(): OrderByItem[] {
    const items: OrderByItem[] = [];
    for (;;) {
      const expr = this.parsePrimary();
      let descending = false;
      const t = this.peek();
      if (this.isName(t, 'asc') || this.isName(t, 'desc')) {
        this.next();
        descending = t.kind === 'name' && t.text === 'desc';
      }
      items.push({ expr, descending });
      const sep = this.next();
      if (sep.kind === 'end') return items;
      if (!(sep.kind === 'punct' && sep.text === ',')) this.fail(sep, `Expected ',' but found ${describeToken(sep)}.`);
    }
  }

  private parseOr(): Expr {
    const items = [this.parseAnd()];
    while (this.isName(this.peek(), 'or')) {
      this.next();
      items.push(this.parseAnd());
    }
    return items.length === 1 ? items[0]! : { kind: 'or', items };
  }

  private parseAnd(): Expr {
    const items = [this.parseUnary()];
    while (this.isName(this.peek(), 'and')) {
      this.next();
      items.push(this.parseUnary());
    }
    return items.length === 1 ? items[0]! : { kind: 'and', items };
  }

  private parseUnary(): Expr {
    const t = this.peek();
    if (!this.isName(t, 'not')) return this.parseComparison();
    this.next();
    this.enter(t);
    const item = this.parseUnary();
    this.leave();
    return { kind: 'not', item, pos: t.pos };
  }

  private parseComparison(): Expr {
    const left = this.parsePrimary();
    const t = this.peek();
    if (t.kind !== 'name') return left;
    if (COMPARE.has(t.text)) {
      this.next();
      const right = this.parsePrimary();
      return { kind: 'compare', op: t.text as CompareOp, left, right, pos: t.pos };
    }
    if (t.text === 'in') {
      this.next();
      return { kind: 'in', operand: left, values: this.parseList(), pos: t.pos };
    }
    if (UNSUPPORTED_OPERATORS.has(t.text)) notImplemented(`The '${t.text}' operator is not supported in $filter.`);
    return left;
  }

  /** The right side of `in`: `('a','b')`, or a JSON array (inline or through an alias). */
  private parseList(): Expr[] {
    const open = this.peek();
    if (open.kind === 'punct' && open.text === '(') {
      this.next();
      this.enter(open);
      const values: Expr[] = [];
      for (;;) {
        values.push(this.parsePrimary());
        const sep = this.next();
        if (sep.kind === 'punct' && sep.text === ')') break;
        if (!(sep.kind === 'punct' && sep.text === ',')) this.fail(sep, `Expected ',' or ')' but found ${describeToken(sep)}.`);
      }
      this.leave();
      return values;
    }
    const value = this.parsePrimary();
    if (value.kind === 'literal' && value.literal.type === 'json' && Array.isArray(value.literal.value)) {
      return value.literal.value.map((v: unknown) => ({ kind: 'literal', literal: jsonLiteral(v), pos: value.pos }));
    }
    return this.fail(open, 'The in operator expects a list of values.');
  }

  private parsePrimary(): Expr {
    const t = this.next();
    switch (t.kind) {
      case 'string':
      case 'number':
      case 'guid':
      case 'datetime':
      case 'json':
      case 'typed':
        return { kind: 'literal', literal: parseLiteralToken(t, this.text), pos: t.pos };
      case 'alias':
        return this.resolveAlias(t);
      case 'punct':
        return t.text === '(' ? this.parseGroup(t) : this.fail(t, `Expected an expression but found ${describeToken(t)}.`);
      case 'name': {
        const after = this.peek();
        const continues = after.kind === 'punct' && (after.text === '/' || after.text === '(');
        if (!continues && (t.text === 'true' || t.text === 'false' || t.text === 'null')) {
          return { kind: 'literal', literal: parseLiteralToken(t, this.text), pos: t.pos };
        }
        if (after.kind === 'punct' && after.text === '(') return this.parseCall(t.text, t.pos);
        return this.parsePath(t.text, t.pos);
      }
      default:
        break;
    }
    return this.fail(t, `Expected an expression but found ${describeToken(t)}.`);
  }

  private parseGroup(open: Token): Expr {
    this.enter(open);
    const inner = this.parseOr();
    this.expect(')');
    this.leave();
    return inner;
  }

  private parseCall(name: string, pos: number): Expr {
    const open = this.expect('(');
    this.enter(open);
    let call: Expr;
    if (name.includes('.')) {
      // Qualified names are Dataverse's query functions, which take named parameters.
      const args = new Map<string, Expr>();
      if (!this.isPunct(this.peek(), ')')) {
        for (;;) {
          const n = this.next();
          if (n.kind !== 'name' || n.text.includes('.')) this.fail(n, `Expected a parameter name but found ${describeToken(n)}.`);
          this.expect('=');
          if (args.has(n.text)) invalidQuery(`The parameter '${n.text}' is given more than once in a call to '${name}'.`);
          args.set(n.text, this.parsePrimary());
          if (!this.isPunct(this.peek(), ',')) break;
          this.next();
        }
      }
      this.expect(')');
      call = { kind: 'qualifiedCall', name, args, pos };
    } else {
      const args: Expr[] = [];
      if (!this.isPunct(this.peek(), ')')) {
        for (;;) {
          args.push(this.parseOr());
          if (!this.isPunct(this.peek(), ',')) break;
          this.next();
        }
      }
      this.expect(')');
      call = { kind: 'call', name, args, pos };
    }
    this.leave();
    return call;
  }

  private parsePath(first: string, pos: number): Expr {
    const segments = [first];
    while (this.isPunct(this.peek(), '/')) {
      this.next();
      const seg = this.next();
      if (seg.kind !== 'name') this.fail(seg, `Expected a property name but found ${describeToken(seg)}.`);
      if ((seg.text === 'any' || seg.text === 'all') && this.isPunct(this.peek(), '(')) {
        return this.parseLambda(segments, seg.text, seg.pos);
      }
      segments.push(seg.text);
    }
    return { kind: 'path', segments, pos };
  }

  private parseLambda(path: string[], op: 'any' | 'all', pos: number): Expr {
    const open = this.expect('(');
    if (this.isPunct(this.peek(), ')')) {
      this.next();
      if (op === 'all') this.fail(open, "The 'all' operator needs a lambda expression such as all(a:a/statecode eq 0).");
      return { kind: 'lambda', path, op, pos };
    }
    const variable = this.next();
    if (variable.kind !== 'name' || variable.text.includes('.')) {
      this.fail(variable, `Expected a lambda variable name but found ${describeToken(variable)}.`);
    }
    this.expect(':');
    this.enter(open);
    const body = this.parseOr();
    this.leave();
    this.expect(')');
    const after = this.peek();
    if (this.isPunct(after, '/')) this.fail(after, 'A lambda expression cannot be followed by a path.');
    return { kind: 'lambda', path, op, variable: variable.text, body, pos };
  }

  private resolveAlias(t: Extract<Token, { kind: 'alias' }>): Expr {
    if (this.inAlias) invalidQuery(`The value of a parameter alias cannot refer to another alias ('${t.name}').`);
    const value = this.aliases.get(t.name) ?? this.aliases.get(t.name.slice(1));
    if (value === undefined) invalidQuery(`The parameter alias '${t.name}' is used but has no value in the query string.`);
    this.limits.budget -= value.length;
    if (this.limits.budget < 0) {
      invalidQuery(`The expression is too long once parameter aliases are substituted (at most ${MAX_EXPRESSION_LENGTH} characters).`);
    }
    this.enter(t);
    const expr = new Parser(value, this.aliases, this.limits, true).parseWhole();
    this.leave();
    return expr;
  }

  private peek(): Token {
    return this.#tokens[this.#index]!;
  }

  private next(): Token {
    const t = this.#tokens[this.#index]!;
    if (t.kind !== 'end') this.#index++;
    return t;
  }

  private expect(p: Punct): Token {
    const t = this.next();
    if (!this.isPunct(t, p)) this.fail(t, `Expected '${p}' but found ${describeToken(t)}.`);
    return t;
  }

  private isName(t: Token, text: string): boolean {
    return t.kind === 'name' && t.text === text;
  }

  private isPunct(t: Token, p: Punct): boolean {
    return t.kind === 'punct' && t.text === p;
  }

  private enter(t: Token): void {
    if (++this.limits.depth > MAX_DEPTH) this.fail(t, `The expression is nested more than ${MAX_DEPTH} levels deep.`);
  }

  private leave(): void {
    this.limits.depth--;
  }

  private fail(t: Token, hint: string): never {
    return syntaxError(this.text, t.pos, hint);
  }
}

/** An element of a JSON array used as an `in` list. */
export function jsonLiteral(value: unknown): Literal {
  if (value === null) return { type: 'null' };
  if (typeof value === 'string') return { type: 'string', value };
  if (typeof value === 'number') return { type: 'number', value, text: String(value) };
  if (typeof value === 'boolean') return { type: 'boolean', value };
  return invalidQuery('A list of values may contain only strings, numbers, booleans and null.');
}
