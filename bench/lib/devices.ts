/**
 * A data directory with `count` device identities and the hub's TLS material, for the device benchmarks. Built once
 * per count under the temp directory and reused (registering 10,000 identities takes a while); each run works on a
 * fresh copy, so telemetry from earlier runs never weighs on a later one.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { createSasToken } from '../../src/hub/index.js';
import { log } from './report.js';

export const BENCH_ADMIN_TOKEN = 'bench-admin-token';
/** Host name of the bench hub: in certificates, usernames and SAS `sr`. */
export const HUB_HOST = 'localhost';

export interface BenchDevice {
  readonly deviceId: string;
  /** MQTT username, as IoT Hub wants it (§1.2). */
  readonly username: string;
  /** SAS token signed with the device's primary key (§1.3), valid for a day. */
  readonly password: string;
}

export interface BenchFleet {
  /** A fresh copy of the prepared data directory (store `<dataDir>/ccs.db`, TLS material `<dataDir>/tls/`). */
  readonly dataDir: string;
  readonly devices: readonly BenchDevice[];
  readonly certFile: string;
  readonly keyFile: string;
  readonly ca: string;
  /** Removes the copy. */
  dispose(): void;
}

function deviceId(prefix: string, i: number): string {
  return `${prefix}${String(i).padStart(5, '0')}`;
}

export async function prepareFleet(count: number, prefix = 'bench-'): Promise<BenchFleet> {
  const template = join(tmpdir(), `ccs-bench-fleet-${prefix}${count}`);
  const config = loadConfig(new Map([['data-dir', template], ['log-level', 'warn'], ['admin-token', BENCH_ADMIN_TOKEN], ['hub-hostname', HUB_HOST]]), {});
  const app = await createApp(config);
  const keys: string[] = [];
  try {
    app.tls();
    let created = 0;
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      const id = deviceId(prefix, i);
      let key = (await app.hub.registry.get(id))?.primaryKey;
      if (key === undefined) {
        key = (await app.hub.registry.create({ deviceId: id })).primaryKey;
        if (++created % 2000 === 0) log(`  registered ${created} device identities (${Math.round(created / ((performance.now() - started) / 1000))}/s)`);
      }
      keys.push(key);
    }
    if (created > 0) log(`registered ${created} device identities in ${template}`);
  } finally {
    await app.stop();
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'ccs-bench-run-'));
  // The store was closed cleanly (WAL checkpointed), so copying the directory copies a consistent database.
  cpSync(template, dataDir, { recursive: true });
  const expiry = Math.floor(Date.now() / 1000) + 24 * 3600;
  const devices = keys.map((key, i) => {
    const id = deviceId(prefix, i);
    return {
      deviceId: id,
      username: `${HUB_HOST}/${id}/?api-version=2021-04-12`,
      password: createSasToken({ resource: `${HUB_HOST}/devices/${id}`, key, expiry }),
    };
  });
  const tls = join(dataDir, 'tls');
  return {
    dataDir,
    devices,
    certFile: join(tls, 'server.pem'),
    keyFile: join(tls, 'server-key.pem'),
    ca: readFileSync(join(tls, 'ca.pem'), 'utf8'),
    dispose: () => {
      if (existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
