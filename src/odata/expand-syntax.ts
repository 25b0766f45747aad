import { checkLength, MAX_DEPTH, syntaxError } from './errors.js';

/**
 * The outer syntax of `$expand=nav($select=a,b;$filter=…;$expand=…),other`: items separated by commas, options by
 * semicolons, both only at the top level, i.e. outside parentheses, brackets and quoted strings (a filter literal
 * may contain `;`, `,` or `(`). The option values themselves are parsed later by the option's own parser.
 */

export interface ExpandItem {
  readonly path: string;
  /** `name=value` pairs from the parentheses, in order; absent without parentheses. */
  readonly options?: readonly (readonly [string, string])[];
}

/**
 * Calls `visit` for every character outside quoted strings with the bracket depth before it. Single-quoted OData
 * strings need no escape handling here: `''` closes and reopens, which leaves the state right.
 */
function scan(text: string, visit: (c: string, index: number, depth: number) => void): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "'" || c === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== c; i++) if (c === '"' && text[i] === '\\') i++;
      if (i >= text.length) syntaxError(text, start, 'The quoted string is not terminated.');
      continue;
    }
    visit(c, i, depth);
    if (c === '(' || c === '[' || c === '{') {
      if (++depth > MAX_DEPTH) syntaxError(text, i, `The value is nested more than ${MAX_DEPTH} levels deep.`);
    } else if (c === ')' || c === ']' || c === '}') {
      if (--depth < 0) syntaxError(text, i, `Unexpected '${c}'.`);
    }
  }
  if (depth !== 0) syntaxError(text, text.length, 'A parenthesis is not closed.');
}

function splitTopLevel(text: string, separator: string): { part: string; pos: number }[] {
  const parts: { part: string; pos: number }[] = [];
  let start = 0;
  scan(text, (c, i, depth) => {
    if (depth === 0 && c === separator) {
      parts.push({ part: text.slice(start, i), pos: start });
      start = i + 1;
    }
  });
  parts.push({ part: text.slice(start), pos: start });
  return parts;
}

export function parseExpand(text: string): ExpandItem[] {
  checkLength(text, '$expand value');
  return splitTopLevel(text, ',').map(({ part, pos }) => {
    let open = -1;
    let close = -1;
    scan(part, (c, i, depth) => {
      if (c === '(' && depth === 0 && open < 0) open = i;
      else if (c === ')' && depth === 1 && open >= 0 && close < 0) close = i;
    });
    const path = (open < 0 ? part : part.slice(0, open)).trim();
    if (!path) syntaxError(text, pos, 'Expected a navigation property name.');
    if (open < 0) return { path };
    if (part.slice(close + 1).trim()) syntaxError(text, pos + close + 1, "Expected ',' after the expanded navigation property's options.");
    return { path, options: parseOptions(part.slice(open + 1, close), text, pos + open + 1) };
  });
}

function parseOptions(inner: string, whole: string, offset: number): [string, string][] {
  const options: [string, string][] = [];
  for (const { part, pos } of splitTopLevel(inner, ';')) {
    if (!part.trim()) continue; // `nav($select=a;)` is harmless
    const eq = part.indexOf('=');
    if (eq < 0) syntaxError(whole, offset + pos, "Expected 'option=value' inside the parentheses of $expand.");
    options.push([part.slice(0, eq).trim(), part.slice(eq + 1)]);
  }
  return options;
}
