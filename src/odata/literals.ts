import { edmType, isGuid, parseDateTime, toStoreValue, type ColumnDef } from '../metadata/index.js';
import type { CompareOp, StoreValue } from '../store/types.js';
import type { Literal } from './ast.js';
import { echo, invalidQuery, invalidValue } from './errors.js';

/** What a column compares as. Choices compare as numbers: filters do not check option values (Dataverse doesn't). */
export type Category = 'string' | 'number' | 'boolean' | 'datetime' | 'guid';

export function categoryOf(column: ColumnDef): Category {
  switch (column.type) {
    case 'string':
    case 'memo':
      return 'string';
    case 'integer':
    case 'bigint':
    case 'decimal':
    case 'double':
    case 'picklist':
    case 'state':
    case 'status':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'datetime':
      return 'datetime';
    case 'primarykey':
    case 'uniqueidentifier':
    case 'lookup':
    case 'customer':
    case 'owner':
    case 'polymorphic':
      return 'guid';
  }
}

/** The Edm type names Microsoft.OData uses in its type errors, so our messages read like Dataverse's. */
export const edmTypeOfColumn = edmType;

export function edmTypeOfLiteral(literal: Literal): string {
  switch (literal.type) {
    case 'null':
      return 'null';
    case 'boolean':
      return 'Edm.Boolean';
    case 'number':
      if (/[.eE]/.test(literal.text)) return /[eE]/.test(literal.text) ? 'Edm.Double' : 'Edm.Decimal';
      return Math.abs(literal.value) <= 2147483647 ? 'Edm.Int32' : 'Edm.Int64';
    case 'string':
      return 'Edm.String';
    case 'guid':
      return 'Edm.Guid';
    case 'datetime':
      return literal.text.length === 10 ? 'Edm.Date' : 'Edm.DateTimeOffset';
    case 'json':
      return 'Collection';
    case 'typed':
      return literal.typeName;
  }
}

const OP_KIND: Record<CompareOp, string> = {
  eq: 'Equal',
  ne: 'NotEqual',
  gt: 'GreaterThan',
  ge: 'GreaterThanOrEqual',
  lt: 'LessThan',
  le: 'LessThanOrEqual',
};

/** Microsoft.OData's wording for a comparison of incompatible types. */
export function incompatible(left: string, right: string, op: CompareOp): never {
  return invalidQuery(
    `A binary operator with incompatible types was detected. Found operand types '${left}' and '${right}' for operator kind '${OP_KIND[op]}'.`,
  );
}

/** A number literal as a value: finite, and integers exact (a 20-digit id would silently change otherwise). */
function numberValue(literal: Extract<Literal, { type: 'number' }>): number {
  const integral = !/[.eE]/.test(literal.text);
  if (!Number.isFinite(literal.value) || (integral && !Number.isSafeInteger(literal.value))) {
    invalidValue(`The number '${echo(literal.text)}' is out of range.`);
  }
  return literal.value;
}

/**
 * Converts a filter literal to the stored form of `column`'s values, or rejects a literal of another type. Unlike
 * writes, filters do not check MaxLength (a longer text simply matches nothing) nor option values. Two leniencies:
 * a quoted GUID or date is taken for a GUID or date column, since the meaning is unambiguous.
 */
export function literalToStore(column: ColumnDef, literal: Literal, op: CompareOp): StoreValue {
  if (literal.type === 'null') return null;
  const mismatch = (): never => incompatible(edmTypeOfColumn(column), edmTypeOfLiteral(literal), op);
  switch (categoryOf(column)) {
    case 'string':
      if (literal.type !== 'string') return mismatch();
      return literal.value;
    case 'number':
      if (literal.type !== 'number') return mismatch();
      return numberValue(literal);
    case 'boolean':
      if (literal.type !== 'boolean') return mismatch();
      return toStoreValue(column, literal.value);
    case 'datetime': {
      if (literal.type === 'datetime') return toStoreValue(column, literal.text);
      if (literal.type === 'string' && parseDateTime(literal.value) !== undefined) return toStoreValue(column, literal.value);
      return mismatch();
    }
    case 'guid':
      if (literal.type === 'guid' || (literal.type === 'string' && isGuid(literal.value))) {
        return toStoreValue(column, literal.value);
      }
      return mismatch();
  }
}

/**
 * Converts a value from a Dataverse query function (`PropertyValues=["1","2"]`) to the stored form. These functions
 * come from FetchXML, where every value is text, so text is accepted for any column type when it parses as one.
 */
export function looseToStore(column: ColumnDef, value: unknown): StoreValue {
  if (value === null) return null;
  const bad = (): never =>
    invalidValue(`The value '${echo(String(JSON.stringify(value)))}' is not valid for column '${column.logicalName}'.`);
  switch (categoryOf(column)) {
    case 'string':
      if (typeof value === 'string') return value;
      if (typeof value === 'number' && Number.isFinite(value)) return String(value);
      return bad();
    case 'number': {
      const n = typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n)) return bad();
      return n;
    }
    case 'boolean':
      if (value === true || value === 'true' || value === 1 || value === '1') return 1;
      if (value === false || value === 'false' || value === 0 || value === '0') return 0;
      return bad();
    case 'datetime':
    case 'guid':
      if (typeof value !== 'string') return bad();
      return toStoreValue(column, value);
  }
}

/** The plain value of a literal, as a query function parameter or a key value receives it. */
export function literalValue(literal: Literal): unknown {
  switch (literal.type) {
    case 'null':
      return null;
    case 'boolean':
    case 'number':
    case 'string':
    case 'guid':
    case 'json':
      return literal.value;
    case 'datetime':
      return literal.text;
    case 'typed':
      // Enum members (`Microsoft.Dynamics.CRM.EntityFilters'Entity'`) are passed on by member name.
      return literal.value;
  }
}
