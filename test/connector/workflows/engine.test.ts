import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { engines } from '../../helpers/engines.js';
import { startServer } from '../../helpers/server.js';
import { create, eventually, rejectsWith, retrieve, startConnector, type Connector } from '../helpers.js';
import { DynamicsWebApi } from 'dynamics-web-api';
import { ADMIN_TOKEN } from '../../helpers/server.js';
import { completedRuns, createWorkflow, runsOf, STATUS, type RunView } from './helpers.js';

const unique = (name: string) => `${name} ${randomUUID().slice(0, 8)}`;

for (const engine of engines()) {
  describe(`workflow engine on ${engine.name}`, () => {
    let c: Connector;
    before(async () => {
      c = await startConnector(engine);
    });
    after(() => c.srv.stop());

    const account = (name: string, extra: Record<string, unknown> = {}) => create(c, 'accounts', { name, ...extra });

    test('the workflow and run tables are served under Dataverse\'s names, with the shipped workflows', async () => {
      const shipped = (await c.api.retrieveAll<{ name: string; statecode: number; statuscode: number; rank: number; primaryentity: string; triggeroncreate: boolean; ccs_steps: string }>({
        collection: 'workflows',
        filter: "startswith(name,'IoT - ')",
        orderBy: ['rank asc'],
      })).value;
      assert.deepEqual(shipped.map((w) => [w.name, w.statecode, w.statuscode, w.rank, w.primaryentity, w.triggeroncreate]), [
        ['IoT - Parent IoT Alerts', 1, 2, 1, 'msdyn_iotalert', true],
        ['IoT - Create case from alert', 0, 1, 2, 'msdyn_iotalert', true],
        ['IoT - Pull device data on alert', 0, 1, 3, 'msdyn_iotalert', true],
      ]);
      assert.deepEqual(JSON.parse(shipped[0]!.ccs_steps), [{ action: 'msdyn_ParentIoTAlerts', bound: true, parameters: { TimespanSeconds: 60 } }]);
      const metadata = await (await c.srv.fetch('$metadata')).text();
      assert.match(metadata, /<EntitySet Name="workflows" EntityType="Microsoft\.Dynamics\.CRM\.workflow"/);
      assert.match(metadata, /<EntitySet Name="asyncoperations" EntityType="Microsoft\.Dynamics\.CRM\.asyncoperation"/);
    });

    test('a run per matching workflow, in rank order: the second sees what the first wrote; the log and times are kept', async () => {
      const name = unique('Ranked');
      // Created in the opposite order of their ranks: rank decides, not creation.
      const second = await createWorkflow(c, {
        name: `${name} B`, primaryentity: 'account', rank: 20,
        steps: [{
          condition: { op: 'eq', left: { $record: 'description' }, right: 'first' },
          then: [{ update: 'account', values: { description: 'first, then second' } }],
          else: [{ update: 'account', values: { description: 'second ran first' } }],
        }],
      });
      const first = await createWorkflow(c, {
        name: `${name} A`, primaryentity: 'account', rank: 10,
        steps: [{ condition: { op: 'eq', left: { $record: 'name' }, right: `${name} target` }, then: [{ update: 'account', values: { description: 'first' } }] }],
      });
      const id = await account(`${name} target`);
      const runs = (await completedRuns(c, id, 2)).filter((r) => [first, second].includes(r._workflowactivationid_value));
      assert.deepEqual(runs.map((r) => [r._workflowactivationid_value, r.statuscode, r.name, r.operationtype]), [
        [first, STATUS.succeeded, `${name} A`, 10],
        [second, STATUS.succeeded, `${name} B`, 10],
      ]);
      assert.equal(runs[0]!.correlationid, runs[1]!.correlationid, 'one event, one correlation id');
      assert.ok(runs[0]!.startedon && runs[0]!.completedon);
      assert.equal((await retrieve(c, 'accounts', id, ['description']))['description'], 'first, then second');
      const log = JSON.parse(runs[1]!.ccs_steplog!) as { path: string; step: string; result?: boolean }[];
      assert.deepEqual(log.map((e) => [e.path, e.step, e.result]), [
        ['ccs_steps[0]', 'condition', true],
        ['ccs_steps[0].then[0]', 'update account', undefined],
      ]);
      // Other accounts: the first workflow's condition is false, the second takes its else branch.
      const other = await account(`${name} other`);
      await completedRuns(c, other, 2);
      assert.equal((await retrieve(c, 'accounts', other, ['description']))['description'], 'second ran first');
      await c.api.update({ collection: 'workflows', key: first, data: { statecode: 0, statuscode: 1 } });
      await c.api.update({ collection: 'workflows', key: second, data: { statecode: 0 } });
    });

    test('update triggers fire only on the listed columns; statecode in the list is "on state change"', async () => {
      const name = unique('Phone');
      const phone = await createWorkflow(c, {
        name, primaryentity: 'account', triggeroncreate: false, triggeronupdateattributelist: 'telephone1,emailaddress1',
        steps: [{ create: 'contact', values: { lastname: 'phone changed', parentcustomerid: { id: { $record: 'accountid' }, table: 'account' }, telephone1: { $record: 'telephone1' } }, as: 'contact' }],
      });
      const state = await createWorkflow(c, {
        name: `${name} state`, primaryentity: 'account', triggeroncreate: false, triggeronupdateattributelist: 'statecode',
        steps: [{
          condition: { op: 'eq', left: { $record: 'statecode' }, right: 1 },
          then: [{ create: 'contact', values: { lastname: 'state changed', parentcustomerid: { id: { $record: 'accountid' }, table: 'account' }, description: 'inactive' } }],
          else: [{ create: 'contact', values: { lastname: 'state changed', parentcustomerid: { id: { $record: 'accountid' }, table: 'account' }, description: 'active' } }],
        }],
      });
      const id = await account(name);
      await c.api.update({ collection: 'accounts', key: id, data: { name: `${name} renamed`, description: 'not listed' } });
      await c.api.update({ collection: 'accounts', key: id, data: { telephone1: '+1 555 0100' } });
      const [run] = await completedRuns(c, id, 1, { workflowId: phone });
      // Runs of a record follow its events in order: had the first update started one, it would come first.
      const phoneRuns = (await runsOf(c, id)).filter((r) => r._workflowactivationid_value === phone);
      assert.equal(phoneRuns.length, 1);
      assert.equal(run!.statuscode, STATUS.succeeded);
      const contacts = async (lastname: string) => (await c.api.retrieveAll<{ telephone1: string | null; description: string | null }>({
        collection: 'contacts', select: ['telephone1', 'description'], filter: `_parentcustomerid_value eq ${id} and lastname eq '${lastname}'`,
      })).value;
      assert.deepEqual((await contacts('phone changed')).map((x) => x.telephone1), ['+1 555 0100']);
      // Deactivating writes statecode (and statuscode): the state-change workflow runs; setting only statuscode
      // moves the state too, so it counts as well.
      await c.api.update({ collection: 'accounts', key: id, data: { statecode: 1, statuscode: 2 } });
      await completedRuns(c, id, 1, { workflowId: state });
      await c.api.update({ collection: 'accounts', key: id, data: { statuscode: 1 } });
      await completedRuns(c, id, 2, { workflowId: state });
      assert.deepEqual((await contacts('state changed')).map((x) => x.description).sort(), ['active', 'inactive']);
      assert.equal((await runsOf(c, id)).filter((r) => r._workflowactivationid_value === phone).length, 1, 'state changes do not start the phone workflow');
      for (const w of [phone, state]) await c.api.update({ collection: 'workflows', key: w, data: { statecode: 0 } });
    });

    test('a deactivated workflow does not run; activated again, it does', async () => {
      const name = unique('Toggle');
      const sentinel = await createWorkflow(c, { name: `${name} sentinel`, primaryentity: 'contact', steps: [] });
      const toggled = await createWorkflow(c, { name, primaryentity: 'contact', steps: [{ update: 'contact', values: { jobtitle: 'seen' } }] });
      const a = await create(c, 'contacts', { lastname: `${name} a` });
      await completedRuns(c, a, 2);
      await c.api.update({ collection: 'workflows', key: toggled, data: { statecode: 0, statuscode: 1 } });
      const b = await create(c, 'contacts', { lastname: `${name} b` });
      // The runs of one event are queued together: once the sentinel's exists, the toggled one would too.
      const runs = await completedRuns(c, b, 1, { workflowId: sentinel });
      assert.deepEqual((await runsOf(c, b)).map((r) => r._workflowactivationid_value), [sentinel]);
      assert.equal(runs[0]!.statuscode, STATUS.succeeded);
      assert.equal((await retrieve(c, 'contacts', b, ['jobtitle']))['jobtitle'], null);
      await c.api.update({ collection: 'workflows', key: toggled, data: { statecode: 1, statuscode: 2 } });
      const d = await create(c, 'contacts', { lastname: `${name} d` });
      await completedRuns(c, d, 2);
      assert.equal((await retrieve(c, 'contacts', d, ['jobtitle']))['jobtitle'], 'seen');
      for (const w of [sentinel, toggled]) await c.api.update({ collection: 'workflows', key: w, data: { statecode: 0 } });
    });

    test('a failing step is retried, then the run ends Failed with a message naming the step, readable through the Web API', async () => {
      const missing = randomUUID();
      const name = unique('Failing');
      const wf = await createWorkflow(c, {
        name, primaryentity: 'account', ccs_maxattempts: 3,
        steps: [
          { condition: { op: 'notnull', value: { $record: 'name' } }, then: [{ update: 'contact', id: missing, values: { jobtitle: 'x' } }] },
        ],
      });
      const id = await account(name);
      const [run] = await completedRuns(c, id, 1, { workflowId: wf, ms: 30_000 });
      assert.equal(run!.statuscode, STATUS.failed);
      assert.equal(run!.statecode, 3);
      assert.equal(run!.retrycount, 2, 'three attempts: two retries');
      assert.equal(run!.message, `ccs_steps[0].then[0] (update contact): contact With Id = ${missing} Does Not Exist`);
      assert.equal(run!.friendlymessage, `The workflow '${name}' failed at step ccs_steps[0].then[0] (update contact) after 3 attempts: contact With Id = ${missing} Does Not Exist`);
      assert.equal(run!.errorcode, 0x80040217 | 0);
      const log = JSON.parse(run!.ccs_steplog!) as { attempt: number; path: string; error?: string }[];
      assert.deepEqual(log.filter((e) => e.error).map((e) => [e.attempt, e.path]), [[1, 'ccs_steps[0].then[0]'], [2, 'ccs_steps[0].then[0]'], [3, 'ccs_steps[0].then[0]']]);
      // The same run, read by its id with the raw Web API.
      const res = await c.srv.fetch(`asyncoperations(${run!.asyncoperationid})?$select=statuscode,message`);
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { statuscode: number }).statuscode, 31);
      await c.api.update({ collection: 'workflows', key: wf, data: { statecode: 0 } });
    });

    test('a parameter value a reference gives the wrong type fails the run at once with the message a Web API client gets', async () => {
      const name = unique('Wrong parameter');
      // The first step's output is a number; msdyn_JsonGetString takes a string as its Json.
      const wf = await createWorkflow(c, {
        name, primaryentity: 'account', steps: [
          { action: 'msdyn_JsonGetNumber', parameters: { Json: '{"t":1}', PropertyPath: 't' }, as: 'reading' },
          { action: 'msdyn_JsonGetString', parameters: { Json: { $step: 'reading.ReturnValue' }, PropertyPath: 't' } },
        ],
      });
      const http = await c.srv.fetch('msdyn_JsonGetString', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ Json: 1, PropertyPath: 't' }) });
      assert.equal(http.status, 400);
      const expected = ((await http.json()) as { error: { message: string } }).error.message;
      assert.equal(expected, "Invalid value for parameter 'Json' of 'msdyn_JsonGetString': expected a string.");
      const id = await account(name);
      const [run] = await completedRuns(c, id, 1, { workflowId: wf });
      assert.equal(run!.statuscode, STATUS.failed);
      assert.equal(run!.retrycount, 0, 'a wrong call is not retried');
      assert.equal(run!.message, `ccs_steps[1] (action msdyn_JsonGetString): ${expected}`);
      assert.match(run!.friendlymessage!, /after 1 attempt: Invalid value for parameter 'Json'/);
      await c.api.update({ collection: 'workflows', key: wf, data: { statecode: 0 } });
    });

    test('actions bound to the record, $step outputs, create outputs and stop', async () => {
      const name = unique('Outputs');
      const wf = await createWorkflow(c, {
        name, primaryentity: 'account',
        steps: [
          { action: 'msdyn_JsonGetNumber', parameters: { Json: { $record: 'description' }, PropertyPath: 'limits.max', DefaultReturnValue: -1 }, as: 'max' },
          { create: 'contact', values: { lastname: { $record: 'name' }, parentcustomerid: { id: { $record: 'accountid' }, table: 'account' }, description: { $now: true } }, as: 'contact' },
          { update: 'contact', id: { $step: 'contact.id' }, values: { jobtitle: 'limit checked' } },
          { condition: { all: [{ op: 'ge', left: { $step: 'max.ReturnValue' }, right: 100 }, { not: { op: 'null', value: { $step: 'contact.id' } } }] }, then: [{ stop: 'canceled', message: 'Limit too high.' }] },
          { update: 'account', values: { telephone1: 'reached the end' } },
        ],
      });
      const high = await account(name, { description: JSON.stringify({ limits: { max: 150 } }) });
      const low = await account(name, { description: JSON.stringify({ limits: { max: 50 } }) });
      const [h] = await completedRuns(c, high, 1, { workflowId: wf });
      const [l] = await completedRuns(c, low, 1, { workflowId: wf });
      assert.equal(h!.statuscode, STATUS.canceled);
      assert.equal(h!.message, 'Limit too high.');
      assert.equal(l!.statuscode, STATUS.succeeded);
      assert.equal((await retrieve(c, 'accounts', high, ['telephone1']))['telephone1'], null);
      assert.equal((await retrieve(c, 'accounts', low, ['telephone1']))['telephone1'], 'reached the end');
      const contacts = (await c.api.retrieveAll<{ jobtitle: string; description: string; fullname: string | null; lastname: string }>({
        collection: 'contacts', select: ['jobtitle', 'description', 'lastname'], filter: `_parentcustomerid_value eq ${high}`,
      })).value;
      assert.equal(contacts.length, 1);
      assert.equal(contacts[0]!.jobtitle, 'limit checked');
      assert.equal(contacts[0]!.lastname, name);
      assert.ok(Math.abs(Date.parse(contacts[0]!.description) - Date.now()) < 10 * 60_000, '$now is the run\'s start time');
      const log = JSON.parse(h!.ccs_steplog!) as { step: string; output?: unknown }[];
      assert.deepEqual(log[0], { ...log[0], step: 'action msdyn_JsonGetNumber', output: { ReturnValue: 150 } });
      assert.equal(log.at(-1)!.step, 'stop canceled');
      await c.api.update({ collection: 'workflows', key: wf, data: { statecode: 0 } });
    });

    test('a waiting run canceled by a user (statuscode 32) is not attempted again', async () => {
      const missing = randomUUID();
      const name = unique('Cancel');
      const wf = await createWorkflow(c, {
        name, primaryentity: 'account', ccs_maxattempts: 10, triggeronupdateattributelist: 'telephone1',
        steps: [{ update: 'contact', id: missing, values: { jobtitle: 'x' } }],
      });
      const id = await account(name);
      const waiting = await eventually(async () => {
        const [r] = (await runsOf(c, id)).filter((x) => x._workflowactivationid_value === wf);
        return r && r.statuscode === STATUS.waiting && (r.retrycount ?? 0) >= 1 ? r : undefined;
      }, 20_000, 'a run waiting to retry');
      await c.api.update({ collection: 'asyncoperations', key: waiting.asyncoperationid, data: { statecode: 3, statuscode: 32 } });
      // What the run needs appears, and the record's next run queues behind the canceled one: once the next run is
      // done, the canceled one has had its turn. Had it been attempted, it would have succeeded now.
      await create(c, 'contacts', { contactid: missing, lastname: name });
      await c.api.update({ collection: 'accounts', key: id, data: { telephone1: '1' } });
      const runs = await completedRuns(c, id, 2, { workflowId: wf, ms: 30_000 });
      assert.deepEqual(runs.map((r) => [r.asyncoperationid, r.statuscode]), [[waiting.asyncoperationid, STATUS.canceled], [runs[1]!.asyncoperationid, STATUS.succeeded]]);
      await c.api.update({ collection: 'workflows', key: wf, data: { statecode: 0 } });
    });

    test('a workflow that writes the records that trigger it stops at depth 8', async () => {
      const name = unique('Loop');
      const wf = await createWorkflow(c, {
        name, primaryentity: 'account', triggeroncreate: false, triggeronupdateattributelist: 'description',
        steps: [{ update: 'account', values: { description: { $now: true } } }],
      });
      const id = await account(name);
      await c.api.update({ collection: 'accounts', key: id, data: { description: 'go' } });
      // Depth 0 is the client's update; the runs it leads to go up to depth 8 and no further.
      const runs = await completedRuns(c, id, 9, { workflowId: wf, ms: 30_000 });
      assert.equal(runs.length, 9);
      assert.ok(runs.every((r) => r.statuscode === STATUS.succeeded));
      const res = await c.srv.fetch(`asyncoperations?$select=depth&$filter=_workflowactivationid_value eq ${wf}&$orderby=sequence`);
      assert.deepEqual(((await res.json()) as { value: { depth: number }[] }).value.map((r) => r.depth), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
      await c.api.update({ collection: 'workflows', key: wf, data: { statecode: 0 } });
    });

    test('a delete trigger runs without the record; the run still names it', async () => {
      const name = unique('Deleted');
      const wf = await createWorkflow(c, {
        name, primaryentity: 'account', triggeroncreate: false, triggerondelete: true,
        steps: [{ create: 'contact', values: { lastname: name, description: { $record: 'accountid' }, jobtitle: { $record: 'name' } } }],
      });
      const id = await account(name);
      await c.api.deleteRecord({ collection: 'accounts', key: id });
      const [run] = await completedRuns(c, id, 1, { workflowId: wf });
      assert.equal(run!.statuscode, STATUS.succeeded);
      const [contact] = (await c.api.retrieveAll<{ description: string; jobtitle: string | null }>({ collection: 'contacts', select: ['description', 'jobtitle'], filter: `lastname eq '${name}'` })).value;
      assert.deepEqual([contact!.description, contact!.jobtitle], [id, null]);
      await c.api.update({ collection: 'workflows', key: wf, data: { statecode: 0 } });
    });

    test('invalid definitions are refused with a 400 naming the path; the server keeps serving', async () => {
      const bad = (data: Record<string, unknown>) => createWorkflow(c, { name: unique('Bad'), primaryentity: 'msdyn_iotalert', ...data });
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ steps: [{ action: 'msdyn_ParentIoTAlerts', bound: true, parameters: { TimespanSeconds: 60 } }, { condition: { op: 'notnull', value: 1 }, then: [{ action: 'msdyn_Foo' }] }] },
          /^ccs_steps\[1\]\.then\[0\]\.action: unknown action msdyn_Foo$/],
        [{ ccs_steps: '[{"action": ' }, /^ccs_steps: not valid JSON/],
        [{ ccs_steps: '{"action":"msdyn_JsonGetNumber"}' }, /^ccs_steps: expected a JSON array of steps$/],
        [{ steps: [{ wait: 5 }] }, /^ccs_steps\[0\]: expected one of "condition", "action", "create", "update" or "stop"$/],
        [{ steps: [{ action: 'msdyn_JsonGetNumber', create: 'account' }] }, /^ccs_steps\[0\]: a step has exactly one of/],
        [{ steps: [{ action: 'msdyn_JsonGetNumber', parameter: {} }] }, /^ccs_steps\[0\]\.parameter: unknown property of an action step/],
        [{ steps: [{ action: 'msdyn_ParentIoTAlerts' }] }, /^ccs_steps\[0\]\.action: msdyn_ParentIoTAlerts is bound to msdyn_iotalert: set "bound": true/],
        [{ steps: [{ action: 'msdyn_JsonGetNumber', bound: true }] }, /^ccs_steps\[0\]\.action: msdyn_JsonGetNumber is not bound to a table/],
        [{ steps: [{ condition: { op: 'gt', left: 1 } }] }, /^ccs_steps\[0\]\.condition\.right: required for "gt"$/],
        [{ steps: [{ condition: { op: 'like', left: 1, right: 2 } }] }, /^ccs_steps\[0\]\.condition\.op: unknown operator "like"/],
        [{ steps: [{ condition: { any: [{ op: 'null', value: { $record: 'msdyn_device.msdyn_nope' } }] } }] },
          /^ccs_steps\[0\]\.condition\.any\[0\]\.value\.\$record: unknown column msdyn_nope of msdyn_iotdevice$/],
        [{ steps: [{ condition: { op: 'null', value: { $record: 'msdyn_description.x' } } }] }, /\$record: msdyn_description is not a lookup/],
        [{ steps: [{ update: 'msdyn_iotalert', values: { msdyn_description: { $step: 'reading.ReturnValue' } } }, { action: 'msdyn_JsonGetNumber', parameters: { PropertyPath: 'a' }, as: 'reading' }] },
          /^ccs_steps\[0\]\.values\.msdyn_description\.\$step: no earlier step is named 'reading'/],
        [{ steps: [{ create: 'incident', values: { title: { $env: 'X' } } }] }, /^ccs_steps\[0\]\.values\.title\.\$env: unknown reference/],
        [{ steps: [{ create: 'incident', values: { nope: 1 } }] }, /^ccs_steps\[0\]\.values\.nope: unknown column of incident$/],
        [{ steps: [{ create: 'nosuchtable' }] }, /^ccs_steps\[0\]\.create: unknown table nosuchtable$/],
        [{ steps: [{ update: 'account', values: {} }] }, /^ccs_steps\[0\]\.id: required when updating a table other than the workflow's own \(msdyn_iotalert\)$/],
        [{ steps: [{ stop: 'failed' }] }, /^ccs_steps\[0\]\.stop: expected "succeeded" or "canceled"$/],
        [{ steps: [{ action: 'msdyn_JsonGetNumber', parameters: { PropertyPath: 'a' }, as: 'x' }, { action: 'msdyn_JsonGetNumber', parameters: { PropertyPath: 'a' }, as: 'x' }] },
          /^ccs_steps\[1\]\.as: another step is already named 'x'$/],
        // Parameters are checked as the Web API checks them, as far as they are known before a run.
        [{ steps: [{ action: 'msdyn_ParentIoTAlerts', bound: true, parameters: { TimespanSeconds: 30 } }] },
          /^ccs_steps\[0\]\.parameters\.TimespanSeconds: Parameter 'TimespanSeconds' of 'msdyn_ParentIoTAlerts' must be from 60 to 180; got 30\.$/],
        [{ steps: [{ action: 'msdyn_ParentIoTAlerts', bound: true, parameters: { TimespanSeconds: '60' } }] },
          /^ccs_steps\[0\]\.parameters\.TimespanSeconds: Invalid value for parameter 'TimespanSeconds' of 'msdyn_ParentIoTAlerts': expected a whole number\.$/],
        [{ steps: [{ action: 'msdyn_JsonGetNumber', parameters: { PropertyPath: 't', Threshold: { $record: 'msdyn_description' } } }] },
          /^ccs_steps\[0\]\.parameters\.Threshold: Request message has unresolved parameters: 'Threshold' is not a parameter of 'msdyn_JsonGetNumber'\.$/],
        [{ steps: [{ action: 'msdyn_JsonGetNumber', parameters: { Json: '{}' } }] },
          /^ccs_steps\[0\]\.parameters: Required parameter 'PropertyPath' of 'msdyn_JsonGetNumber' is missing\.$/],
        [{ primaryentity: 'nosuchtable', steps: [] }, /^primaryentity: unknown table 'nosuchtable'$/],
        [{ primaryentity: 'asyncoperation', steps: [] }, /^primaryentity: runs \(asyncoperation\) cannot start workflows$/],
        [{ triggeronupdateattributelist: 'msdyn_description, msdyn_nope', steps: [] }, /^triggeronupdateattributelist: unknown column 'msdyn_nope' of msdyn_iotalert$/],
      ];
      for (const [data, pattern] of cases) await rejectsWith(bad(data), 400, pattern);
      // Updates are checked too, on the row as it will be.
      const ok = await createWorkflow(c, { name: unique('Fine'), primaryentity: 'account', statecode: 0, statuscode: 1, steps: [] });
      await rejectsWith(c.api.update({ collection: 'workflows', key: ok, data: { primaryentity: 'msdyn_iotalert', ccs_steps: JSON.stringify([{ update: 'msdyn_iotalert', values: { telephone1: 'x' } }]) } }),
        400, /^ccs_steps\[0\]\.values\.telephone1: unknown column of msdyn_iotalert$/);
      // Names are unique (the template key).
      const taken = await createWorkflow(c, { name: unique('Taken'), primaryentity: 'account', statecode: 0, statuscode: 1 });
      const takenName = (await retrieve(c, 'workflows', taken, ['name']))['name'];
      await rejectsWith(createWorkflow(c, { name: takenName, primaryentity: 'account', statecode: 0, statuscode: 1 }), 412, /already exists/);
      // Still serving.
      assert.equal((await c.srv.fetch('WhoAmI')).status, 200);
    });
  });

  describe(`workflow runs across a restart on ${engine.name}`, () => {
    test('a run waiting to retry when the server stops is resumed by the next start on the same store', async () => {
      const storeUrl = engine.url();
      const first = await startServer(engine, { storeUrl, settings: { 'rate-limit': '0' } });
      const api = (url: string) => new DynamicsWebApi({ serverUrl: url, onTokenRefresh: async () => ADMIN_TOKEN });
      const c1: Connector = { srv: first, api: api(first.url) };
      const missing = randomUUID();
      const wf = await createWorkflow(c1, { name: 'Resumable', primaryentity: 'account', ccs_maxattempts: 10, steps: [{ update: 'contact', id: missing, values: { jobtitle: 'resumed' } }] });
      const id = await create(c1, 'accounts', { name: 'Resumable' });
      let waiting: RunView | undefined;
      await eventually(async () => {
        [waiting] = await runsOf(c1, id);
        return waiting && waiting.statuscode === STATUS.waiting && (waiting.retrycount ?? 0) >= 1 ? true : undefined;
      }, 20_000, 'a run waiting to retry');
      await first.stop({ drop: false });

      const second = await startServer(engine, { storeUrl, dataDir: first.dataDir, settings: { 'rate-limit': '0' } });
      const c2: Connector = { srv: second, api: api(second.url) };
      try {
        // What the first attempts needed now exists: the resumed run succeeds.
        await create(c2, 'contacts', { contactid: missing, lastname: 'Resumed' });
        const [run] = await completedRuns(c2, id, 1, { workflowId: wf, ms: 60_000 });
        assert.equal(run!.asyncoperationid, waiting!.asyncoperationid);
        assert.equal(run!.statuscode, STATUS.succeeded);
        assert.ok((run!.retrycount ?? 0) >= 1);
        assert.equal((await retrieve(c2, 'contacts', missing, ['jobtitle']))['jobtitle'], 'resumed');
      } finally {
        await second.stop();
      }
    });
  });
}
