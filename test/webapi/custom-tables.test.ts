import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { engines } from '../helpers/engines.js';
import { startServer } from '../helpers/server.js';

const label = (text: string) => ({ '@odata.type': 'Microsoft.Dynamics.CRM.Label', LocalizedLabels: [{ '@odata.type': 'Microsoft.Dynamics.CRM.LocalizedLabel', Label: text, LanguageCode: 1033 }] });
const post = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

for (const engine of engines()) {
  describe(`custom tables through EntityDefinitions on ${engine.name}`, () => {
    test('create a table and a column, use them through the Web API, and find them after a restart', async () => {
      const srv = await startServer(engine);
      let restarted: Awaited<ReturnType<typeof startServer>> | undefined;
      try {
        const created = await srv.fetch('EntityDefinitions', post({
          '@odata.type': 'Microsoft.Dynamics.CRM.EntityMetadata',
          SchemaName: 'new_Chiller',
          DisplayName: label('Chiller'),
          DisplayCollectionName: label('Chillers'),
          OwnershipType: 'UserOwned',
          HasActivities: false,
          Attributes: [
            { '@odata.type': 'Microsoft.Dynamics.CRM.StringAttributeMetadata', AttributeType: 'String', SchemaName: 'new_Name', IsPrimaryName: true, MaxLength: 100, RequiredLevel: { Value: 'None' }, DisplayName: label('Name') },
            { '@odata.type': 'Microsoft.Dynamics.CRM.IntegerAttributeMetadata', AttributeType: 'Integer', SchemaName: 'new_Capacity', MinValue: 0, MaxValue: 10000, RequiredLevel: { Value: 'None' }, DisplayName: label('Capacity') },
          ],
        }));
        assert.equal(created.status, 204, await created.clone().text());
        assert.match(created.headers.get('odata-entityid')!, /EntityDefinitions\([0-9a-f-]{36}\)$/);

        const col = await srv.fetch("EntityDefinitions(LogicalName='new_chiller')/Attributes", post({
          '@odata.type': 'Microsoft.Dynamics.CRM.BooleanAttributeMetadata', AttributeType: 'Boolean', SchemaName: 'new_Running', DisplayName: label('Running'), RequiredLevel: { Value: 'None' },
          OptionSet: { TrueOption: { Value: 1, Label: label('Yes') }, FalseOption: { Value: 0, Label: label('No') } },
        }));
        assert.equal(col.status, 204, await col.clone().text());

        const list = await (await srv.fetch("EntityDefinitions?$select=LogicalName,EntitySetName")).json();
        const entry = list.value.find((e: { LogicalName: string }) => e.LogicalName === 'new_chiller');
        assert.equal(entry.EntitySetName, 'new_chillers');
        assert.match(await (await srv.fetch('$metadata')).text(), /<EntityType Name="new_chiller"/);

        const rec = await srv.fetch('new_chillers', post({ new_name: 'North', new_capacity: 300, new_running: true }));
        assert.equal(rec.status, 204, await rec.clone().text());
        const bad = await srv.fetch('new_chillers', post({ new_capacity: 20000 }));
        assert.equal(bad.status, 400);
        const dup = await srv.fetch('EntityDefinitions', post({ SchemaName: 'new_Chiller', DisplayName: label('Again'), Attributes: [{ AttributeType: 'String', '@odata.type': 'Microsoft.Dynamics.CRM.StringAttributeMetadata', SchemaName: 'new_Name', IsPrimaryName: true, MaxLength: 100 }] }));
        assert.ok(dup.status >= 400 && dup.status < 500);

        await srv.stop({ drop: false });
        restarted = await startServer(engine, { storeUrl: srv.storeUrl, dataDir: srv.dataDir });
        const rows = await (await restarted.fetch('new_chillers?$filter=new_running eq true and new_capacity gt 100&$select=new_name')).json();
        assert.deepEqual(rows.value.map((r: { new_name: string }) => r.new_name), ['North']);
      } finally {
        if (restarted) await restarted.stop();
        else await srv.stop();
      }
    });
  });
}
