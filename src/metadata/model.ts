import type {
  ChoiceColumn,
  ColumnDef,
  LookupColumn,
  ManyToManyRelationshipDef,
  OneToManyRelationshipDef,
  OptionSetDef,
  TableDef,
} from './types.js';

/** A navigation property of a table, resolved against the model. */
export type Navigation =
  | {
      readonly kind: 'single';
      readonly name: string;
      readonly table: string;
      readonly target: string;
      /** The lookup column on `table` that holds the target's id. */
      readonly column: string;
      readonly relationship: OneToManyRelationshipDef;
    }
  | {
      readonly kind: 'collection';
      readonly name: string;
      readonly table: string;
      readonly target: string;
      /** The lookup column on `target` that points back at `table`. */
      readonly column: string;
      readonly relationship: OneToManyRelationshipDef;
    }
  | {
      readonly kind: 'manyToMany';
      readonly name: string;
      readonly table: string;
      readonly target: string;
      readonly intersect: string;
      /** Column of the intersect table holding this table's id, and the one holding the target's id. */
      readonly ownColumn: string;
      readonly otherColumn: string;
      readonly relationship: ManyToManyRelationshipDef;
    };

export interface Table extends TableDef {
  /** Every column, common ones included, in definition order. */
  readonly columns: readonly ColumnDef[];
  column(logicalName: string): ColumnDef | undefined;
  navigation(name: string): Navigation | undefined;
  readonly navigations: readonly Navigation[];
  /** The lookup column whose `_<name>_value` property is `property`, if any. */
  lookupByValueProperty(property: string): LookupColumn | undefined;
}

export const STATE_OPTIONS: OptionSetDef = {
  name: 'statecode',
  options: [
    { value: 0, label: 'Active' },
    { value: 1, label: 'Inactive' },
  ],
};
export const STATUS_OPTIONS: OptionSetDef = {
  name: 'statuscode',
  options: [
    { value: 1, label: 'Active', state: 0 },
    { value: 2, label: 'Inactive', state: 1 },
  ],
};

/** Column logical names that every table gets from the platform. */
export const SYSTEM_COLUMNS = ['createdon', 'modifiedon', 'versionnumber', 'createdby', 'modifiedby'] as const;

/** Adds the columns the platform maintains on every table, unless the definition already has them. */
export function withCommonColumns(def: TableDef): ColumnDef[] {
  const ownership = def.ownership ?? 'UserOwned';
  const common: ColumnDef[] = [
    { logicalName: def.primaryIdAttribute, type: 'primarykey', displayName: def.displayName, requiredLevel: 'SystemRequired' },
    { logicalName: 'createdon', type: 'datetime', displayName: 'Created On', readOnly: true },
    { logicalName: 'modifiedon', type: 'datetime', displayName: 'Modified On', readOnly: true },
    { logicalName: 'versionnumber', type: 'bigint', displayName: 'Version Number', readOnly: true },
    { logicalName: 'createdby', type: 'lookup', targets: ['systemuser'], displayName: 'Created By', readOnly: true,
      relationship: { schemaName: `lk_${def.logicalName}_createdby`, navigationProperty: 'createdby' } },
    { logicalName: 'modifiedby', type: 'lookup', targets: ['systemuser'], displayName: 'Modified By', readOnly: true,
      relationship: { schemaName: `lk_${def.logicalName}_modifiedby`, navigationProperty: 'modifiedby' } },
  ];
  if (ownership !== 'None') {
    common.push(
      { logicalName: 'statecode', type: 'state', displayName: 'Status', optionSet: { ...STATE_OPTIONS, name: `${def.logicalName}_statecode` }, defaultValue: 0 },
      { logicalName: 'statuscode', type: 'status', displayName: 'Status Reason', optionSet: { ...STATUS_OPTIONS, name: `${def.logicalName}_statuscode` }, defaultValue: 1 },
    );
  }
  if (ownership === 'UserOwned') {
    common.push({ logicalName: 'ownerid', type: 'owner', targets: ['systemuser'], displayName: 'Owner',
      relationship: { schemaName: `${def.logicalName}_owner`, navigationProperty: 'ownerid' } });
  }
  const own = new Set(def.columns.map((c) => c.logicalName));
  return [...common.filter((c) => !own.has(c.logicalName)), ...def.columns];
}

export function isLookup(column: ColumnDef): column is LookupColumn {
  return column.type === 'lookup' || column.type === 'customer' || column.type === 'owner' || column.type === 'polymorphic';
}
export function isChoice(column: ColumnDef): column is ChoiceColumn {
  return column.type === 'picklist' || column.type === 'state' || column.type === 'status';
}
/** Several-target lookups store the target table's logical name beside the id, in `<column>_type`. */
export function isMultiTarget(column: LookupColumn): boolean {
  return column.targets.length !== 1 || column.targets[0] === '*';
}
export function lookupValueProperty(column: string): string {
  return `_${column}_value`;
}

/**
 * The set of tables and relationships, indexed. Immutable: adding a custom table builds a new Model, so a request
 * sees one consistent version from start to end.
 */
export class Model {
  readonly #tables = new Map<string, Table>();
  readonly #bySet = new Map<string, Table>();
  readonly oneToMany: readonly OneToManyRelationshipDef[];
  readonly manyToMany: readonly ManyToManyRelationshipDef[];

  constructor(readonly definitions: readonly TableDef[], manyToMany: readonly ManyToManyRelationshipDef[] = []) {
    const names = new Set(definitions.map((d) => d.logicalName));
    const oneToMany: OneToManyRelationshipDef[] = [];
    const navs = new Map<string, Navigation[]>(definitions.map((d) => [d.logicalName, []]));
    const columnsOf = new Map<string, ColumnDef[]>();

    for (const def of definitions) {
      const columns = withCommonColumns(def);
      columnsOf.set(def.logicalName, columns);
      for (const column of columns) {
        if (!isLookup(column)) continue;
        const multi = isMultiTarget(column);
        const targets = column.targets[0] === '*' ? [...names] : column.targets.filter((t) => names.has(t));
        for (const target of targets) {
          const targetDef = definitions.find((d) => d.logicalName === target)!;
          const schemaName = multi
            ? `${target}_${def.logicalName}_${column.logicalName}`
            : column.relationship?.schemaName ?? `${target}_${def.logicalName}_${column.logicalName}`;
          const rel: OneToManyRelationshipDef = {
            schemaName,
            referencedEntity: target,
            referencedAttribute: targetDef.primaryIdAttribute,
            referencingEntity: def.logicalName,
            referencingAttribute: column.logicalName,
            referencingEntityNavigationPropertyName: multi
              ? `${column.logicalName}_${target}`
              : column.relationship?.navigationProperty ?? column.logicalName,
            referencedEntityNavigationPropertyName: multi ? schemaName : column.relationship?.partner ?? schemaName,
          };
          oneToMany.push(rel);
          navs.get(def.logicalName)!.push({
            kind: 'single', name: rel.referencingEntityNavigationPropertyName, table: def.logicalName, target,
            column: column.logicalName, relationship: rel,
          });
          navs.get(target)!.push({
            kind: 'collection', name: rel.referencedEntityNavigationPropertyName, table: target,
            target: def.logicalName, column: column.logicalName, relationship: rel,
          });
        }
      }
    }
    for (const rel of manyToMany) {
      const a = rel.entity1LogicalName;
      const b = rel.entity2LogicalName;
      if (!names.has(a) || !names.has(b)) continue;
      const aId = definitions.find((d) => d.logicalName === a)!.primaryIdAttribute;
      const bId = definitions.find((d) => d.logicalName === b)!.primaryIdAttribute;
      // A self-referencing N:N stores the two sides in distinct columns.
      const [aCol, bCol] = a === b ? [`${aId}one`, `${bId}two`] : [aId, bId];
      navs.get(a)!.push({ kind: 'manyToMany', name: rel.entity1NavigationPropertyName, table: a, target: b,
        intersect: rel.intersectEntityName, ownColumn: aCol, otherColumn: bCol, relationship: rel });
      navs.get(b)!.push({ kind: 'manyToMany', name: rel.entity2NavigationPropertyName, table: b, target: a,
        intersect: rel.intersectEntityName, ownColumn: bCol, otherColumn: aCol, relationship: rel });
    }
    this.oneToMany = oneToMany;
    this.manyToMany = manyToMany.filter((r) => names.has(r.entity1LogicalName) && names.has(r.entity2LogicalName));

    for (const def of definitions) {
      const columns = columnsOf.get(def.logicalName)!;
      const byName = new Map(columns.map((c) => [c.logicalName, c]));
      const tableNavs = navs.get(def.logicalName)!;
      const navByName = new Map(tableNavs.map((n) => [n.name, n]));
      const byValue = new Map<string, LookupColumn>();
      for (const c of columns) if (isLookup(c)) byValue.set(lookupValueProperty(c.logicalName), c);
      const table: Table = {
        ...def,
        columns,
        navigations: tableNavs,
        column: (n) => byName.get(n),
        navigation: (n) => navByName.get(n),
        lookupByValueProperty: (p) => byValue.get(p),
      };
      this.#tables.set(def.logicalName, table);
      this.#bySet.set(def.entitySetName, table);
    }
  }

  table(logicalName: string): Table | undefined {
    return this.#tables.get(logicalName);
  }
  tableBySet(entitySetName: string): Table | undefined {
    return this.#bySet.get(entitySetName);
  }
  tables(): Table[] {
    return [...this.#tables.values()];
  }
  /** A new model with `def` added (or replaced). */
  with(def: TableDef): Model {
    const rest = this.definitions.filter((d) => d.logicalName !== def.logicalName);
    return new Model([...rest, def], this.manyToMany);
  }
}
