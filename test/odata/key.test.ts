import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseFunctionArgs, parseKey } from '../../src/odata/index.js';
import { accounts, alerts, contacts, devices } from './fixtures.js';
import { assertCcsError } from './helpers.js';

const GUID = '6A9B1C2D-0000-4000-8000-0123456789AB';
const guid = GUID.toLowerCase();

describe('parseKey', () => {
  test('a GUID, with or without braces, lower-cased', () => {
    assert.deepEqual(parseKey(GUID, accounts), { kind: 'id', id: guid });
    assert.deepEqual(parseKey(`{${GUID}}`, accounts), { kind: 'id', id: guid });
    assert.deepEqual(parseKey(`accountid=${GUID}`, accounts), { kind: 'id', id: guid });
  });

  test('a single-column alternate key', () => {
    assert.deepEqual(parseKey("msdyn_deviceid='dev-1'", devices), { kind: 'alternate', values: { msdyn_deviceid: 'dev-1' } });
    assert.deepEqual(parseKey("msdyn_alerttoken='a,b=''c'''", alerts), { kind: 'alternate', values: { msdyn_alerttoken: "a,b='c'" } });
  });

  test('a multi-column alternate key, in any order', () => {
    assert.deepEqual(parseKey("emailaddress1='abc@example.com',firstname='Joe'", contacts), {
      kind: 'alternate',
      values: { emailaddress1: 'abc@example.com', firstname: 'Joe' },
    });
  });

  test('lookup-value keys', () => {
    assert.deepEqual(parseKey(`_primarycontactid_value=${GUID}`, accounts), { kind: 'alternate', values: { primarycontactid: guid } });
  });

  test('errors', () => {
    assertCcsError(() => parseKey("name='Contoso'", accounts), 'InvalidKey', /not an alternate key of account/);
    assertCcsError(() => parseKey("firstname='Joe'", contacts), 'InvalidKey', /not an alternate key/);
    assertCcsError(() => parseKey("nope='x'", accounts), 'UnknownProperty');
    assertCcsError(() => parseKey('not-a-guid', accounts), 'InvalidQuery');
    assertCcsError(() => parseKey("'dev-1'", devices), 'InvalidKey');
    assertCcsError(() => parseKey('', devices), 'InvalidKey');
    assertCcsError(() => parseKey('msdyn_deviceid=null', devices), 'InvalidKey', /cannot be null/);
    assertCcsError(() => parseKey('msdyn_deviceid=3', devices), 'InvalidValue');
    assertCcsError(() => parseKey(`_primarycontactid_value='x'`, accounts), 'InvalidValue');
    assertCcsError(() => parseKey("msdyn_deviceid='a',msdyn_deviceid='b'", devices), 'InvalidQuery', /more than once/);
    assertCcsError(() => parseKey("msdyn_deviceid='a' x", devices), 'InvalidQuery', /Syntax error at position 19/);
    assertCcsError(() => parseKey("msdyn_deviceid=", devices), 'InvalidQuery');
  });
});

describe('parseFunctionArgs', () => {
  test('literals of every kind', () => {
    assert.deepEqual(
      parseFunctionArgs(
        `S='x''y',N=3,D=1.5,Neg=-2,B=true,Z=null,G=${GUID},T=2024-01-02T03:04:05Z,A=["a","b"],O={"k":[1]},E=Microsoft.Dynamics.CRM.EntityFilters'Entity'`,
        new Map(),
      ),
      { S: "x'y", N: 3, D: 1.5, Neg: -2, B: true, Z: null, G: GUID, T: '2024-01-02T03:04:05Z', A: ['a', 'b'], O: { k: [1] }, E: 'Entity' },
    );
  });

  test('aliases, with or without the @ in the map key', () => {
    const aliases = new Map([['@p1', "'text'"], ['@p2', '3'], ['@p3', '["a"]']]);
    assert.deepEqual(parseFunctionArgs('P1=@p1,P2=@p2,P3=@p3', aliases), { P1: 'text', P2: 3, P3: ['a'] });
    assert.deepEqual(parseFunctionArgs('P=@p', new Map([['p', 'true']])), { P: true });
  });

  test('no parameters', () => {
    assert.deepEqual(parseFunctionArgs('', new Map()), {});
    assert.deepEqual(parseFunctionArgs('  ', new Map()), {});
  });

  test('a parameter called __proto__ is an ordinary key', () => {
    const args = parseFunctionArgs("__proto__='x'", new Map());
    assert.equal(Object.getPrototypeOf(args), Object.prototype);
    assert.deepEqual(Object.keys(args), ['__proto__']);
  });

  test('errors', () => {
    assertCcsError(() => parseFunctionArgs('P=@nope', new Map()), 'InvalidQuery', /has no value/);
    assertCcsError(() => parseFunctionArgs('P=@a', new Map([['@a', '@b']])), 'InvalidQuery', /another alias/);
    assertCcsError(() => parseFunctionArgs('P=@a', new Map([['@a', "'x' 'y'"]])), 'InvalidQuery', /single literal/);
    assertCcsError(() => parseFunctionArgs("P='x',P='y'", new Map()), 'InvalidQuery', /more than once/);
    assertCcsError(() => parseFunctionArgs('P=', new Map()), 'InvalidQuery', /Syntax error at position 2/);
    assertCcsError(() => parseFunctionArgs("P='x'Q='y'", new Map()), 'InvalidQuery');
    assertCcsError(() => parseFunctionArgs('P=[1,', new Map()), 'InvalidQuery', /JSON/);
    assertCcsError(() => parseFunctionArgs('P=name', new Map()), 'InvalidQuery', /Expected a literal/);
  });
});
