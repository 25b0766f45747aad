import { checkLength, MAX_DEPTH, syntaxError } from './errors.js';

/**
 * Tokens of OData's URL expression syntax as Dataverse clients write it. Literal forms that look alike (a GUID, a
 * date, a number, a name) are told apart here, by shape, because OData writes GUIDs and dates unquoted.
 */
export type Token =
  /** A name; may be namespace-qualified (`Microsoft.Dynamics.CRM.In`). Keywords (`eq`, `and`…) are names too. */
  | { readonly kind: 'name'; readonly text: string; readonly pos: number }
  | { readonly kind: 'string'; readonly value: string; readonly pos: number }
  | { readonly kind: 'number'; readonly text: string; readonly pos: number }
  | { readonly kind: 'guid'; readonly value: string; readonly pos: number }
  /** `2024-01-02T00:00:00Z` or `2024-01-02`; kept as text so that one function (`parseDateTime`) interprets it. */
  | { readonly kind: 'datetime'; readonly text: string; readonly pos: number }
  | { readonly kind: 'alias'; readonly name: string; readonly pos: number }
  /** A JSON array or object, as Dataverse accepts for `PropertyValues=["a","b"]` and complex parameters. */
  | { readonly kind: 'json'; readonly value: unknown; readonly pos: number }
  /** `type'value'`: an enum member (`Microsoft.Dynamics.CRM.EntityFilters'Entity'`) or another typed literal. */
  | { readonly kind: 'typed'; readonly type: string; readonly value: string; readonly pos: number }
  | { readonly kind: 'punct'; readonly text: Punct; readonly pos: number }
  | { readonly kind: 'end'; readonly pos: number };

export type Punct = '(' | ')' | ',' | '/' | ':' | '=' | '*';

// Sticky patterns, tried in order at the current position. Every quantifier is bounded or linear, so no input can
// make them backtrack badly. The look-aheads stop `1234abcd` from lexing as a number followed by a name.
const SPACE = /[ \t\r\n]+/y;
const GUID = /[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![0-9A-Za-z_.-])/y;
const DATETIME = /\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2})?)?(?![0-9A-Za-z_.:-])/y;
/** OData's optional type suffixes (`1L`, `1.5M`, `2d`, `3f`) are accepted and ignored. */
const NUMBER = /-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?[mMdDfFlL]?(?![0-9A-Za-z_.-])/y;
const NAME = /[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*/y;
const ALIAS = /@[A-Za-z_][A-Za-z0-9_]*/y;
const PUNCT = new Set<string>(['(', ')', ',', '/', ':', '=', '*']);

function match(re: RegExp, text: string, pos: number): string | undefined {
  re.lastIndex = pos;
  const m = re.exec(text);
  return m ? m[0] : undefined;
}

/** Reads `'…'` starting at `pos` (the opening quote), with `''` standing for one quote. */
function readString(text: string, pos: number): { value: string; end: number } {
  let value = '';
  let i = pos + 1;
  for (;;) {
    const close = text.indexOf("'", i);
    if (close < 0) syntaxError(text, pos, 'The string literal is not terminated.');
    value += text.slice(i, close);
    if (text[close + 1] === "'") {
      value += "'";
      i = close + 2;
    } else {
      return { value, end: close + 1 };
    }
  }
}

/**
 * Finds the end of a JSON array or object starting at `pos`, counting brackets outside double-quoted strings. The
 * nesting cap keeps `JSON.parse`, which recurses, far from the stack limit.
 */
function readJson(text: string, pos: number): { value: unknown; end: number } {
  let depth = 0;
  let i = pos;
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      if (i >= text.length) syntaxError(text, pos, 'The JSON string is not terminated.');
    } else if (c === '[' || c === '{') {
      if (++depth > MAX_DEPTH) syntaxError(text, i, 'The JSON value is nested too deeply.');
    } else if (c === ']' || c === '}') {
      if (--depth === 0) break;
    }
  }
  if (depth !== 0) syntaxError(text, pos, 'The JSON value is not terminated.');
  const end = i + 1;
  try {
    return { value: JSON.parse(text.slice(pos, end)) as unknown, end };
  } catch {
    return syntaxError(text, pos, 'The JSON value is not valid.');
  }
}

export function tokenize(text: string): Token[] {
  checkLength(text, 'expression');
  const tokens: Token[] = [];
  let pos = 0;
  while (pos < text.length) {
    const space = match(SPACE, text, pos);
    if (space) {
      pos += space.length;
      continue;
    }
    const c = text[pos]!;
    let m: string | undefined;
    if (c === "'") {
      const s = readString(text, pos);
      tokens.push({ kind: 'string', value: s.value, pos });
      pos = s.end;
    } else if (c === '[' || c === '{') {
      const j = readJson(text, pos);
      tokens.push({ kind: 'json', value: j.value, pos });
      pos = j.end;
    } else if (PUNCT.has(c)) {
      tokens.push({ kind: 'punct', text: c as Punct, pos });
      pos += 1;
    } else if ((m = match(GUID, text, pos))) {
      tokens.push({ kind: 'guid', value: m, pos });
      pos += m.length;
    } else if ((m = match(DATETIME, text, pos))) {
      tokens.push({ kind: 'datetime', text: m, pos });
      pos += m.length;
    } else if ((m = match(NUMBER, text, pos))) {
      tokens.push({ kind: 'number', text: m, pos });
      pos += m.length;
    } else if ((m = match(NAME, text, pos))) {
      const end = pos + m.length;
      if (text[end] === "'") {
        const s = readString(text, end);
        tokens.push({ kind: 'typed', type: m, value: s.value, pos });
        pos = s.end;
      } else {
        tokens.push({ kind: 'name', text: m, pos });
        pos = end;
      }
    } else if ((m = match(ALIAS, text, pos))) {
      tokens.push({ kind: 'alias', name: m, pos });
      pos += m.length;
    } else {
      syntaxError(text, pos, `The character '${c}' is not valid here.`);
    }
  }
  tokens.push({ kind: 'end', pos: text.length });
  return tokens;
}

/** How a token reads in a message. */
export function describeToken(token: Token): string {
  switch (token.kind) {
    case 'end':
      return 'the end of the expression';
    case 'name':
    case 'punct':
      return `'${token.text}'`;
    case 'number':
    case 'datetime':
      return `'${token.text}'`;
    case 'guid':
      return `'${token.value}'`;
    case 'alias':
      return `'${token.name}'`;
    case 'string':
      return 'a string literal';
    case 'json':
      return 'a JSON value';
    case 'typed':
      return `'${token.type}'`;
  }
}
