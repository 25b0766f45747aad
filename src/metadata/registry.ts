import { CcsError } from '../errors/index.js';
import type { PhysicalTable, Store } from '../store/types.js';
import { Model } from './model.js';
import { physicalSchema } from './physical.js';
import { standardManyToMany, standardTables } from './standard/index.js';
import type { ColumnDef, TableDef } from './types.js';

/** Platform key-value rows (organization id, custom table definitions). Not part of the Web API model. */
export const META_TABLE: PhysicalTable = {
  name: 'ccs_meta',
  primaryKey: 'key',
  columns: [
    { name: 'key', type: 'text' },
    { name: 'value', type: 'text' },
  ],
  indexes: [],
};

const TABLE_PREFIX = 'table:';

export async function readMeta(store: Store, key: string): Promise<string | undefined> {
  const rows = await store.select({ table: META_TABLE.name, where: { kind: 'compare', op: 'eq', left: { kind: 'column', column: 'key' }, right: { kind: 'value', value: key } } });
  const v = rows[0]?.['value'];
  return typeof v === 'string' ? v : undefined;
}

async function writeMeta(store: Store, key: string, value: string): Promise<void> {
  const where = { kind: 'compare', op: 'eq', left: { kind: 'column', column: 'key' }, right: { kind: 'value', value: key } } as const;
  if ((await store.update(META_TABLE.name, { value }, where)) === 0) await store.insert(META_TABLE.name, { key, value });
}

/** Stores `value` under `key` unless a value is already there; returns the value that is stored. */
export async function ensureMeta(store: Store, key: string, value: () => string): Promise<string> {
  const existing = await readMeta(store, key);
  if (existing !== undefined) return existing;
  const v = value();
  await writeMeta(store, key, v);
  return v;
}

/** Standard tables, with any columns added at run time, plus custom tables. */
function modelOf(custom: ReadonlyMap<string, TableDef>): Model {
  return new Model([...standardTables.filter((t) => !custom.has(t.logicalName)), ...custom.values()], standardManyToMany);
}

/**
 * The live model: standard tables plus the custom tables and columns created at run time, which are kept in the
 * store so they survive restarts. Changing the model builds a new immutable `Model` and syncs the physical schema.
 */
export class MetadataRegistry {
  #model: Model;
  #custom = new Map<string, TableDef>();
  /** Schema changes run one at a time. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly store: Store) {
    this.#model = modelOf(new Map());
  }

  static async open(store: Store): Promise<MetadataRegistry> {
    const registry = new MetadataRegistry(store);
    await store.syncSchema([META_TABLE]);
    const rows = await store.select({ table: META_TABLE.name, where: { kind: 'match', mode: 'startswith', operand: { kind: 'column', column: 'key' }, value: TABLE_PREFIX } });
    for (const row of rows) {
      const def = JSON.parse(String(row['value'])) as TableDef;
      registry.#custom.set(def.logicalName, def);
    }
    registry.#model = modelOf(registry.#custom);
    await store.syncSchema(physicalSchema(registry.#model));
    return registry;
  }

  get model(): Model {
    return this.#model;
  }


  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Adds a custom table. Its definition has been validated against the current model by the caller. */
  addTable(def: TableDef): Promise<void> {
    return this.#serial(async () => {
      if (this.#model.table(def.logicalName) || this.#model.tableBySet(def.entitySetName)) {
        throw new CcsError('DuplicateKey', `A table with the name '${def.logicalName}' already exists.`);
      }
      await this.#save({ ...def, isCustomEntity: true });
    });
  }

  /** Adds a column to a custom or standard table. */
  addColumn(tableName: string, column: ColumnDef): Promise<void> {
    return this.#serial(async () => {
      const table = this.#model.table(tableName);
      if (!table) throw new CcsError('ResourceNotFound', `Could not find a table with the name '${tableName}'.`);
      if (table.column(column.logicalName)) {
        throw new CcsError('DuplicateKey', `An attribute with the name '${column.logicalName}' already exists on '${tableName}'.`);
      }
      const base = this.#custom.get(tableName) ?? standardTables.find((t) => t.logicalName === tableName)!;
      await this.#save({ ...base, columns: [...base.columns, column] });
    });
  }

  async #save(def: TableDef): Promise<void> {
    const custom = new Map(this.#custom).set(def.logicalName, def);
    const model = modelOf(custom);
    await this.store.syncSchema(physicalSchema(model));
    await writeMeta(this.store, TABLE_PREFIX + def.logicalName, JSON.stringify(def));
    this.#custom = custom;
    this.#model = model;
  }
}
