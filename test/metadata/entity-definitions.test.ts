import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CcsError, type ErrorCode } from '../../src/errors/index.js';
import {
  attributeDefinitionJson,
  columnDefFromAttributeMetadata,
  entityDefinitionJson,
  metadataId,
  pluralize,
  tableDefFromEntityMetadata,
} from '../../src/metadata/entity-definitions.js';
import { isLookup, Model, physicalSchema, toStoreValue, type ColumnDef, type Table, type TableDef } from '../../src/metadata/index.js';
import { standardManyToMany, standardTables } from '../../src/metadata/standard/index.js';

const model = new Model(standardTables, standardManyToMany);
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function table(m: Model, name: string): Table {
  const t = m.table(name);
  assert.ok(t, name);
  return t;
}

const label = (text: string) => ({
  '@odata.type': 'Microsoft.Dynamics.CRM.Label',
  LocalizedLabels: [{ '@odata.type': 'Microsoft.Dynamics.CRM.LocalizedLabel', Label: text, LanguageCode: 1033 }],
});

/** The sample body of learn.microsoft.com "Create a table" (create-update-entity-definitions-using-web-api). */
function bankAccount(): Record<string, unknown> {
  return {
    '@odata.type': 'Microsoft.Dynamics.CRM.EntityMetadata',
    Attributes: [
      {
        AttributeType: 'String',
        AttributeTypeName: { Value: 'StringType' },
        Description: label('Type the name of the bank account'),
        DisplayName: label('Account Name'),
        IsPrimaryName: true,
        RequiredLevel: { Value: 'None', CanBeChanged: true, ManagedPropertyLogicalName: 'canmodifyrequirementlevelsettings' },
        SchemaName: 'new_AccountName',
        '@odata.type': 'Microsoft.Dynamics.CRM.StringAttributeMetadata',
        FormatName: { Value: 'Text' },
        MaxLength: 100,
      },
    ],
    Description: label('An entity to store information about customer bank accounts'),
    DisplayCollectionName: label('Bank Accounts'),
    DisplayName: label('Bank Account'),
    HasActivities: false,
    HasNotes: false,
    IsActivity: false,
    OwnershipType: 'UserOwned',
    SchemaName: 'new_BankAccount',
  };
}

function withAttributes(...attributes: Record<string, unknown>[]): Record<string, unknown> {
  const body = bankAccount();
  return { ...body, Attributes: [...(body['Attributes'] as unknown[]), ...attributes] };
}

function throwsCode(fn: () => unknown, code: ErrorCode, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CcsError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

const alerts = table(model, 'msdyn_iotalert');
const attribute = (t: Table, body: Record<string, unknown>): ColumnDef => columnDefFromAttributeMetadata(body, t, model);

describe('entityDefinitionJson / attributeDefinitionJson', () => {
  it('describes a table as Dataverse EntityMetadata, with a stable MetadataId', () => {
    const json = entityDefinitionJson(alerts);
    assert.match(String(json['MetadataId']), GUID);
    assert.equal(json['MetadataId'], entityDefinitionJson(table(new Model(standardTables), 'msdyn_iotalert'))['MetadataId']);
    assert.notEqual(json['MetadataId'], entityDefinitionJson(table(model, 'msdyn_iotdevice'))['MetadataId']);
    assert.equal(json['LogicalName'], 'msdyn_iotalert');
    assert.equal(json['SchemaName'], 'msdyn_iotalert');
    assert.equal(json['EntitySetName'], 'msdyn_iotalerts');
    assert.equal(json['PrimaryIdAttribute'], 'msdyn_iotalertid');
    assert.equal(json['PrimaryNameAttribute'], 'msdyn_description');
    assert.equal(json['IsCustomEntity'], false);
    assert.equal(json['OwnershipType'], 'UserOwned');
    assert.deepEqual((json['DisplayName'] as { UserLocalizedLabel: unknown }).UserLocalizedLabel, {
      Label: 'IoT Alert', LanguageCode: 1033, IsManaged: false, MetadataId: metadataId('label:entity:msdyn_iotalert:display'), HasChanged: null,
    });
    assert.equal((json['DisplayName'] as { LocalizedLabels: unknown[] }).LocalizedLabels.length, 1);
    assert.equal(json['Attributes'], undefined, 'attributes come with $expand only');

    const history = entityDefinitionJson(table(model, 'msdyn_iotdevicedatahistory'));
    assert.equal(history['EntitySetName'], 'msdyn_iotdevicedatahistory');
    assert.equal(history['LogicalCollectionName'], 'msdyn_iotdevicedatahistories');
    assert.equal(entityDefinitionJson(table(model, 'connectionrole'))['OwnershipType'], 'OrganizationOwned');
  });

  it('describes columns as typed AttributeMetadata', () => {
    const attr = (name: string) => attributeDefinitionJson(alerts, alerts.column(name)!);
    const description = attr('msdyn_description');
    assert.equal(description['@odata.type'], '#Microsoft.Dynamics.CRM.StringAttributeMetadata');
    assert.equal(description['AttributeType'], 'String');
    assert.equal(description['MaxLength'], 100);
    assert.deepEqual((description['RequiredLevel'] as { Value: string }).Value, 'ApplicationRequired');
    assert.equal(description['IsPrimaryName'], true);
    assert.equal(description['EntityLogicalName'], 'msdyn_iotalert');

    const device = attr('msdyn_device');
    assert.equal(device['AttributeType'], 'Lookup');
    assert.equal(device['@odata.type'], '#Microsoft.Dynamics.CRM.LookupAttributeMetadata');
    assert.deepEqual(device['Targets'], ['msdyn_iotdevice']);
    assert.equal(device['SchemaName'], 'msdyn_Device');

    const type = attr('msdyn_alerttype');
    assert.equal(type['AttributeType'], 'Picklist');
    const options = (type['OptionSet'] as { Options: { Value: number; Label: { UserLocalizedLabel: { Label: string } } }[] }).Options;
    assert.deepEqual(options.map((o) => [o.Value, o.Label.UserLocalizedLabel.Label]), [
      [192350000, 'Anomaly'], [192350001, 'Info'], [192350002, 'Preventive Maintenance'], [192350003, 'Test'],
    ]);

    const cases = table(model, 'incident');
    const state = attributeDefinitionJson(cases, cases.column('statecode')!);
    assert.equal(state['AttributeType'], 'State');
    assert.deepEqual((state['OptionSet'] as { Options: { Value: number; DefaultStatus: number }[] }).Options.map((o) => [o.Value, o.DefaultStatus]),
      [[0, 1], [1, 5], [2, 6]]);
    const status = attributeDefinitionJson(cases, cases.column('statuscode')!);
    assert.equal((status['OptionSet'] as { Options: { Value: number; State: number }[] }).Options.find((o) => o.Value === 1000)?.State, 1);
    assert.equal(attributeDefinitionJson(cases, cases.column('customerid')!)['AttributeType'], 'Customer');

    const id = attr('msdyn_iotalertid');
    assert.equal(id['AttributeType'], 'Uniqueidentifier');
    assert.equal(id['IsPrimaryId'], true);
    assert.equal(id['IsValidForUpdate'], false);
    const version = attr('versionnumber');
    assert.equal(version['AttributeType'], 'BigInt');
    assert.equal(version['IsValidForCreate'], false);
    const state2 = attr('statecode');
    assert.equal(state2['IsCustomAttribute'], false);

    const device2 = table(model, 'msdyn_iotdevice');
    const connected = attributeDefinitionJson(device2, device2.column('msdyn_connectionstate')!);
    assert.equal(connected['AttributeType'], 'Boolean');
    assert.deepEqual((connected['OptionSet'] as { TrueOption: { Value: number; Label: { UserLocalizedLabel: { Label: string } } } }).TrueOption.Label.UserLocalizedLabel.Label, 'Connected');
  });

  it('gives every attribute of every table a known type and a distinct MetadataId', () => {
    const known = new Set(['String', 'Memo', 'Integer', 'BigInt', 'Decimal', 'Double', 'Boolean', 'DateTime', 'Picklist', 'State',
      'Status', 'Lookup', 'Customer', 'Owner', 'Uniqueidentifier']);
    const ids = new Set<string>();
    for (const t of model.tables()) {
      for (const c of t.columns) {
        const json = attributeDefinitionJson(t, c);
        assert.ok(known.has(String(json['AttributeType'])), `${t.logicalName}.${c.logicalName}`);
        assert.match(String(json['@odata.type']), /^#Microsoft\.Dynamics\.CRM\.\w+AttributeMetadata$/);
        ids.add(String(json['MetadataId']));
      }
    }
    assert.equal(ids.size, model.tables().reduce((n, t) => n + t.columns.length, 0));
  });
});

describe('pluralize', () => {
  it('forms entity set names the way Dataverse does', () => {
    assert.equal(pluralize('new_bankaccount'), 'new_bankaccounts');
    assert.equal(pluralize('msdyn_iotsettings'), 'msdyn_iotsettingses');
    assert.equal(pluralize('new_box'), 'new_boxes');
    assert.equal(pluralize('new_branch'), 'new_branches');
    assert.equal(pluralize('new_wish'), 'new_wishes');
    assert.equal(pluralize('new_category'), 'new_categories');
    assert.equal(pluralize('new_day'), 'new_days');
  });
});

describe('tableDefFromEntityMetadata', () => {
  it('parses the documented "create a table" body', () => {
    const def = tableDefFromEntityMetadata(bankAccount(), model);
    assert.equal(def.logicalName, 'new_bankaccount');
    assert.equal(def.schemaName, 'new_BankAccount');
    assert.equal(def.entitySetName, 'new_bankaccounts');
    assert.equal(def.primaryIdAttribute, 'new_bankaccountid');
    assert.equal(def.primaryNameAttribute, 'new_accountname');
    assert.equal(def.displayName, 'Bank Account');
    assert.equal(def.displayCollectionName, 'Bank Accounts');
    assert.equal(def.description, 'An entity to store information about customer bank accounts');
    assert.equal(def.isCustomEntity, true);
    assert.equal(def.ownership, 'UserOwned');
    assert.deepEqual(def.columns, [{
      logicalName: 'new_accountname',
      schemaName: 'new_AccountName',
      isCustomAttribute: true,
      displayName: 'Account Name',
      description: 'Type the name of the bank account',
      requiredLevel: 'None',
      type: 'string',
      maxLength: 100,
    }]);

    // The definition is usable: it builds into the model, the physical schema and the metadata API.
    const next = model.with(def);
    const t = table(next, 'new_bankaccount');
    assert.equal(next.tableBySet('new_bankaccounts')?.logicalName, 'new_bankaccount');
    assert.ok(t.column('statecode') && t.column('ownerid') && t.column('createdon'));
    assert.ok(physicalSchema(next).some((p) => p.name === 'new_bankaccount'));
    assert.equal(entityDefinitionJson(t)['IsCustomEntity'], true);
    const name = attributeDefinitionJson(t, t.column('new_accountname')!);
    assert.equal(name['SchemaName'], 'new_AccountName');
    assert.equal(name['IsCustomAttribute'], true);
    assert.equal(attributeDefinitionJson(t, t.column('createdon')!)['IsCustomAttribute'], false);
    // The definition survives the JSON round trip the registry stores it through.
    assert.deepEqual(JSON.parse(JSON.stringify(def)), def);
  });

  it('accepts every creatable attribute type, an explicit entity set and organization ownership', () => {
    const def = tableDefFromEntityMetadata({
      ...withAttributes(
        { '@odata.type': '#Microsoft.Dynamics.CRM.MemoAttributeMetadata', SchemaName: 'new_Notes', DisplayName: 'Notes' },
        { AttributeType: 'Integer', SchemaName: 'new_Count', MinValue: 0, MaxValue: 10 },
        { AttributeType: 'BigInt', SchemaName: 'new_Big' },
        { AttributeType: 'Decimal', SchemaName: 'new_Balance', Precision: 4, MinValue: -1000, MaxValue: 1000 },
        { AttributeType: 'Double', SchemaName: 'new_Rate' },
        { AttributeType: 'Boolean', SchemaName: 'new_Active', DefaultValue: true,
          OptionSet: { TrueOption: { Value: 1, Label: label('On') }, FalseOption: { Value: 0, Label: label('Off') } } },
        { AttributeType: 'DateTime', SchemaName: 'new_OpenedOn', Format: 'DateOnly' },
        { AttributeType: 'Picklist', SchemaName: 'new_Kind', DefaultFormValue: 100000001,
          OptionSet: { Options: [{ Value: 100000000, Label: label('Checking') }, { Value: 100000001, Label: label('Savings') }] } },
        { '@odata.type': 'Microsoft.Dynamics.CRM.LookupAttributeMetadata', SchemaName: 'new_Customer', Targets: ['account'] },
        { AttributeType: 'Lookup', SchemaName: 'new_Parent', Targets: ['new_bankaccount'] },
        { AttributeType: 'Lookup', SchemaName: 'new_Holder', Targets: ['account', 'contact'] },
      ),
      EntitySetName: 'new_accounts_of_bank',
      OwnershipType: 'OrganizationOwned',
    }, model);
    assert.equal(def.entitySetName, 'new_accounts_of_bank');
    assert.equal(def.ownership, 'OrganizationOwned');
    const col = (n: string) => def.columns.find((c) => c.logicalName === n);
    assert.deepEqual(col('new_notes'), { logicalName: 'new_notes', schemaName: 'new_Notes', isCustomAttribute: true, displayName: 'Notes', requiredLevel: 'None', type: 'memo', maxLength: 2000 });
    assert.equal(col('new_count')?.type, 'integer');
    assert.deepEqual([(col('new_count') as { minValue: number }).minValue, (col('new_count') as { maxValue: number }).maxValue], [0, 10]);
    assert.equal(col('new_big')?.type, 'bigint');
    assert.deepEqual(col('new_balance'), { logicalName: 'new_balance', schemaName: 'new_Balance', isCustomAttribute: true, displayName: 'new_Balance',
      requiredLevel: 'None', type: 'decimal', precision: 4, minValue: -1000, maxValue: 1000 });
    assert.equal((col('new_rate') as { precision: number }).precision, 2);
    assert.deepEqual(col('new_active'), { logicalName: 'new_active', schemaName: 'new_Active', isCustomAttribute: true, displayName: 'new_Active',
      requiredLevel: 'None', type: 'boolean', trueLabel: 'On', falseLabel: 'Off', defaultValue: true });
    assert.equal(col('new_openedon')?.type, 'datetime');
    assert.deepEqual(col('new_kind'), { logicalName: 'new_kind', schemaName: 'new_Kind', isCustomAttribute: true, displayName: 'new_Kind',
      requiredLevel: 'None', type: 'picklist', defaultValue: 100000001,
      optionSet: { name: 'new_bankaccount_new_kind', options: [{ value: 100000000, label: 'Checking' }, { value: 100000001, label: 'Savings' }] } });
    assert.equal(col('new_holder')?.type, 'polymorphic');

    const next = model.with(def);
    const t = table(next, 'new_bankaccount');
    const customer = t.navigation('new_Customer');
    assert.equal(customer?.kind, 'single');
    assert.equal(customer?.relationship.schemaName, 'new_account_new_bankaccount_Customer');
    assert.equal(table(next, 'account').navigation('new_account_new_bankaccount_Customer')?.kind, 'collection');
    assert.equal(t.navigation('new_Parent')?.target, 'new_bankaccount');
    assert.equal(t.navigation('new_new_bankaccount_new_bankaccount_Parent')?.kind, 'collection');
    assert.equal(t.navigation('new_holder_contact')?.target, 'contact');
    assert.equal(toStoreValue(t.column('new_kind')!, 100000000), 100000000);
    assert.throws(() => toStoreValue(t.column('new_count')!, 11));
    const names = physicalSchema(next).find((p) => p.name === 'new_bankaccount')!.columns.map((c) => c.name);
    assert.ok(names.includes('new_holder_type'));
  });

  it('rejects bad table names with a message naming the problem', () => {
    const named = (SchemaName: unknown) => ({ ...bankAccount(), SchemaName });
    throwsCode(() => tableDefFromEntityMetadata(named('BankAccount'), model), 'InvalidMetadata', /customization prefix/);
    throwsCode(() => tableDefFromEntityMetadata(named('new_Bank-Account'), model), 'InvalidMetadata', /'SchemaName' 'new_Bank-Account' is not valid/);
    throwsCode(() => tableDefFromEntityMetadata(named('1new_Bank'), model), 'InvalidMetadata', /not valid/);
    throwsCode(() => tableDefFromEntityMetadata(named(`new_${'x'.repeat(47)}`), model), 'InvalidMetadata', /longer than 50/);
    throwsCode(() => tableDefFromEntityMetadata(named('mscrm_Thing'), model), 'InvalidMetadata', /prefix 'mscrm' is reserved/);
    throwsCode(() => tableDefFromEntityMetadata(named('ccs_Thing'), model), 'InvalidMetadata', /prefix 'ccs' is reserved/);
    throwsCode(() => tableDefFromEntityMetadata(named(undefined), model), 'InvalidMetadata', /'SchemaName' is required/);
    throwsCode(() => tableDefFromEntityMetadata(named(42), model), 'InvalidMetadata', /'SchemaName' is required/);
    throwsCode(() => tableDefFromEntityMetadata('not an object', model), 'InvalidMetadata', /EntityMetadata object/);
    throwsCode(() => tableDefFromEntityMetadata({ ...bankAccount(), '@odata.type': 'Microsoft.Dynamics.CRM.AttributeMetadata' }, model),
      'InvalidMetadata', /'@odata.type'/);
    throwsCode(() => tableDefFromEntityMetadata({ ...bankAccount(), LogicalName: 'new_other' }, model), 'InvalidMetadata', /'LogicalName'/);
  });

  it('rejects clashes with existing tables, entity sets and relationship tables', () => {
    const named = (SchemaName: string, extra: Record<string, unknown> = {}) => ({ ...bankAccount(), SchemaName, ...extra });
    throwsCode(() => tableDefFromEntityMetadata(named('msdyn_IoTAlert'), model), 'DuplicateKey', /'msdyn_iotalert' already exists/);
    throwsCode(() => tableDefFromEntityMetadata(named('new_Thing', { EntitySetName: 'accounts' }), model), 'DuplicateKey',
      /'accounts' is already used by table 'account'/);
    throwsCode(() => tableDefFromEntityMetadata(named('msdyn_incident_msdyn_customerasset'), model), 'DuplicateKey', /relationship table/);
    const next = model.with(tableDefFromEntityMetadata(bankAccount(), model));
    throwsCode(() => tableDefFromEntityMetadata(bankAccount(), next), 'DuplicateKey', /'new_bankaccount' already exists/);
    throwsCode(() => tableDefFromEntityMetadata(named('new_Thing', { EntitySetName: 'new bad' }), model), 'InvalidMetadata', /'EntitySetName'/);
  });

  it('requires exactly one String primary name attribute, a display name and a supported ownership', () => {
    const body = bankAccount();
    const primary = (body['Attributes'] as Record<string, unknown>[])[0]!;
    throwsCode(() => tableDefFromEntityMetadata({ ...body, Attributes: [] }, model), 'InvalidMetadata', /'Attributes' must contain the primary name/);
    throwsCode(() => tableDefFromEntityMetadata({ ...body, Attributes: undefined }, model), 'InvalidMetadata', /'Attributes'/);
    throwsCode(() => tableDefFromEntityMetadata({ ...body, Attributes: [{ ...primary, IsPrimaryName: false }] }, model),
      'InvalidMetadata', /exactly one attribute .* IsPrimaryName true; found 0/);
    throwsCode(() => tableDefFromEntityMetadata(withAttributes({ ...primary, SchemaName: 'new_Other' }), model),
      'InvalidMetadata', /found 2/);
    throwsCode(() => tableDefFromEntityMetadata({ ...body, Attributes: [{ SchemaName: 'new_Number', AttributeType: 'Integer', IsPrimaryName: true }] }, model),
      'InvalidMetadata', /primary name attribute 'new_Number' must be a String attribute/);
    throwsCode(() => tableDefFromEntityMetadata({ ...body, DisplayName: undefined }, model), 'InvalidMetadata', /'DisplayName' is required/);
    throwsCode(() => tableDefFromEntityMetadata({ ...body, DisplayName: { LocalizedLabels: 'x' } }, model), 'InvalidMetadata', /LocalizedLabels/);
    throwsCode(() => tableDefFromEntityMetadata({ ...body, OwnershipType: 'TeamOwned' }, model), 'InvalidMetadata', /'OwnershipType'/);
    throwsCode(() => tableDefFromEntityMetadata({ ...body, IsActivity: true }, model), 'InvalidMetadata', /'IsActivity'/);
  });

  it('rejects bad and clashing attributes, naming the attribute and the field', () => {
    throwsCode(() => tableDefFromEntityMetadata(withAttributes({ AttributeType: 'String', SchemaName: 'new_Code', MaxLength: 5000 }), model),
      'InvalidMetadata', /Attribute 'new_Code': 'MaxLength' must be a whole number from 1 to 4000/);
    throwsCode(() => tableDefFromEntityMetadata(withAttributes({ AttributeType: 'String', SchemaName: 'new_accountname' }), model),
      'DuplicateKey', /'new_accountname' already exists/);
    throwsCode(() => tableDefFromEntityMetadata(withAttributes({ AttributeType: 'String', SchemaName: 'new_BankAccountId' }), model),
      'DuplicateKey', /'new_bankaccountid' already exists/);
    throwsCode(() => tableDefFromEntityMetadata(withAttributes(
      { AttributeType: 'Lookup', SchemaName: 'new_Regarding', Targets: ['account', 'contact'] },
      { AttributeType: 'String', SchemaName: 'new_Regarding_Type' },
    ), model), 'DuplicateKey', /'new_regarding_type' already exists/);
    throwsCode(() => tableDefFromEntityMetadata(withAttributes({ AttributeType: 'Lookup', SchemaName: 'new_Thing', Targets: ['new_nothing'] }), model),
      'InvalidMetadata', /'Targets' names 'new_nothing', which is not a table/);
    throwsCode(() => tableDefFromEntityMetadata(withAttributes('oops' as unknown as Record<string, unknown>), model),
      'InvalidMetadata', /Attributes\[1\]: expected an AttributeMetadata object/);
  });
});

describe('columnDefFromAttributeMetadata', () => {
  it('parses a String attribute with defaults', () => {
    assert.deepEqual(attribute(alerts, { AttributeType: 'String', SchemaName: 'new_Severity', DisplayName: label('Severity') }), {
      logicalName: 'new_severity', schemaName: 'new_Severity', isCustomAttribute: true, displayName: 'Severity', requiredLevel: 'None',
      type: 'string', maxLength: 100,
    });
    const memo = attribute(alerts, { '@odata.type': 'Microsoft.Dynamics.CRM.MemoAttributeMetadata', SchemaName: 'new_Log', MaxLength: 1048576,
      RequiredLevel: { Value: 'Recommended' }, Description: label('Log') });
    assert.deepEqual(memo, { logicalName: 'new_log', schemaName: 'new_Log', isCustomAttribute: true, displayName: 'new_Log', requiredLevel: 'Recommended',
      description: 'Log', type: 'memo', maxLength: 1048576 });
  });

  it('adds a lookup on a standard table with Dataverse-style relationship names', () => {
    const device = table(model, 'msdyn_iotdevice');
    const column = attribute(device, { '@odata.type': 'Microsoft.Dynamics.CRM.LookupAttributeMetadata', SchemaName: 'new_Site', Targets: ['account'] });
    assert.deepEqual(column, {
      logicalName: 'new_site', schemaName: 'new_Site', isCustomAttribute: true, displayName: 'new_Site', requiredLevel: 'None',
      type: 'lookup', targets: ['account'],
      relationship: { schemaName: 'new_account_msdyn_iotdevice_Site', navigationProperty: 'new_Site', partner: 'new_account_msdyn_iotdevice_Site' },
    });
    const def = standardTables.find((t) => t.logicalName === 'msdyn_iotdevice')!;
    const next = model.with({ ...def, columns: [...def.columns, column] } satisfies TableDef);
    assert.equal(table(next, 'msdyn_iotdevice').navigation('new_Site')?.target, 'account');
    assert.equal(table(next, 'account').navigation('new_account_msdyn_iotdevice_Site')?.target, 'msdyn_iotdevice');
    assert.equal(attributeDefinitionJson(table(next, 'msdyn_iotdevice'), column)['IsCustomAttribute'], true);
  });

  it('validates types and ranges, naming the field', () => {
    const bad = (body: Record<string, unknown>, message: RegExp) => throwsCode(() => attribute(alerts, body), 'InvalidMetadata', message);
    bad({ AttributeType: 'Memo', SchemaName: 'new_Log', MaxLength: 1048577 }, /'MaxLength' must be a whole number from 1 to 1048576/);
    bad({ AttributeType: 'String', SchemaName: 'new_S', MaxLength: '100' }, /'MaxLength'/);
    bad({ AttributeType: 'Integer', SchemaName: 'new_N', MinValue: 10, MaxValue: 1 }, /'MinValue' must not be greater than 'MaxValue'/);
    bad({ AttributeType: 'Integer', SchemaName: 'new_N', MinValue: 1.5 }, /'MinValue' must be a whole number/);
    bad({ AttributeType: 'Integer', SchemaName: 'new_N', MaxValue: 2147483648 }, /'MaxValue'/);
    bad({ AttributeType: 'Decimal', SchemaName: 'new_D', Precision: 11 }, /'Precision' must be a whole number from 0 to 10/);
    bad({ AttributeType: 'Double', SchemaName: 'new_D', Precision: 6 }, /'Precision' must be a whole number from 0 to 5/);
    bad({ AttributeType: 'Double', SchemaName: 'new_D', MaxValue: 1e12 }, /'MaxValue' must be a number/);
    bad({ AttributeType: 'Boolean', SchemaName: 'new_B', OptionSet: { TrueOption: { Value: 2, Label: label('Yes') } } }, /'OptionSet.TrueOption.Value' must be 1/);
    bad({ AttributeType: 'Boolean', SchemaName: 'new_B', DefaultValue: 'yes' }, /'DefaultValue'/);
    bad({ AttributeType: 'DateTime', SchemaName: 'new_T', Format: 'Time' }, /'Format'/);
    bad({ AttributeType: 'Picklist', SchemaName: 'new_P' }, /'OptionSet' with 'Options' is required/);
    bad({ AttributeType: 'Picklist', SchemaName: 'new_P', OptionSet: { Options: [] } }, /'OptionSet.Options' must list at least one option/);
    bad({ AttributeType: 'Picklist', SchemaName: 'new_P', OptionSet: { Options: [{ Label: label('A') }] } }, /'OptionSet.Options\[0\].Value' is required/);
    bad({ AttributeType: 'Picklist', SchemaName: 'new_P', OptionSet: { Options: [{ Value: 1 }] } }, /'OptionSet.Options\[0\].Label' is required/);
    bad({ AttributeType: 'Picklist', SchemaName: 'new_P', OptionSet: { Options: [{ Value: 1, Label: label('A') }, { Value: 1, Label: label('B') }] } },
      /option value 1 appears more than once/);
    bad({ AttributeType: 'Picklist', SchemaName: 'new_P', OptionSet: { IsGlobal: true, Options: [{ Value: 1, Label: label('A') }] } }, /global/);
    bad({ AttributeType: 'Picklist', SchemaName: 'new_P', 'GlobalOptionSet@odata.bind': "/GlobalOptionSetDefinitions(Name='x')" }, /global/);
    bad({ AttributeType: 'Picklist', SchemaName: 'new_P', DefaultFormValue: 7, OptionSet: { Options: [{ Value: 1, Label: label('A') }] } },
      /'DefaultFormValue' must be one of the option values/);
    bad({ AttributeType: 'Lookup', SchemaName: 'new_L' }, /'Targets' must list/);
    bad({ AttributeType: 'Lookup', SchemaName: 'new_L', Targets: ['*'] }, /'\*' is not allowed/);
    bad({ AttributeType: 'Lookup', SchemaName: 'new_L', Targets: ['account', 'account'] }, /more than once/);
    bad({ AttributeType: 'Lookup', SchemaName: 'new_L', Targets: ['nothing'] }, /'nothing', which is not a table/);
    bad({ AttributeType: 'Money', SchemaName: 'new_M' }, /type 'Money' are not supported/);
    bad({ '@odata.type': 'Microsoft.Dynamics.CRM.ImageAttributeMetadata', SchemaName: 'new_I' }, /'ImageAttributeMetadata' are not supported/);
    bad({ AttributeType: 'String', '@odata.type': 'Microsoft.Dynamics.CRM.MemoAttributeMetadata', SchemaName: 'new_S' }, /does not match 'AttributeType' String/);
    bad({ SchemaName: 'new_S' }, /'AttributeType' or '@odata.type' is required/);
    bad({ AttributeType: 'String', SchemaName: 'new_S', RequiredLevel: { Value: 'SystemRequired' } }, /SystemRequired is reserved/);
    bad({ AttributeType: 'String', SchemaName: 'new_S', RequiredLevel: { Value: 'Mandatory' } }, /'RequiredLevel.Value'/);
    bad({ AttributeType: 'String', SchemaName: 'Severity' }, /customization prefix/);
    bad({ AttributeType: 'String', SchemaName: 'new_Sev erity' }, /not valid/);
    bad({ AttributeType: 'String', SchemaName: 'new_S', IsPrimaryName: true }, /'IsPrimaryName'/);
    bad({ AttributeType: 'String', SchemaName: 'new_S', LogicalName: 'new_t' }, /'LogicalName'/);
    throwsCode(() => columnDefFromAttributeMetadata([], alerts), 'InvalidMetadata', /expected an AttributeMetadata object/);
  });

  it('rejects a name already used by a column of the table', () => {
    throwsCode(() => attribute(alerts, { AttributeType: 'String', SchemaName: 'msdyn_Description' }), 'DuplicateKey',
      /an attribute named 'msdyn_description' already exists on 'msdyn_iotalert'/);
    // Navigation names must differ from existing ones beyond case too.
    throwsCode(() => attribute(alerts, { AttributeType: 'String', SchemaName: 'msdyn_IoTAlert_msdyn_IoTAlert' }), 'DuplicateKey',
      /'msdyn_iotalert_msdyn_iotalert' already exists/);
  });

  it('checks lookup targets only when given the model', () => {
    const without = columnDefFromAttributeMetadata({ AttributeType: 'Lookup', SchemaName: 'new_L', Targets: ['new_later'] }, alerts);
    assert.ok(isLookup(without));
    assert.deepEqual(without.targets, ['new_later']);
    throwsCode(() => columnDefFromAttributeMetadata({ AttributeType: 'Lookup', SchemaName: 'new_L', Targets: ['new_later'] }, alerts, model),
      'InvalidMetadata', /'new_later', which is not a table/);
  });
});
