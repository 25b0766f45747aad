import { CcsError } from '../errors/index.js';
import type { StoreValue } from '../store/types.js';
import { isChoice } from './model.js';
import type { ColumnDef } from './types.js';

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** ISO 8601 date or date-time; a missing offset means UTC, as in Dataverse for UTC-behaviour columns. */
const DATETIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})?)?$/;

export function isGuid(value: string): boolean {
  return GUID.test(value);
}

export function parseDateTime(value: string): number | undefined {
  if (!DATETIME.test(value)) return undefined;
  const hasZone = /Z|[+-]\d{2}:\d{2}$/.test(value.slice(10));
  const ms = Date.parse(value.length === 10 ? `${value}T00:00:00Z` : hasZone ? value : `${value}Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);
const pad4 = (n: number) => (n < 1000 ? `${n}`.padStart(4, '0') : `${n}`);

/**
 * `YYYY-MM-DDTHH:MM:SSZ`, no fractional seconds: the only form DynamicsWebApi revives into a Date. Computed with
 * integer arithmetic (the civil-from-days algorithm of H. Hinnant, "chrono-Compatible Low-Level Date Algorithms"):
 * several times cheaper than Date#toISOString, and a page of records holds hundreds of dates. Years 0–9999.
 */
export function formatDateTime(ms: number): string {
  const days = Math.floor(ms / 86_400_000);
  const seconds = Math.floor((ms - days * 86_400_000) / 1000);
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return `${pad4(year)}-${pad2(month)}-${pad2(day)}T${pad2(h)}:${pad2(m)}:${pad2(seconds % 60)}Z`;
}

function invalid(column: ColumnDef, value: unknown, expected: string): never {
  throw new CcsError(
    'InvalidValue',
    `Invalid value '${String(JSON.stringify(value)).slice(0, 100)}' for column '${column.logicalName}': expected ${expected}.`,
  );
}

/**
 * Converts a JSON value from a request body or a filter literal to the value stored for `column`. Validates type,
 * range, MaxLength and option values; `null` passes through (required-ness is checked by the records service).
 */
export function toStoreValue(column: ColumnDef, value: unknown): StoreValue {
  if (value === null) return null;
  switch (column.type) {
    case 'string':
    case 'memo':
      if (typeof value !== 'string') invalid(column, value, 'a string');
      if (value.includes('\u0000')) invalid(column, value, 'text without NUL characters');
      if (value.length > column.maxLength) {
        throw new CcsError(
          'MaxLengthExceeded',
          `A validation error occurred. The length of the '${column.logicalName}' attribute exceeded the maximum allowed length of '${column.maxLength}'.`,
        );
      }
      return value;
    case 'integer':
    case 'bigint': {
      const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isSafeInteger(n)) invalid(column, value, 'a whole number');
      const min = column.minValue ?? (column.type === 'integer' ? -2147483648 : Number.MIN_SAFE_INTEGER);
      const max = column.maxValue ?? (column.type === 'integer' ? 2147483647 : Number.MAX_SAFE_INTEGER);
      if (n < min || n > max) invalid(column, value, `a whole number from ${min} to ${max}`);
      return n;
    }
    case 'decimal':
    case 'double': {
      const n = typeof value === 'string' && /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(value) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n)) invalid(column, value, 'a number');
      if (column.minValue !== undefined && n < column.minValue) invalid(column, value, `a number ≥ ${column.minValue}`);
      if (column.maxValue !== undefined && n > column.maxValue) invalid(column, value, `a number ≤ ${column.maxValue}`);
      return n;
    }
    case 'boolean':
      if (typeof value !== 'boolean') invalid(column, value, 'true or false');
      return value ? 1 : 0;
    case 'datetime': {
      const ms = typeof value === 'string' ? parseDateTime(value) : undefined;
      if (ms === undefined) invalid(column, value, 'a date and time such as 2024-01-31T10:00:00Z');
      return ms;
    }
    case 'primarykey':
    case 'uniqueidentifier':
    case 'lookup':
    case 'customer':
    case 'owner':
    case 'polymorphic':
      if (typeof value !== 'string' || !isGuid(value)) invalid(column, value, 'a GUID');
      return value.toLowerCase();
    case 'picklist':
    case 'state':
    case 'status':
      if (typeof value !== 'number' || !Number.isInteger(value)) invalid(column, value, 'an option value');
      if (!column.optionSet.options.some((o) => o.value === value)) {
        throw new CcsError(
          'InvalidValue',
          `${value} is not a valid value for '${column.logicalName}'. Valid values: ${column.optionSet.options.map((o) => o.value).join(', ')}.`,
        );
      }
      return value;
  }
}

/** Converts a stored value back to its JSON form. */
export function fromStoreValue(column: ColumnDef, value: StoreValue): unknown {
  if (value === null) return null;
  switch (column.type) {
    case 'boolean':
      return value === 1 || value === '1' || (value as unknown) === true;
    case 'datetime':
      return formatDateTime(Number(value));
    case 'integer':
    case 'bigint':
    case 'decimal':
    case 'double':
      return Number(value);
    default:
      return isChoice(column) ? Number(value) : value;
  }
}
