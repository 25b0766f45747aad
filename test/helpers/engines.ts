import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A store URL per engine under test: SQLite always, PostgreSQL when CCS_TEST_POSTGRES_URL is set. */
export interface Engine {
  readonly name: 'sqlite' | 'postgres';
  /** A fresh, empty store URL (its own file, or its own PostgreSQL schema). */
  url(): string;
}

export function engines(): Engine[] {
  const list: Engine[] = [
    { name: 'sqlite', url: () => `sqlite:${join(mkdtempSync(join(tmpdir(), 'ccs-test-')), 'ccs.db')}` },
  ];
  const pg = process.env['CCS_TEST_POSTGRES_URL'];
  if (pg) {
    list.push({
      name: 'postgres',
      url: () => {
        const u = new URL(pg);
        u.searchParams.set('schema', `ccs_test_${randomBytes(6).toString('hex')}`);
        return u.toString();
      },
    });
  }
  return list;
}
