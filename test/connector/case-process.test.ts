import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { DynamicsWebApi } from 'dynamics-web-api';
import { IOT_TO_CASE_PROCESS_ID, IOT_TO_CASE_STAGES } from '../../src/metadata/index.js';
import { engines } from '../helpers/engines.js';
import { ADMIN_TOKEN, startServer } from '../helpers/server.js';
import { create, eventually, rejectsWith, retrieve, startConnector, type Connector } from './helpers.js';

const [CREATED, CREATE_CASE, IDENTIFY, RESEARCH, RESOLVE] = IOT_TO_CASE_STAGES.map((s) => s.id) as [string, string, string, string, string];
const path = (...ids: string[]) => ids.join(',');
const ACTION = 'Microsoft.Dynamics.CRM.ccs_CreateCaseFromIoTAlert';

interface Instance {
  readonly businessprocessflowinstanceid: string;
  readonly _activestageid_value: string;
  readonly _bpf_incidentid_value: string | null;
  readonly traversedpath: string;
  readonly statecode: number;
  readonly statuscode: number;
  readonly processid: string;
  readonly bpf_name: string;
}

interface AlertView {
  readonly processid: string | null;
  readonly stageid: string | null;
  readonly traversedpath: string | null;
  readonly _msdyn_case_value: string | null;
  readonly statecode: number;
  readonly statuscode: number;
}

for (const engine of engines()) {
  describe(`IoT Alert to Case process on ${engine.name}`, () => {
    let c: Connector;
    before(async () => {
      c = await startConnector(engine);
    });
    after(() => c.srv.stop());

    const account = () => create(c, 'accounts', { name: 'Fabrikam' });
    const device = (accountId?: string) =>
      create(c, 'msdyn_iotdevices', {
        msdyn_name: 'chiller',
        msdyn_deviceid: `chiller-${randomUUID().slice(0, 8)}`,
        ...(accountId ? { 'msdyn_Account@odata.bind': `/accounts(${accountId})` } : {}),
      });
    const alert = (deviceId: string, data: Record<string, unknown> = {}) =>
      create(c, 'msdyn_iotalerts', {
        msdyn_description: 'Pressure reading of 9 exceeded a threshold of 8',
        msdyn_alertdata: '{"reading":9}',
        'msdyn_Device@odata.bind': `/msdyn_iotdevices(${deviceId})`,
        ...data,
      });
    const readAlert = async (id: string) =>
      (await retrieve(c, 'msdyn_iotalerts', id, ['processid', 'stageid', 'traversedpath', '_msdyn_case_value', 'statecode', 'statuscode'])) as unknown as AlertView;
    const instancesOf = async (alertId: string): Promise<Instance[]> =>
      (await c.api.retrieveAll<Instance>({ collection: 'msdyn_iottocaseprocesses', filter: `_bpf_msdyn_iotalertid_value eq ${alertId}` })).value;
    /** Waits until the alert's instance and the alert both show `stage` with `expectedPath`. */
    const atStage = (alertId: string, stage: string, expectedPath: string, what = 'stage') =>
      eventually(async () => {
        const [inst] = await instancesOf(alertId);
        const a = await readAlert(alertId);
        return inst && inst._activestageid_value === stage && inst.traversedpath === expectedPath && a.stageid === stage && a.traversedpath === expectedPath
          ? { inst, alert: a }
          : undefined;
      }, 60_000, what);
    const moveAlert = (id: string, stage: string) => c.api.update({ collection: 'msdyn_iotalerts', key: id, data: { stageid: stage } });
    const moveInstance = (id: string, stage: string) =>
      c.api.update({ collection: 'msdyn_iottocaseprocesses', key: id, data: { 'activestageid@odata.bind': `/processstages(${stage})` } });

    test('an alert created in a $batch change set enters the process in it: the same change set can move its stage', async () => {
      const d = await device();
      c.api.startBatch();
      void c.api.create({ collection: 'msdyn_iotalerts', data: { msdyn_description: 'batch alert', 'msdyn_Device@odata.bind': `/msdyn_iotdevices(${d})` }, contentId: '1' });
      void c.api.update({ contentId: '$1', data: { stageid: CREATE_CASE } });
      const [id] = (await c.api.executeBatch()) as [string];
      assert.match(id, /^[0-9a-f-]{36}$/);
      const { inst, alert: a } = await atStage(id, CREATE_CASE, path(CREATED, CREATE_CASE));
      assert.equal(a.processid, IOT_TO_CASE_PROCESS_ID);
      assert.equal(inst.processid, IOT_TO_CASE_PROCESS_ID);
      assert.equal((await instancesOf(id)).length, 1);
    });

    test('the five stages are seeded in order under the process id', async () => {
      const stages = (await c.api.retrieveAll<Record<string, unknown>>({
        collection: 'processstages',
        filter: `processid eq ${IOT_TO_CASE_PROCESS_ID}`,
        orderBy: ['ccs_order'],
      })).value;
      assert.deepEqual(stages.map((s) => s['stagename']), ['Created', 'Create Case', 'Identify', 'Research', 'Resolve']);
      assert.deepEqual(stages.map((s) => s['stagecategory']), [null, null, 4, 5, 6]);
      assert.deepEqual(stages.map((s) => s['primaryentitytypecode']), ['msdyn_iotalert', 'msdyn_iotalert', 'incident', 'incident', 'incident']);
    });

    test('a new top-level alert starts the process at Created, mirrored on the alert; a child alert does not', async () => {
      const dev = await device(await account());
      const a = await alert(dev);
      const { inst, alert: view } = await atStage(a, CREATED, CREATED, 'process started');
      assert.equal(inst.bpf_name, 'IoT Alert to Case Process');
      assert.equal(inst.processid, IOT_TO_CASE_PROCESS_ID);
      assert.equal(inst.statecode, 0);
      assert.equal(view.processid, IOT_TO_CASE_PROCESS_ID);
      const child = await alert(dev, { 'msdyn_ParentAlert@odata.bind': `/msdyn_iotalerts(${a})` });
      const token = await alert(dev, { msdyn_parentalerttoken: 'evt-1' });
      // The first alert's process exists, so events are handled; give the child's a later alert to wait on.
      const later = await alert(dev);
      await atStage(later, CREATED, CREATED);
      assert.equal((await instancesOf(child)).length, 0);
      assert.equal((await instancesOf(token)).length, 0);
      assert.equal((await readAlert(child)).stageid, null);
      await rejectsWith(moveAlert(child, CREATED), 400, /is not in the IoT Alert to Case Process/);
    });

    test('moving the alert to Create Case creates the case; the next stages append to the path on both sides', async () => {
      const acc = await account();
      const a = await alert(await device(acc));
      await atStage(a, CREATED, CREATED);
      await moveAlert(a, CREATE_CASE);
      const { inst, alert: view } = await eventually(async () => {
        const r = await atStage(a, CREATE_CASE, path(CREATED, CREATE_CASE));
        return r.alert._msdyn_case_value && r.inst._bpf_incidentid_value ? r : undefined;
      }, 60_000, 'case created');
      assert.equal(inst._bpf_incidentid_value, view._msdyn_case_value);
      const incident = await retrieve(c, 'incidents', view._msdyn_case_value!, ['caseorigincode', '_customerid_value', '_msdyn_iotalert_value']);
      assert.equal(incident['caseorigincode'], 700610000);
      assert.equal(incident['_customerid_value'], acc);
      assert.equal(incident['_msdyn_iotalert_value'], a);
      // The instance side moves the alert too.
      await moveInstance(inst.businessprocessflowinstanceid, IDENTIFY);
      await atStage(a, IDENTIFY, path(CREATED, CREATE_CASE, IDENTIFY));
      await moveAlert(a, RESEARCH);
      await atStage(a, RESEARCH, path(CREATED, CREATE_CASE, IDENTIFY, RESEARCH));
      // Back one stage trims the path.
      await moveAlert(a, IDENTIFY);
      await atStage(a, IDENTIFY, path(CREATED, CREATE_CASE, IDENTIFY));
      // Still one case.
      assert.equal((await c.api.retrieveAll({ collection: 'incidents', select: ['incidentid'], filter: `_msdyn_iotalert_value eq ${a}` })).value.length, 1);
    });

    test('skipping a stage, an unknown stage, a case stage without a case are 400s; nothing moves and the server keeps serving', async () => {
      const a = await alert(await device(await account()));
      const { inst } = await atStage(a, CREATED, CREATED);
      await rejectsWith(moveAlert(a, IDENTIFY), 400, /from stage 'Created' to 'Identify': stages cannot be skipped; the next stage is 'Create Case'/);
      await rejectsWith(moveAlert(a, RESOLVE), 400, /stages cannot be skipped/);
      await rejectsWith(moveAlert(a, randomUUID()), 400, /'stageid' of msdyn_iotalert .* is not a stage of the IoT Alert to Case Process/);
      await rejectsWith(moveInstance(inst.businessprocessflowinstanceid, RESEARCH), 400, /msdyn_iottocaseprocess .* stages cannot be skipped/);
      await rejectsWith(moveInstance(inst.businessprocessflowinstanceid, randomUUID()), 404, /processstage With Id = .* Does Not Exist/);
      const foreign = await create(c, 'processstages', { stagename: 'Qualify', processid: randomUUID(), ccs_order: 0 });
      await rejectsWith(moveInstance(inst.businessprocessflowinstanceid, foreign), 400, /is not a stage of the IoT Alert to Case Process/);
      await rejectsWith(c.api.update({ collection: 'msdyn_iotalerts', key: a, data: { traversedpath: 'x,y' } }), 400, /'traversedpath' .* is not a path/);
      await rejectsWith(c.api.update({ collection: 'msdyn_iotalerts', key: a, data: { processid: randomUUID() } }), 400, /'processid' .* must be the IoT Alert to Case Process/);
      const [after] = await instancesOf(a);
      assert.equal(after!._activestageid_value, CREATED);
      assert.equal((await readAlert(a)).stageid, CREATED);
      // Create Case without a customer: the process waits there with no case.
      const orphan = await alert(await device());
      await atStage(orphan, CREATED, CREATED);
      await moveAlert(orphan, CREATE_CASE);
      await atStage(orphan, CREATE_CASE, path(CREATED, CREATE_CASE));
      await rejectsWith(moveAlert(orphan, IDENTIFY), 400, /to stage 'Identify': create the case first/);
      // The action with a customer makes the case; then Identify is allowed.
      await c.api.callAction({ collection: 'msdyn_iotalerts', key: orphan, actionName: ACTION, action: { CustomerId: await account() } });
      await eventually(async () => ((await instancesOf(orphan))[0]?._bpf_incidentid_value ? true : undefined), 60_000, 'instance linked to the case');
      // The process's own bookkeeping for the new case settles (alert and instance at Create Case) before the move.
      await eventually(async () => ((await readAlert(orphan))._msdyn_case_value ? true : undefined), 60_000, 'alert linked to the case');
      await atStage(orphan, CREATE_CASE, path(CREATED, CREATE_CASE));
      await moveAlert(orphan, IDENTIFY);
      await atStage(orphan, IDENTIFY, path(CREATED, CREATE_CASE, IDENTIFY));
      await rejectsWith(moveAlert(orphan, CREATED), 400, /back to stage 'Created': it has a case/);
    });

    test('a case made by the action, or an incident created for the alert, moves the process to Create Case', async () => {
      const acc = await account();
      const a = await alert(await device(acc));
      await atStage(a, CREATED, CREATED);
      const r = await c.api.callAction<{ IncidentId: string }>({ collection: 'msdyn_iotalerts', key: a, actionName: ACTION, action: {} });
      const { inst } = await atStage(a, CREATE_CASE, path(CREATED, CREATE_CASE));
      assert.equal(inst._bpf_incidentid_value, r.IncidentId);

      const b = await alert(await device(acc));
      await atStage(b, CREATED, CREATED);
      const incident = await create(c, 'incidents', { title: 'Manual case', 'customerid_account@odata.bind': `/accounts(${acc})`, 'msdyn_IoTAlert@odata.bind': `/msdyn_iotalerts(${b})` });
      const moved = await atStage(b, CREATE_CASE, path(CREATED, CREATE_CASE));
      assert.equal(moved.alert._msdyn_case_value, incident);
    });

    test('writers of an alert the process is writing never get a 412 without If-Match', async () => {
      const dev = await device(await account());
      // Each alert is written by the process (it starts) while the debounce action groups it with the others.
      const ids = await Promise.all(Array.from({ length: 40 }, async () => {
        const id = await alert(dev, { msdyn_alerttime: new Date().toISOString() });
        await c.api.callAction({ collection: 'msdyn_iotalerts', key: id, actionName: 'Microsoft.Dynamics.CRM.msdyn_ParentIoTAlerts', action: { TimespanSeconds: 180 } });
        await c.api.update({ collection: 'msdyn_iotalerts', key: id, data: { msdyn_alerturl: 'https://example.com/a' } });
        return id;
      }));
      for (const id of ids) {
        const [inst] = await eventually(async () => {
          const list = await instancesOf(id);
          return list.length > 0 && (await readAlert(id)).stageid === CREATED ? list : undefined;
        }, 60_000, 'process started');
        assert.equal(inst!._activestageid_value, CREATED);
      }
      // With If-Match a stale version is still refused.
      const res = await c.srv.fetch(`msdyn_iotalerts(${ids[0]})`, { method: 'PATCH', headers: { 'content-type': 'application/json', 'if-match': 'W/"1"' }, body: '{"msdyn_alerturl":null}' });
      assert.equal(res.status, 412);
    });

    test('resolving the case deactivates the alert and its children and finishes the process at Resolve', async () => {
      const dev = await device(await account());
      const parent = await alert(dev);
      await atStage(parent, CREATED, CREATED);
      const children = [await alert(dev, { 'msdyn_ParentAlert@odata.bind': `/msdyn_iotalerts(${parent})` }), await alert(dev, { 'msdyn_ParentAlert@odata.bind': `/msdyn_iotalerts(${parent})` })];
      const { IncidentId } = await c.api.callAction<{ IncidentId: string }>({ collection: 'msdyn_iotalerts', key: children[0]!, actionName: ACTION, action: {} });
      await atStage(parent, CREATE_CASE, path(CREATED, CREATE_CASE));
      await c.api.update({ collection: 'incidents', key: IncidentId, data: { statecode: 1, statuscode: 5 } });
      const full = path(CREATED, CREATE_CASE, IDENTIFY, RESEARCH, RESOLVE);
      const done = await eventually(async () => {
        const [inst] = await instancesOf(parent);
        return inst && inst.statecode === 1 ? inst : undefined;
      }, 60_000, 'process finished');
      assert.equal(done.statuscode, 2, 'Finished');
      assert.equal(done._activestageid_value, RESOLVE);
      assert.equal(done.traversedpath, full);
      for (const id of [parent, ...children]) {
        const a = await eventually(async () => {
          const v = await readAlert(id);
          return v.statecode === 1 ? v : undefined;
        }, 60_000, 'alert deactivated');
        assert.equal(a.statuscode, 2);
      }
      const p = await readAlert(parent);
      assert.equal(p.stageid, RESOLVE);
      assert.equal(p.traversedpath, full);
      // A finished process does not move.
      await rejectsWith(moveAlert(parent, RESEARCH), 400, /inactive/);
    });
  });

  describe(`IoT Alert to Case process catching up on start, on ${engine.name}`, () => {
    test('alerts written while no process listened get their process; a case resolved meanwhile finishes its alerts', async () => {
      let srv = await startServer(engine, { settings: { 'rate-limit': '0' } });
      try {
        const api = () => new DynamicsWebApi({ serverUrl: srv.url, onTokenRefresh: async () => ADMIN_TOKEN });
        const acc = await api().create<Record<string, unknown>, string>({ collection: 'accounts', data: { name: 'Litware' } });
        const resolvedAlert = await api().create<Record<string, unknown>, string>({ collection: 'msdyn_iotalerts', data: { msdyn_description: 'Leak' } });
        const { IncidentId } = await api().callAction<{ IncidentId: string }>({
          collection: 'msdyn_iotalerts', key: resolvedAlert, actionName: ACTION, action: { CustomerId: acc },
        });
        // Written behind the records service's back: no record events.
        const silent = randomUUID();
        const now = Date.now();
        await srv.app.store.insert('msdyn_iotalert', {
          msdyn_iotalertid: silent, msdyn_description: 'Written while stopped', statecode: 0, statuscode: 1, createdon: now, modifiedon: now, versionnumber: 1,
        });
        await srv.app.store.update('incident', { statecode: 1, statuscode: 5 }, { kind: 'compare', op: 'eq', left: { kind: 'column', column: 'incidentid' }, right: { kind: 'value', value: IncidentId } });
        const { storeUrl, dataDir } = srv;
        await srv.stop({ drop: false });
        srv = await startServer(engine, { storeUrl, dataDir, settings: { 'rate-limit': '0' } });
        const client = api();
        await eventually(async () => {
          const r = await client.retrieveAll<Instance>({ collection: 'msdyn_iottocaseprocesses', filter: `_bpf_msdyn_iotalertid_value eq ${silent}` });
          return r.value[0]?._activestageid_value === CREATED ? true : undefined;
        }, 60_000, 'process started for the silent alert');
        const finished = await eventually(async () => {
          const a = await client.retrieve<Record<string, unknown>>({ collection: 'msdyn_iotalerts', key: resolvedAlert, select: ['statecode', 'stageid'] });
          return a['statecode'] === 1 ? a : undefined;
        }, 60_000, 'alert of the resolved case deactivated');
        assert.equal(finished['stageid'], RESOLVE);
      } finally {
        await srv.stop();
      }
    });
  });
}
