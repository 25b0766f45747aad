import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createApp } from '../../src/app.js';
import { ConfigError, loadConfig, parseFlags } from '../../src/config/index.js';
import { PostgresStore } from '../../src/store/index.js';
import { engines } from '../helpers/engines.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const TOKEN = 'demo-test-admin-token';
/** Generous: a loaded machine may take a while to start, connect five devices and run a workflow. */
const WAIT_MS = 150_000;

async function until<T>(what: string, probe: () => Promise<T | undefined>, output: () => string): Promise<T> {
  const end = Date.now() + WAIT_MS;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; output so far:\n${output()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('the --demo option', () => {
  test('is off unless given; --demo, CCS_DEMO and the config file turn it on; a bad value is refused', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ccs-demo-'));
    assert.equal(loadConfig(parseFlags(['--data-dir', dataDir]), {}).demo, false);
    assert.equal(loadConfig(parseFlags(['--data-dir', dataDir, '--demo']), {}).demo, true);
    assert.equal(loadConfig(parseFlags(['--demo', '--data-dir', dataDir]), {}).demo, true);
    assert.equal(loadConfig(parseFlags(['--data-dir', dataDir, '--demo=false']), {}).demo, false);
    assert.equal(loadConfig(parseFlags(['--data-dir', dataDir]), { CCS_DEMO: 'true' }).demo, true);
    assert.throws(() => loadConfig(parseFlags(['--data-dir', dataDir, '--demo', 'maybe']), {}), (e: unknown) => e instanceof ConfigError && e.message === "--demo: expected true or false, got 'maybe'");
    assert.throws(() => loadConfig(parseFlags(['--data-dir', dataDir]), { CCS_DEMO: 'yes' }), (e: unknown) => e instanceof ConfigError && /^CCS_DEMO: expected true or false/.test(e.message));
  });

  test('needs every role in the one process: with some of them it stops with status 2 and says why', { timeout: 120_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ccs-demo-'));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', `import { main } from ${JSON.stringify(MAIN)}; await main(process.argv.slice(1));`, '--',
        'start', '--demo', '--roles', 'api,worker', '--data-dir', dataDir, '--http-port', '0', '--host', '127.0.0.1', '--admin-token', TOKEN, '--log-level', 'silent'],
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 2, stderr);
    assert.match(stderr, /^ccs: --demo: the demo runs the whole chain in one process: it needs the roles api, hub and worker \(the default\), not only api,worker$/m);
  });
});

for (const engine of engines()) {
  describe(`ccs start --demo (${engine.name})`, () => {
    test('within a minute there are readings, an alert, a case and a delivered command; SIGTERM stops it cleanly', { timeout: 240_000 }, async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'ccs-demo-'));
      const store = engine.url();
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', `import { main } from ${JSON.stringify(MAIN)}; await main(process.argv.slice(1));`, '--',
          'start', '--demo', '--data-dir', dataDir, '--store', store, '--http-port', '0', '--https-port', '0', '--mqtts-port', '0', '--host', '127.0.0.1', '--admin-token', TOKEN, '--log-level', 'error'],
        { env: { ...process.env } },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      const output = () => `${stdout}\n--- stderr ---\n${stderr}`;
      try {
        const base = await until('the start-up line', async () => /Web API (http:\/\/\S+?)\/api\/data\/v9\.2\//.exec(stdout)?.[1], output);
        const get = async (path: string): Promise<Record<string, unknown>[]> => {
          const res = await fetch(`${base}/api/data/v9.2/${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
          if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
          return ((await res.json()) as { value: Record<string, unknown>[] }).value;
        };
        const nonEmpty = async (path: string) => {
          const rows = await get(path);
          return rows.length > 0 ? rows : undefined;
        };

        const devices = await until('the template\'s devices, registered', async () => {
          const rows = await get('msdyn_iotdevices?$filter=msdyn_registrationstatus eq 192350003&$select=msdyn_deviceid,msdyn_connectionstate');
          return rows.length === 5 ? rows : undefined;
        }, output);
        assert.deepEqual(devices.map((d) => d['msdyn_deviceid']).sort(), ['thermostat-0001', 'thermostat-0002', 'thermostat-0003', 'thermostat-0004', 'thermostat-0005']);
        const [alert] = await until('an alert', () => nonEmpty("msdyn_iotalerts?$filter=msdyn_deviceid eq 'thermostat-0001'&$select=msdyn_description,msdyn_alertdata"), output);
        assert.match(String(alert!['msdyn_description']), /^Temperature reading of \d+(\.\d+)? exceeded a threshold of 70$/);
        const [incident] = await until('a case', () => nonEmpty('incidents?$select=title,caseorigincode'), output);
        assert.equal(incident!['caseorigincode'], 700610000);
        const [command] = await until('a delivered command', () => nonEmpty('msdyn_iotdevicecommands?$filter=msdyn_commandstatus eq 192350003&$select=msdyn_name,msdyn_deviceid'), output);
        assert.equal(command!['msdyn_name'], 'Reset Thermostat');
        assert.equal(command!['msdyn_deviceid'], 'thermostat-0001');
        await until('the device applying the command', async () => (/thermostat-0001 Reset Thermostat: Thermostat reset/.test(stdout) ? true : undefined), output);
        assert.match(stdout, /demo: deployed .*thermostat\.json \(28 created, 2 updated, 0 unchanged; 5 devices registered\)/);
        assert.match(stdout, /demo: alert "Temperature reading of .* from thermostat-0001/);

        child.kill('SIGTERM');
        assert.equal(await exited, 0, output());
        assert.match(stdout, /SIGTERM received, shutting down/);
      } finally {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
        if (engine.name === 'postgres') {
          const app = await createApp(loadConfig(new Map([['data-dir', dataDir], ['store', store], ['log-level', 'silent']]), {}));
          if (app.store instanceof PostgresStore) await app.store.dropSchema();
          await app.stop();
        }
      }
    });
  });
}
