import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { engines } from '../helpers/engines.js';
import { alerts, create, evaluated, eventually, metric, startApp, type Running } from './helpers.js';

const ACTION = 'ccs_ImportDeviceRules';
/** The reference blob of Microsoft's IoT ARM template (ms-connected-service.md §1.1). */
const REFERENCE = '[{"DeviceType":"Thermostat","Temperature":70.0,"Humidity":null,"TemperatureRuleOutput":"AlarmTemp","HumidityRuleOutput":null}]';
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

function ccs(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { main } from ${JSON.stringify(MAIN)}; await main(process.argv.slice(1));`, '--', ...args], {
    encoding: 'utf8',
    env: { ...process.env, CCS_LOG_LEVEL: 'silent' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `ccs` without blocking this process: the server it talks to may run here. */
function ccsAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { main } from ${JSON.stringify(MAIN)}; await main(process.argv.slice(1));`, '--', ...args], {
      encoding: 'utf8',
      env: { ...process.env, CCS_LOG_LEVEL: 'silent' },
    }, (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }));
  });
}

async function importRules(srv: Running, text: unknown, token?: string): Promise<Response> {
  return srv.fetch(ACTION, { method: 'POST', body: JSON.stringify({ DeviceRules: text }), ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });
}

async function errorMessage(res: Response): Promise<string> {
  return ((await res.json()) as { error: { message: string } }).error.message;
}

async function rules(srv: Running): Promise<Record<string, unknown>[]> {
  const res = await srv.fetch('ccs_iotrules?$orderby=ccs_name');
  return ((await res.json()) as { value: Record<string, unknown>[] }).value;
}

for (const engine of engines()) {
  describe(`devicerules.json import: ${ACTION} (${engine.name})`, () => {
    let srv: Running;
    before(async () => {
      srv = await startApp(engine.url());
    });
    after(() => srv.stop());

    test('creates the rules of the file with their lookups; they fire; importing again creates nothing', async () => {
      const thermostats = await create(srv, 'msdyn_iotdevicecategories', { msdyn_name: 'Thermostat' });
      const pump = await create(srv, 'msdyn_iotdevices', { msdyn_name: 'Pump', msdyn_deviceid: 'pump-1' });
      await create(srv, 'msdyn_iotdevices', { msdyn_name: 'Hall thermostat', msdyn_deviceid: 'thermo-1', 'msdyn_Category@odata.bind': `/msdyn_iotdevicecategories(${thermostats})` });
      const file = JSON.stringify([...JSON.parse(REFERENCE), { DeviceId: 'pump-1', Pressure: 5, PressureRuleOutput: 'AlarmPressure' }]);
      const res = await importRules(srv, file);
      assert.equal(res.status, 200, await res.clone().text());
      const body = (await res.json()) as { RuleIds: string[]; Skipped: string[] };
      assert.equal(body.RuleIds.length, 2);
      assert.deepEqual(body.Skipped, []);

      const created = await rules(srv);
      assert.deepEqual(created.map((r) => r['ccs_iotruleid']).sort(), [...body.RuleIds].sort());
      const temp = created.find((r) => r['ccs_name'] === 'Thermostat: Temperature > 70')!;
      assert.equal(temp['ccs_condition'], '{"measure":"Temperature","op":"gt","value":70}');
      assert.equal(temp['_ccs_category_value'], thermostats);
      assert.equal(temp['ccs_ruleoutput'], 'AlarmTemp');
      assert.equal(temp['ccs_suppressseconds'], 60);
      const pressure = created.find((r) => r['ccs_name'] === 'pump-1: Pressure > 5')!;
      assert.equal(pressure['_ccs_device_value'], pump);

      // The imported rules are live: the category's device raises the temperature alert, the pump the pressure one.
      await srv.app.hub.ingest('thermo-1', { body: Buffer.from('{"Temperature":75}'), properties: {}, messageId: 't-1' }, 'https');
      await srv.app.hub.ingest('pump-1', { body: Buffer.from('{"Temperature":99,"Pressure":7}'), properties: {}, messageId: 'p-1' }, 'https');
      const [hot] = await eventually(async () => ((await alerts(srv, 'thermo-1')).length > 0 ? alerts(srv, 'thermo-1') : undefined));
      assert.equal(JSON.parse(String(hot!['msdyn_alertdata'])).ruleoutput, 'AlarmTemp');
      const pumpAlerts = await eventually(async () => ((await alerts(srv, 'pump-1')).length > 0 ? alerts(srv, 'pump-1') : undefined));
      assert.deepEqual(pumpAlerts.map((a) => JSON.parse(String(a['msdyn_alertdata'])).ruleoutput), ['AlarmPressure'], 'the pump is not a thermostat');

      const again = await importRules(srv, file);
      assert.equal(again.status, 200);
      const { RuleIds, Skipped } = (await again.json()) as { RuleIds: string[]; Skipped: string[] };
      assert.deepEqual({ RuleIds, Skipped }, { RuleIds: [], Skipped: ['Thermostat: Temperature > 70', 'pump-1: Pressure > 5'] });
      assert.equal((await rules(srv)).length, 2);
    });

    test('a bad file, or one naming a category or device that does not exist, is a 400 saying what, and creates nothing', async () => {
      const before = (await rules(srv)).length;
      const cases: [unknown, RegExp][] = [
        ['[{', /devicerules\.json: is not valid JSON/],
        ['[{"DeviceType":"Thermostat","Temperature":"70"}]', /'Temperature' must be a number \(the threshold\) or null \(at \$\[0\]\.Temperature\)/],
        ['[{"DeviceType":"Boiler","Temperature":70}]', /DeviceType 'Boiler' names no msdyn_iotdevicecategory/],
        ['[{"Humidity":40},{"DeviceId":"nowhere-9","Temperature":70}]', /DeviceId 'nowhere-9' names no msdyn_iotdevice/],
      ];
      for (const [text, pattern] of cases) {
        const res = await importRules(srv, text);
        assert.equal(res.status, 400, String(text));
        assert.match(await errorMessage(res), pattern);
      }
      const notText = await importRules(srv, 42);
      assert.equal(notText.status, 400);
      assert.match(await errorMessage(notText), /DeviceRules/);
      assert.equal((await rules(srv)).length, before, 'nothing created');
      // The server keeps serving.
      assert.equal((await importRules(srv, '[{"Humidity":95}]')).status, 200);
    });
  });
}

describe('ccs rules import', () => {
  test('imports a file into the data directory, again skips, refuses a bad file with status 2; also through --server', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ccs-rules-cli-'));
    const file = join(dataDir, 'devicerules.json');
    writeFileSync(file, '[{"Pressure":1050,"PressureRuleOutput":"High"},{"Humidity":48}]');
    const first = ccs(['rules', 'import', file, '--data-dir', dataDir]);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /2 rules created, 0 already there/);
    const second = ccs(['rules', 'import', file, '--data-dir', dataDir]);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /0 rules created, 2 already there\n {2}exists {2}All devices: Pressure > 1050\n/);

    const bad = join(dataDir, 'bad.json');
    writeFileSync(bad, '[{"DeviceType":"Nope","Temperature":70}]');
    const refused = ccs(['rules', 'import', bad, '--data-dir', dataDir]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /rules import: .*bad\.json: devicerules\.json: DeviceType 'Nope' names no msdyn_iotdevicecategory/);
    assert.equal(ccs(['rules', 'import', join(dataDir, 'missing.json'), '--data-dir', dataDir]).status, 2);
    assert.match(ccs(['rules', 'list']).stderr, /Unknown rules command 'list'/);

    // Through a running server's Web API: the rules are the server's at once.
    const srv = await startApp(`sqlite:${join(dataDir, 'ccs.db')}`, { dataDir });
    try {
      writeFileSync(file, '[{"Temperature":80}]');
      const remote = await ccsAsync(['rules', 'import', file, '--server', srv.url, '--token', 'test-admin-token']);
      assert.equal(remote.status, 0, remote.stderr);
      assert.match(remote.stdout, /1 rule created/);
      assert.deepEqual((await rules(srv)).map((r) => r['ccs_name']), ['All devices: Humidity > 48', 'All devices: Pressure > 1050', 'All devices: Temperature > 80']);
      // Imported into the data directory by another process while the server runs: the server's rules pipeline
      // notices the change by itself (no record event reaches it from there) and the rule fires.
      const seen = await metric(srv, 'ccs_pipeline_readings_total');
      await srv.app.hub.ingest('mill-0', { body: Buffer.from('{"Temperature":1}'), properties: {}, messageId: 'w-1' }, 'https');
      await evaluated(srv, seen + 1); // the rules as they are now are loaded
      writeFileSync(file, '[{"Vibration":3}]');
      const direct = await ccsAsync(['rules', 'import', file, '--data-dir', dataDir]);
      assert.equal(direct.status, 0, direct.stderr);
      await srv.app.hub.ingest('mill-1', { body: Buffer.from('{"Vibration":2}'), properties: {}, messageId: 'v-1' }, 'https');
      let n = 1;
      await eventually(async () => {
        // Readings keep coming, re-arming and crossing, until one is evaluated against the new rule.
        await srv.app.hub.ingest('mill-1', { body: Buffer.from(JSON.stringify({ Vibration: n++ % 2 ? 9 : 1 })), properties: {}, messageId: `v-${n}` }, 'https');
        return (await alerts(srv, 'mill-1')).length > 0 ? true : undefined;
      }, 30_000);
      const wrongToken = await ccsAsync(['rules', 'import', file, '--server', srv.url, '--token', 'nope']);
      assert.equal(wrongToken.status, 2);
      assert.match(wrongToken.stderr, /HTTP 401/);
    } finally {
      await srv.stop();
    }
  });
});
