/**
 * Paths into a JSON value: `Temperature`, `readings.temp`, `a.0.b`, `a[0].b`, `a["key.with.dots"]`. A numeric
 * segment indexes an array and names a key of an object, so `a.0` reads `{"a":["x"]}` and `{"a":{"0":"x"}}` alike.
 */

export const MAX_PATH_LENGTH = 200;
export const MAX_PATH_SEGMENTS = 16;

export interface CompiledPath {
  readonly segments: readonly string[];
  /** Array index of each segment, or -1 when the segment is not a canonical non-negative integer. */
  readonly indexes: readonly number[];
}

/** The segments of `text`, or a reason it is not a path. */
export function parsePath(text: string): CompiledPath | { readonly error: string } {
  if (text.length === 0) return { error: 'must not be empty' };
  if (text.length > MAX_PATH_LENGTH) return { error: `must be at most ${MAX_PATH_LENGTH} characters` };
  const segments: string[] = [];
  let i = 0;
  let expectSegment = true;
  while (i < text.length) {
    const c = text[i];
    if (c === '[') {
      const close = readBracket(text, i);
      if (typeof close !== 'number') return close;
      segments.push(bracketContent(text, i));
      i = close + 1;
      expectSegment = false;
      if (i < text.length && text[i] !== '.' && text[i] !== '[') return { error: `expects '.' or '[' after ']' at character ${i + 1}` };
      if (text[i] === '.') {
        i++;
        expectSegment = true;
        if (i === text.length) return { error: 'must not end with "."' };
      }
      continue;
    }
    if (c === '.') return { error: `has an empty segment at character ${i + 1}` };
    if (c === ']') return { error: `has an unmatched "]" at character ${i + 1}` };
    let j = i;
    while (j < text.length && text[j] !== '.' && text[j] !== '[' && text[j] !== ']') j++;
    if (text[j] === ']') return { error: `has an unmatched "]" at character ${j + 1}` };
    segments.push(text.slice(i, j));
    i = j;
    expectSegment = false;
    if (text[i] === '.') {
      i++;
      expectSegment = true;
      if (i === text.length) return { error: 'must not end with "."' };
    }
  }
  if (expectSegment) return { error: 'must not be empty' };
  if (segments.length > MAX_PATH_SEGMENTS) return { error: `must have at most ${MAX_PATH_SEGMENTS} segments` };
  return { segments, indexes: segments.map(arrayIndex) };
}

/** Index of the `]` closing the bracket at `open`, or an error. */
function readBracket(text: string, open: number): number | { readonly error: string } {
  const q = text[open + 1];
  if (q === '"' || q === "'") {
    for (let k = open + 2; k < text.length; k++) {
      if (text[k] === '\\') {
        k++;
        continue;
      }
      if (text[k] === q) {
        if (text[k + 1] !== ']') return { error: `expects "]" after the quoted key at character ${k + 2}` };
        return k + 1;
      }
    }
    return { error: `has an unterminated quoted key at character ${open + 2}` };
  }
  const close = text.indexOf(']', open);
  if (close < 0) return { error: `has an unterminated "[" at character ${open + 1}` };
  const inner = text.slice(open + 1, close);
  if (!/^\d+$/.test(inner)) return { error: `must have a number or a quoted key between "[" and "]" at character ${open + 1}` };
  return close;
}

function bracketContent(text: string, open: number): string {
  const q = text[open + 1];
  if (q !== '"' && q !== "'") return String(Number(text.slice(open + 1, text.indexOf(']', open))));
  let out = '';
  for (let k = open + 2; text[k] !== q; k++) {
    if (text[k] === '\\') k++;
    out += text[k];
  }
  return out;
}

function arrayIndex(segment: string): number {
  if (!/^(?:0|[1-9]\d{0,8})$/.test(segment)) return -1;
  return Number(segment);
}

/** The value at `path` in `root`, or undefined. Reads own properties only. */
export function resolvePath(root: unknown, path: CompiledPath): unknown {
  let cur = root;
  const { segments, indexes } = path;
  for (let i = 0; i < segments.length; i++) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (Array.isArray(cur)) {
      const idx = indexes[i];
      if (idx < 0) return undefined;
      cur = cur[idx];
    } else {
      const key = segments[i];
      if (!Object.hasOwn(cur, key)) return undefined;
      cur = (cur as Record<string, unknown>)[key];
    }
  }
  return cur;
}
