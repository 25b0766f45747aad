import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engines } from '../../helpers/engines.js';
import { rejectsWith, startConnector, type Connector } from '../helpers.js';

interface Aggregation {
  readonly TotalCount: number;
  readonly ParentAlertCount: number;
  readonly AlertTypeCountsJson: string;
}

for (const engine of engines()) {
  describe(`msdyn_GetIoTAlertAggregation on ${engine.name}`, () => {
    let c: Connector;
    let dev1: string;
    let dev2: string;
    before(async () => {
      c = await startConnector(engine);
      dev1 = await c.api.create<Record<string, unknown>, string>({ collection: 'msdyn_iotdevices', data: { msdyn_name: 'agg-1' } });
      dev2 = await c.api.create<Record<string, unknown>, string>({ collection: 'msdyn_iotdevices', data: { msdyn_name: 'agg-2' } });
      const alert = (device: string, time: string, type: number, extra: Record<string, unknown> = {}) =>
        c.api.create<Record<string, unknown>, string>({
          collection: 'msdyn_iotalerts',
          data: { msdyn_description: 'x', msdyn_alerttime: time, msdyn_alerttype: type, 'msdyn_Device@odata.bind': `/msdyn_iotdevices(${device})`, ...extra },
        });
      const first = await alert(dev1, '2024-05-01T10:00:00Z', 192350000);
      await alert(dev1, '2024-05-01T10:00:30Z', 192350000, { 'msdyn_ParentAlert@odata.bind': `/msdyn_iotalerts(${first})` });
      await alert(dev1, '2024-05-02T10:00:00Z', 192350002);
      await alert(dev2, '2024-05-01T12:00:00Z', 192350003);
      const inactive = await alert(dev2, '2024-05-01T12:00:00Z', 192350000);
      await c.api.update({ collection: 'msdyn_iotalerts', key: inactive, data: { statecode: 1, statuscode: 2 } });
    });
    after(() => c.srv.stop());

    const aggregate = (action: Record<string, unknown>) => c.api.callAction<Aggregation>({ actionName: 'msdyn_GetIoTAlertAggregation', action });

    test('counts active alerts, top-level alerts and alerts by type', async () => {
      const all = await aggregate({});
      assert.equal(all.TotalCount, 4, 'the inactive alert does not count');
      assert.equal(all.ParentAlertCount, 3, 'the child alert counts once, under its parent');
      assert.deepEqual(JSON.parse(all.AlertTypeCountsJson), { 192350000: 2, 192350001: 0, 192350002: 1, 192350003: 1 });
    });

    test('by device and over a time range (From inclusive, To exclusive)', async () => {
      const one = await aggregate({ IoTDeviceId: dev1 });
      assert.equal(one.TotalCount, 3);
      const day = await aggregate({ IoTDeviceId: dev1, From: '2024-05-01T10:00:00Z', To: '2024-05-02T10:00:00Z' });
      assert.equal(day.TotalCount, 2);
      assert.equal(day.ParentAlertCount, 1);
      const dev2Day = await aggregate({ IoTDeviceId: dev2, From: '2024-05-01T00:00:00Z' });
      assert.deepEqual(JSON.parse(dev2Day.AlertTypeCountsJson), { 192350000: 0, 192350001: 0, 192350002: 0, 192350003: 1 });
    });

    test('bad dates, a reversed range, a bad device id and unknown parameters are 400s', async () => {
      await rejectsWith(aggregate({ From: 'yesterday' }), 400, /'From'.*date and time/);
      await rejectsWith(aggregate({ From: '2024-05-02T00:00:00Z', To: '2024-05-01T00:00:00Z' }), 400, /'From'.*after 'To'/);
      await rejectsWith(aggregate({ IoTDeviceId: 'dev-1' }), 400, /'IoTDeviceId'.*GUID/);
      await rejectsWith(aggregate({ DeviceId: dev1 }), 400, /unresolved parameters.*'DeviceId'/);
    });
  });
}
