import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { App } from '../../../src/app.js';
import {
  deployTemplate,
  exportTemplate,
  parseTemplateText,
  TemplateError,
  type DeployReport,
} from '../../../src/connector/templates/index.js';
import { engines } from '../../helpers/engines.js';
import { startServer, type TestServer } from '../../helpers/server.js';

const EXAMPLE = fileURLToPath(new URL('../../../examples/thermostat.json', import.meta.url));
const DOCS = fileURLToPath(new URL('../../../docs/templates.md', import.meta.url));

/** The JSON block under "## A full example" in docs/templates.md. */
function docsExample(): Record<string, unknown> {
  const text = readFileSync(DOCS, 'utf8');
  const section = text.slice(text.indexOf('## A full example'));
  const block = /```json\n([\s\S]*?)\n```/.exec(section);
  assert.ok(block, 'docs/templates.md has a full example');
  return parseTemplateText(block[1]!);
}
const example = () => parseTemplateText(readFileSync(EXAMPLE, 'utf8'));
const TIMEOUT = { timeout: 120_000 };

const deps = (app: App) => ({ store: app.store, records: app.records, metadata: app.metadata, operations: app.operations });
const deploy = (srv: TestServer, template: unknown) => deployTemplate(deps(srv.app), srv.app.system, template);
const exported = async (srv: TestServer) => (await exportTemplate(srv.app.records, srv.app.system, { includeSecrets: true })).template;

async function get<T = Record<string, unknown>>(srv: TestServer, path: string): Promise<T[]> {
  const res = await srv.fetch(path);
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { value: T[] }).value;
}

function totals(report: DeployReport): { created: number; updated: number; unchanged: number } {
  const t = { created: 0, updated: 0, unchanged: 0 };
  for (const c of Object.values(report.sections)) {
    t.created += c.created;
    t.updated += c.updated;
    t.unchanged += c.unchanged;
  }
  return t;
}

/** How many records of the configuration tables there are: a failed deploy must leave these as they were. */
async function configurationCounts(srv: TestServer): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const set of ['accounts', 'msdyn_customerassets', 'msdyn_iotdevicecategories', 'msdyn_iotpropertydefinitions', 'msdyn_iotdevicecommanddefinitions', 'msdyn_iotdevices', 'connections', 'ccs_iotrules']) {
    out[set] = (await get(srv, `${set}?$select=createdon`)).length;
  }
  return out;
}

async function expectTemplateError(fn: () => Promise<unknown>, ...patterns: RegExp[]): Promise<TemplateError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof TemplateError, `expected a TemplateError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return e;
  }
  assert.fail('the deploy was expected to fail');
}

for (const engine of engines()) {
  describe(`templates: deploy and export the thermostat example (${engine.name})`, () => {
    let srv: TestServer;
    let first: DeployReport;
    before(async () => {
      srv = await startServer(engine);
      first = await deploy(srv, example());
    });
    after(async () => {
      await srv?.stop();
    });

    test('the first deploy creates everything and updates the shipped workflow and the settings', TIMEOUT, () => {
      assert.deepEqual(first.sections, {
        records: { created: 6, updated: 0, unchanged: 0 },
        categories: { created: 1, updated: 0, unchanged: 0 },
        propertyDefinitions: { created: 4, updated: 0, unchanged: 0 },
        commandDefinitions: { created: 3, updated: 0, unchanged: 0 },
        devices: { created: 5, updated: 0, unchanged: 0 },
        connections: { created: 5, updated: 0, unchanged: 0 },
        rules: { created: 3, updated: 0, unchanged: 0 },
        workflows: { created: 0, updated: 1, unchanged: 0 },
        webhooks: { created: 1, updated: 0, unchanged: 0 },
        settings: { created: 0, updated: 1, unchanged: 0 },
      });
      assert.equal(first.registrations.length, 5);
      assert.ok(first.registrations.every((r) => r.registered), JSON.stringify(first.registrations));
    });

    test('lookups name records by key and are stored as the ids of those records', TIMEOUT, async () => {
      const [category] = await get<{ msdyn_iotdevicecategoryid: string }>(srv, "msdyn_iotdevicecategories?$filter=msdyn_name eq 'Thermostats'");
      const [account] = await get<{ accountid: string }>(srv, "accounts?$filter=name eq 'Contoso Facilities'");
      const devices = await get<Record<string, unknown>>(srv, 'msdyn_iotdevices?$orderby=msdyn_deviceid');
      assert.deepEqual(devices.map((d) => d['msdyn_deviceid']), ['thermostat-0001', 'thermostat-0002', 'thermostat-0003', 'thermostat-0004', 'thermostat-0005']);
      for (const d of devices) {
        assert.equal(d['_msdyn_category_value'], category!.msdyn_iotdevicecategoryid);
        assert.equal(d['_msdyn_account_value'], account!.accountid);
        assert.equal(d['msdyn_registrationstatus'], 192350003, String(d['msdyn_registrationmessage']));
        assert.ok(await srv.app.hub.registry.get(String(d['msdyn_deviceid'])), 'the hub identity exists');
      }
      assert.deepEqual(JSON.parse(String(devices[0]!['msdyn_tags'])), { building: 'HQ', floor: 0 });

      const [lobby] = await get<{ msdyn_customerassetid: string; _msdyn_account_value: string }>(srv, "msdyn_customerassets?$filter=msdyn_name eq 'HQ lobby HVAC'");
      assert.equal(lobby!._msdyn_account_value, account!.accountid);
      const connections = await get<Record<string, unknown>>(srv, `connections?$filter=_record2id_value eq ${String(devices[0]!['msdyn_iotdeviceid'])}`);
      assert.equal(connections.length, 1);
      assert.equal(connections[0]!['_record1id_value'], lobby!.msdyn_customerassetid);
      assert.equal(connections[0]!['_record2roleid_value'], '9c86f660-5f5b-e611-810b-00155dbd6a1d');

      const [reading] = await get<{ msdyn_iotpropertydefinitionid: string }>(srv, "msdyn_iotpropertydefinitions?$filter=msdyn_name eq 'Reading'");
      const [temperature] = await get<{ _msdyn_parentproperty_value: string; msdyn_type: number }>(srv, "msdyn_iotpropertydefinitions?$filter=msdyn_name eq 'Temperature'");
      assert.equal(temperature!._msdyn_parentproperty_value, reading!.msdyn_iotpropertydefinitionid);
      assert.equal(temperature!.msdyn_type, 192350005);

      const [setValues] = await get<Record<string, unknown>>(srv, "msdyn_iotdevicecommanddefinitions?$filter=msdyn_name eq 'Set Values'&$expand=msdyn_iotdevicecategorycommands($select=msdyn_name),msdyn_iotdevicecommandparameters($select=msdyn_name)");
      assert.deepEqual((setValues!['msdyn_iotdevicecategorycommands'] as { msdyn_name: string }[]).map((c) => c.msdyn_name), ['Thermostats']);
      assert.deepEqual((setValues!['msdyn_iotdevicecommandparameters'] as { msdyn_name: string }[]).map((c) => c.msdyn_name), ['Reading']);

      const rules = await get<Record<string, unknown>>(srv, "ccs_iotrules?$orderby=ccs_name");
      assert.deepEqual(rules.map((r) => r['ccs_name']), ['Thermostat hot for 2 minutes', 'Thermostat silent', 'Thermostat too hot']);
      assert.ok(rules.every((r) => r['_ccs_category_value'] === category!.msdyn_iotdevicecategoryid));
      assert.deepEqual(JSON.parse(String(rules[2]!['ccs_condition'])), { measure: 'Temperature', op: 'gt', value: 70 });

      const [workflow] = await get<{ statecode: number; statuscode: number }>(srv, "workflows?$filter=name eq 'IoT - Create case from alert'");
      assert.deepEqual([workflow!.statecode, workflow!.statuscode], [1, 2]);
      const [settings] = await get<{ msdyn_commandnameproperty: string }>(srv, 'msdyn_iotsettingses');
      assert.equal(settings!.msdyn_commandnameproperty, 'CommandName');
      const [webhook] = await get<Record<string, unknown>>(srv, 'ccs_webhooks');
      assert.equal(webhook!['ccs_name'], 'Alerts to the ticketing system');
      assert.equal(webhook!['statecode'], 1, 'the example webhook is disabled');
    });

    test('deploying it again changes nothing', TIMEOUT, async () => {
      const before = await get<{ versionnumber: number }>(srv, 'msdyn_iotdevices?$select=versionnumber&$orderby=msdyn_deviceid');
      const again = await deploy(srv, example());
      assert.deepEqual(totals(again), { created: 0, updated: 0, unchanged: 30 });
      assert.deepEqual(again.registrations, []);
      const after = await get<{ versionnumber: number }>(srv, 'msdyn_iotdevices?$select=versionnumber&$orderby=msdyn_deviceid');
      assert.deepEqual(after, before);
    });

    test('export leaves out write-only values unless asked, and says so', TIMEOUT, async () => {
      const { template, warnings } = await exportTemplate(srv.app.records, srv.app.system);
      assert.deepEqual(warnings, [
        'webhooks (Alerts to the ticketing system): ccs_secret is write-only and was left out; fill it in before deploying elsewhere, or export with secrets',
      ]);
      assert.doesNotMatch(JSON.stringify(template), /replace-this-with/);
      const [webhook] = (await exportTemplate(srv.app.records, srv.app.system, { includeSecrets: true })).template['webhooks'] as Record<string, unknown>[];
      assert.equal(webhook!['ccs_secret'], 'replace-this-with-a-long-random-secret');
    });

    test('export → deploy into a fresh data dir → export gives the same configuration', TIMEOUT, async () => {
      const one = await exported(srv);
      assert.equal(one['$schema'], 'ccs-template/v1');
      // Configuration only: no alerts, commands or cases, and never a device key.
      const text = JSON.stringify(one);
      assert.doesNotMatch(text, /SharedAccessKey|primaryKey|msdyn_registrationstatus|msdyn_iotalertid|msdyn_alertdata|incidentid|msdyn_iotdevicecommandid/);
      assert.deepEqual((one['devices'] as { msdyn_deviceid: string }[]).map((d) => d.msdyn_deviceid).length, 5);
      assert.deepEqual(one['workflows'], [{ name: 'IoT - Create case from alert', statecode: 1, statuscode: 2 }]);

      const fresh = await startServer(engine);
      try {
        const report = await deploy(fresh, JSON.parse(JSON.stringify(one)));
        assert.equal(totals(report).created, 28);
        assert.ok(report.registrations.every((r) => r.registered));
        const two = await exported(fresh);
        assert.deepEqual(two, one);
        assert.equal(JSON.stringify(two), JSON.stringify(one), 'the same text, member order included');
        // And the example itself deploys unchanged on top of its own export.
        assert.deepEqual(totals(await deploy(fresh, example())), { created: 0, updated: 0, unchanged: 30 });
      } finally {
        await fresh.stop();
      }
    });

    test('a changed template updates what changed, links and unlinks N:N records, and nothing else', TIMEOUT, async () => {
      const t = example() as Record<string, unknown>;
      const rules = t['rules'] as Record<string, unknown>[];
      rules[0] = { ...rules[0], ccs_condition: { measure: 'Temperature', op: 'gt', value: 72 } };
      const commands = t['commandDefinitions'] as Record<string, unknown>[];
      commands[1] = { ...commands[1], msdyn_iotdevicecommandparameters: [] };
      const report = await deploy(srv, t);
      assert.deepEqual(report.sections['rules'], { created: 0, updated: 1, unchanged: 2 });
      assert.deepEqual(report.sections['commandDefinitions'], { created: 0, updated: 1, unchanged: 2 });
      assert.equal(totals(report).updated, 2);
      const [rule] = await get<{ ccs_condition: string }>(srv, "ccs_iotrules?$filter=ccs_name eq 'Thermostat too hot'");
      assert.equal(JSON.parse(rule!.ccs_condition).value, 72);
      const [notification] = await get<Record<string, unknown>>(srv, "msdyn_iotdevicecommanddefinitions?$filter=msdyn_name eq 'Notification'&$expand=msdyn_iotdevicecommandparameters($select=msdyn_name)");
      assert.deepEqual(notification!['msdyn_iotdevicecommandparameters'], []);
      // Back as the example says.
      assert.equal(totals(await deploy(srv, example())).updated, 2);
    });
  });

  describe(`templates: the full example of docs/templates.md (${engine.name})`, () => {
    test('deploys, works, deploys again unchanged, and round-trips through export', TIMEOUT, async () => {
      const srv = await startServer(engine);
      try {
        const report = await deploy(srv, docsExample());
        assert.deepEqual(report.sections, {
          tables: { created: 1, updated: 0, unchanged: 0 },
          records: { created: 2, updated: 0, unchanged: 0 },
          categories: { created: 1, updated: 0, unchanged: 0 },
          propertyDefinitions: { created: 1, updated: 0, unchanged: 0 },
          commandDefinitions: { created: 1, updated: 0, unchanged: 0 },
          devices: { created: 2, updated: 0, unchanged: 0 },
          connections: { created: 2, updated: 0, unchanged: 0 },
          rules: { created: 1, updated: 0, unchanged: 0 },
          workflows: { created: 1, updated: 1, unchanged: 0 },
          webhooks: { created: 1, updated: 0, unchanged: 0 },
          settings: { created: 0, updated: 1, unchanged: 0 },
        });
        assert.ok(report.registrations.every((r) => r.registered));
        // The device's desired properties reached its twin on registration.
        assert.equal((await srv.app.hub.getTwin('pump-1')).properties.desired['maxSpeed'], 3000);
        const [workflow] = await get<{ statecode: number; ccs_steps: string }>(srv, "workflows?$filter=name eq 'Pumps - anomalies are high priority'");
        assert.equal(workflow!.statecode, 1);
        assert.equal(JSON.parse(workflow!.ccs_steps)[0].then[0].update, 'msdyn_iotalert');
        assert.deepEqual(totals(await deploy(srv, docsExample())), { created: 0, updated: 0, unchanged: 15 });

        const one = await exported(srv);
        const fresh = await startServer(engine);
        try {
          await deploy(fresh, JSON.parse(JSON.stringify(one)));
          assert.deepEqual(await exported(fresh), one);
        } finally {
          await fresh.stop();
        }
      } finally {
        await srv.stop();
      }
    });
  });

  describe(`templates: deploys at the same time (${engine.name})`, () => {
    test('take turns: the second finds what the first created', TIMEOUT, async () => {
      const srv = await startServer(engine);
      try {
        const reports = await Promise.all([deploy(srv, example()), deploy(srv, example()), deploy(srv, example())]);
        assert.deepEqual(reports.map((r) => totals(r).created).sort(), [0, 0, 28]);
        assert.equal((await get(srv, 'msdyn_iotdevicecategories')).length, 1);
        assert.equal((await get(srv, 'msdyn_iotdevices')).length, 5);
        assert.equal((await get(srv, 'connections')).length, 5);
      } finally {
        await srv.stop();
      }
    });
  });

  describe(`templates: custom tables and columns (${engine.name})`, () => {
    const tableTemplate = () => ({
      $schema: 'ccs-template/v1',
      tables: [
        {
          // Listed before the table its lookup points at: deploy creates that one first.
          SchemaName: 'new_Room',
          DisplayName: 'Room',
          DisplayCollectionName: 'Rooms',
          Attributes: [
            { '@odata.type': 'Microsoft.Dynamics.CRM.StringAttributeMetadata', SchemaName: 'new_Name', IsPrimaryName: true, DisplayName: 'Name', MaxLength: 100 },
            { '@odata.type': 'Microsoft.Dynamics.CRM.LookupAttributeMetadata', SchemaName: 'new_Building', DisplayName: 'Building', Targets: ['new_building'] },
            { '@odata.type': 'Microsoft.Dynamics.CRM.IntegerAttributeMetadata', SchemaName: 'new_Seats', DisplayName: 'Seats', MinValue: 0, MaxValue: 500 },
          ],
        },
        {
          SchemaName: 'new_Building',
          DisplayName: { LocalizedLabels: [{ Label: 'Building', LanguageCode: 1033 }] },
          Attributes: [
            { '@odata.type': 'Microsoft.Dynamics.CRM.StringAttributeMetadata', SchemaName: 'new_Name', IsPrimaryName: true, DisplayName: 'Name', MaxLength: 100 },
            { '@odata.type': 'Microsoft.Dynamics.CRM.PicklistAttributeMetadata', SchemaName: 'new_Kind', DisplayName: 'Kind', OptionSet: { Options: [{ Value: 100000000, Label: 'Office' }, { Value: 100000001, Label: 'Warehouse' }] } },
          ],
        },
        {
          LogicalName: 'msdyn_iotdevice',
          Attributes: [{ '@odata.type': 'Microsoft.Dynamics.CRM.LookupAttributeMetadata', SchemaName: 'new_Room', DisplayName: 'Room', Targets: ['new_room'] }],
        },
      ],
      records: [
        { $table: 'new_building', new_name: 'HQ', new_kind: 100000000 },
        { $table: 'new_room', new_name: 'Lobby', new_building: 'HQ', new_seats: 12 },
      ],
      devices: [{ msdyn_deviceid: 'room-sensor-1', msdyn_name: 'Lobby sensor', new_room: 'Lobby' }],
    });

    test('are created, usable through the Web API, unchanged on a second deploy, and exported', TIMEOUT, async () => {
      const srv = await startServer(engine);
      try {
        const report = await deploy(srv, tableTemplate());
        assert.deepEqual(report.sections['tables'], { created: 2, updated: 1, unchanged: 0 });
        assert.deepEqual(report.sections['records'], { created: 2, updated: 0, unchanged: 0 });
        assert.deepEqual(report.sections['devices'], { created: 1, updated: 0, unchanged: 0 });

        const [hq] = await get<{ new_buildingid: string; new_kind: number }>(srv, 'new_buildings');
        assert.equal(hq!.new_kind, 100000000);
        const [lobby] = await get<{ new_roomid: string; _new_building_value: string; new_seats: number }>(srv, 'new_rooms');
        assert.equal(lobby!._new_building_value, hq!.new_buildingid);
        const [device] = await get<{ _new_room_value: string }>(srv, "msdyn_iotdevices?$filter=msdyn_deviceid eq 'room-sensor-1'&$select=_new_room_value");
        assert.equal(device!._new_room_value, lobby!.new_roomid);
        const created = await srv.fetch('new_rooms', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ new_name: 'Kitchen', new_seats: 4, 'new_Building@odata.bind': `/new_buildings(${hq!.new_buildingid})` }),
        });
        assert.equal(created.status, 204, await created.clone().text());
        const expanded = await get<{ new_Building: { new_name: string } }>(srv, "new_rooms?$filter=new_name eq 'Kitchen'&$expand=new_Building($select=new_name)");
        assert.equal(expanded[0]!.new_Building.new_name, 'HQ');

        const again = await deploy(srv, tableTemplate());
        assert.deepEqual(totals(again), { created: 0, updated: 0, unchanged: 6 });

        const one = await exported(srv);
        const tables = one['tables'] as { SchemaName?: string; LogicalName?: string }[];
        assert.deepEqual(tables.map((t) => t.SchemaName ?? t.LogicalName), ['new_Building', 'new_Room', 'msdyn_iotdevice']);
        const fresh = await startServer(engine);
        try {
          const r = await deploy(fresh, JSON.parse(JSON.stringify(one)));
          assert.deepEqual(r.sections['tables'], { created: 2, updated: 1, unchanged: 0 });
          assert.deepEqual(await exported(fresh), one);
        } finally {
          await fresh.stop();
        }
      } finally {
        await srv.stop();
      }
    });
  });

  describe(`templates: bad templates are refused whole, naming the item (${engine.name})`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer(engine);
    });
    after(async () => {
      await srv?.stop();
    });

    const cases: { name: string; change: (t: Record<string, unknown>) => void; patterns: RegExp[] }[] = [
      {
        name: 'an unknown section',
        change: (t) => {
          t['gadgets'] = [];
        },
        patterns: [/gadgets: unknown section/],
      },
      {
        name: 'an unknown column',
        change: (t) => {
          (t['devices'] as Record<string, unknown>[])[2]!['msdyn_colour'] = 'blue';
        },
        patterns: [/devices\[2\] \(thermostat-0003\): unknown column 'msdyn_colour' on table 'msdyn_iotdevice'/],
      },
      {
        name: 'a lookup naming nothing',
        change: (t) => {
          (t['devices'] as Record<string, unknown>[])[4]!['msdyn_category'] = 'Thermostat';
        },
        patterns: [/devices\[4\] \(thermostat-0005\): msdyn_category: no msdyn_iotdevicecategory with msdyn_name 'Thermostat' in the template or in ccs/],
      },
      {
        name: 'a connection to a device the template does not have',
        change: (t) => {
          (t['connections'] as Record<string, unknown>[])[0]!['device'] = 'thermostat-9999';
        },
        patterns: [/connections\[0\] \(msdyn_customerasset 'HQ lobby HVAC' → thermostat-9999\): record2id: no msdyn_iotdevice with msdyn_deviceid 'thermostat-9999'/],
      },
      {
        name: 'a wrong value type and a duplicate key',
        change: (t) => {
          const devices = t['devices'] as Record<string, unknown>[];
          devices[0]!['msdyn_timezone'] = 'UTC';
          devices.push({ ...devices[1] });
        },
        patterns: [/devices\[0\] \(thermostat-0001\): msdyn_timezone: Invalid value '"UTC"' for column 'msdyn_timezone': expected a whole number/, /devices\[5\] \(thermostat-0002\): the same record as devices\[1\]/, /2 problems/],
      },
      {
        name: 'a rule whose condition is not valid',
        change: (t) => {
          (t['rules'] as Record<string, unknown>[])[1]!['ccs_condition'] = { measure: 'Temperature', op: 'hotter', value: 75 };
        },
        patterns: [/rules\[1\] \(Thermostat hot for 2 minutes\): .*ccs_condition.*op/, /nothing from the records sections was written/],
      },
      {
        name: 'a table without a customization prefix',
        change: (t) => {
          t['tables'] = [{ SchemaName: 'Room', DisplayName: 'Room', Attributes: [{ '@odata.type': 'Microsoft.Dynamics.CRM.StringAttributeMetadata', SchemaName: 'new_Name', IsPrimaryName: true, MaxLength: 100 }] }];
        },
        patterns: [/tables\[0\] \(room\): Table: 'SchemaName' 'Room' must start with a customization prefix/],
      },
      {
        name: 'a missing or wrong $schema',
        change: (t) => {
          t['$schema'] = 'ccs-template/v0';
        },
        patterns: [/\$schema: must be "ccs-template\/v1"/],
      },
    ];

    for (const c of cases) {
      test(`${c.name}: nothing is applied`, TIMEOUT, async () => {
        const before = await configurationCounts(srv);
        const t = example() as Record<string, unknown>;
        c.change(t);
        await expectTemplateError(() => deploy(srv, t), ...c.patterns);
        assert.deepEqual(await configurationCounts(srv), before);
        assert.equal(srv.app.records.model.table('room'), undefined);
      });
    }

    test('not JSON, or not an object', TIMEOUT, async () => {
      assert.throws(() => parseTemplateText('{"$schema": '), (e: unknown) => e instanceof TemplateError && /not valid JSON/.test(e.message));
      assert.throws(() => parseTemplateText('[]'), (e: unknown) => e instanceof TemplateError && /JSON object/.test(e.message));
      await expectTemplateError(() => deploy(srv, { $schema: 'ccs-template/v1', devices: {} }), /devices: must be an array of msdyn_iotdevice records/);
      await expectTemplateError(() => deploy(srv, { $schema: 'ccs-template/v1', devices: [{ msdyn_name: 'no id' }] }), /devices\[0\]: 'msdyn_deviceid' is required: it is the item's key/);
      await expectTemplateError(
        () => deploy(srv, { $schema: 'ccs-template/v1', devices: [{ msdyn_deviceid: 'x', msdyn_iotdeviceid: '0b5e6f7a-1111-4222-8333-944455556666', createdon: '2024-01-01T00:00:00Z' }] }),
        /devices\[0\] \(x\): msdyn_iotdeviceid: is the record id; templates name records by their key, never by id/,
        /devices\[0\] \(x\): createdon: is set by the platform/,
      );
      await expectTemplateError(
        () => deploy(srv, { $schema: 'ccs-template/v1', connections: [{ record: 'HQ', device: 'x' }] }),
        /connections\[0\]: "record" is required: the connected record as \{"<table>": "<key>"\}/,
      );
      await expectTemplateError(() => deploy(srv, { $schema: 'ccs-template/v1', records: [{ $table: 'msdyn_iotdevice', msdyn_deviceid: 'x' }] }), /records\[0\]: "\$table": msdyn_iotdevice records go in the 'devices' section/);
    });

    test('through the Web API: ccs_DeployTemplate and ccs_ExportTemplate, for administrators only', TIMEOUT, async () => {
      const post = (body: unknown, token?: string) =>
        srv.fetch('ccs_DeployTemplate', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...(token ? { token } : {}) });
      const bad = await post({ Template: JSON.stringify({ $schema: 'ccs-template/v1', categories: [{ msdyn_name: 'Pumps', msdyn_size: 3 }] }) });
      assert.equal(bad.status, 400);
      const error = (await bad.json()) as { error: { message: string } };
      assert.match(error.error.message, /categories\[0\] \(Pumps\): unknown column 'msdyn_size'/);
      const notJson = await post({ Template: '{' });
      assert.equal(notJson.status, 400);

      const { token } = await srv.app.tokens.create({ role: 'agent', name: 'agent' });
      assert.equal((await post({ Template: JSON.stringify({ $schema: 'ccs-template/v1' }) }, token)).status, 403);
      assert.equal((await srv.fetch('ccs_ExportTemplate()', { token })).status, 403);

      const ok = await post({ Template: JSON.stringify({ $schema: 'ccs-template/v1', categories: [{ msdyn_name: 'Pumps' }] }) });
      assert.equal(ok.status, 200, await ok.clone().text());
      const body = (await ok.json()) as { Created: number; Updated: number; Unchanged: number; Report: string };
      assert.deepEqual([body.Created, body.Updated, body.Unchanged], [1, 0, 0]);
      assert.deepEqual(JSON.parse(body.Report).sections, { categories: { created: 1, updated: 0, unchanged: 0 } });

      const exportedRes = await srv.fetch('ccs_ExportTemplate()');
      assert.equal(exportedRes.status, 200);
      const template = JSON.parse(((await exportedRes.json()) as { Template: string }).Template) as Record<string, unknown>;
      assert.deepEqual(template['categories'], [{ msdyn_name: 'Pumps' }]);
      // The server keeps serving.
      assert.equal((await srv.fetch('WhoAmI')).status, 200);
    });
  });
}
