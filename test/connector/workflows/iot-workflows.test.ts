import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import device from 'azure-iot-device';
import { engines } from '../../helpers/engines.js';
import { connectDevice, create, eventually, retrieve, startConnector, type Connector } from '../helpers.js';
import { completedRuns, createWorkflow, runsOf, STATUS } from './helpers.js';

const T0 = Date.parse('2024-05-01T08:00:00Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

interface AlertView {
  readonly msdyn_iotalertid: string;
  readonly _msdyn_parentalert_value: string | null;
  readonly _msdyn_case_value: string | null;
  readonly msdyn_suggestedpriority: number | null;
  readonly msdyn_alertdata: string | null;
}

for (const engine of engines()) {
  describe(`shipped and custom IoT workflows on ${engine.name}`, () => {
    let c: Connector;
    const workflowIds = new Map<string, string>();
    before(async () => {
      c = await startConnector(engine);
      const all = (await c.api.retrieveAll<{ workflowid: string; name: string }>({ collection: 'workflows', select: ['name'] })).value;
      for (const w of all) workflowIds.set(w.name, w.workflowid);
    });
    after(() => c.srv.stop());

    const parentWorkflow = () => workflowIds.get('IoT - Parent IoT Alerts')!;
    const newDevice = (name: string, extra: Record<string, unknown> = {}) =>
      create(c, 'msdyn_iotdevices', { msdyn_name: name, msdyn_deviceid: `${name}-${randomUUID().slice(0, 8)}`.toLowerCase(), ...extra });
    const alertOf = (deviceId: string, data: Record<string, unknown>) =>
      create(c, 'msdyn_iotalerts', { msdyn_description: 'High temperature', msdyn_alerttype: 192350000, 'msdyn_Device@odata.bind': `/msdyn_iotdevices(${deviceId})`, ...data });
    const alertsOf = async (deviceId: string): Promise<AlertView[]> =>
      (await c.api.retrieveAll<AlertView>({
        collection: 'msdyn_iotalerts',
        select: ['_msdyn_parentalert_value', '_msdyn_case_value', 'msdyn_suggestedpriority', 'msdyn_alertdata'],
        filter: `_msdyn_device_value eq ${deviceId}`,
      })).value;
    const count = async (set: string, filter: string) => Number(await (await c.srv.fetch(`${set}/$count?$filter=${encodeURIComponent(filter)}`)).text());

    test('IoT - Parent IoT Alerts groups six alerts of one device within 60 s: one parent, five children', async () => {
      const dev = await newDevice('boiler');
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push(await alertOf(dev, { msdyn_alerttime: at(i * 10) }));
      // An alert of another device, inside the same minute, stays on its own.
      const other = await alertOf(await newDevice('chiller'), { msdyn_alerttime: at(5) });
      for (const id of [...ids, other]) {
        const [run] = await completedRuns(c, id, 1, { workflowId: parentWorkflow() });
        assert.equal(run!.statuscode, STATUS.succeeded, run!.message ?? '');
        // One entry per attempt: a run may need a second one when it loses a race with another writer of the alert.
        const log = JSON.parse(run!.ccs_steplog!) as { step: string; error?: string }[];
        assert.ok(log.every((e) => e.step === 'action msdyn_ParentIoTAlerts'));
        assert.equal(log.at(-1)!.error, undefined);
      }
      const alerts = await alertsOf(dev);
      const parents = alerts.filter((a) => a._msdyn_parentalert_value === null);
      assert.deepEqual(parents.map((a) => a.msdyn_iotalertid), [ids[0]]);
      assert.deepEqual(alerts.filter((a) => a._msdyn_parentalert_value === ids[0]).map((a) => a.msdyn_iotalertid).sort(), ids.slice(1).sort());
      assert.equal((await retrieve(c, 'msdyn_iotalerts', other, ['_msdyn_parentalert_value']))['_msdyn_parentalert_value'], null);
    });

    test('200 alerts of one device posted at once through the Web API: exactly one parent, every other alert its child', async () => {
      const dev = await newDevice('pump');
      const succeeded = `_workflowactivationid_value eq ${parentWorkflow()} and statuscode eq 30`;
      const before = await count('asyncoperations', succeeded);
      const ids = await Promise.all(Array.from({ length: 200 }, (_, i) => alertOf(dev, { msdyn_alerttime: at(i / 10) })));
      await eventually(async () => ((await count('asyncoperations', succeeded)) >= before + 200 ? true : undefined), 240_000, '200 parenting runs');
      const alerts = await alertsOf(dev);
      assert.equal(alerts.length, 200);
      const parents = alerts.filter((a) => a._msdyn_parentalert_value === null);
      assert.deepEqual(parents.map((a) => a.msdyn_iotalertid), [ids[0]], 'the earliest alert is the one parent');
      assert.ok(alerts.every((a) => a.msdyn_iotalertid === ids[0] || a._msdyn_parentalert_value === ids[0]));
      assert.equal(await count('asyncoperations', `_workflowactivationid_value eq ${parentWorkflow()} and statecode ne 3`), 0);
    });

    test('a custom workflow reads the reading out of msdyn_alertdata with msdyn_JsonGetNumber: hot → a case, cool → low priority', async () => {
      await create(c, 'ccs_iotrules', { ccs_name: 'Warm', ccs_condition: JSON.stringify({ measure: 'Temperature', op: 'gt', value: 50 }) });
      const wf = await createWorkflow(c, {
        name: 'Hot readings open a case', primaryentity: 'msdyn_iotalert', rank: 10,
        steps: [
          { action: 'msdyn_JsonGetNumber', parameters: { Json: { $record: 'msdyn_alertdata' }, PropertyPath: 'reading', DefaultReturnValue: 0 }, as: 'reading' },
          {
            condition: { op: 'gt', left: { $step: 'reading.ReturnValue' }, right: 80 },
            then: [
              { create: 'incident', values: { title: 'Overheating', caseorigincode: 700610000, msdyn_iotalert: { $record: 'msdyn_iotalertid' } }, as: 'case' },
              { update: 'msdyn_iotalert', values: { msdyn_case: { $step: 'case.id' } } },
            ],
            else: [{ update: 'msdyn_iotalert', values: { msdyn_suggestedpriority: 192350002 } }],
          },
        ],
      });
      const hotDevice = await newDevice('oven');
      const coolDevice = await newDevice('fridge');
      const clients: device.Client[] = [];
      try {
        for (const [dev, temperature] of [[hotDevice, 92.5], [coolDevice, 61]] as const) {
          const client = await connectDevice(c, dev);
          clients.push(client);
          const m = new device.Message(JSON.stringify({ Temperature: temperature }));
          m.messageId = randomUUID();
          await client.sendEvent(m);
        }
        const settled = async (dev: string) => {
          const [alert] = await eventually(async () => {
            const list = await alertsOf(dev);
            return list.length > 0 ? list : undefined;
          }, 20_000, 'an alert from the rule');
          await completedRuns(c, alert!.msdyn_iotalertid, 1, { workflowId: wf });
          return (await alertsOf(dev))[0]!;
        };
        const hot = await settled(hotDevice);
        const cool = await settled(coolDevice);
        assert.equal(JSON.parse(hot.msdyn_alertdata!).reading, 92.5);
        assert.ok(hot._msdyn_case_value, 'the then branch opened a case');
        const incident = await retrieve(c, 'incidents', hot._msdyn_case_value!, ['title', 'caseorigincode', '_msdyn_iotalert_value']);
        assert.deepEqual([incident['title'], incident['caseorigincode'], incident['_msdyn_iotalert_value']], ['Overheating', 700610000, hot.msdyn_iotalertid]);
        assert.equal(hot.msdyn_suggestedpriority, null);
        assert.equal(cool._msdyn_case_value, null, 'the else branch opened no case');
        assert.equal(cool.msdyn_suggestedpriority, 192350002);
        const [coolRun] = await runsOf(c, cool.msdyn_iotalertid).then((r) => r.filter((x) => x._workflowactivationid_value === wf));
        const log = JSON.parse(coolRun!.ccs_steplog!) as { step: string; result?: boolean; output?: unknown }[];
        assert.deepEqual(log.map((e) => [e.step, e.result ?? e.output]), [
          ['action msdyn_JsonGetNumber', { ReturnValue: 61 }],
          ['condition', false],
          ['update msdyn_iotalert', { id: cool.msdyn_iotalertid }],
        ]);
      } finally {
        for (const client of clients) await client.close();
        await c.api.update({ collection: 'workflows', key: wf, data: { statecode: 0, statuscode: 1 } });
      }
    });

    test('IoT - Create case from alert, once activated: one IoT case for the device\'s account, later alerts join it with notes', async () => {
      const caseWorkflow = workflowIds.get('IoT - Create case from alert')!;
      const account = await create(c, 'accounts', { name: 'Contoso Heating' });
      const dev = await newDevice('furnace', { 'msdyn_Account@odata.bind': `/accounts(${account})` });
      const orphan = await newDevice('orphan');
      // Draft by default: an alert raises no case.
      const early = await alertOf(dev, { msdyn_alerttime: at(-3600) });
      await completedRuns(c, early, 1);
      assert.deepEqual((await runsOf(c, early)).map((r) => r._workflowactivationid_value), [parentWorkflow()]);
      await c.api.update({ collection: 'workflows', key: caseWorkflow, data: { statecode: 1, statuscode: 2 } });
      try {
        const first = await alertOf(dev, { msdyn_alerttime: at(3600), msdyn_description: 'Furnace over temperature' });
        const runs = await completedRuns(c, first, 2);
        assert.deepEqual(runs.map((r) => [r._workflowactivationid_value, r.statuscode]), [[parentWorkflow(), STATUS.succeeded], [caseWorkflow, STATUS.succeeded]]);
        const caseId = (await retrieve(c, 'msdyn_iotalerts', first, ['_msdyn_case_value']))['_msdyn_case_value'] as string;
        assert.ok(caseId);
        const incident = await retrieve(c, 'incidents', caseId, ['caseorigincode', '_customerid_value', '_msdyn_iotalert_value']);
        assert.deepEqual([incident['caseorigincode'], incident['_customerid_value'], incident['_msdyn_iotalert_value']], [700610000, account, first]);
        assert.equal(JSON.parse(runs[1]!.ccs_steplog!).at(-1).output.IncidentId, caseId);

        const later = await Promise.all([10, 20, 30].map((s) => alertOf(dev, { msdyn_alerttime: at(3600 + s), msdyn_description: `Still hot +${s}s` })));
        for (const id of later) await completedRuns(c, id, 2);
        for (const id of later) {
          const a = await retrieve(c, 'msdyn_iotalerts', id, ['_msdyn_parentalert_value', '_msdyn_case_value']);
          assert.deepEqual([a['_msdyn_parentalert_value'], a['_msdyn_case_value']], [first, caseId]);
        }
        assert.equal(await count('incidents', `_customerid_value eq ${account}`), 1, 'one case for the group');
        const notes = (await c.api.retrieveAll<{ subject: string | null; notetext: string | null }>({ collection: 'annotations', select: ['subject', 'notetext'], filter: `_objectid_value eq ${caseId}` })).value;
        assert.equal(notes.length, 3);
        for (const s of [10, 20, 30]) assert.ok(notes.some((n) => `${n.subject ?? ''} ${n.notetext ?? ''}`.includes(`Still hot +${s}s`)), `a note for the alert +${s}s`);

        // A device without an account: the condition is false, no case, the run still succeeds.
        const lone = await alertOf(orphan, { msdyn_alerttime: at(3600) });
        const loneRuns = await completedRuns(c, lone, 2);
        assert.deepEqual(loneRuns.map((r) => r.statuscode), [STATUS.succeeded, STATUS.succeeded]);
        assert.deepEqual(JSON.parse(loneRuns[1]!.ccs_steplog!).map((e: { step: string; result?: boolean }) => [e.step, e.result]), [['condition', false]]);
        assert.equal((await retrieve(c, 'msdyn_iotalerts', lone, ['_msdyn_case_value']))['_msdyn_case_value'], null);
      } finally {
        await c.api.update({ collection: 'workflows', key: caseWorkflow, data: { statecode: 0, statuscode: 1 } });
      }
    });

    test('IoT - Pull device data on alert, once activated, records a data pull for the alert\'s device', async () => {
      const pullWorkflow = workflowIds.get('IoT - Pull device data on alert')!;
      const dev = await newDevice('meter');
      await c.api.update({ collection: 'workflows', key: pullWorkflow, data: { statecode: 1, statuscode: 2 } });
      try {
        const alert = await alertOf(dev, { msdyn_alerttime: at(7200) });
        const runs = await completedRuns(c, alert, 2);
        assert.deepEqual(runs.map((r) => [r._workflowactivationid_value, r.statuscode]), [[parentWorkflow(), STATUS.succeeded], [pullWorkflow, STATUS.succeeded]]);
        assert.equal(await count('msdyn_iotdevicedatahistory', `_msdyn_device_value eq ${dev}`), 1);
      } finally {
        await c.api.update({ collection: 'workflows', key: pullWorkflow, data: { statecode: 0, statuscode: 1 } });
      }
    });
  });
}
