import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { renderCsdl, renderServiceDocument } from '../../src/metadata/csdl.js';
import { Model, type OperationDef, type TableDef } from '../../src/metadata/index.js';
import { standardManyToMany, standardTables } from '../../src/metadata/standard/index.js';

const NS = 'Microsoft.Dynamics.CRM';
const model = new Model(standardTables, standardManyToMany);

const operations: OperationDef[] = [
  {
    name: 'msdyn_ParentIoTAlerts',
    kind: 'action',
    boundTo: 'msdyn_iotalert',
    parameters: [{ name: 'TimespanSeconds', type: 'Edm.Int32', nullable: false }],
  },
  {
    name: 'WhoAmI',
    kind: 'function',
    parameters: [],
    returns: {
      properties: [
        { name: 'BusinessUnitId', type: 'Edm.Guid' },
        { name: 'UserId', type: 'Edm.Guid' },
        { name: 'OrganizationId', type: 'Edm.Guid' },
      ],
    },
  },
  {
    name: 'msdyn_RegisterIoTDevice',
    kind: 'action',
    parameters: [{ name: 'IoTDeviceIds', type: 'Edm.String', nullable: false }],
  },
];

// --- a minimal XML reader: our CSDL has elements and attributes only, no text, comments or CDATA -----------------

interface XmlNode {
  readonly name: string;
  readonly attrs: Record<string, string>;
  readonly children: XmlNode[];
}

function unescapeXml(value: string): string {
  assert.doesNotMatch(value, /&(?!(amp|lt|gt|quot|apos);)/, `bare & in attribute value ${value}`);
  return value.replace(/&(lt|gt|quot|apos|amp);/g, (_, e: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[e]!);
}

function parseXml(xml: string): XmlNode {
  const body = xml.replace(/^<\?xml [^?]*\?>/, '');
  const root: XmlNode = { name: '#document', attrs: {}, children: [] };
  const stack: XmlNode[] = [root];
  const tag = /<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[\w:.-]+="[^"<>]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < body.length) {
    tag.lastIndex = i;
    const m = tag.exec(body);
    assert.ok(m, `malformed XML at ${i}: ${body.slice(i, i + 80)}`);
    const [, close, name, attrText, selfClosing] = m;
    if (close) {
      assert.equal(stack.pop()?.name, name, `unbalanced </${name}>`);
    } else {
      const attrs: Record<string, string> = {};
      for (const a of attrText!.matchAll(/([\w:.-]+)="([^"]*)"/g)) {
        assert.ok(!(a[1]! in attrs), `duplicate attribute ${a[1]} on <${name}>`);
        attrs[a[1]!] = unescapeXml(a[2]!);
      }
      const node: XmlNode = { name: name!, attrs, children: [] };
      stack.at(-1)!.children.push(node);
      if (!selfClosing) stack.push(node);
    }
    i = tag.lastIndex;
  }
  assert.equal(stack.length, 1, 'unclosed elements');
  assert.equal(root.children.length, 1);
  return root.children[0]!;
}

const kids = (node: XmlNode, name: string) => node.children.filter((c) => c.name === name);
const kid = (node: XmlNode, name: string) => {
  const found = kids(node, name);
  assert.equal(found.length, 1, `one <${name}> in <${node.name} ${JSON.stringify(node.attrs)}>`);
  return found[0]!;
};
function* walk(node: XmlNode): Generator<XmlNode> {
  yield node;
  for (const c of node.children) yield* walk(c);
}

function schemaOf(xml: string): XmlNode {
  const edmx = parseXml(xml);
  assert.equal(edmx.name, 'edmx:Edmx');
  assert.equal(edmx.attrs['Version'], '4.0');
  const schema = kid(kid(edmx, 'edmx:DataServices'), 'Schema');
  assert.equal(schema.attrs['Namespace'], NS);
  assert.equal(schema.attrs['Alias'], 'mscrm');
  return schema;
}

/** `Collection(Microsoft.Dynamics.CRM.x)` or `Microsoft.Dynamics.CRM.x` → `x`. */
function typeName(type: string): string {
  const m = /^(?:Collection\()?Microsoft\.Dynamics\.CRM\.(\w+)\)?$/.exec(type);
  assert.ok(m, `type ${type} is not a full Microsoft.Dynamics.CRM name`);
  return m[1]!;
}

describe('renderCsdl', () => {
  const xml = renderCsdl(model, operations);
  const schema = schemaOf(xml);
  const types = new Map(kids(schema, 'EntityType').map((t) => [t.attrs['Name']!, t]));

  it('has the abstract base type and one entity type per table, keyed by the primary id', () => {
    assert.equal(types.get('crmbaseentity')?.attrs['Abstract'], 'true');
    for (const table of model.tables()) {
      const type = types.get(table.logicalName);
      assert.ok(type, table.logicalName);
      assert.equal(type.attrs['BaseType'], `${NS}.crmbaseentity`);
      const props = kids(type, 'Property').map((p) => p.attrs['Name']!);
      assert.equal(new Set(props).size, props.length, `${table.logicalName} property names`);
      assert.equal(kid(kid(type, 'Key'), 'PropertyRef').attrs['Name'], table.primaryIdAttribute);
      assert.ok(props.includes(table.primaryIdAttribute));
    }
    const alert = types.get('msdyn_iotalert')!;
    const prop = (name: string) => kids(alert, 'Property').find((p) => p.attrs['Name'] === name)?.attrs['Type'];
    assert.equal(prop('msdyn_iotalertid'), 'Edm.Guid');
    assert.equal(prop('msdyn_description'), 'Edm.String');
    assert.equal(prop('msdyn_alerttime'), 'Edm.DateTimeOffset');
    assert.equal(prop('msdyn_alerttype'), 'Edm.Int32');
    assert.equal(prop('statecode'), 'Edm.Int32');
    assert.equal(prop('versionnumber'), 'Edm.Int64');
    assert.equal(prop('msdyn_alertpriorityscore'), 'Edm.Double');
    assert.equal(prop('_msdyn_device_value'), 'Edm.Guid');
    assert.equal(prop('msdyn_device'), undefined, 'lookups appear only as _x_value');
    assert.equal(kids(types.get('connection')!, 'Property').find((p) => p.attrs['Name'] === '_record1id_value')?.attrs['Type'], 'Edm.Guid');
    assert.ok(!kids(types.get('connection')!, 'Property').some((p) => p.attrs['Name']!.endsWith('_type')));
  });

  it('writes navigation properties whose partners and referential constraints resolve', () => {
    for (const [name, type] of types) {
      const props = new Set(kids(type, 'Property').map((p) => p.attrs['Name']!));
      const navs = kids(type, 'NavigationProperty');
      for (const nav of navs) {
        assert.ok(!props.has(nav.attrs['Name']!), `${name}.${nav.attrs['Name']} is also a property`);
        const targetName = typeName(nav.attrs['Type']!);
        const target = types.get(targetName);
        assert.ok(target, `${name}.${nav.attrs['Name']} → ${targetName}`);
        const partner = kids(target, 'NavigationProperty').find((n) => n.attrs['Name'] === nav.attrs['Partner']);
        assert.ok(partner, `${name}.${nav.attrs['Name']}: partner ${nav.attrs['Partner']} on ${targetName}`);
        assert.equal(partner.attrs['Partner'], nav.attrs['Name'], `${targetName}.${partner.attrs['Name']} points back`);
        assert.equal(typeName(partner.attrs['Type']!), name);
        const single = !nav.attrs['Type']!.startsWith('Collection(');
        const constraints = kids(nav, 'ReferentialConstraint');
        if (single) {
          assert.equal(constraints.length, 1, `${name}.${nav.attrs['Name']} constraint`);
          assert.ok(props.has(constraints[0]!.attrs['Property']!));
          assert.equal(constraints[0]!.attrs['ReferencedProperty'], kid(kid(target, 'Key'), 'PropertyRef').attrs['Name']);
        } else {
          assert.equal(constraints.length, 0);
        }
      }
    }
    const nav = (t: string, n: string) => kids(types.get(t)!, 'NavigationProperty').find((x) => x.attrs['Name'] === n)?.attrs;
    assert.deepEqual(nav('msdyn_iotalert', 'msdyn_Device'), {
      Name: 'msdyn_Device', Type: `${NS}.msdyn_iotdevice`, Nullable: 'false', Partner: 'msdyn_msdyn_iotdevice_msdyn_iotalert_Device',
    });
    assert.equal(nav('msdyn_iotdevice', 'msdyn_msdyn_iotdevice_msdyn_iotalert_Device')?.['Type'], `Collection(${NS}.msdyn_iotalert)`);
    assert.equal(nav('msdyn_iotalert', 'msdyn_ParentAlert')?.['Partner'], 'msdyn_iotalert_msdyn_iotalert');
    assert.equal(nav('incident', 'msdyn_incident_msdyn_customerasset')?.['Type'], `Collection(${NS}.msdyn_customerasset)`);
    assert.equal(nav('incident', 'customerid_contact')?.['Type'], `${NS}.contact`);
  });

  it('never uses the mscrm alias in a type reference', () => {
    for (const node of walk(schema)) {
      for (const [k, v] of Object.entries(node.attrs)) {
        if (k === 'Alias') continue;
        assert.ok(!/(^|\()mscrm\./.test(v), `<${node.name} ${k}="${v}">`);
      }
    }
  });

  it('declares operations, their response types and imports the way odata2ts reads them', () => {
    const action = kids(schema, 'Action').find((a) => a.attrs['Name'] === 'msdyn_ParentIoTAlerts');
    assert.ok(action);
    assert.equal(action.attrs['IsBound'], 'true');
    assert.deepEqual(kids(action, 'Parameter').map((p) => p.attrs), [
      { Name: 'entity', Type: `${NS}.msdyn_iotalert`, Nullable: 'false' },
      { Name: 'TimespanSeconds', Type: 'Edm.Int32', Nullable: 'false' },
    ]);
    assert.equal(kids(action, 'ReturnType').length, 0);

    const fn = kid(schema, 'Function');
    assert.equal(fn.attrs['Name'], 'WhoAmI');
    assert.equal(fn.attrs['IsBound'], undefined);
    assert.equal(kid(fn, 'ReturnType').attrs['Type'], `${NS}.WhoAmIResponse`);
    const response = kids(schema, 'ComplexType').find((c) => c.attrs['Name'] === 'WhoAmIResponse');
    assert.deepEqual(response?.children.map((p) => [p.attrs['Name'], p.attrs['Type']]), [
      ['BusinessUnitId', 'Edm.Guid'], ['UserId', 'Edm.Guid'], ['OrganizationId', 'Edm.Guid'],
    ]);

    const container = kid(schema, 'EntityContainer');
    assert.equal(container.attrs['Name'], 'System');
    assert.deepEqual(kids(container, 'FunctionImport').map((f) => f.attrs), [
      { Name: 'WhoAmI', Function: `${NS}.WhoAmI`, IncludeInServiceDocument: 'false' },
    ]);
    // Bound operations get no import; unbound ones do.
    assert.deepEqual(kids(container, 'ActionImport').map((f) => f.attrs), [
      { Name: 'msdyn_RegisterIoTDevice', Action: `${NS}.msdyn_RegisterIoTDevice` },
    ]);
    assert.equal(kid(kids(schema, 'Action').find((a) => a.attrs['Name'] === 'msdyn_RegisterIoTDevice')!, 'Parameter').attrs['Unicode'], 'false');
  });

  it('binds every entity set navigation to the entity set of its target', () => {
    const container = kid(schema, 'EntityContainer');
    const sets = new Map(kids(container, 'EntitySet').map((s) => [s.attrs['Name']!, s]));
    assert.equal(sets.size, model.tables().length);
    for (const table of model.tables()) {
      const set = sets.get(table.entitySetName);
      assert.ok(set, table.entitySetName);
      assert.equal(set.attrs['EntityType'], `${NS}.${table.logicalName}`);
      const navs = kids(types.get(table.logicalName)!, 'NavigationProperty');
      const bindings = kids(set, 'NavigationPropertyBinding');
      assert.equal(bindings.length, navs.length);
      for (const b of bindings) {
        const nav = navs.find((n) => n.attrs['Name'] === b.attrs['Path']);
        assert.ok(nav, `${table.entitySetName} binding ${b.attrs['Path']}`);
        assert.equal(sets.get(b.attrs['Target']!)?.attrs['EntityType'], `${NS}.${typeName(nav.attrs['Type']!)}`);
      }
    }
  });

  it('leaves out operations bound to a table the model does not have', () => {
    const orphan: OperationDef = { name: 'new_Gone', kind: 'action', boundTo: 'new_gone', parameters: [] };
    const s = schemaOf(renderCsdl(model, [...operations, orphan]));
    assert.ok(!kids(s, 'Action').some((a) => a.attrs['Name'] === 'new_Gone'));
  });

  it('adds descriptions, Core.Computed and alternate keys only when annotations are asked for', () => {
    assert.ok(!xml.includes('<Annotation'));
    const annotated = renderCsdl(model, operations, { annotations: true });
    const edmx = parseXml(annotated);
    const includes = kids(edmx, 'edmx:Reference').flatMap((r) => kids(r, 'edmx:Include').map((i) => i.attrs['Namespace']));
    assert.deepEqual(includes.sort(), ['OData.Community.Keys.V1', 'Org.OData.Core.V1']);
    const s = kid(kid(edmx, 'edmx:DataServices'), 'Schema');
    const type = (n: string) => kids(s, 'EntityType').find((t) => t.attrs['Name'] === n)!;
    const terms = (t: string, p: string) =>
      kids(kids(type(t), 'Property').find((x) => x.attrs['Name'] === p)!, 'Annotation').map((a) => a.attrs);
    assert.deepEqual(terms('msdyn_iotalert', 'msdyn_description'), [
      { Term: 'Org.OData.Core.V1.Description', String: 'A description for the alert.' },
    ]);
    assert.deepEqual(terms('msdyn_iotalert', 'versionnumber'), [{ Term: 'Org.OData.Core.V1.Computed', Bool: 'true' }]);
    assert.deepEqual(terms('msdyn_iotalert', 'msdyn_alerttype'), []);

    const keys = kids(type('msdyn_iotdevice'), 'Annotation').find((a) => a.attrs['Term'] === 'OData.Community.Keys.V1.AlternateKeys');
    assert.ok(keys);
    const refs = [...walk(keys)].filter((n) => n.attrs['Property'] === 'Name').map((n) => n.attrs['PropertyPath']);
    assert.deepEqual(refs, ['msdyn_deviceid']);
    assert.ok(!kids(type('msdyn_iotalert'), 'Annotation').some((a) => a.attrs['Term'] === 'OData.Community.Keys.V1.AlternateKeys'));
  });

  it('escapes names, labels and descriptions', () => {
    const odd: TableDef = {
      logicalName: 'new_odd',
      schemaName: 'new_Odd',
      entitySetName: 'new_odds',
      displayName: 'Odd',
      description: `Tom & Jerry's <"table">`,
      primaryIdAttribute: 'new_oddid',
      primaryNameAttribute: 'new_name',
      columns: [{ logicalName: 'new_name', displayName: 'Name', type: 'string', maxLength: 100, description: 'a < b && c > d' }],
    };
    const s = schemaOf(renderCsdl(new Model([...standardTables, odd], standardManyToMany), [], { annotations: true }));
    const type = kids(s, 'EntityType').find((t) => t.attrs['Name'] === 'new_odd')!;
    assert.equal(kid(type, 'Annotation').attrs['String'], `Tom & Jerry's <"table">`);
    const name = kids(type, 'Property').find((p) => p.attrs['Name'] === 'new_name')!;
    assert.equal(kid(name, 'Annotation').attrs['String'], 'a < b && c > d');
  });
});

describe('renderServiceDocument', () => {
  it('lists the entity sets sorted by name', () => {
    const doc = renderServiceDocument(model, 'http://localhost/api/data/v9.2/$metadata');
    assert.equal(doc['@odata.context'], 'http://localhost/api/data/v9.2/$metadata');
    const names = doc.value.map((v) => v.name);
    assert.deepEqual(names, [...names].sort());
    assert.equal(names.length, model.tables().length);
    assert.deepEqual(doc.value.find((v) => v.name === 'msdyn_iotalerts'), { name: 'msdyn_iotalerts', kind: 'EntitySet', url: 'msdyn_iotalerts' });
  });
});

describe('odata2ts', () => {
  it('generates a service with entity sets, a bound action and an unbound function from our $metadata', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ccs-odata2ts-'));
    try {
      const source = join(dir, 'metadata.xml');
      const out = join(dir, 'out');
      await writeFile(source, renderCsdl(model, operations));
      // The CLI insists on a tsconfig.json in its working directory.
      await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'ES2022', strict: true } }));
      const require = createRequire(import.meta.url);
      const cli = join(dirname(require.resolve('@odata2ts/odata2ts/package.json')), 'lib', 'run-cli.js');
      const shim = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'odata2ts-typescript-shim.cjs');
      const { stdout } = await promisify(execFile)(process.execPath, ['-r', shim, cli, '-s', source, '-o', out, '-m', 'service', '-e', 'ts'], { cwd: dir });
      assert.match(stdout, /Successfully finished/);

      const files = await readdir(out);
      const serviceFile = files.find((f) => f.endsWith('Service.ts'));
      assert.ok(serviceFile, `generated files: ${files.join(', ')}`);
      const service = await readFile(join(out, serviceFile), 'utf8');
      const queries = await readFile(join(out, files.find((f) => f.startsWith('Q'))!), 'utf8');

      // Entity sets on the main service.
      assert.match(service, /public msdyn_iotalerts\(id\?: msdyn_iotalertId/);
      assert.match(service, /public msdyn_iotdevicedatahistory\(/);
      // Navigation from an alert to its device.
      assert.match(service, /public msdyn_Device\(\): msdyn_iotdeviceService/);
      // The bound action hangs off the alert's entity service and is called with its full name.
      const alertService = service.slice(service.indexOf('export class msdyn_iotalertService'));
      assert.match(alertService.slice(0, alertService.indexOf('\nexport class', 1)), /public async msdyn_ParentIoTAlerts\(params/);
      assert.match(queries, /super\("Microsoft\.Dynamics\.CRM\.msdyn_ParentIoTAlerts"\)/);
      // Unbound operations come through their imports.
      assert.match(service, /public async WhoAmI\(/);
      assert.match(service, /public async msdyn_RegisterIoTDevice\(/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
