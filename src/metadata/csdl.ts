/**
 * `$metadata` (CSDL XML) and the service document, in Dataverse's shape (odata.md §1.2): one schema
 * `Microsoft.Dynamics.CRM` (alias `mscrm`), an abstract `crmbaseentity`, one EntityType per table, lookups as
 * `_<column>_value` next to navigation properties, N:N collections, `<Op>Response` complex types, bound and unbound
 * operations, and an EntityContainer `System`.
 *
 * Type references always use the full namespace, never the alias: odata2ts drops a bound action whose binding
 * parameter uses `mscrm.` (odata.md §0.9, §3).
 */
import { isLookup, type Model, type Navigation, type Table } from './model.js';
import type { ColumnDef, OperationDef, OperationParameterDef } from './types.js';

export const CRM_NAMESPACE = 'Microsoft.Dynamics.CRM';
export const CRM_ALIAS = 'mscrm';

const CORE = 'Org.OData.Core.V1';
const KEYS = 'OData.Community.Keys.V1';

export interface CsdlOptions {
  /** Descriptions, Core.Computed on read-only columns and alternate keys (`$metadata?annotations=true`). */
  readonly annotations?: boolean;
}

export function escapeXml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** `name="value"` pairs; undefined values are left out. */
function attrs(pairs: Record<string, string | undefined>): string {
  return Object.entries(pairs)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => ` ${k}="${escapeXml(v)}"`)
    .join('');
}

/** An element; self-closing when it has no children. */
function element(name: string, pairs: Record<string, string | undefined>, children: readonly string[] = []): string {
  return children.length === 0 ? `<${name}${attrs(pairs)}/>` : `<${name}${attrs(pairs)}>${children.join('')}</${name}>`;
}

function qualified(name: string): string {
  return `${CRM_NAMESPACE}.${name}`;
}

/** Replaces the `mscrm.` alias with the full namespace, also inside `Collection(...)`. */
function fullTypeName(type: string): string {
  const collection = /^Collection\((.*)\)$/.exec(type);
  if (collection) return `Collection(${fullTypeName(collection[1]!)})`;
  return type.startsWith(`${CRM_ALIAS}.`) ? `${CRM_NAMESPACE}.${type.slice(CRM_ALIAS.length + 1)}` : type;
}

/** The Edm type of a column's property in $metadata (lookups appear as `_x_value` of type Edm.Guid). */
export function edmType(column: ColumnDef): string {
  switch (column.type) {
    case 'string':
    case 'memo':
      return 'Edm.String';
    case 'integer':
    case 'picklist':
    case 'state':
    case 'status':
      return 'Edm.Int32';
    case 'bigint':
      return 'Edm.Int64';
    case 'decimal':
      return 'Edm.Decimal';
    case 'double':
      return 'Edm.Double';
    case 'boolean':
      return 'Edm.Boolean';
    case 'datetime':
      return 'Edm.DateTimeOffset';
    default:
      return 'Edm.Guid';
  }
}

/** The structural property name of a column: lookups appear as `_<column>_value`. */
function propertyName(column: ColumnDef): string {
  return isLookup(column) ? `_${column.logicalName}_value` : column.logicalName;
}

function annotation(term: string, value: Record<string, string>): string {
  return element('Annotation', { Term: term, ...value });
}

function descriptionAnnotation(text: string | undefined, options: CsdlOptions): string[] {
  return options.annotations && text ? [annotation(`${CORE}.Description`, { String: text })] : [];
}

function property(column: ColumnDef, options: CsdlOptions): string {
  const type = edmType(column);
  const children = [
    ...descriptionAnnotation(column.description, options),
    // Lookup values are read-only in Dataverse's metadata too: they are written through @odata.bind.
    ...(options.annotations && (column.readOnly || isLookup(column)) ? [annotation(`${CORE}.Computed`, { Bool: 'true' })] : []),
  ];
  return element('Property', {
    Name: propertyName(column),
    Type: type,
    Unicode: type === 'Edm.String' ? 'false' : undefined,
    Scale: type === 'Edm.Decimal' ? 'Variable' : undefined,
  }, children);
}

function navigationProperty(nav: Navigation, model: Model): string {
  const target = qualified(nav.target);
  switch (nav.kind) {
    case 'single': {
      const referenced = model.table(nav.target)!.primaryIdAttribute;
      return element('NavigationProperty', {
        Name: nav.name,
        Type: target,
        Nullable: 'false',
        Partner: nav.relationship.referencedEntityNavigationPropertyName,
      }, [element('ReferentialConstraint', { Property: `_${nav.column}_value`, ReferencedProperty: referenced })]);
    }
    case 'collection':
      return element('NavigationProperty', {
        Name: nav.name,
        Type: `Collection(${target})`,
        Partner: nav.relationship.referencingEntityNavigationPropertyName,
      });
    case 'manyToMany': {
      const rel = nav.relationship;
      // The partner is the navigation property on the other side; for a self-referencing N:N that is the other name.
      const partner = nav.table === rel.entity1LogicalName && nav.name === rel.entity1NavigationPropertyName
        ? rel.entity2NavigationPropertyName
        : rel.entity1NavigationPropertyName;
      return element('NavigationProperty', { Name: nav.name, Type: `Collection(${target})`, Partner: partner });
    }
  }
}

function alternateKeysAnnotation(table: Table): string[] {
  const keys = table.alternateKeys ?? [];
  if (keys.length === 0) return [];
  const records = keys.map((key) =>
    element('Record', { Type: `${KEYS}.AlternateKey` }, [
      element('PropertyValue', { Property: 'Key' }, [
        element('Collection', {}, key.columns.map((name) => {
          const column = table.column(name);
          const path = column ? propertyName(column) : name;
          return element('Record', { Type: `${KEYS}.PropertyRef` }, [
            element('PropertyValue', { Property: 'Alias', String: path }),
            element('PropertyValue', { Property: 'Name', PropertyPath: path }),
          ]);
        })),
      ]),
    ]));
  return [element('Annotation', { Term: `${KEYS}.AlternateKeys` }, [element('Collection', {}, records)])];
}

function entityType(table: Table, model: Model, options: CsdlOptions): string {
  const children = [
    element('Key', {}, [element('PropertyRef', { Name: table.primaryIdAttribute })]),
    ...table.columns.map((c) => property(c, options)),
    ...table.navigations.map((n) => navigationProperty(n, model)),
    ...descriptionAnnotation(table.description, options),
    ...(options.annotations ? alternateKeysAnnotation(table) : []),
  ];
  return element('EntityType', { Name: table.logicalName, BaseType: qualified('crmbaseentity') }, children);
}

function parameter(p: OperationParameterDef): string {
  const type = fullTypeName(p.type);
  return element('Parameter', {
    Name: p.name,
    Type: type,
    Nullable: p.nullable === false ? 'false' : undefined,
    Unicode: type === 'Edm.String' ? 'false' : undefined,
  });
}

function returnsProperties(op: OperationDef): readonly OperationParameterDef[] | undefined {
  return op.returns && 'properties' in op.returns ? op.returns.properties : undefined;
}

function responseType(op: OperationDef): string {
  return `${op.name}Response`;
}

function complexType(op: OperationDef): string[] {
  const properties = returnsProperties(op);
  if (!properties) return [];
  return [element('ComplexType', { Name: responseType(op) }, properties.map((p) => {
    const type = fullTypeName(p.type);
    return element('Property', {
      Name: p.name,
      Type: type,
      Nullable: p.nullable === false ? 'false' : undefined,
      Unicode: type === 'Edm.String' ? 'false' : undefined,
    });
  }))];
}

function operation(op: OperationDef): string {
  const children: string[] = [];
  if (op.boundTo) {
    const type = qualified(op.boundTo);
    children.push(element('Parameter', { Name: 'entity', Type: op.boundToCollection ? `Collection(${type})` : type, Nullable: 'false' }));
  }
  children.push(...op.parameters.map(parameter));
  if (op.returns) {
    const type = 'properties' in op.returns ? qualified(responseType(op)) : fullTypeName(op.returns.type);
    children.push(element('ReturnType', { Type: type, Nullable: 'false' }));
  }
  return element(op.kind === 'action' ? 'Action' : 'Function', { Name: op.name, IsBound: op.boundTo ? 'true' : undefined }, children);
}

function entitySet(table: Table, model: Model): string {
  const bindings = table.navigations.map((n) =>
    element('NavigationPropertyBinding', { Path: n.name, Target: model.table(n.target)!.entitySetName }));
  return element('EntitySet', { Name: table.entitySetName, EntityType: qualified(table.logicalName) }, bindings);
}

function operationImport(op: OperationDef): string {
  return op.kind === 'action'
    ? element('ActionImport', { Name: op.name, Action: qualified(op.name) })
    : element('FunctionImport', { Name: op.name, Function: qualified(op.name), IncludeInServiceDocument: 'false' });
}

function vocabularyReferences(options: CsdlOptions): string[] {
  if (!options.annotations) return [];
  return [
    element('edmx:Reference', { Uri: 'https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Core.V1.xml' }, [
      element('edmx:Include', { Namespace: CORE, Alias: 'Core' }),
    ]),
    element('edmx:Reference', { Uri: 'https://oasis-tcs.github.io/odata-vocabularies/vocabularies/OData.Community.Keys.V1.xml' }, [
      element('edmx:Include', { Namespace: KEYS, Alias: 'Keys' }),
    ]),
  ];
}

/**
 * Renders `$metadata`. Operations bound to a table the model does not have are left out (a custom table may have
 * been removed while its operation stays registered).
 */
export function renderCsdl(model: Model, operations: readonly OperationDef[], options: CsdlOptions = {}): string {
  const tables = model.tables();
  const ops = operations.filter((op) => !op.boundTo || model.table(op.boundTo));
  const schema = element('Schema', { Namespace: CRM_NAMESPACE, Alias: CRM_ALIAS, xmlns: 'http://docs.oasis-open.org/odata/ns/edm' }, [
    element('EntityType', { Name: 'crmbaseentity', Abstract: 'true' }),
    ...tables.map((t) => entityType(t, model, options)),
    ...ops.flatMap(complexType),
    ...ops.map(operation),
    element('EntityContainer', { Name: 'System' }, [
      ...tables.map((t) => entitySet(t, model)),
      ...ops.filter((op) => !op.boundTo).map(operationImport),
    ]),
  ]);
  const edmx = element('edmx:Edmx', { Version: '4.0', 'xmlns:edmx': 'http://docs.oasis-open.org/odata/ns/edmx' }, [
    ...vocabularyReferences(options),
    element('edmx:DataServices', {}, [schema]),
  ]);
  return `<?xml version="1.0" encoding="utf-8"?>${edmx}`;
}

export interface ServiceDocument {
  readonly '@odata.context': string;
  readonly value: readonly { readonly name: string; readonly kind: 'EntitySet'; readonly url: string }[];
}

/** `GET /api/data/v9.2/`: the entity sets, sorted by name. */
export function renderServiceDocument(model: Model, contextUrl: string): ServiceDocument {
  const value = model
    .tables()
    .map((t) => ({ name: t.entitySetName, kind: 'EntitySet' as const, url: t.entitySetName }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { '@odata.context': contextUrl, value };
}
