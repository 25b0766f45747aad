/**
 * The `PropertyPath` of the JsonGet actions. Microsoft documents only "property name or path"
 * (ms-connected-service.md §3.5), so ccs takes the common forms: dotted names with array indexes either bracketed
 * or dotted (`readings[0].temp`, `readings.0.temp`), an optional JSONPath-style `$` / `$.` prefix, and quoted
 * bracketed names for keys that contain dots or brackets (`['a.b']`, `["a.b"]`).
 */

export type PathStep = { readonly kind: 'name'; readonly name: string } | { readonly kind: 'index'; readonly index: number };

export class PathSyntaxError extends Error {
  override readonly name = 'PathSyntaxError';
}

export function parsePath(path: string): PathStep[] {
  const steps: PathStep[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new PathSyntaxError(`${why} at position ${i}`);
  };
  if (path.startsWith('$')) {
    i = 1;
    if (path[i] === '.') i++;
    if (i === path.length) return steps; // `$`: the whole document
  }
  if (i === path.length) fail('empty path');
  let expectName = true; // at the start and after a dot, a name (or dotted index) must follow
  while (i < path.length) {
    const ch = path[i]!;
    if (ch === '[') {
      if (expectName && steps.length > 0) fail("expected a name after '.'");
      const close = path.indexOf(']', i);
      const quote = path[i + 1];
      if (quote === "'" || quote === '"') {
        const end = path.indexOf(`${quote}]`, i + 2);
        if (end < 0) fail('unterminated quoted name');
        steps.push({ kind: 'name', name: path.slice(i + 2, end) });
        i = end + 2;
      } else {
        if (close < 0) fail("missing ']'");
        const inner = path.slice(i + 1, close);
        if (!/^\d+$/.test(inner)) fail(`'[${inner}]' is not an array index`);
        steps.push({ kind: 'index', index: Number(inner) });
        i = close + 1;
      }
      expectName = false;
    } else if (ch === '.') {
      if (expectName) fail('empty name');
      i++;
      expectName = true;
      if (i === path.length) fail('path ends with a dot');
    } else {
      if (!expectName) fail(`expected '.' or '[' before '${ch}'`);
      let end = i;
      while (end < path.length && path[end] !== '.' && path[end] !== '[') {
        if (path[end] === ']') fail("unexpected ']'");
        end++;
      }
      steps.push({ kind: 'name', name: path.slice(i, end) });
      i = end;
      expectName = false;
    }
  }
  return steps;
}

/**
 * The value at `steps`, or undefined when any step is missing. A name made of digits indexes an array (the dotted
 * index form); an index step reads only arrays.
 */
export function valueAt(root: unknown, steps: readonly PathStep[]): unknown {
  let current: unknown = root;
  for (const step of steps) {
    if (Array.isArray(current)) {
      const index = step.kind === 'index' ? step.index : /^\d+$/.test(step.name) ? Number(step.name) : undefined;
      if (index === undefined || index >= current.length) return undefined;
      current = current[index];
    } else if (step.kind === 'name' && typeof current === 'object' && current !== null && Object.hasOwn(current, step.name)) {
      current = (current as Record<string, unknown>)[step.name];
    } else {
      return undefined;
    }
  }
  return current;
}
