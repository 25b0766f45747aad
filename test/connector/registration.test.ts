import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engines } from '../helpers/engines.js';
import { startConnector, type Connector } from './helpers.js';

// $metadata does not depend on the engine; one is enough.
const engine = engines()[0]!;

describe('connector actions in $metadata', () => {
  let c: Connector;
  before(async () => {
    c = await startConnector(engine);
  });
  after(() => c.srv.stop());

  test('every action is advertised with Microsoft\'s names, parameters and response types', async () => {
    const csdl = await c.api.retrieveCsdlMetadata();
    const action = (name: string) => new RegExp(`<Action Name="${name}"[^>]*>([\\s\\S]*?)</Action>`).exec(csdl)?.[1];
    const bound = action('msdyn_ParentIoTAlerts');
    assert.ok(bound, 'msdyn_ParentIoTAlerts');
    assert.match(csdl, /<Action Name="msdyn_ParentIoTAlerts" IsBound="true">/);
    assert.match(bound, /<Parameter Name="entity" Type="Microsoft\.Dynamics\.CRM\.msdyn_iotalert" Nullable="false"\/>/);
    assert.match(bound, /<Parameter Name="TimespanSeconds" Type="Edm\.Int32" Nullable="false"\/>/);
    assert.doesNotMatch(bound, /ReturnType/, 'returns nothing');
    assert.doesNotMatch(csdl, /<ActionImport Name="msdyn_ParentIoTAlerts"/, 'bound actions have no import');
    for (const [name, type] of [['msdyn_JsonGetString', 'Edm.String'], ['msdyn_JsonGetNumber', 'Edm.Decimal'], ['msdyn_JsonGetBoolean', 'Edm.Boolean']] as const) {
      const body = action(name);
      assert.ok(body, name);
      assert.match(body, /<Parameter Name="Json" Type="Edm.String" Unicode="false"\/>/);
      assert.match(body, /<Parameter Name="PropertyPath" Type="Edm.String" Nullable="false" Unicode="false"\/>/);
      assert.match(body, new RegExp(`<Parameter Name="DefaultReturnValue" Type="${type}"`));
      assert.match(body, new RegExp(`<ReturnType Type="Microsoft\\.Dynamics\\.CRM\\.${name}Response" Nullable="false"/>`));
      assert.match(csdl, new RegExp(`<ComplexType Name="${name}Response"><Property Name="ReturnValue" Type="${type}"`));
      assert.match(csdl, new RegExp(`<ActionImport Name="${name}" Action="Microsoft\\.Dynamics\\.CRM\\.${name}"/>`));
    }
    assert.match(action('msdyn_IoTCheckIfRecordExistsInEntity') ?? '', /<Parameter Name="EntitiesLogicalNames"/);
    assert.match(csdl, /<ComplexType Name="msdyn_IoTCheckIfRecordExistsInEntityResponse"><Property Name="IsRecordExists" Type="Edm.Boolean" Nullable="false"\/>/);
    assert.match(action('msdyn_GetIoTAlertAggregation') ?? '', /<Parameter Name="IoTDeviceId" Type="Edm.Guid"\/>/);
    assert.match(csdl, /<ComplexType Name="msdyn_GetIoTAlertAggregationResponse">.*<Property Name="AlertTypeCountsJson"/);
    for (const [name, params] of [
      ['msdyn_RegisterIoTDevice', ['IoTDeviceIds']],
      ['msdyn_RegisterCustomEntity', ['EntityIds', 'EntityLogicalName', 'DeviceIds', 'Names']],
      ['msdyn_PullDataForIoTDevice', ['IoTDeviceIds']],
    ] as const) {
      const body = action(name);
      assert.ok(body, name);
      for (const p of params) assert.match(body, new RegExp(`<Parameter Name="${p}" Type="Edm.String"`), `${name} ${p}`);
      assert.doesNotMatch(body, /ReturnType/, `${name} returns nothing`);
      assert.match(csdl, new RegExp(`<ActionImport Name="${name}" Action="Microsoft\\.Dynamics\\.CRM\\.${name}"/>`));
    }
  });
});
