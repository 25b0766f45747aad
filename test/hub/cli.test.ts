import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { deviceTokenFromConnectionString, parseServiceConnectionString, createSasToken } from '../../src/hub/index.js';
import { PostgresStore } from '../../src/store/index.js';
import { engines } from '../helpers/engines.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

function ccs(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { main } from ${JSON.stringify(MAIN)}; await main(process.argv.slice(1));`, '--', ...args], {
    encoding: 'utf8',
    env: { ...process.env, CCS_LOG_LEVEL: 'silent' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

for (const engine of engines()) {
  describe(`ccs device / hub connection-string (${engine.name})`, () => {
    test('prints a device connection string whose key the hub accepts, and where the CA is', async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'ccs-cli-'));
      const store = engine.url();
      const first = ccs(['device', 'connection-string', 'thermostat-1', '--data-dir', dataDir, '--store', store]);
      assert.equal(first.status, 0, first.stderr);
      assert.match(first.stdout, /^HostName=localhost;DeviceId=thermostat-1;SharedAccessKey=[A-Za-z0-9+/]{43}=\n$/);
      assert.match(first.stderr, /Registered device identity 'thermostat-1'/);
      const caFile = join(dataDir, 'tls', 'ca.pem');
      assert.ok(first.stderr.includes(caFile));
      assert.ok(existsSync(caFile));
      // Asked again: the same identity, not a new one.
      const second = ccs(['device', 'connection-string', 'thermostat-1', '--data-dir', dataDir, '--store', store]);
      assert.equal(second.stdout, first.stdout);
      assert.doesNotMatch(second.stderr, /Registered/);
      // Another MQTT port travels in HostName.
      const ported = ccs(['device', 'connection-string', 'thermostat-1', '--data-dir', dataDir, '--store', store, '--mqtts-port', '8884']);
      assert.match(ported.stdout, /^HostName=localhost:8884;DeviceId=thermostat-1;/);

      const service = ccs(['hub', 'connection-string', '--policy', 'service', '--data-dir', dataDir, '--store', store]);
      assert.equal(service.status, 0, service.stderr);
      assert.match(service.stdout, /^HostName=localhost;SharedAccessKeyName=service;SharedAccessKey=[A-Za-z0-9+/]{43}=\n$/);
      assert.match(service.stderr, /443/);
      const owner = ccs(['hub', 'connection-string', '--data-dir', dataDir, '--store', store]);
      assert.match(owner.stdout, /SharedAccessKeyName=iothubowner;/);

      // The printed keys are the hub's: a token made from each string authenticates.
      const app = await createApp(loadConfig(new Map([['data-dir', dataDir], ['store', store], ['log-level', 'silent']]), {}));
      try {
        const token = deviceTokenFromConnectionString(first.stdout.trim(), Math.floor(Date.now() / 1000) + 600);
        assert.equal((await app.hub.authenticateDevice('thermostat-1', token)).deviceId, 'thermostat-1');
        const s = parseServiceConnectionString(service.stdout.trim());
        const st = createSasToken({ resource: s.hostName, key: s.sharedAccessKey, keyName: s.sharedAccessKeyName, expiry: Math.floor(Date.now() / 1000) + 600 });
        assert.equal((await app.hub.authenticateService(st, 'ServiceConnect')).keyName, 'service');
      } finally {
        if (app.store instanceof PostgresStore) await app.store.dropSchema();
        await app.stop();
      }
    });

    test('bad input exits with status 2 and a message', { skip: engine.name !== 'sqlite' && 'argument checks do not touch the store' }, () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'ccs-cli-'));
      const noId = ccs(['device', 'connection-string', '--data-dir', dataDir]);
      assert.equal(noId.status, 2);
      assert.match(noId.stderr, /give the device id/);
      const badId = ccs(['device', 'connection-string', 'a/b', '--data-dir', dataDir]);
      assert.equal(badId.status, 2);
      assert.match(badId.stderr, /Invalid device id/);
      const badPolicy = ccs(['hub', 'connection-string', '--policy', 'root', '--data-dir', dataDir]);
      assert.equal(badPolicy.status, 2);
      assert.match(badPolicy.stderr, /No shared access policy named 'root'/);
    });
  });
}
