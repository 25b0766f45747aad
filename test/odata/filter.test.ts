import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compileFilter } from '../../src/odata/index.js';
import type { Condition, Operand } from '../../src/store/types.js';
import { accounts, alerts, clock, contacts, devices, model, NOW } from './fixtures.js';
import { assertCcsError } from './helpers.js';

const GUID = '6A9B1C2D-0000-4000-8000-0123456789AB';
const guid = GUID.toLowerCase();

function filter(text: string, table = accounts, aliases: Record<string, string> = {}): Condition {
  return compileFilter(text, table, model, new Map(Object.entries(aliases)), clock);
}
const col = (column: string): Operand => ({ kind: 'column', column });
const val = (value: string | number | null): Operand => ({ kind: 'value', value });
const cmp = (op: 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le', left: Operand, right: Operand): Condition => ({ kind: 'compare', op, left, right });
const isNull = (o: Operand): Condition => cmp('eq', o, val(null));

describe('$filter comparisons and literals', () => {
  test('each comparison operator', () => {
    for (const op of ['eq', 'ne', 'gt', 'ge', 'lt', 'le'] as const) {
      assert.deepEqual(filter(`numberofemployees ${op} 10`), cmp(op, col('numberofemployees'), val(10)));
    }
  });

  test("strings, with '' standing for a quote", () => {
    assert.deepEqual(filter("name eq 'O''Bryan'"), cmp('eq', col('name'), val("O'Bryan")));
    assert.deepEqual(filter("name eq ''"), cmp('eq', col('name'), val('')));
    assert.deepEqual(filter("name eq 'a;b,(c)'"), cmp('eq', col('name'), val('a;b,(c)')));
  });

  test('integers, decimals, negatives and type suffixes', () => {
    assert.deepEqual(filter('revenue gt 1000.5'), cmp('gt', col('revenue'), val(1000.5)));
    assert.deepEqual(filter('revenue gt -3'), cmp('gt', col('revenue'), val(-3)));
    assert.deepEqual(filter('revenue gt 2e3'), cmp('gt', col('revenue'), val(2000)));
    assert.deepEqual(filter('revenue gt 10M'), cmp('gt', col('revenue'), val(10)));
    assert.deepEqual(filter('msdyn_sequence ge 9007199254740991', devices), cmp('ge', col('msdyn_sequence'), val(9007199254740991)));
  });

  test('booleans are stored as 0 and 1', () => {
    assert.deepEqual(filter('donotemail eq true'), cmp('eq', col('donotemail'), val(1)));
    assert.deepEqual(filter('donotemail ne false'), cmp('ne', col('donotemail'), val(0)));
  });

  test('a Boolean column alone is a condition', () => {
    assert.deepEqual(filter('donotemail'), cmp('eq', col('donotemail'), val(1)));
  });

  test('DateTimeOffset and date literals become epoch milliseconds', () => {
    assert.deepEqual(filter('createdon ge 2024-01-02T00:00:00Z'), cmp('ge', col('createdon'), val(Date.UTC(2024, 0, 2))));
    assert.deepEqual(filter('createdon lt 2024-01-02'), cmp('lt', col('createdon'), val(Date.UTC(2024, 0, 2))));
    assert.deepEqual(filter('createdon lt 2024-01-02T10:30:00.5+01:00'), cmp('lt', col('createdon'), val(Date.UTC(2024, 0, 2, 9, 30, 0, 500))));
  });

  test('unquoted GUIDs, compared in lower case; braces and quotes tolerated for GUID columns', () => {
    assert.deepEqual(filter(`accountid eq ${GUID}`), cmp('eq', col('accountid'), val(guid)));
    assert.deepEqual(filter(`accountid eq '${GUID}'`), cmp('eq', col('accountid'), val(guid)));
  });

  test('_x_value compares the lookup column', () => {
    assert.deepEqual(filter(`_primarycontactid_value eq ${GUID}`), cmp('eq', col('primarycontactid'), val(guid)));
    assert.deepEqual(filter(`_parentcustomerid_value eq ${GUID}`, contacts), cmp('eq', col('parentcustomerid'), val(guid)));
  });

  test('null comparisons', () => {
    assert.deepEqual(filter('name eq null'), isNull(col('name')));
    assert.deepEqual(filter('_primarycontactid_value ne null'), cmp('ne', col('primarycontactid'), val(null)));
    assert.deepEqual(filter('null eq name'), isNull(col('name')));
    // Ordering against null is false in OData, whatever the engine would do.
    assert.deepEqual(filter('revenue gt null'), { kind: 'false' });
  });

  test('choices compare numerically, without checking option values', () => {
    assert.deepEqual(filter('statecode eq 0'), cmp('eq', col('statecode'), val(0)));
    assert.deepEqual(filter('industrycode eq 999'), cmp('eq', col('industrycode'), val(999)));
  });

  test('literal on the left is turned around', () => {
    assert.deepEqual(filter('10 lt numberofemployees'), cmp('gt', col('numberofemployees'), val(10)));
    assert.deepEqual(filter("'Contoso' eq name"), cmp('eq', col('name'), val('Contoso')));
  });

  test('column-to-column comparison', () => {
    assert.deepEqual(filter('modifiedon gt createdon'), cmp('gt', col('modifiedon'), col('createdon')));
    assert.deepEqual(filter('statecode eq numberofemployees'), cmp('eq', col('statecode'), col('numberofemployees')));
  });

  test('literal-to-literal comparisons are folded', () => {
    assert.deepEqual(filter('1 eq 1'), { kind: 'true' });
    assert.deepEqual(filter("'a' eq 'A'"), { kind: 'true' });
    assert.deepEqual(filter('2 lt 1'), { kind: 'false' });
    assert.deepEqual(filter('null eq null'), { kind: 'true' });
    assert.deepEqual(filter('true'), { kind: 'true' });
  });

  test('whitespace is free-form', () => {
    assert.deepEqual(filter("  name   eq\t'x'  "), cmp('eq', col('name'), val('x')));
  });
});

describe('$filter logic', () => {
  test('and / or chains are flat, and binds tighter than or', () => {
    const a = cmp('eq', col('name'), val('a'));
    const b = cmp('eq', col('name'), val('b'));
    const c = cmp('eq', col('name'), val('c'));
    assert.deepEqual(filter("name eq 'a' or name eq 'b' and name eq 'c'"), { kind: 'or', items: [a, { kind: 'and', items: [b, c] }] });
    assert.deepEqual(filter("(name eq 'a' or name eq 'b') and name eq 'c'"), { kind: 'and', items: [{ kind: 'or', items: [a, b] }, c] });
    assert.deepEqual(filter("name eq 'a' or name eq 'b' or name eq 'c'"), { kind: 'or', items: [a, b, c] });
  });

  test('not is pushed to the leaves with two-valued logic', () => {
    // not (x eq 1) holds for null x in OData; the complement ne keeps nulls already.
    assert.deepEqual(filter('not numberofemployees eq 1'), cmp('ne', col('numberofemployees'), val(1)));
    assert.deepEqual(filter('not (numberofemployees gt 1)'), {
      kind: 'or',
      items: [cmp('le', col('numberofemployees'), val(1)), isNull(col('numberofemployees'))],
    });
    assert.deepEqual(filter('not (name eq null)'), cmp('ne', col('name'), val(null)));
    assert.deepEqual(filter("not (name eq 'a' and name eq 'b')"), {
      kind: 'or',
      items: [cmp('ne', col('name'), val('a')), cmp('ne', col('name'), val('b'))],
    });
    assert.deepEqual(filter('not not (numberofemployees eq 1)'), cmp('eq', col('numberofemployees'), val(1)));
  });

  test('Boolean expressions compared with true or false', () => {
    const match: Condition = { kind: 'match', mode: 'contains', operand: col('name'), value: 'x' };
    assert.deepEqual(filter("contains(name,'x') eq true"), match);
    assert.deepEqual(filter("contains(name,'x') eq false"), { kind: 'or', items: [{ kind: 'not', item: match }, isNull(col('name'))] });
  });
});

describe('$filter functions', () => {
  test('contains, startswith, endswith compile to case-insensitive matches', () => {
    for (const mode of ['contains', 'startswith', 'endswith'] as const) {
      assert.deepEqual(filter(`${mode}(name,'Con%_')`), { kind: 'match', mode, operand: col('name'), value: 'Con%_' });
    }
    assert.deepEqual(filter("contains(description,'x')"), { kind: 'match', mode: 'contains', operand: col('description'), value: 'x' });
  });

  test('tolower and toupper around a column are accepted and change nothing', () => {
    assert.deepEqual(filter("tolower(name) eq 'contoso'"), cmp('eq', col('name'), val('contoso')));
    assert.deepEqual(filter("contains(toupper(name),'X')"), { kind: 'match', mode: 'contains', operand: col('name'), value: 'X' });
  });

  test('contains on a non-text column is a 400', () => {
    assertCcsError(() => filter("contains(revenue,'1')"), 'InvalidQuery', /No function signature for the function with name 'contains'/);
    assertCcsError(() => filter('contains(name,1)'), 'InvalidQuery', /No function signature/);
    assertCcsError(() => filter("contains(name)"), 'InvalidQuery', /No function signature/);
  });

  test('unsupported and unknown functions', () => {
    assertCcsError(() => filter('length(name) gt 3'), 'NotImplemented', "The function 'length' is not supported in $filter.");
    assertCcsError(() => filter('year(createdon) eq 2024'), 'NotImplemented');
    assertCcsError(() => filter('frobnicate(name)'), 'InvalidQuery', "An unknown function with name 'frobnicate' was found.");
  });

  test('the in operator', () => {
    assert.deepEqual(filter("name in ('a','b')"), { kind: 'in', operand: col('name'), values: ['a', 'b'] });
    assert.deepEqual(filter('statecode in (0,1)'), { kind: 'in', operand: col('statecode'), values: [0, 1] });
    assert.deepEqual(filter('name in @p', accounts, { '@p': '["a","b"]' }), { kind: 'in', operand: col('name'), values: ['a', 'b'] });
    assert.deepEqual(filter("name in ('a',null)"), { kind: 'or', items: [{ kind: 'in', operand: col('name'), values: ['a'] }, isNull(col('name'))] });
  });
});

describe('$filter lookup paths', () => {
  test('one hop through a single-valued navigation', () => {
    assert.deepEqual(filter("primarycontactid/fullname eq 'Joe'"), cmp('eq', {
      kind: 'related', table: 'contact', key: 'contactid', via: 'primarycontactid', operand: col('fullname'),
    }, val('Joe')));
  });

  test('several hops, navigation names being case-sensitive', () => {
    assert.deepEqual(filter("msdyn_Device/msdyn_Account/name eq 'Contoso'", alerts), cmp('eq', {
      kind: 'related', table: 'msdyn_iotdevice', key: 'msdyn_iotdeviceid', via: 'msdyn_device',
      operand: { kind: 'related', table: 'account', key: 'accountid', via: 'msdyn_account', operand: col('name') },
    }, val('Contoso')));
    assertCcsError(() => filter("msdyn_device/msdyn_name eq 'x'", alerts), 'InvalidQuery', /not a navigation property/);
    assertCcsError(() => filter("msdyn_DEVICE/msdyn_name eq 'x'", alerts), 'UnknownProperty');
  });

  test('multi-target lookups have a navigation per target', () => {
    assert.deepEqual(filter("parentcustomerid_account/name eq 'A'", contacts), cmp('eq', {
      kind: 'related', table: 'account', key: 'accountid', via: 'parentcustomerid', operand: col('name'),
    }, val('A')));
  });

  test('a lookup path can be used by functions and compared with null', () => {
    assert.deepEqual(filter("startswith(primarycontactid/fullname,'J')"), {
      kind: 'match', mode: 'startswith', value: 'J',
      operand: { kind: 'related', table: 'contact', key: 'contactid', via: 'primarycontactid', operand: col('fullname') },
    });
    assert.deepEqual(filter('primarycontactid eq null'), isNull(col('primarycontactid')));
  });

  test('property access through a collection is refused', () => {
    assertCcsError(
      () => filter("account_parent_account/name eq 'x'"),
      'InvalidQuery',
      "The parent value for a property access of a property 'name' is not a single value. Property access can only be applied to a single value.",
    );
    assertCcsError(() => filter("account_parent_account eq null"), 'InvalidQuery', /only be used with the any or all operator/);
  });
});

describe('$filter lambdas', () => {
  const children = (where: Condition): Condition => ({ kind: 'exists', table: 'account', column: 'parentaccountid', outerColumn: 'accountid', where });

  test('any over a 1:N navigation', () => {
    assert.deepEqual(filter('account_parent_account/any(a:a/statecode eq 0)'), children(cmp('eq', col('statecode'), val(0))));
  });

  test('any() without a lambda', () => {
    assert.deepEqual(filter('account_parent_account/any()'), children({ kind: 'true' }));
  });

  test('all is not exists(not …)', () => {
    assert.deepEqual(filter('account_parent_account/all(a:a/numberofemployees gt 5)'), {
      kind: 'not',
      item: children({ kind: 'or', items: [cmp('le', col('numberofemployees'), val(5)), isNull(col('numberofemployees'))] }),
    });
  });

  test('nested lambdas and lookups inside them', () => {
    const expected: Condition = {
      kind: 'exists', table: 'msdyn_iotdevice', column: 'msdyn_account', outerColumn: 'accountid',
      where: {
        kind: 'and',
        items: [
          cmp('eq', { kind: 'related', table: 'account', key: 'accountid', via: 'msdyn_account', operand: col('name') }, val('A')),
          {
            kind: 'exists', table: 'msdyn_iotalert', column: 'msdyn_device', outerColumn: 'msdyn_iotdeviceid',
            where: cmp('eq', col('msdyn_alerttype'), val(192350000)),
          },
        ],
      },
    };
    assert.deepEqual(
      filter("msdyn_account_msdyn_iotdevice_Account/any(d:d/msdyn_Account/name eq 'A' and d/msdyn_msdyn_iotdevice_msdyn_iotalert_Device/any(a:a/msdyn_alerttype eq 192350000))"),
      expected,
    );
  });

  test('N:N navigations go through the intersect table', () => {
    assert.deepEqual(filter("ccs_contact_msdyn_iotdevice/any(d:d/msdyn_name eq 'x')", contacts), {
      kind: 'exists', table: 'msdyn_iotdevice', column: 'msdyn_iotdeviceid', outerColumn: 'contactid',
      where: cmp('eq', col('msdyn_name'), val('x')),
      through: { table: 'ccs_contact_msdyn_iotdevice', ownColumn: 'contactid', otherColumn: 'msdyn_iotdeviceid', targetKey: 'msdyn_iotdeviceid' },
    });
  });

  test('lambda errors', () => {
    assertCcsError(() => filter('primarycontactid/any(c:c/fullname eq null)'), 'InvalidQuery', /single-valued/);
    assertCcsError(() => filter('name/any(c:c eq null)'), 'InvalidQuery', /is a column/);
    assertCcsError(() => filter('nope/any()'), 'UnknownProperty');
    assertCcsError(() => filter('account_parent_account/all()'), 'InvalidQuery', /needs a lambda expression/);
    assertCcsError(() => filter('account_parent_account/any(a:name eq null)'), 'NotImplemented', /range variable/);
    assertCcsError(() => filter('account_parent_account/any(a:a/account_parent_account/any(b:a/name eq b/name))'), 'NotImplemented', /enclosing lambda/);
    assertCcsError(() => filter('account_parent_account/any(a:a/account_parent_account/any(a:a/name eq null))'), 'InvalidQuery', /already in use/);
    assertCcsError(() => filter('parentaccountid/account_parent_account/any()'), 'InvalidQuery', /not a lookup path/);
    assertCcsError(() => filter('account_parent_account/any(a:a eq null)'), 'InvalidQuery', /must be followed by a property/);
  });
});

describe('Dataverse query functions', () => {
  const DAY = 86_400_000;
  const today = Date.UTC(2024, 4, 15);
  const range = (column: string, from: number, to: number, inclusive = false): Condition => ({
    kind: 'and', items: [cmp('ge', col(column), val(from)), cmp(inclusive ? 'le' : 'lt', col(column), val(to))],
  });

  test('In and NotIn, with JSON arrays and aliases', () => {
    assert.deepEqual(filter('Microsoft.Dynamics.CRM.In(PropertyName=\'name\',PropertyValues=["a","b"])'), {
      kind: 'in', operand: col('name'), values: ['a', 'b'],
    });
    assert.deepEqual(filter('Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2)', accounts, { '@p1': "'industrycode'", '@p2': '["1","2"]' }), {
      kind: 'in', operand: col('industrycode'), values: [1, 2],
    });
    assert.deepEqual(filter(`Microsoft.Dynamics.CRM.NotIn(PropertyName='_primarycontactid_value',PropertyValues=["${GUID}"])`), {
      kind: 'or', items: [{ kind: 'not', item: { kind: 'in', operand: col('primarycontactid'), values: [guid] } }, isNull(col('primarycontactid'))],
    });
  });

  test('Between and NotBetween', () => {
    assert.deepEqual(filter('Microsoft.Dynamics.CRM.Between(PropertyName=\'numberofemployees\',PropertyValues=["5","10"])'), {
      kind: 'and', items: [cmp('ge', col('numberofemployees'), val(5)), cmp('le', col('numberofemployees'), val(10))],
    });
    assert.deepEqual(filter('Microsoft.Dynamics.CRM.NotBetween(PropertyName=\'numberofemployees\',PropertyValues=[5,10])'), {
      kind: 'or', items: [
        { kind: 'or', items: [cmp('lt', col('numberofemployees'), val(5)), isNull(col('numberofemployees'))] },
        { kind: 'or', items: [cmp('gt', col('numberofemployees'), val(10)), isNull(col('numberofemployees'))] },
      ],
    });
    assertCcsError(() => filter('Microsoft.Dynamics.CRM.Between(PropertyName=\'numberofemployees\',PropertyValues=[5])'), 'InvalidValue');
  });

  test('days: On, OnOrAfter, OnOrBefore, Today, Yesterday, Tomorrow (UTC)', () => {
    const jan2 = Date.UTC(2024, 0, 2);
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.On(PropertyName='createdon',PropertyValue='2024-01-02')"), range('createdon', jan2, jan2 + DAY));
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.On(PropertyName='createdon',PropertyValue=2024-01-02T15:00:00Z)"), range('createdon', jan2, jan2 + DAY));
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.OnOrAfter(PropertyName='createdon',PropertyValue='2024-01-02')"), cmp('ge', col('createdon'), val(jan2)));
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.OnOrBefore(PropertyName='createdon',PropertyValue='2024-01-02')"), cmp('lt', col('createdon'), val(jan2 + DAY)));
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.Today(PropertyName='createdon')"), range('createdon', today, today + DAY));
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.Yesterday(PropertyName='createdon')"), range('createdon', today - DAY, today));
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.Tomorrow(PropertyName='createdon')"), range('createdon', today + DAY, today + 2 * DAY));
  });

  test('relative periods: LastX…, NextX…, This…', () => {
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.LastXHours(PropertyName='msdyn_alerttime',PropertyValue=2)", alerts), range('msdyn_alerttime', NOW - 2 * 3_600_000, NOW, true));
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.NextXHours(PropertyName='createdon',PropertyValue='2')"), range('createdon', NOW, NOW + 2 * 3_600_000));
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=3)"), range('createdon', today - 3 * DAY, NOW, true));
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.NextXDays(PropertyName='createdon',PropertyValue=3)"), range('createdon', NOW, today + 4 * DAY));
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.LastXWeeks(PropertyName='createdon',PropertyValue=1)"), range('createdon', today - 7 * DAY, NOW, true));
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.LastXMonths(PropertyName='createdon',PropertyValue=2)"), range('createdon', Date.UTC(2024, 2, 15), NOW, true));
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.LastXYears(PropertyName='createdon',PropertyValue=1)"), range('createdon', Date.UTC(2023, 4, 15), NOW, true));
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.ThisMonth(PropertyName='createdon')"), range('createdon', Date.UTC(2024, 4, 1), Date.UTC(2024, 5, 1)));
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.ThisYear(PropertyName='createdon')"), range('createdon', Date.UTC(2024, 0, 1), Date.UTC(2025, 0, 1)));
    // 2024-05-15 is a Wednesday; weeks start on Sunday the 12th.
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.ThisWeek(PropertyName='createdon')"), range('createdon', Date.UTC(2024, 4, 12), Date.UTC(2024, 4, 19)));
    assert.deepEqual(filter("Microsoft.Dynamics.CRM.OlderThanXDays(PropertyName='createdon',PropertyValue=30)"), cmp('lt', col('createdon'), val(today - 30 * DAY)));
  });

  test('query functions combine with other conditions and inside lambdas', () => {
    const c = filter("name eq 'a' and not Microsoft.Dynamics.CRM.In(PropertyName='statecode',PropertyValues=[\"0\"])");
    assert.equal(c.kind, 'and');
    assert.deepEqual(filter("account_parent_account/any(a:Microsoft.Dynamics.CRM.Today(PropertyName='createdon'))").kind, 'exists');
  });

  test('errors', () => {
    assertCcsError(() => filter("Microsoft.Dynamics.CRM.LastXDays(PropertyName='name',PropertyValue=3)"), 'InvalidQuery', /needs a date and time column/);
    assertCcsError(() => filter("Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue='x')"), 'InvalidValue');
    assertCcsError(() => filter("Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon')"), 'InvalidQuery', /needs the parameter 'PropertyValue'/);
    assertCcsError(() => filter("Microsoft.Dynamics.CRM.Today(PropertyName='createdon',PropertyValue=1)"), 'InvalidQuery', /has no parameter named 'PropertyValue'/);
    assertCcsError(() => filter("Microsoft.Dynamics.CRM.Today(PropertyName='nope')"), 'UnknownProperty');
    assertCcsError(() => filter("Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues='a')"), 'InvalidValue', /JSON array/);
    assertCcsError(() => filter("Microsoft.Dynamics.CRM.EqualUserId(PropertyName='ownerid')"), 'NotImplemented');
    assertCcsError(() => filter("Microsoft.Dynamics.CRM.Frobnicate(PropertyName='name')"), 'InvalidQuery', /unknown function/);
    assertCcsError(() => filter("Microsoft.Dynamics.CRM.constructor(PropertyName='name')"), 'InvalidQuery', /unknown function/);
    assertCcsError(() => filter("Other.Ns.In(PropertyName='name',PropertyValues=[\"a\"])"), 'InvalidQuery', /unknown function/);
    assertCcsError(() => filter("Microsoft.Dynamics.CRM.LastXYears(PropertyName='createdon',PropertyValue=9007199254740991)"), 'InvalidValue');
  });
});

describe('parameter aliases', () => {
  test('aliases stand for literals', () => {
    assert.deepEqual(filter('name eq @p1', accounts, { '@p1': "'Contoso'" }), cmp('eq', col('name'), val('Contoso')));
    assert.deepEqual(filter('@p1 lt numberofemployees', accounts, { '@p1': '5' }), cmp('gt', col('numberofemployees'), val(5)));
  });

  test('aliases may stand for property names, as in the Dataverse docs', () => {
    assert.deepEqual(filter('@p2 gt @p3', accounts, { '@p2': 'revenue', '@p3': '5000' }), cmp('gt', col('revenue'), val(5000)));
  });

  test('missing or recursive aliases are refused', () => {
    assertCcsError(() => filter('name eq @nope'), 'InvalidQuery', "The parameter alias '@nope' is used but has no value in the query string.");
    assertCcsError(() => filter('name eq @a', accounts, { '@a': '@b', '@b': "'x'" }), 'InvalidQuery', /cannot refer to another alias/);
    assertCcsError(() => filter('name eq @a', accounts, { '@a': "'x" }), 'InvalidQuery', /Syntax error at position 0 in ''x'/);
  });
});

describe('$filter errors', () => {
  test('syntax errors carry the position and the expression', () => {
    assertCcsError(() => filter('name eq'), 'InvalidQuery', "Syntax error at position 7 in 'name eq'. Expected an expression but found the end of the expression.");
    assertCcsError(() => filter("name eq 'x' and"), 'InvalidQuery', /^Syntax error at position 15 in 'name eq 'x' and'\./);
    assertCcsError(() => filter("name eq 'x"), 'InvalidQuery', /^Syntax error at position 8 .*not terminated/);
    assertCcsError(() => filter("(name eq 'x'"), 'InvalidQuery', /^Syntax error at position 12 .*Expected '\)'/);
    assertCcsError(() => filter("name eq 'x')"), 'InvalidQuery', /^Syntax error at position 11 .*Unexpected '\)'/);
    assertCcsError(() => filter("name # 'x'"), 'InvalidQuery', /^Syntax error at position 5 .*'#' is not valid/);
    assertCcsError(() => filter("name eq 'a' xor name eq 'b'"), 'InvalidQuery', /^Syntax error at position 12/);
    assertCcsError(() => filter(''), 'InvalidQuery', /^Syntax error at position 0 in ''/);
  });

  test('unknown properties use Dataverse’s message', () => {
    assertCcsError(() => filter("nme eq 'x'"), 'UnknownProperty', "Could not find a property named 'nme' on type 'Microsoft.Dynamics.CRM.account'.");
    assertCcsError(() => filter("Name eq 'x'"), 'UnknownProperty');
    assertCcsError(() => filter("primarycontactid/nope eq 'x'"), 'UnknownProperty', "Could not find a property named 'nope' on type 'Microsoft.Dynamics.CRM.contact'.");
  });

  test('type mismatches are 400s', () => {
    assertCcsError(
      () => filter("statecode eq 'abc'"),
      'InvalidQuery',
      "A binary operator with incompatible types was detected. Found operand types 'Edm.Int32' and 'Edm.String' for operator kind 'Equal'.",
    );
    assertCcsError(() => filter('name eq 5'), 'InvalidQuery', /'Edm.String' and 'Edm.Int32'/);
    assertCcsError(() => filter("createdon gt 'yesterday'"), 'InvalidQuery', /'Edm.DateTimeOffset' and 'Edm.String'/);
    assertCcsError(() => filter('donotemail eq 1'), 'InvalidQuery', /'Edm.Boolean' and 'Edm.Int32'/);
    assertCcsError(() => filter("accountid eq 'not-a-guid'"), 'InvalidQuery', /'Edm.Guid' and 'Edm.String'/);
    assertCcsError(() => filter('name eq createdon'), 'InvalidQuery', /'Edm.String' and 'Edm.DateTimeOffset'/);
    assertCcsError(() => filter('name'), 'InvalidQuery', 'The $filter expression must evaluate to a single boolean value.');
    assertCcsError(() => filter("name eq 'a' and 5"), 'InvalidQuery', /single boolean value/);
  });

  test('invalid values are 400s', () => {
    assertCcsError(() => filter('createdon gt 2024-13-45'), 'InvalidValue');
    assertCcsError(() => filter('numberofemployees eq 99999999999999999999'), 'InvalidValue', /out of range/);
    assertCcsError(() => filter('revenue eq 1e999'), 'InvalidValue');
  });

  test('unsupported operators and forms', () => {
    assertCcsError(() => filter('revenue add 1 eq 2'), 'NotImplemented');
    assertCcsError(() => filter("industrycode has Microsoft.Dynamics.CRM.x'1'"), 'NotImplemented');
  });

  test('nesting is capped before the stack is at risk', () => {
    assert.deepEqual(filter(`${'('.repeat(90)}name eq 'x'${')'.repeat(90)}`), cmp('eq', col('name'), val('x')));
    assertCcsError(() => filter(`${'('.repeat(5000)}name eq 'x'${')'.repeat(5000)}`), 'InvalidQuery', /nested more than 100 levels/);
    assertCcsError(() => filter(`${'not '.repeat(5000)}donotemail`), 'InvalidQuery', /nested more than 100 levels/);
  });

  test('long flat chains are fine, overly long text is refused', () => {
    const long = Array.from({ length: 2000 }, (_, i) => `name eq 'n${i}'`).join(' or ');
    const c = filter(long);
    assert.equal(c.kind === 'or' && c.items.length, 2000);
    assertCcsError(() => filter(`name eq '${'x'.repeat(200_000)}'`), 'InvalidQuery', /too long/);
  });

  test('alias substitution cannot multiply the work', () => {
    const big = `'${'x'.repeat(60_000)}'`;
    assertCcsError(() => filter('name eq @a or name eq @a', accounts, { '@a': big }), 'InvalidQuery', /too long/);
  });
});

describe('identifiers in conditions', () => {
  test('only metadata names reach the condition tree', () => {
    const c = filter(
      "primarycontactid/fullname eq 'x'' OR 1=1 --' or account_parent_account/any(a:contains(a/name,'\"; DROP TABLE account;--'))",
    );
    const names: string[] = [];
    const visitOperand = (o: Operand): void => {
      if (o.kind === 'column') names.push(o.column);
      if (o.kind === 'related') {
        names.push(o.table, o.key, o.via);
        visitOperand(o.operand);
      }
    };
    const visit = (x: Condition): void => {
      if (x.kind === 'and' || x.kind === 'or') x.items.forEach(visit);
      else if (x.kind === 'not') visit(x.item);
      else if (x.kind === 'compare') [x.left, x.right].forEach(visitOperand);
      else if (x.kind === 'match' || x.kind === 'in') visitOperand(x.operand);
      else if (x.kind === 'exists') {
        names.push(x.table, x.column, x.outerColumn);
        visit(x.where);
      }
    };
    visit(c);
    const known = new Set(model.tables().flatMap((t) => [t.logicalName, ...t.columns.map((k) => k.logicalName)]));
    for (const n of names) assert.ok(known.has(n), `${n} is not a metadata name`);
  });
});
