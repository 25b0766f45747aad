import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { IOT_SETTINGS_ID } from '../../../src/metadata/index.js';
import { engines } from '../../helpers/engines.js';
import { rejectsWith, startConnector, type Connector } from '../helpers.js';

const ACTION = 'Microsoft.Dynamics.CRM.msdyn_ParentIoTAlerts';
/** The shipped "IoT - Parent IoT Alerts" workflow. */
const PARENT_WORKFLOW_ID = 'c3a1d6e2-5b7f-4e0a-9d21-6f3b8a4c0e01';
const T0 = Date.parse('2024-03-01T10:00:00Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

interface AlertView {
  readonly msdyn_iotalertid: string;
  readonly msdyn_description: string;
  readonly _msdyn_parentalert_value: string | null;
  readonly msdyn_parentalerttoken: string | null;
}

for (const engine of engines()) {
  describe(`msdyn_ParentIoTAlerts on ${engine.name}`, () => {
    let c: Connector;
    before(async () => {
      c = await startConnector(engine);
      // These tests call the action themselves: the shipped workflow that calls it on every new alert is switched off.
      await c.api.update({ collection: 'workflows', key: PARENT_WORKFLOW_ID, data: { statecode: 0, statuscode: 1 } });
    });
    after(() => c.srv.stop());

    const device = (name: string) =>
      c.api.create<Record<string, unknown>, string>({ collection: 'msdyn_iotdevices', data: { msdyn_name: name, msdyn_deviceid: `${name}-${randomUUID().slice(0, 8)}` } });
    const alert = (data: Record<string, unknown>) =>
      c.api.create<Record<string, unknown>, string>({ collection: 'msdyn_iotalerts', data: { msdyn_description: 'High temperature', msdyn_alerttype: 192350000, ...data } });
    const alertOf = (deviceId: string, data: Record<string, unknown>) => alert({ 'msdyn_Device@odata.bind': `/msdyn_iotdevices(${deviceId})`, ...data });
    const parent = (id: string, seconds: unknown = 60) => c.api.callAction({ collection: 'msdyn_iotalerts', key: id, actionName: ACTION, action: { TimespanSeconds: seconds } });
    const read = async (id: string): Promise<AlertView> =>
      (await c.api.retrieve({ collection: 'msdyn_iotalerts', key: id, select: ['msdyn_description', '_msdyn_parentalert_value', 'msdyn_parentalerttoken'] })) as AlertView;
    const parentOf = async (id: string) => (await read(id))._msdyn_parentalert_value;
    const alertsOf = async (deviceId: string): Promise<AlertView[]> =>
      (await c.api.retrieveAll<AlertView>({
        collection: 'msdyn_iotalerts',
        select: ['msdyn_description', '_msdyn_parentalert_value', 'msdyn_parentalerttoken'],
        filter: `_msdyn_device_value eq ${deviceId}`,
      })).value;
    const setRule = (rule: string | null) => c.api.update({ collection: 'msdyn_iotsettingses', key: IOT_SETTINGS_ID, data: { msdyn_iotalertaggregationrule: rule } });

    test('alerts of one device within the window become children of the first; the call answers 204', async () => {
      const dev = await device('boiler');
      const a = await alertOf(dev, { msdyn_alerttime: at(0), msdyn_alerttoken: 'evt-a' });
      const b = await alertOf(dev, { msdyn_alerttime: at(30) });
      const d = await alertOf(dev, { msdyn_alerttime: at(50) });
      const res = await c.srv.fetch(`msdyn_iotalerts(${a})/${ACTION}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"TimespanSeconds":60}' });
      assert.equal(res.status, 204);
      assert.equal(await parent(b), undefined);
      await parent(d);
      assert.equal(await parentOf(a), null, 'the first alert stays top-level');
      const [rb, rd] = [await read(b), await read(d)];
      assert.equal(rb._msdyn_parentalert_value, a);
      assert.equal(rd._msdyn_parentalert_value, a);
      assert.equal(rb.msdyn_parentalerttoken, 'evt-a', 'the parent token mirrors the parent alert');
      // Calling again changes nothing.
      await parent(d);
      assert.equal(await parentOf(d), a);
    });

    test('outside the window a new group starts; a wider window chains to the top-level parent, never to a child', async () => {
      const dev = await device('chiller');
      const a = await alertOf(dev, { msdyn_alerttime: at(0) });
      const b = await alertOf(dev, { msdyn_alerttime: at(50) });
      const x = await alertOf(dev, { msdyn_alerttime: at(200) });
      await parent(b);
      await parent(x);
      assert.equal(await parentOf(b), a);
      assert.equal(await parentOf(x), null, '150 s after the last alert is outside a 60 s window');
      // 180 s: b (150 s before x) is in the window; b's parent a becomes x's parent.
      await parent(x, 180);
      assert.equal(await parentOf(x), a);
      assert.equal(await parentOf(a), null);
    });

    test('an earlier alert that arrives late becomes the parent of the group it precedes', async () => {
      const dev = await device('pump');
      const l1 = await alertOf(dev, { msdyn_alerttime: at(40) });
      const l2 = await alertOf(dev, { msdyn_alerttime: at(45) });
      await parent(l1);
      await parent(l2);
      assert.equal(await parentOf(l2), l1);
      const early = await alertOf(dev, { msdyn_alerttime: at(10), msdyn_alerttoken: 'evt-early' });
      await parent(early);
      assert.equal(await parentOf(early), null);
      assert.equal(await parentOf(l1), early);
      const r2 = await read(l2);
      assert.equal(r2._msdyn_parentalert_value, early, 'the old parent\'s children move with it: one level deep');
      assert.equal(r2.msdyn_parentalerttoken, 'evt-early');
    });

    test('other devices do not match; without a device lookup the device id string does; createdon stands in for alert time', async () => {
      const d1 = await device('fan');
      const d2 = await device('fan');
      const a = await alertOf(d1, {});
      const other = await alertOf(d2, {});
      await parent(other);
      assert.equal(await parentOf(other), null);
      const loose1 = await alert({ msdyn_deviceid: 'loose-1' });
      const loose2 = await alert({ msdyn_deviceid: 'LOOSE-1' });
      const loose3 = await alert({ msdyn_deviceid: 'loose-2' });
      await parent(loose2);
      await parent(loose3);
      assert.equal(await parentOf(loose2), loose1, 'device ids compare without regard to case');
      assert.equal(await parentOf(loose3), null);
      const b = await alertOf(d1, {});
      await parent(b);
      assert.equal(await parentOf(b), a, 'no alert time: createdon orders them');
      // Inactive alerts are not grouped with.
      await c.api.update({ collection: 'msdyn_iotalerts', key: a, data: { statecode: 1 } });
      const d = await alertOf(d1, {});
      await parent(d);
      assert.equal(await parentOf(d), a, 'b is still active and a child of a, so d joins a\'s group through b');
      const lone = await device('lonely');
      const i1 = await alertOf(lone, {});
      await c.api.update({ collection: 'msdyn_iotalerts', key: i1, data: { statecode: 1 } });
      const i2 = await alertOf(lone, {});
      await parent(i2);
      assert.equal(await parentOf(i2), null, 'an inactive alert does not become a parent');
    });

    test('inside a $batch change set the action runs in the change set\'s transaction', async () => {
      const dev = await device('batched');
      const a = await alertOf(dev, { msdyn_alerttime: at(0) });
      const b = await alertOf(dev, { msdyn_alerttime: at(5) });
      const d = await alertOf(dev, { msdyn_alerttime: at(9) });
      c.api.startBatch();
      c.api.callAction({ collection: 'msdyn_iotalerts', key: b, actionName: ACTION, action: { TimespanSeconds: 60 } });
      c.api.callAction({ collection: 'msdyn_iotalerts', key: d, actionName: ACTION, action: { TimespanSeconds: 60 } });
      await c.api.executeBatch();
      assert.equal(await parentOf(b), a);
      assert.equal(await parentOf(d), a);
      // A failing part rolls the whole change set back, the action's writes included.
      const e = await alertOf(dev, { msdyn_alerttime: at(12) });
      c.api.startBatch();
      c.api.callAction({ collection: 'msdyn_iotalerts', key: e, actionName: ACTION, action: { TimespanSeconds: 60 } });
      c.api.callAction({ collection: 'msdyn_iotalerts', key: e, actionName: ACTION, action: { TimespanSeconds: 30 } });
      await assert.rejects(c.api.executeBatch());
      assert.equal(await parentOf(e), null);
    });

    test('msdyn_parentalerttoken names the parent, across devices', async () => {
      const p = await alertOf(await device('gateway'), { msdyn_alerttime: at(0), msdyn_alerttoken: 'evt-gw' });
      const child = await alertOf(await device('sensor'), { msdyn_alerttime: at(1000), msdyn_parentalerttoken: 'evt-gw' });
      await parent(child);
      assert.equal(await parentOf(child), p);
    });

    test('the aggregation rule in IoT Settings chooses the match columns', async () => {
      try {
        await setRule('["msdyn_alerttype"]');
        const a = await alertOf(await device('rule-a'), { msdyn_alerttime: at(0), msdyn_alerttype: 192350002 });
        const b = await alertOf(await device('rule-b'), { msdyn_alerttime: at(10), msdyn_alerttype: 192350002 });
        const other = await alertOf(await device('rule-b'), { msdyn_alerttime: at(10), msdyn_alerttype: 192350001 });
        await parent(b);
        await parent(other);
        assert.equal(await parentOf(b), a, 'same type, different devices');
        assert.equal(await parentOf(other), null);
        await setRule('msdyn_device, msdyn_nope');
        await rejectsWith(parent(b), 400, /msdyn_iotalertaggregationrule.*'msdyn_nope'/);
      } finally {
        await setRule(null);
      }
    });

    test('bad input: TimespanSeconds out of range or missing, unknown parameter, no namespace, unknown alert', async () => {
      const a = await alertOf(await device('bad'), {});
      await rejectsWith(parent(a, 30), 400, /'TimespanSeconds'.*from 60 to 180.*got 30/);
      await rejectsWith(parent(a, 181), 400, /'TimespanSeconds'/);
      await rejectsWith(parent(a, '60'), 400, /'TimespanSeconds'.*whole number/);
      await rejectsWith(c.api.callAction({ collection: 'msdyn_iotalerts', key: a, actionName: ACTION, action: {} }), 400, /Required parameter 'TimespanSeconds'/);
      await rejectsWith(c.api.callAction({ collection: 'msdyn_iotalerts', key: a, actionName: ACTION, action: { TimespanSeconds: 60, Timespan: 60 } }), 400, /unresolved parameters.*'Timespan'/);
      await rejectsWith(c.api.callAction({ collection: 'msdyn_iotalerts', key: a, actionName: 'msdyn_ParentIoTAlerts', action: { TimespanSeconds: 60 } }), 400, /unresolved parameters/);
      await rejectsWith(parent(randomUUID()), 404, /Does Not Exist/);
      assert.equal(await parentOf(a), null);
    });

    /** One top-level alert, the earliest; every other alert of the device its direct child. */
    async function assertOneGroup(deviceId: string, ids: readonly string[]): Promise<void> {
      const rows = await alertsOf(deviceId);
      assert.equal(rows.length, ids.length);
      const tops = rows.filter((r) => r._msdyn_parentalert_value === null);
      assert.equal(tops.length, 1, `one parent, got ${tops.length}`);
      const top = tops[0]!.msdyn_iotalertid;
      assert.equal(rows.filter((r) => r._msdyn_parentalert_value === top).length, ids.length - 1, 'every other alert is a direct child of the parent');
      // The earliest by (alert time, createdon, id), read from the store since the Web API shows whole seconds.
      const raw = await c.srv.app.records.query(c.srv.app.system, 'msdyn_iotalert', {
        columns: ['msdyn_alerttime', 'createdon'],
        where: { kind: 'compare', op: 'eq', left: { kind: 'column', column: 'msdyn_device' }, right: { kind: 'value', value: deviceId } },
      });
      const time = (r: (typeof raw)[number]) => Number(r['msdyn_alerttime'] ?? r['createdon']);
      raw.sort((x, y) => time(x) - time(y) || Number(x['createdon']) - Number(y['createdon']) || (String(x['msdyn_iotalertid']) < String(y['msdyn_iotalertid']) ? -1 : 1));
      assert.equal(top, raw[0]!['msdyn_iotalertid'], 'the parent is the earliest alert');
    }

    test('1,000 alerts of one device created at once, then parented concurrently: one parent, 999 children', async () => {
      const dev = await device('burst');
      // Alert times 1 ms apart, created in a shuffled order: the parent must be the one at +0 ms.
      const order = Array.from({ length: 1000 }, (_, i) => i).sort(() => Math.random() - 0.5);
      const ids = await Promise.all(order.map((i) => alertOf(dev, { msdyn_alerttime: new Date(T0 + i).toISOString(), msdyn_description: `burst ${i}` })));
      await Promise.all(ids.map((id) => parent(id)));
      await assertOneGroup(dev, ids);
      assert.equal(await parentOf(ids[order.indexOf(0)]!), null);
    });

    test('1,000 alerts of one device, each parented as soon as it is created, all at once: one parent, 999 children', async () => {
      const dev = await device('storm');
      // No alert time: createdon orders them, many in the same millisecond, and earlier ones may become visible late.
      const ids = await Promise.all(Array.from({ length: 1000 }, async (_, i) => {
        const id = await alertOf(dev, { msdyn_description: `storm ${i}` });
        await parent(id);
        return id;
      }));
      await assertOneGroup(dev, ids);
    });
  });
}
