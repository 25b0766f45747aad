/**
 * The shape of table definitions. Names follow Dataverse's EntityMetadata / AttributeMetadata so that the
 * EntityDefinitions endpoint and $metadata can be generated from them directly.
 */

export type RequiredLevel = 'None' | 'Recommended' | 'ApplicationRequired' | 'SystemRequired';

export interface OptionDef {
  readonly value: number;
  readonly label: string;
  /** Only for status options: the statecode value this status belongs to. */
  readonly state?: number;
}

export interface OptionSetDef {
  /** Global option-set name, or `<table>_<column>` for a local one. */
  readonly name: string;
  readonly options: readonly OptionDef[];
}

interface ColumnBase {
  readonly logicalName: string;
  /** Mixed-case name as given at creation (`new_AccountName`); defaults to the logical name. */
  readonly schemaName?: string;
  /** Created through `POST EntityDefinitions(...)/Attributes` or with a custom table (EntityDefinitions' IsCustomAttribute). */
  readonly isCustomAttribute?: boolean;
  readonly displayName: string;
  readonly description?: string;
  readonly requiredLevel?: RequiredLevel;
  /** Set by the platform only (createdon, versionnumber…): rejected on create and update. */
  readonly readOnly?: boolean;
  /**
   * `false`: write-only, for secrets (Dataverse's IsValidForRead). Never returned by the Web API, and refused in
   * `$select`, `$filter` and `$orderby`, so it cannot be read or probed; the platform itself reads it from the store.
   */
  readonly isValidForRead?: boolean;
}

export interface StringColumn extends ColumnBase {
  readonly type: 'string' | 'memo';
  readonly maxLength: number;
}
export interface IntegerColumn extends ColumnBase {
  readonly type: 'integer' | 'bigint';
  readonly minValue?: number;
  readonly maxValue?: number;
}
export interface DecimalColumn extends ColumnBase {
  readonly type: 'decimal' | 'double';
  readonly precision?: number;
  readonly minValue?: number;
  readonly maxValue?: number;
}
export interface BooleanColumn extends ColumnBase {
  readonly type: 'boolean';
  readonly trueLabel?: string;
  readonly falseLabel?: string;
  readonly defaultValue?: boolean;
}
export interface DateTimeColumn extends ColumnBase {
  readonly type: 'datetime';
}
export interface GuidColumn extends ColumnBase {
  /** `primarykey` is the table's own id column; `uniqueidentifier` is any other GUID column. */
  readonly type: 'primarykey' | 'uniqueidentifier';
}
export interface ChoiceColumn extends ColumnBase {
  readonly type: 'picklist' | 'state' | 'status';
  readonly optionSet: OptionSetDef;
  readonly defaultValue?: number;
}
export interface LookupColumn extends ColumnBase {
  /**
   * `lookup`: one target table. `customer` / `owner` / `polymorphic`: several targets, stored with the target's
   * logical name beside the id. `targets: ['*']` means any table (connection.record1id / record2id).
   */
  readonly type: 'lookup' | 'customer' | 'owner' | 'polymorphic';
  readonly targets: readonly string[];
  /**
   * Names of the relationship behind a single-target lookup. Defaults: relationship
   * `<target>_<table>_<column>`, navigation property `<column>`, partner `<relationship>`. For several targets
   * the navigation property is always `<column>_<target>` (Dataverse's `customerid_account`).
   */
  readonly relationship?: {
    readonly schemaName?: string;
    readonly navigationProperty?: string;
    readonly partner?: string;
  };
}

export type ColumnDef =
  | StringColumn
  | IntegerColumn
  | DecimalColumn
  | BooleanColumn
  | DateTimeColumn
  | GuidColumn
  | ChoiceColumn
  | LookupColumn;

export type ColumnType = ColumnDef['type'];

export interface AlternateKeyDef {
  readonly name: string;
  readonly columns: readonly string[];
}

export interface TableDef {
  readonly logicalName: string;
  readonly schemaName: string;
  readonly entitySetName: string;
  readonly displayName: string;
  readonly displayCollectionName?: string;
  readonly description?: string;
  readonly primaryIdAttribute: string;
  readonly primaryNameAttribute: string;
  /** Columns other than the common ones added by `withCommonColumns` (createdon, modifiedon, …). */
  readonly columns: readonly ColumnDef[];
  readonly alternateKeys?: readonly AlternateKeyDef[];
  /** Columns to index besides lookups and alternate keys (each entry is one index, columns in order). */
  readonly indexes?: readonly (readonly string[])[];
  readonly isCustomEntity?: boolean;
  /** Tables without owner, state and status (connectionrole has state; systemuser has none). */
  readonly ownership?: 'UserOwned' | 'OrganizationOwned' | 'None';
}

/**
 * A 1:N relationship: `referencingEntity.referencingAttribute` (a lookup column) points at `referencedEntity`.
 * For a lookup with several targets there is one relationship per target.
 */
export interface OneToManyRelationshipDef {
  readonly schemaName: string;
  readonly referencedEntity: string;
  readonly referencedAttribute: string;
  readonly referencingEntity: string;
  readonly referencingAttribute: string;
  /** Single-valued navigation property on the referencing table, e.g. `msdyn_Device`. Case-sensitive. */
  readonly referencingEntityNavigationPropertyName: string;
  /** Collection-valued navigation property on the referenced table, e.g. `msdyn_msdyn_iotdevice_msdyn_iotalert_Device`. */
  readonly referencedEntityNavigationPropertyName: string;
}

/** An N:N relationship stored in an intersect table with two id columns. */
export interface ManyToManyRelationshipDef {
  readonly schemaName: string;
  readonly entity1LogicalName: string;
  readonly entity2LogicalName: string;
  readonly intersectEntityName: string;
  /** Collection-valued navigation property on entity1 (points at entity2 records). */
  readonly entity1NavigationPropertyName: string;
  readonly entity2NavigationPropertyName: string;
}

export interface OperationParameterDef {
  readonly name: string;
  /** An Edm type (`Edm.String`), a full type name (`Microsoft.Dynamics.CRM.msdyn_iotalert`) or `Collection(…)`. */
  readonly type: string;
  readonly nullable?: boolean;
  /** For number parameters: the values allowed, checked with the type (not advertised in `$metadata`). */
  readonly range?: { readonly min: number; readonly max: number };
}

/** A custom action or function as advertised in $metadata. The behaviour lives in the Web API's registry. */
export interface OperationDef {
  readonly name: string;
  readonly kind: 'action' | 'function';
  /** Logical name of the table the operation is bound to; unbound when absent. */
  readonly boundTo?: string;
  readonly boundToCollection?: boolean;
  readonly parameters: readonly OperationParameterDef[];
  /**
   * The return value: properties of a `<name>Response` complex type (Dataverse's convention), or a single type.
   */
  readonly returns?:
    | { readonly properties: readonly OperationParameterDef[] }
    | { readonly type: string };
}
