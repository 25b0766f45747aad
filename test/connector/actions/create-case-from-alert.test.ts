import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { engines } from '../../helpers/engines.js';
import { create, rejectsWith, retrieve, startConnector, type Connector } from '../helpers.js';

const ACTION = 'Microsoft.Dynamics.CRM.ccs_CreateCaseFromIoTAlert';

interface CaseResponse {
  readonly IncidentId: string;
  readonly Created: boolean;
}

interface Note {
  readonly subject: string;
  readonly notetext: string;
  readonly objecttypecode: string;
  readonly _objectid_value: string;
}

for (const engine of engines()) {
  describe(`ccs_CreateCaseFromIoTAlert on ${engine.name}`, () => {
    let c: Connector;
    before(async () => {
      c = await startConnector(engine);
    });
    after(() => c.srv.stop());

    const account = (name = 'Contoso') => create(c, 'accounts', { name });
    const device = (accountId?: string) =>
      create(c, 'msdyn_iotdevices', {
        msdyn_name: 'boiler',
        msdyn_deviceid: `boiler-${randomUUID().slice(0, 8)}`,
        ...(accountId ? { 'msdyn_Account@odata.bind': `/accounts(${accountId})` } : {}),
      });
    const alert = (deviceId: string, data: Record<string, unknown> = {}) =>
      create(c, 'msdyn_iotalerts', {
        msdyn_description: 'Temperature reading of 71 exceeded a threshold of 70',
        msdyn_alertdata: '{"reading":71,"threshold":70}',
        msdyn_alerttype: 192350000,
        'msdyn_Device@odata.bind': `/msdyn_iotdevices(${deviceId})`,
        ...data,
      });
    const child = (deviceId: string, parentId: string, description: string) =>
      alert(deviceId, { msdyn_description: description, 'msdyn_ParentAlert@odata.bind': `/msdyn_iotalerts(${parentId})` });
    const makeCase = async (alertId: string, action: Record<string, unknown> = {}): Promise<CaseResponse> => {
      const r = await c.api.callAction<CaseResponse>({ collection: 'msdyn_iotalerts', key: alertId, actionName: ACTION, action });
      return { IncidentId: r.IncidentId, Created: r.Created };
    };
    const caseOf = async (alertId: string) => (await retrieve(c, 'msdyn_iotalerts', alertId, ['_msdyn_case_value']))['_msdyn_case_value'];
    const casesFor = async (alertId: string) =>
      (await c.api.retrieveAll<Record<string, unknown>>({ collection: 'incidents', select: ['incidentid'], filter: `_msdyn_iotalert_value eq ${alertId}` })).value;
    const notesOn = async (incidentId: string): Promise<Note[]> =>
      (await c.api.retrieveAll<Note>({
        collection: 'annotations',
        select: ['subject', 'notetext', 'objecttypecode', '_objectid_value'],
        filter: `_objectid_value eq ${incidentId}`,
      })).value;

    test('a top-level alert gets one case with origin IoT, the device account as customer and the alert as its source', async () => {
      const acc = await account();
      const a = await alert(await device(acc));
      const first = await makeCase(a);
      assert.equal(first.Created, true);
      const incident = await retrieve(c, 'incidents', first.IncidentId, ['title', 'caseorigincode', '_customerid_value', '_msdyn_iotalert_value']);
      assert.equal(incident['title'], 'Temperature reading of 71 exceeded a threshold of 70');
      assert.equal(incident['caseorigincode'], 700610000);
      assert.equal(incident['_customerid_value'], acc);
      assert.equal(incident['_msdyn_iotalert_value'], a);
      assert.equal(await caseOf(a), first.IncidentId);
      // Again: the same case, nothing new.
      const second = await makeCase(a);
      assert.deepEqual(second, { IncidentId: first.IncidentId, Created: false });
      assert.equal((await casesFor(a)).length, 1);
    });

    test('Title and CustomerId override the defaults; a contact can be the customer', async () => {
      const contact = await create(c, 'contacts', { lastname: 'Smith' });
      const a = await alert(await device());
      const r = await makeCase(a, { Title: 'Boiler overheating', CustomerId: contact });
      const incident = await retrieve(c, 'incidents', r.IncidentId, ['title', '_customerid_value']);
      assert.equal(incident['title'], 'Boiler overheating');
      assert.equal(incident['_customerid_value'], contact);
    });

    test('child alerts join the parent case, each adding a note with its description and data', async () => {
      const dev = await device(await account());
      const parent = await alert(dev);
      const p = await makeCase(parent);
      const c1 = await child(dev, parent, 'Temperature reading of 75 exceeded a threshold of 70');
      const c2 = await child(dev, parent, 'Temperature reading of 80 exceeded a threshold of 70');
      const r1 = await makeCase(c1);
      const r2 = await makeCase(c2);
      assert.deepEqual(r1, { IncidentId: p.IncidentId, Created: false });
      assert.deepEqual(r2, { IncidentId: p.IncidentId, Created: false });
      assert.equal(await caseOf(c1), p.IncidentId);
      assert.equal(await caseOf(c2), p.IncidentId);
      const notes = await notesOn(p.IncidentId);
      assert.equal(notes.length, 2);
      const texts = notes.map((n) => n.notetext).sort();
      assert.match(texts[0]!, /reading of 75/);
      assert.match(texts[0]!, /\{"reading":71,"threshold":70\}/);
      assert.match(texts[1]!, /reading of 80/);
      assert.ok(notes.every((n) => n.objecttypecode === 'incident' && n._objectid_value === p.IncidentId));
      // A child already on the case adds no second note.
      await makeCase(c1);
      assert.equal((await notesOn(p.IncidentId)).length, 2);
    });

    test('a child whose parent has no case creates the parent case first', async () => {
      const dev = await device(await account());
      const parent = await alert(dev);
      const c1 = await child(dev, parent, 'Vibration');
      const r = await makeCase(c1);
      assert.equal(r.Created, true);
      assert.equal(await caseOf(parent), r.IncidentId);
      assert.equal(await caseOf(c1), r.IncidentId);
      const incident = await retrieve(c, 'incidents', r.IncidentId, ['_msdyn_iotalert_value']);
      assert.equal(incident['_msdyn_iotalert_value'], parent, 'the case is the parent alert’s');
      assert.equal((await notesOn(r.IncidentId)).length, 1);
    });

    test('ten children at once make one case for their group', async () => {
      const dev = await device(await account());
      const parent = await alert(dev);
      const children: string[] = [];
      for (let i = 0; i < 10; i++) children.push(await child(dev, parent, `Reading ${i}`));
      const results = await Promise.all(children.map((id) => makeCase(id)));
      const ids = new Set(results.map((r) => r.IncidentId));
      assert.equal(ids.size, 1, 'one case');
      assert.equal(results.filter((r) => r.Created).length, 1, 'created once');
      assert.equal((await casesFor(parent)).length, 1);
      assert.equal((await notesOn([...ids][0]!)).length, 10);
      for (const id of children) assert.equal(await caseOf(id), [...ids][0]);
    });

    test('top-level alerts called at once make one case each', async () => {
      const dev = await device(await account());
      const a = await alert(dev);
      const results = await Promise.all(Array.from({ length: 6 }, () => makeCase(a)));
      assert.equal(new Set(results.map((r) => r.IncidentId)).size, 1);
      assert.equal(results.filter((r) => r.Created).length, 1);
    });

    test('no customer anywhere is a 400 that says what to set; nothing is written and the server keeps serving', async () => {
      const a = await alert(await device());
      await rejectsWith(makeCase(a), 400, /no customer.*msdyn_iotdevice\.msdyn_account.*CustomerId/);
      assert.equal(await caseOf(a), null);
      assert.equal((await casesFor(a)).length, 0);
      await rejectsWith(makeCase(a, { CustomerId: randomUUID() }), 400, /Parameter 'CustomerId' .* names no account or contact/);
      await rejectsWith(makeCase(a, { CustomerId: 'not-a-guid' }), 400, /CustomerId.*GUID/);
      await rejectsWith(makeCase(a, { Colour: 'red' }), 400, /'Colour' is not a parameter/);
      await rejectsWith(makeCase(randomUUID()), 404, /Does Not Exist/);
      const acc = await account();
      assert.equal((await makeCase(a, { CustomerId: acc })).Created, true);
    });

    test('$metadata advertises the action and its response type', async () => {
      const xml = await (await c.srv.fetch('$metadata')).text();
      assert.match(xml, /<Action Name="ccs_CreateCaseFromIoTAlert" IsBound="true">/);
      assert.match(xml, /<ComplexType Name="ccs_CreateCaseFromIoTAlertResponse">[\s\S]*?<Property Name="IncidentId" Type="Edm.Guid" Nullable="false"\/>/);
    });
  });
}
