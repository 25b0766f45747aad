import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createSimulator, type Simulator } from '../../src/simulator/index.js';
import { engines } from '../helpers/engines.js';
import { ADMIN_TOKEN, startServer, type TestServer } from '../helpers/server.js';

const [engine] = engines(); // the simulator speaks to the listeners, which are engine-independent

const TIMEOUT = { timeout: 60_000 };

async function until(what: string, predicate: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('ccs simulate: a thermostat fleet on the Azure IoT device SDK against the running server', () => {
  let srv: TestServer;
  let sim: Simulator;
  before(async () => {
    srv = await startServer(engine!);
    sim = createSimulator({ devices: 3, rate: 30, prefix: 'simtest-', server: srv.url, token: ADMIN_TOKEN, ca: srv.app.tls().ca });
    await sim.start();
  });
  after(async () => {
    await sim?.stop();
    await srv?.stop();
  });

  test('devices are created through the Web API and all connect', TIMEOUT, async () => {
    assert.deepEqual(sim.deviceIds, ['simtest-0001', 'simtest-0002', 'simtest-0003']);
    assert.equal(sim.stats.connected, 3);
    const res = await srv.fetch(`msdyn_iotdevices?$select=msdyn_deviceid,msdyn_issimulated&$filter=startswith(msdyn_deviceid,'simtest-')&$orderby=msdyn_deviceid`);
    const body = (await res.json()) as { value: { msdyn_deviceid: string; msdyn_issimulated: number }[] };
    assert.deepEqual(body.value.map((r) => r.msdyn_deviceid), sim.deviceIds);
    assert.ok(body.value.every((r) => r.msdyn_issimulated === 192350000));
  });

  test('readings arrive durable from every device, as JSON Temperature and Humidity', TIMEOUT, async () => {
    for (const id of sim.deviceIds) {
      await until(`readings of ${id}`, async () => (await srv.app.hub.readTelemetry({ deviceId: id })).length >= 2);
      const [record] = await srv.app.hub.readTelemetry({ deviceId: id, limit: 1 });
      assert.equal(record!.transport, 'mqtt');
      assert.equal(record!.message.contentType, 'application/json');
      const reading = JSON.parse(record!.message.body.toString('utf8')) as Record<string, unknown>;
      assert.deepEqual(Object.keys(reading).sort(), ['Humidity', 'Temperature']);
      assert.equal(typeof reading['Temperature'], 'number');
      assert.equal(typeof reading['Humidity'], 'number');
    }
    assert.ok(sim.stats.acked > 0);
    assert.equal(sim.stats.errors, 0);
  });

  test('the twin carries the reported firmware and set point from the start', TIMEOUT, async () => {
    await until('initial reported properties', async () => (await srv.app.hub.getTwin('simtest-0001')).properties.reported['firmware'] !== undefined);
    const reported = (await srv.app.hub.getTwin('simtest-0001')).properties.reported;
    assert.equal(reported['firmware'], '1.0.0');
    assert.deepEqual(reported['setPoint'], { Temperature: 65, Humidity: 45 });
  });

  test('a C2D "Set Values" command changes what the device reports and reads', TIMEOUT, async () => {
    await srv.app.hub.sendC2d('simtest-0002', {
      body: Buffer.from('{"CommandName":"Set Values","Parameters":{"Reading":{"Temperature":"30","Humidity":"35"}}}'),
      properties: {},
    });
    await until('the reported set point', async () => {
      const setPoint = (await srv.app.hub.getTwin('simtest-0002')).properties.reported['setPoint'] as { Temperature?: number } | undefined;
      return setPoint?.Temperature === 30;
    });
    const reported = (await srv.app.hub.getTwin('simtest-0002')).properties.reported;
    assert.deepEqual(reported['setPoint'], { Temperature: 30, Humidity: 35 });
    assert.equal((reported['lastCommand'] as { name: string }).name, 'Set Values');
    // Readings sent after the command hover around the new set point, far from the factory 65.
    const after = (await srv.app.hub.readTelemetry({ deviceId: 'simtest-0002' })).length;
    await until('readings after the command', async () => (await srv.app.hub.readTelemetry({ deviceId: 'simtest-0002' })).length >= after + 2);
    const latest = (await srv.app.hub.readTelemetry({ deviceId: 'simtest-0002' })).at(-1)!;
    const t = (JSON.parse(latest.message.body.toString('utf8')) as { Temperature: number }).Temperature;
    assert.ok(t < 50, `expected a reading near 30, got ${t}`);
    assert.equal(sim.stats.commands, 1);
  });

  test('a C2D "Notification" is reported as the last notification', TIMEOUT, async () => {
    await srv.app.hub.sendC2d('simtest-0003', {
      body: Buffer.from('{"CommandName":"Notification","Parameters":{"Message":"Technician has been dispatched"}}'),
      properties: {},
    });
    await until('the reported notification', async () => {
      const n = (await srv.app.hub.getTwin('simtest-0003')).properties.reported['lastNotification'] as { message?: string } | null | undefined;
      return n?.message === 'Technician has been dispatched';
    });
  });

  test('the direct method "Reset Thermostat" answers 200 and resets the set point', TIMEOUT, async () => {
    const res = await srv.app.hub.invokeMethod('simtest-0002', { methodName: 'Reset Thermostat', payload: {}, responseTimeoutInSeconds: 10 });
    assert.equal(res.status, 200);
    assert.deepEqual(res.payload, { result: 'Thermostat reset' });
    await until('the reset reported', async () => (await srv.app.hub.getTwin('simtest-0002')).properties.reported['resets'] === 1);
    assert.deepEqual((await srv.app.hub.getTwin('simtest-0002')).properties.reported['setPoint'], { Temperature: 65, Humidity: 45 });
  });

  test('the direct method "Set Values" takes the Parameters object; a bad one is answered 400', TIMEOUT, async () => {
    const ok = await srv.app.hub.invokeMethod('simtest-0001', { methodName: 'Set Values', payload: { Reading: { Temperature: 72 } }, responseTimeoutInSeconds: 10 });
    assert.equal(ok.status, 200);
    await until('the reported set point', async () => {
      const setPoint = (await srv.app.hub.getTwin('simtest-0001')).properties.reported['setPoint'] as { Temperature?: number } | undefined;
      return setPoint?.Temperature === 72;
    });
    const bad = await srv.app.hub.invokeMethod('simtest-0001', { methodName: 'Set Values', payload: { Reading: { Temperature: 'hot' } }, responseTimeoutInSeconds: 10 });
    assert.equal(bad.status, 400);
  });

  test('stop closes every client: the hub sees the devices disconnect', TIMEOUT, async () => {
    await sim.stop();
    const sent = sim.stats.sent;
    assert.equal(sim.stats.connected, 0);
    await until('all disconnected', async () => {
      for (const id of sim.deviceIds) if ((await srv.app.hub.registry.get(id))?.connectionState !== 'Disconnected') return false;
      return true;
    });
    assert.equal(sim.stats.sent, sent, 'nothing is sent after stop');
  });
});
