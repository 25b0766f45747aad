import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { engines } from '../helpers/engines.js';
import { ADMIN_TOKEN, startServer } from '../helpers/server.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../examples/thermostat.json', import.meta.url));
const TIMEOUT = { timeout: 180_000 };

/** Runs `ccs <args>` through main() in a child process (asynchronously, so an in-process server keeps answering). */
function ccs(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { main } from ${JSON.stringify(MAIN)}; await main(process.argv.slice(1));`, '--', ...args], {
      env: { ...process.env, CCS_LOG_LEVEL: 'silent', CCS_TOKEN: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

for (const engine of engines()) {
  describe(`ccs deploy / ccs export (${engine.name})`, () => {
    test('deploy the example, deploy it again, export it, and deploy the export into a fresh data dir', TIMEOUT, async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'ccs-cli-'));
      const store = engine.url();
      const where = ['--data-dir', dataDir, '--store', store];

      const first = await ccs(['deploy', EXAMPLE, ...where]);
      assert.equal(first.status, 0, first.stderr);
      assert.match(first.stdout, /^Deployed .*thermostat\.json:\n/);
      assert.match(first.stdout, /^devices: 5 created$/m);
      assert.match(first.stdout, /^workflows: 1 updated$/m);
      assert.match(first.stdout, /^devices registered: 5 of 5$/m);

      const second = await ccs(['deploy', EXAMPLE, ...where]);
      assert.equal(second.status, 0, second.stderr);
      assert.match(second.stdout, /^devices: 5 unchanged$/m);
      assert.doesNotMatch(second.stdout, /created|updated|registered/);

      const out = join(dataDir, 'exported.json');
      const exported = await ccs(['export', '--out', out, '--include-secrets', ...where]);
      assert.equal(exported.status, 0, exported.stderr);
      assert.match(exported.stderr, /Wrote .*exported\.json/);
      const one = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
      assert.equal(one['$schema'], 'ccs-template/v1');
      assert.equal((one['devices'] as unknown[]).length, 5);
      const toStdout = await ccs(['export', '--include-secrets', ...where]);
      assert.equal(toStdout.stdout, readFileSync(out, 'utf8'));
      const withoutSecrets = await ccs(['export', ...where]);
      assert.match(withoutSecrets.stderr, /warning: webhooks \(Alerts to the ticketing system\): ccs_secret is write-only/);
      assert.doesNotMatch(withoutSecrets.stdout, /ccs_secret/);

      const freshDir = mkdtempSync(join(tmpdir(), 'ccs-cli-'));
      const freshWhere = ['--data-dir', freshDir, '--store', engine.url()];
      const into = await ccs(['deploy', out, ...freshWhere]);
      assert.equal(into.status, 0, into.stderr);
      assert.match(into.stdout, /^devices: 5 created$/m);
      const two = await ccs(['export', '--include-secrets', ...freshWhere]);
      assert.deepEqual(JSON.parse(two.stdout), one);
    });

    test('through a running server with --server and --token', TIMEOUT, async () => {
      const srv = await startServer(engine);
      try {
        const deployed = await ccs(['deploy', EXAMPLE, '--server', srv.url, '--token', ADMIN_TOKEN]);
        assert.equal(deployed.status, 0, deployed.stderr);
        assert.match(deployed.stdout, /^rules: 3 created$/m);
        const res = await srv.fetch("msdyn_iotdevices?$filter=msdyn_deviceid eq 'thermostat-0003'&$select=msdyn_registrationstatus");
        assert.equal(((await res.json()) as { value: { msdyn_registrationstatus: number }[] }).value[0]!.msdyn_registrationstatus, 192350003);
        const exported = await ccs(['export', '--server', srv.url, '--token', ADMIN_TOKEN, '--include-secrets']);
        assert.equal(exported.status, 0, exported.stderr);
        const template = JSON.parse(exported.stdout) as { rules: unknown[]; webhooks: { ccs_secret?: string }[] };
        assert.equal(template.rules.length, 3);
        assert.equal(template.webhooks[0]!.ccs_secret, 'replace-this-with-a-long-random-secret');

        const unauthorised = await ccs(['export', '--server', srv.url, '--token', 'not-a-token']);
        assert.equal(unauthorised.status, 2);
        assert.match(unauthorised.stderr, /^ccs: export: HTTP 401/);
        const noToken = await ccs(['deploy', EXAMPLE, '--server', srv.url]);
        assert.equal(noToken.status, 2);
        assert.match(noToken.stderr, /--server needs an admin token/);
        const bad = join(mkdtempSync(join(tmpdir(), 'ccs-cli-')), 'bad.json');
        writeFileSync(bad, JSON.stringify({ $schema: 'ccs-template/v1', rules: [{ ccs_name: 'r', ccs_condition: { noDataFor: 'soon' } }] }));
        const refused = await ccs(['deploy', bad, '--server', srv.url, '--token', ADMIN_TOKEN]);
        assert.equal(refused.status, 2);
        assert.match(refused.stderr, /ccs: deploy: HTTP 400: The template is not valid: rules\[0\] \(r\): .*noDataFor/);
      } finally {
        await srv.stop();
      }
    });

    test('bad input exits with status 2 and says what is wrong', { ...TIMEOUT, skip: engine.name !== 'sqlite' && 'argument checks do not depend on the engine' }, async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'ccs-cli-'));
      const noFile = await ccs(['deploy', '--data-dir', dataDir]);
      assert.equal(noFile.status, 2);
      assert.match(noFile.stderr, /give the template file/);
      const missing = await ccs(['deploy', join(dataDir, 'nope.json'), '--data-dir', dataDir]);
      assert.equal(missing.status, 2);
      assert.match(missing.stderr, /deploy: cannot read .*nope\.json/);
      const bad = join(dataDir, 'bad.json');
      writeFileSync(bad, JSON.stringify({ $schema: 'ccs-template/v1', categories: [{ msdyn_name: 'Pumps' }], devices: [{ msdyn_deviceid: 'p1', msdyn_category: 'Pump' }] }));
      const refused = await ccs(['deploy', bad, '--data-dir', dataDir]);
      assert.equal(refused.status, 2);
      assert.match(refused.stderr, /ccs: deploy: .*bad\.json: The template is not valid: devices\[0\] \(p1\): msdyn_category: no msdyn_iotdevicecategory with msdyn_name 'Pump'/);
      // Nothing of it was applied.
      const exported = await ccs(['export', '--data-dir', dataDir]);
      assert.equal(exported.status, 0, exported.stderr);
      assert.equal((JSON.parse(exported.stdout) as Record<string, unknown>)['categories'], undefined);
      const unknownFlag = await ccs(['export', '--data-dir', dataDir, '--outfile', 'x']);
      assert.equal(unknownFlag.status, 2);
      assert.match(unknownFlag.stderr, /Unknown option --outfile/);
    });
  });
}
