import { CcsError } from '../errors/index.js';
import {
  attributeDefinitionJson,
  columnDefFromAttributeMetadata,
  entityDefinitionJson,
  tableDefFromEntityMetadata,
  type MetadataRegistry,
  type Table,
} from '../metadata/index.js';
import type { RecordContext } from '../records/index.js';
import { demand } from '../security/index.js';
import type { ApiRequest, ApiResponse } from './handler.js';
import type { Resource } from './resource-path.js';

const JSON_TYPE = 'application/json; odata.metadata=minimal';

/** Privileges on table definitions are checked against this name, as Dataverse's `prvCreateEntity` would be. */
const METADATA_PRIVILEGE_TABLE = 'EntityDefinition';

function project(obj: Record<string, unknown>, select: string | null): Record<string, unknown> {
  if (!select) return obj;
  const keep = new Set(['MetadataId', ...select.split(',').map((s) => s.trim())]);
  return Object.fromEntries(Object.entries(obj).filter(([k]) => keep.has(k) || k.startsWith('@')));
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch (e) {
    throw new CcsError('MalformedJson', `Invalid JSON in request body: ${(e as Error).message}`);
  }
}

/**
 * The part of Dataverse's metadata Web API that clients use at run time: list and read table definitions
 * (DynamicsWebApi's `useEntityNames` reads `LogicalName,EntitySetName`), create tables and add columns.
 */
export class EntityDefinitionsRoutes {
  constructor(private readonly metadata: MetadataRegistry) {}

  #table(key: string): Table {
    const model = this.metadata.model;
    const byName = /^LogicalName\s*=\s*'([^']*)'$/.exec(key);
    const table = byName
      ? model.table(byName[1]!)
      : model.tables().find((t) => String(entityDefinitionJson(t)['MetadataId']).toLowerCase() === key.replace(/[{}]/g, '').toLowerCase());
    if (!table) throw new CcsError('ResourceNotFound', `Could not find an entity with the key ${key}.`);
    return table;
  }

  async handle(method: string, r: Extract<Resource, { kind: 'entityDefinitions' }>, params: URLSearchParams, req: ApiRequest, ctx: RecordContext): Promise<ApiResponse> {
    const root = req.serviceRoot;
    const ok = (body: unknown): ApiResponse => ({ status: 200, headers: { 'Content-Type': JSON_TYPE }, body: JSON.stringify(body) });
    if (method === 'GET') {
      demand(ctx.principal, 'Read', METADATA_PRIVILEGE_TABLE);
      if (r.key === undefined) {
        let tables = this.metadata.model.tables();
        const filter = params.get('$filter');
        if (filter) {
          const m = /^\s*LogicalName\s+eq\s+'([^']*)'\s*$/.exec(filter);
          if (!m) throw new CcsError('NotImplemented', "EntityDefinitions supports only $filter=LogicalName eq '<name>'.");
          tables = tables.filter((t) => t.logicalName === m[1]);
        }
        const value = tables.map((t) => project(entityDefinitionJson(t), params.get('$select')));
        return ok({ '@odata.context': `${root}$metadata#EntityDefinitions`, value });
      }
      const table = this.#table(r.key);
      if (r.attributes) {
        const value = table.columns.map((c) => project(attributeDefinitionJson(table, c), params.get('$select')));
        if (r.attributeKey !== undefined) {
          const name = /^LogicalName\s*=\s*'([^']*)'$/.exec(r.attributeKey)?.[1];
          const one = value.find((a) => a['LogicalName'] === name || a['MetadataId'] === r.attributeKey);
          if (!one) throw new CcsError('ResourceNotFound', `Could not find an attribute with the key ${r.attributeKey}.`);
          return ok({ '@odata.context': `${root}$metadata#EntityDefinitions('${table.logicalName}')/Attributes/$entity`, ...one });
        }
        return ok({ '@odata.context': `${root}$metadata#EntityDefinitions('${table.logicalName}')/Attributes`, value });
      }
      const entity = project(entityDefinitionJson(table), params.get('$select'));
      if (params.get('$expand') === 'Attributes') entity['Attributes'] = table.columns.map((c) => attributeDefinitionJson(table, c));
      return ok({ '@odata.context': `${root}$metadata#EntityDefinitions/$entity`, ...entity });
    }
    if (method === 'POST' && r.key === undefined) {
      demand(ctx.principal, 'Create', METADATA_PRIVILEGE_TABLE);
      const def = tableDefFromEntityMetadata(parseJson(req.body), this.metadata.model);
      await this.metadata.addTable(def);
      const id = entityDefinitionJson(this.metadata.model.table(def.logicalName)!)['MetadataId'];
      return { status: 204, headers: { 'OData-EntityId': `${root}EntityDefinitions(${id})` }, body: '' };
    }
    if (method === 'POST' && r.attributes && r.attributeKey === undefined) {
      demand(ctx.principal, 'Create', METADATA_PRIVILEGE_TABLE);
      const table = this.#table(r.key!);
      const column = columnDefFromAttributeMetadata(parseJson(req.body), table, this.metadata.model);
      await this.metadata.addColumn(table.logicalName, column);
      const updated = this.metadata.model.table(table.logicalName)!;
      const tableId = entityDefinitionJson(updated)['MetadataId'];
      const attrId = attributeDefinitionJson(updated, updated.column(column.logicalName)!)['MetadataId'];
      return { status: 204, headers: { 'OData-EntityId': `${root}EntityDefinitions(${tableId})/Attributes(${attrId})` }, body: '' };
    }
    throw new CcsError('MethodNotAllowed', `The HTTP method '${method}' is not allowed for this resource.`);
  }
}
