import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engines } from '../../helpers/engines.js';
import { rejectsWith, startConnector, type Connector } from '../helpers.js';

for (const engine of engines()) {
  describe(`msdyn_IoTCheckIfRecordExistsInEntity on ${engine.name}`, () => {
    let c: Connector;
    before(async () => {
      c = await startConnector(engine);
    });
    after(() => c.srv.stop());

    const check = async (names: unknown) =>
      (await c.api.callAction<{ IsRecordExists: boolean }>({ actionName: 'msdyn_IoTCheckIfRecordExistsInEntity', action: { EntitiesLogicalNames: names } })).IsRecordExists;

    test('false until a record exists in one of the tables, as the console asks it', async () => {
      assert.equal(await check('msdyn_iotdevice,msdyn_iotalert'), false);
      await c.api.create({ collection: 'msdyn_iotalerts', data: { msdyn_description: 'first' } });
      assert.equal(await check('msdyn_iotdevice,msdyn_iotalert'), true);
      assert.equal(await check(' msdyn_iotdevice '), false, 'only the tables named count');
      assert.equal(await check('msdyn_iotsettings'), true, 'the seeded settings row');
    });

    test('an unknown table, an empty list or a missing parameter is a 400 naming the parameter', async () => {
      await rejectsWith(check('msdyn_iotdevice,msdyn_nope'), 400, /'EntitiesLogicalNames'.*msdyn_nope/);
      await rejectsWith(check(' , '), 400, /'EntitiesLogicalNames'.*at least one table/);
      await rejectsWith(c.api.callAction({ actionName: 'msdyn_IoTCheckIfRecordExistsInEntity', action: {} }), 400, /Required parameter 'EntitiesLogicalNames'/);
      await rejectsWith(c.api.callAction({ actionName: 'msdyn_IoTCheckIfRecordExistsInEntity', action: { EntityLogicalName: 'x', EntitiesLogicalNames: 'msdyn_iotdevice' } }), 400, /unresolved parameters/);
    });
  });
}
