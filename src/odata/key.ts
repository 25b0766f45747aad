import { CcsError } from '../errors/index.js';
import { isGuid, isLookup, toStoreValue, type ColumnDef, type Table } from '../metadata/index.js';
import type { StoreValue } from '../store/types.js';
import { echo, invalidQuery, syntaxError, unknownProperty } from './errors.js';
import { describeToken, tokenize, type Token } from './lexer.js';
import { parseLiteralToken, type Aliases } from './parser.js';
import { literalValue } from './literals.js';

export type ParsedKey = { kind: 'id'; id: string } | { kind: 'alternate'; values: Record<string, StoreValue> };

/** Reads `name=value(,name=value)*` (or nothing) from tokens; `value` turns each value token into a result. */
function readPairs<T>(text: string, value: (token: Token) => T): [name: string, value: T, pos: number][] {
  const tokens = tokenize(text);
  const pairs: [string, T, number][] = [];
  let i = 0;
  const next = (): Token => tokens[Math.min(i++, tokens.length - 1)]!;
  if (tokens[0]!.kind === 'end') return pairs;
  for (;;) {
    const name = next();
    if (name.kind !== 'name' || name.text.includes('.')) syntaxError(text, name.pos, `Expected a name but found ${describeToken(name)}.`);
    const eq = next();
    if (!(eq.kind === 'punct' && eq.text === '=')) syntaxError(text, eq.pos, `Expected '=' but found ${describeToken(eq)}.`);
    if (pairs.some(([n]) => n === name.text)) invalidQuery(`'${name.text}' is given more than once in '${echo(text)}'.`);
    pairs.push([name.text, value(next()), name.pos]);
    const sep = next();
    if (sep.kind === 'end') return pairs;
    if (!(sep.kind === 'punct' && sep.text === ',')) syntaxError(text, sep.pos, `Expected ',' but found ${describeToken(sep)}.`);
  }
}

function invalidKey(message: string): never {
  throw new CcsError('InvalidKey', message);
}

/**
 * Parses the text between the parentheses of `set(…)`: a GUID (braces tolerated, as DynamicsWebApi strips them
 * but people paste them), the primary key by name, or the columns of an alternate key, lookups written
 * `_x_value=<guid>`. Values are converted exactly as on write, so a key finds what a create stored.
 */
export function parseKey(text: string, table: Table): ParsedKey {
  const bare = text.trim().replace(/^\{(.*)\}$/s, '$1');
  if (isGuid(bare)) return { kind: 'id', id: bare.toLowerCase() };

  const first = tokenize(text)[0]!;
  if (first.kind !== 'name' || first.text === 'true' || first.text === 'false' || first.text === 'null') {
    invalidKey(`'${echo(text)}' is not a valid key for ${table.logicalName}: give the record's id, or name=value pairs of an alternate key.`);
  }
  const columns: [ColumnDef, StoreValue][] = [];
  for (const [name, token] of readPairs(text, (t) => t)) {
    const column = table.lookupByValueProperty(name) ?? table.column(name) ?? unknownProperty(name, table.logicalName);
    if (columns.some(([c]) => c === column)) invalidKey(`The column '${column.logicalName}' is given more than once in the key.`);
    const literal = parseLiteralToken(token, text);
    if (literal.type === 'null') invalidKey(`The key value of '${name}' cannot be null.`);
    if (literal.type === 'json' || literal.type === 'typed') invalidKey(`The key value of '${name}' must be a plain literal.`);
    columns.push([column, toStoreValue(column, literalValue(literal))]);
  }
  if (columns.length === 0) invalidKey(`A key for ${table.logicalName} is empty.`);

  const names = columns.map(([c]) => c.logicalName);
  if (names.length === 1 && names[0] === table.primaryIdAttribute) return { kind: 'id', id: String(columns[0]![1]) };
  const isDefinedKey = (table.alternateKeys ?? []).some(
    (k) => k.columns.length === names.length && k.columns.every((c) => names.includes(c)),
  );
  // Dataverse also addresses records by their lookups (`accounts(_primarycontactid_value=…)`), given a key on them.
  const allLookups = columns.every(([c]) => isLookup(c));
  if (!isDefinedKey && !allLookups) {
    invalidKey(`The columns ${names.map((n) => `'${n}'`).join(', ')} are not an alternate key of ${table.logicalName}.`);
  }
  return { kind: 'alternate', values: Object.fromEntries(columns.map(([c, v]) => [c.logicalName, v])) };
}

/**
 * Parses a function call's parameters, `P1=@p1,P2='x',P3=3,P4=<guid>`, into plain values: text, numbers, booleans,
 * null, GUIDs and dates as text, JSON arrays and objects parsed, enum members (`Ns.Type'Member'`) by member name.
 * Aliases are resolved from `aliases` (keys with their `@`); an alias value is one literal.
 */
export function parseFunctionArgs(text: string, aliases: Aliases): Record<string, unknown> {
  const pairs = readPairs(text, (token): unknown => {
    if (token.kind !== 'alias') return literalValue(parseLiteralToken(token, text));
    const raw = aliases.get(token.name) ?? aliases.get(token.name.slice(1));
    if (raw === undefined) return invalidQuery(`The parameter alias '${token.name}' is used but has no value in the query string.`);
    const tokens = tokenize(raw);
    const only = tokens[0]!;
    if (only.kind === 'alias') return invalidQuery(`The value of a parameter alias cannot refer to another alias ('${only.name}').`);
    if (tokens.length !== 2) return syntaxError(raw, tokens[tokens.length > 1 ? 1 : 0]!.pos, 'A parameter alias must have a single literal value.');
    return literalValue(parseLiteralToken(only, raw));
  });
  return Object.fromEntries(pairs.map(([name, value]) => [name, value]));
}
