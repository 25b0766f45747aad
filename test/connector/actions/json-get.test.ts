import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engines } from '../../helpers/engines.js';
import { rejectsWith, startConnector, type Connector } from '../helpers.js';

const alertData = JSON.stringify({ deviceId: 'dev-1', ruleOutput: 'HighTemp', readings: [{ temp: 71.5, ok: false }, { temp: 69 }], meta: { count: 2, ok: true, label: 'x' } });

for (const engine of engines()) {
  describe(`msdyn_JsonGet* actions on ${engine.name}`, () => {
    let c: Connector;
    before(async () => {
      c = await startConnector(engine);
    });
    after(() => c.srv.stop());

    const call = (actionName: string, action: Record<string, unknown>) => c.api.callAction<{ ReturnValue: unknown }>({ actionName, action });

    test('read a number, string and boolean with dotted paths and array indexes', async () => {
      const n = await call('msdyn_JsonGetNumber', { Json: alertData, PropertyPath: 'readings[0].temp' });
      assert.equal(n.ReturnValue, 71.5);
      assert.equal((await call('msdyn_JsonGetNumber', { Json: alertData, PropertyPath: 'readings.1.temp' })).ReturnValue, 69);
      assert.equal((await call('msdyn_JsonGetString', { Json: alertData, PropertyPath: 'ruleOutput' })).ReturnValue, 'HighTemp');
      assert.equal((await call('msdyn_JsonGetBoolean', { Json: alertData, PropertyPath: 'meta.ok' })).ReturnValue, true);
      assert.equal((await call('msdyn_JsonGetBoolean', { Json: alertData, PropertyPath: 'readings[0].ok' })).ReturnValue, false, 'false is a value, not "not found"');
    });

    test('the response is the Dataverse action response', async () => {
      const res = await c.srv.fetch('msdyn_JsonGetNumber', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ Json: '{"a":1}', PropertyPath: 'a' }) });
      assert.equal(res.status, 200);
      const body = (await res.json()) as Record<string, unknown>;
      assert.match(String(body['@odata.context']), /\$metadata#Microsoft\.Dynamics\.CRM\.msdyn_JsonGetNumberResponse$/);
      assert.equal(body['ReturnValue'], 1);
    });

    test('a missing property, missing Json or a value of another type gives DefaultReturnValue (null without one)', async () => {
      assert.equal((await call('msdyn_JsonGetNumber', { Json: alertData, PropertyPath: 'readings[5].temp', DefaultReturnValue: -1 })).ReturnValue, -1);
      assert.equal((await call('msdyn_JsonGetNumber', { Json: alertData, PropertyPath: 'nope' })).ReturnValue, null);
      assert.equal((await call('msdyn_JsonGetString', { Json: null, PropertyPath: 'a', DefaultReturnValue: 'none' })).ReturnValue, 'none');
      assert.equal((await call('msdyn_JsonGetNumber', { Json: alertData, PropertyPath: 'ruleOutput', DefaultReturnValue: 0 })).ReturnValue, 0, 'a string is not a number');
      assert.equal((await call('msdyn_JsonGetBoolean', { Json: alertData, PropertyPath: 'meta.count', DefaultReturnValue: true })).ReturnValue, true, 'a number is not a boolean');
      // GetString gives any value as text.
      assert.equal((await call('msdyn_JsonGetString', { Json: alertData, PropertyPath: 'meta.count' })).ReturnValue, '2');
      assert.equal((await call('msdyn_JsonGetString', { Json: alertData, PropertyPath: 'readings[1]' })).ReturnValue, '{"temp":69}');
    });

    test('invalid JSON, a malformed path and a wrong parameter type are 400s naming the parameter', async () => {
      await rejectsWith(call('msdyn_JsonGetNumber', { Json: '{"temp": 71', PropertyPath: 'temp' }), 400, /Parameter 'Json' of 'msdyn_JsonGetNumber' is not valid JSON/);
      await rejectsWith(call('msdyn_JsonGetString', { Json: 'not json', PropertyPath: 'temp', DefaultReturnValue: 'x' }), 400, /'Json'.*not valid JSON/);
      await rejectsWith(call('msdyn_JsonGetString', { Json: '{}', PropertyPath: 'a..b' }), 400, /'PropertyPath'.*not a valid property path/);
      await rejectsWith(call('msdyn_JsonGetNumber', { Json: '{}', PropertyPath: 'a', DefaultReturnValue: 'seven' }), 400, /'DefaultReturnValue'.*expected a number/);
      await rejectsWith(call('msdyn_JsonGetBoolean', { Json: '{}' }), 400, /Required parameter 'PropertyPath'/);
    });

    test('an unknown parameter is 400 "unresolved parameters"', async () => {
      await rejectsWith(call('msdyn_JsonGetString', { Json: '{}', PropertyPath: 'a', Path: 'a' }), 400, /unresolved parameters.*'Path'/);
    });
  });
}
