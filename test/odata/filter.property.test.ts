import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { compileFilter, compileQuery, parseFunctionArgs, parseKey } from '../../src/odata/index.js';
import type { Condition, Operand } from '../../src/store/types.js';
import { accounts, alerts, clock, contacts, devices, model } from './fixtures.js';
import { isClientError } from './helpers.js';

/**
 * Whatever a client sends, the query layer answers with a Condition or a CcsError that maps to 4xx/501: never a
 * TypeError, a RangeError, a stack overflow or a hang, which would surface as a 500.
 */

const RUNS = 3000;
const tables = [accounts, contacts, devices, alerts];
const aliases = new Map([
  ['@p1', "'name'"],
  ['@p2', '["a","b"]'],
  ['@p3', '5'],
  ['@n', 'name'],
]);
const metadataNames = new Set(model.tables().flatMap((t) => [t.logicalName, ...t.columns.map((c) => c.logicalName)]));
for (const t of model.tables()) for (const n of t.navigations) if (n.kind === 'manyToMany') metadataNames.add(n.intersect).add(n.ownColumn).add(n.otherColumn);

/** Every identifier in a condition must come from the metadata. */
function checkNames(c: Condition): void {
  const operand = (o: Operand): void => {
    if (o.kind === 'column') assert.ok(metadataNames.has(o.column), o.column);
    if (o.kind === 'related') {
      for (const n of [o.table, o.key, o.via]) assert.ok(metadataNames.has(n), n);
      operand(o.operand);
    }
  };
  switch (c.kind) {
    case 'and':
    case 'or':
      c.items.forEach(checkNames);
      break;
    case 'not':
      checkNames(c.item);
      break;
    case 'compare':
      operand(c.left);
      operand(c.right);
      break;
    case 'match':
    case 'in':
      operand(c.operand);
      break;
    case 'exists':
      for (const n of [c.table, c.column, c.outerColumn]) assert.ok(metadataNames.has(n), n);
      if (c.through) for (const n of Object.values(c.through)) assert.ok(metadataNames.has(n), n);
      checkNames(c.where);
      break;
    default:
      break;
  }
}

function assertWellBehaved(run: () => unknown, input: string, check?: (result: unknown) => void): void {
  let result: unknown;
  try {
    result = run();
  } catch (e) {
    if (!isClientError(e)) {
      assert.fail(`${JSON.stringify(input).slice(0, 300)} threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
    return;
  }
  check?.(result);
}

function filterOk(text: string, tableIndex = 0): void {
  assertWellBehaved(
    () => compileFilter(text, tables[tableIndex % tables.length]!, model, aliases, clock),
    text,
    (c) => checkNames(c as Condition),
  );
}

const VALID_FILTERS = [
  "name eq 'Contoso'",
  "name eq 'O''Bryan' and revenue gt 1000.5",
  'statecode eq 0 or (numberofemployees ge 10 and numberofemployees le 20)',
  "not contains(name,'x') and startswith(tolower(name),'c')",
  '_primarycontactid_value eq 6a9b1c2d-0000-4000-8000-0123456789ab',
  "primarycontactid/fullname eq 'Joe' and primarycontactid/parentcustomerid_account/name ne null",
  'createdon ge 2024-01-02T00:00:00Z and createdon lt 2024-02-01',
  'account_parent_account/any(a:a/statecode eq 0 and a/account_parent_account/all(b:b/revenue gt 5))',
  'account_parent_account/any()',
  "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=[\"a\",\"b\"])",
  'Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2)',
  "Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=@p3)",
  "Microsoft.Dynamics.CRM.Between(PropertyName='revenue',PropertyValues=[\"1\",\"2\"])",
  "Microsoft.Dynamics.CRM.On(PropertyName='createdon',PropertyValue='2024-01-02')",
  "name in ('a','b',null) and donotemail",
  "@n eq 'x' and @p3 lt numberofemployees",
  "contains(name,'x') eq false",
  'modifiedon gt createdon',
];

const TOKENS = [
  'name', 'revenue', 'createdon', 'statecode', 'donotemail', '_primarycontactid_value', 'primarycontactid', 'fullname',
  'account_parent_account', 'msdyn_Device', 'a', 'b', 'any', 'all', 'eq', 'ne', 'gt', 'ge', 'lt', 'le', 'and', 'or',
  'not', 'in', 'has', 'add', 'contains', 'startswith', 'tolower', 'length', 'Microsoft.Dynamics.CRM.In',
  'Microsoft.Dynamics.CRM.LastXDays', 'PropertyName', 'PropertyValue', 'PropertyValues', 'true', 'false', 'null',
  '(', ')', ',', '/', ':', '=', '*', "'", "''", "'x'", "'a;b'", '"', '[', ']', '{', '}', '["a"]', '[1,[2]]', '0', '-1',
  '1.5', '1e999', '99999999999999999999', '2024-01-02', '2024-13-45T99:99:99Z', '6a9b1c2d-0000-4000-8000-0123456789ab',
  '@p1', '@p2', '@nope', '@', '$it', '$filter', '%', '\\', '\u0000', '\uD800', '😀', ' ', '\t', "x'y'",
];

const INJECTIONS = [
  "'; DROP TABLE account;--",
  "name eq ''; DROP TABLE account;--'",
  "name eq 'x' or 1 eq 1 --",
  'name"; DELETE FROM account; --',
  "name eq 'x') or ('1' eq '1",
  'name eq char(65)',
  'account;drop table account/any()',
  "Microsoft.Dynamics.CRM.In(PropertyName='name; DROP TABLE x',PropertyValues=[\"a\"])",
  "Microsoft.Dynamics.CRM.In(PropertyName='name\" --',PropertyValues=[\"a\"])",
  'primarycontactid/fullname\u0000 eq null',
];

/** Insert, delete or replace characters, or splice in tokens, at random positions. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.string({ unit: 'binary', maxLength: 3 }), fc.constantFrom(...TOKENS)) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), text: fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 2 }), fc.constantFrom(...TOKENS)) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(text: string, mutations: readonly Mutation[]): string {
  let s = text;
  for (const m of mutations) {
    const at = s.length === 0 ? 0 : m.at % (s.length + 1);
    if (m.kind === 'insert') s = s.slice(0, at) + m.text + s.slice(at);
    else if (m.kind === 'delete') s = s.slice(0, at) + s.slice(at + m.length);
    else s = s.slice(0, at) + m.text + s.slice(at + m.text.length);
  }
  return s;
}

/** Syntactically plausible filters built from the grammar, with real and made-up names. */
const generated = fc.letrec<{ expr: string; atom: string; value: string }>((tie) => ({
  value: fc.oneof(
    fc.constantFrom('name', 'revenue', 'createdon', 'statecode', '_primarycontactid_value', 'primarycontactid/fullname', 'a/name', 'nope'),
    fc.constantFrom("'x'", "'O''B'", '1', '-2.5', 'true', 'null', '2024-01-02', '6a9b1c2d-0000-4000-8000-0123456789ab', '@p3', '@n'),
    fc.string({ maxLength: 8 }).map((s) => `'${s.replace(/'/g, "''")}'`),
    fc.double().map(String),
  ),
  atom: fc.oneof(
    fc.tuple(tie('value'), fc.constantFrom('eq', 'ne', 'gt', 'ge', 'lt', 'le'), tie('value')).map(([l, op, r]) => `${l} ${op} ${r}`),
    fc.tuple(fc.constantFrom('contains', 'startswith', 'endswith'), tie('value'), tie('value')).map(([f, a, b]) => `${f}(${a},${b})`),
    fc.tuple(fc.constantFrom('account_parent_account', 'account_contact_parentcustomerid', 'primarycontactid'), fc.constantFrom('any', 'all'), fc.constantFrom('a', 'b'), tie('expr')).map(
      ([nav, op, v, body]) => `${nav}/${op}(${v}:${body})`,
    ),
    fc.tuple(fc.constantFrom('In', 'NotIn', 'Between', 'LastXDays', 'Today', 'On', 'Nope'), tie('value'), tie('value')).map(
      ([fn, p, v]) => `Microsoft.Dynamics.CRM.${fn}(PropertyName=${p},PropertyValue=${v})`,
    ),
  ),
  expr: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('atom'),
    fc.tuple(tie('expr'), fc.constantFrom('and', 'or'), tie('expr')).map(([a, op, b]) => `${a} ${op} ${b}`),
    tie('expr').map((e) => `not (${e})`),
    tie('expr').map((e) => `(${e})`),
  ),
}));

describe('the query layer never fails with anything but a client error', () => {
  test('random strings, binary and ASCII', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), fc.nat(), (s, t) => filterOk(s, t)), { numRuns: RUNS });
    fc.assert(fc.property(fc.string({ unit: 'binary-ascii', maxLength: 200 }), fc.nat(), (s, t) => filterOk(s, t)), { numRuns: RUNS });
  });

  test('random token sequences', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...TOKENS), { maxLength: 40 }), fc.constantFrom(' ', ''), fc.nat(), (tokens, sep, t) => filterOk(tokens.join(sep), t)),
      { numRuns: RUNS },
    );
  });

  test('mutations of valid filters', () => {
    for (const f of VALID_FILTERS) assert.doesNotThrow(() => compileFilter(f, accounts, model, aliases, clock), f);
    fc.assert(
      fc.property(fc.constantFrom(...VALID_FILTERS), fc.array(mutation, { minLength: 1, maxLength: 4 }), (f, ms) => filterOk(mutate(f, ms))),
      { numRuns: RUNS * 2 },
    );
  });

  test('generated filters', () => {
    fc.assert(fc.property(generated.expr, fc.nat(), (f, t) => filterOk(f, t)), { numRuns: RUNS });
  });

  test('deep nesting of every nesting construct', () => {
    const wrappers: [string, string][] = [
      ['(', ')'],
      ['not ', ''],
      ['not (', ')'],
      ['account_parent_account/any(a:', ')'],
      ['contains(', ",'x')"],
      ['tolower(', ')'],
      ['Microsoft.Dynamics.CRM.In(PropertyName=', ',PropertyValues=["a"])'],
      ['name in (', ')'],
      ['[', ']'],
      ['{"a":', '}'],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...wrappers), fc.integer({ min: 1, max: 20_000 }), fc.boolean(), ([open, close], n, balanced) => {
        const text = `${open.repeat(n)}name eq 'x'${balanced ? close.repeat(n) : ''}`;
        filterOk(text);
      }),
      { numRuns: 200 },
    );
    filterOk(`${'primarycontactid/'.repeat(20_000)}fullname eq 'x'`);
    filterOk(`${'name eq 1 or '.repeat(7_000)}name eq 1`);
  });

  test('injection strings are values or errors, never identifiers', () => {
    for (const s of INJECTIONS) filterOk(s);
    fc.assert(
      fc.property(fc.constantFrom(...VALID_FILTERS), fc.constantFrom(...INJECTIONS), fc.nat(), (f, inj, at) => filterOk(mutate(f, [{ kind: 'insert', at, text: inj }]))),
      { numRuns: RUNS },
    );
  });

  test('other entry points: compileQuery, parseKey, parseFunctionArgs', () => {
    const optionNames = ['$select', '$filter', '$orderby', '$top', '$skip', '$count', '$expand', '$skiptoken', '$format', '$apply', '$x', '@p1', 'x'];
    const optionValue = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.constantFrom(...VALID_FILTERS),
      fc.constantFrom('name,revenue', 'name desc', 'primarycontactid($select=fullname;$expand=parentcustomerid_account)', 'account_parent_account($filter=name eq \'a;b\';$top=2)', '5', 'true'),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...optionNames), optionValue), { maxLength: 5 }), fc.array(mutation, { maxLength: 2 }), (pairs, ms) => {
        const params = new URLSearchParams();
        for (const [k, v] of pairs) params.append(k, mutate(v, ms));
        assertWellBehaved(() => compileQuery(params, accounts, model, clock), params.toString(), (q) => {
          const where = (q as { where?: Condition }).where;
          if (where) checkNames(where);
        });
      }),
      { numRuns: RUNS },
    );
    const keyLike = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc.constantFrom("msdyn_deviceid='dev-1'", "firstname='Joe',emailaddress1='a@b.c'", '{6a9b1c2d-0000-4000-8000-0123456789ab}', '_primarycontactid_value=6a9b1c2d-0000-4000-8000-0123456789ab', "P1=@p1,P2='x',P3=[1,2],P4=Microsoft.Dynamics.CRM.X'y'"),
    );
    fc.assert(
      fc.property(keyLike, fc.array(mutation, { maxLength: 3 }), fc.nat(), (text, ms, t) => {
        const s = mutate(text, ms);
        assertWellBehaved(() => parseKey(s, tables[t % tables.length]!), s);
        assertWellBehaved(() => parseFunctionArgs(s, aliases), s);
      }),
      { numRuns: RUNS },
    );
  });
});
