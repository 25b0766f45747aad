import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compileQuery, type CompiledQuery } from '../../src/odata/index.js';
import { accounts, alerts, clock, contacts, devices, model } from './fixtures.js';
import { assertCcsError } from './helpers.js';

function query(qs: string, table = accounts): CompiledQuery {
  return compileQuery(new URLSearchParams(qs), table, model, clock);
}

describe('compileQuery options', () => {
  test('no options: everything, no count, no expand', () => {
    assert.deepEqual(query(''), { count: false, expand: [] });
  });

  test('percent-encoded option names arrive decoded through URLSearchParams', () => {
    assert.deepEqual(query('%24select=name&%24top=2').select, ['name']);
    assert.equal(query('%24select=name&%24top=2').top, 2);
  });

  test('$top, $skip, $count, $skiptoken, $format', () => {
    const q = query('$top=10&$skip=20&$count=true&$skiptoken=abc%3D%3D&$format=json');
    assert.equal(q.top, 10);
    assert.equal(q.skip, 20);
    assert.equal(q.count, true);
    assert.equal(q.skipToken, 'abc==');
    assert.equal(query('$top=0').top, 0);
    assert.equal(query('$count=false').count, false);
    assert.doesNotThrow(() => query('$format=application/json;odata.metadata=minimal'));
  });

  test('bad $top, $skip and $count values', () => {
    for (const bad of ['-1', 'abc', '1.5', '', ' 1', '99999999999999999999']) {
      assertCcsError(() => query(`$top=${encodeURIComponent(bad)}`), 'InvalidQuery', /for \$top query option found/);
    }
    assertCcsError(
      () => query('$top=-1'),
      'InvalidQuery',
      "Invalid value '-1' for $top query option found. The $top query option requires a non-negative integer value.",
    );
    assertCcsError(() => query('$skip=x'), 'InvalidQuery', /\$skip/);
    assertCcsError(() => query('$count=yes'), 'InvalidQuery', "'yes' is not a valid count option.");
    assertCcsError(() => query('$count=TRUE'), 'InvalidQuery');
  });

  test('unknown $ options are 400, custom options are ignored', () => {
    assertCcsError(() => query('$search=x'), 'InvalidQuery', "The query parameter '$search' is not supported.");
    assertCcsError(() => query('$Select=name'), 'InvalidQuery');
    assert.deepEqual(query('custom=1&api-version=2'), { count: false, expand: [] });
  });

  test('$apply, fetchXml, savedQuery are not implemented', () => {
    assertCcsError(() => query('$apply=groupby((name))'), 'NotImplemented');
    assertCcsError(() => query('fetchXml=%3Cfetch%2F%3E'), 'NotImplemented');
    assertCcsError(() => query('savedQuery=00000000-0000-0000-0000-000000000000'), 'NotImplemented');
  });

  test('options given twice are 400', () => {
    assertCcsError(
      () => query('$filter=name eq null&$filter=name ne null'),
      'InvalidQuery',
      "Query option '$filter' was specified more than once, but it must be specified at most once.",
    );
    assertCcsError(() => query('$filter=name eq @p&@p=1&@p=2'), 'InvalidQuery', /'@p' was specified more than once/);
  });

  test('$format other than JSON is not acceptable', () => {
    assertCcsError(() => query('$format=xml'), 'NotAcceptable');
  });
});

describe('$select', () => {
  test('columns and _x_value lookups', () => {
    assert.deepEqual(query('$select=name,_primarycontactid_value, revenue').select, ['name', 'primarycontactid', 'revenue']);
    assert.deepEqual(query('$select=name,name').select, ['name']);
    assert.equal(query('$select=*').select, undefined);
  });

  test('unknown columns use Dataverse’s message', () => {
    assertCcsError(() => query('$select=name,nope'), 'UnknownProperty', "Could not find a property named 'nope' on type 'Microsoft.Dynamics.CRM.account'.");
    assertCcsError(() => query('$select=primarycontactid/fullname'), 'UnknownProperty');
    assertCcsError(() => query('$select=Name'), 'UnknownProperty');
    assertCcsError(() => query('$select=name,'), 'InvalidQuery', /empty item/);
  });
});

describe('$filter and $orderby in compileQuery', () => {
  test('$filter with aliases from the query string', () => {
    const q = query(`$filter=${encodeURIComponent('Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2)')}&@p1='lastname'&@p2=["a","b"]`, contacts);
    assert.deepEqual(q.where, { kind: 'in', operand: { kind: 'column', column: 'lastname' }, values: ['a', 'b'] });
  });

  test('invalid alias names are refused', () => {
    assertCcsError(() => query('@1=2'), 'InvalidQuery', /not a valid parameter alias name/);
  });

  test('$orderby with directions and _x_value', () => {
    assert.deepEqual(query('$orderby=name desc,createdon, _primarycontactid_value asc').orderBy, [
      { column: 'name', descending: true },
      { column: 'createdon' },
      { column: 'primarycontactid' },
    ]);
    assert.deepEqual(query('$orderby=@p1 desc&@p1=name').orderBy, [{ column: 'name', descending: true }]);
  });

  test('$orderby errors', () => {
    assertCcsError(() => query('$orderby=nope'), 'UnknownProperty');
    assertCcsError(() => query('$orderby=primarycontactid/fullname'), 'InvalidQuery', /lookup path/);
    assertCcsError(() => query('$orderby=name sideways'), 'InvalidQuery', /Syntax error at position 5/);
    assertCcsError(() => query("$orderby='name'"), 'InvalidQuery', /must be a column name/);
    assertCcsError(() => query('$orderby=name,'), 'InvalidQuery', /Syntax error/);
  });
});

describe('$expand', () => {
  test('a bare navigation property, single and collection', () => {
    const q = query('$expand=primarycontactid,account_parent_account');
    assert.deepEqual(q.expand.map((e) => [e.navigation.name, e.navigation.kind, e.query]), [
      ['primarycontactid', 'single', { count: false, expand: [] }],
      ['account_parent_account', 'collection', { count: false, expand: [] }],
    ]);
  });

  test('nested options separated by semicolons, quoted text may hold ; , ( )', () => {
    const q = query(`$expand=${encodeURIComponent("account_parent_account($select=name;$filter=name eq 'a;b,(c)';$orderby=name desc;$top=3;$count=true)")}`);
    const [e] = q.expand;
    assert.equal(e?.navigation.name, 'account_parent_account');
    assert.deepEqual(e?.query, {
      select: ['name'],
      where: { kind: 'compare', op: 'eq', left: { kind: 'column', column: 'name' }, right: { kind: 'value', value: 'a;b,(c)' } },
      orderBy: [{ column: 'name', descending: true }],
      top: 3,
      count: true,
      expand: [],
    });
  });

  test('as DynamicsWebApi and odata2ts send it: percent-encoded inside', () => {
    const q = new URLSearchParams('$expand=msdyn_Device(%24select%3Dmsdyn_name)');
    assert.deepEqual(compileQuery(q, alerts, model, clock).expand[0]?.query.select, ['msdyn_name']);
  });

  test('nested $expand, several levels', () => {
    const q = query('$expand=msdyn_Device($select=msdyn_name;$expand=msdyn_Account($select=name;$expand=primarycontactid($select=fullname)))', alerts);
    const device = q.expand[0]!;
    const account = device.query.expand[0]!;
    const contact = account.query.expand[0]!;
    assert.deepEqual([device.navigation.target, account.navigation.target, contact.navigation.target], ['msdyn_iotdevice', 'account', 'contact']);
    assert.deepEqual(contact.query.select, ['fullname']);
  });

  test('aliases reach filters inside $expand', () => {
    const q = query('$expand=msdyn_msdyn_iotdevice_msdyn_iotalert_Device($filter=msdyn_alerttype eq @t)&@t=192350000', devices);
    assert.deepEqual(q.expand[0]?.query.where, {
      kind: 'compare', op: 'eq', left: { kind: 'column', column: 'msdyn_alerttype' }, right: { kind: 'value', value: 192350000 },
    });
  });

  test('N:N navigations can be expanded', () => {
    assert.equal(query('$expand=ccs_contact_msdyn_iotdevice($select=msdyn_name)', contacts).expand[0]?.navigation.kind, 'manyToMany');
  });

  test('errors', () => {
    assertCcsError(() => query('$expand=nope'), 'UnknownProperty', "Could not find a property named 'nope' on type 'Microsoft.Dynamics.CRM.account'.");
    assertCcsError(() => query('$expand=PrimaryContactId'), 'UnknownProperty');
    assertCcsError(() => query('$expand=primarycontactid($select=nope)'), 'UnknownProperty', /on type 'Microsoft.Dynamics.CRM.contact'/);
    assertCcsError(() => query('$expand=primarycontactid/$ref'), 'NotImplemented');
    assertCcsError(() => query('$expand=*'), 'NotImplemented');
    assertCcsError(() => query('$expand=primarycontactid($levels=2)'), 'NotImplemented');
    assertCcsError(() => query('$expand=primarycontactid($search=x)'), 'InvalidQuery', /not supported inside \$expand/);
    assertCcsError(() => query('$expand=primarycontactid($top=1)'), 'InvalidQuery', /single-valued navigation property/);
    assertCcsError(() => query('$expand=primarycontactid($select=fullname;$select=firstname)'), 'InvalidQuery', /more than once/);
    assertCcsError(() => query('$expand=primarycontactid,primarycontactid'), 'InvalidQuery', /expanded more than once/);
    assertCcsError(() => query('$expand=primarycontactid($select=fullname'), 'InvalidQuery', /not closed/);
    assertCcsError(() => query('$expand=primarycontactid($select=fullname))'), 'InvalidQuery', /Unexpected '\)'/);
    assertCcsError(() => query('$expand=primarycontactid($select=fullname)x'), 'InvalidQuery', /Expected ','/);
    assertCcsError(() => query('$expand=primarycontactid(fullname)'), 'InvalidQuery', /option=value/);
    assertCcsError(() => query("$expand=account_parent_account($filter=name eq 'x)"), 'InvalidQuery', /not terminated/);
    assertCcsError(() => query('$expand=,'), 'InvalidQuery', /Expected a navigation property name/);
    assertCcsError(() => query(`$expand=${'primarycontactid($expand='.repeat(200)}`), 'InvalidQuery');
  });
});
