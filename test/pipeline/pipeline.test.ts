import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { telemetrySubject } from '../../src/bus/index.js';
import { CONNECTED_DEVICE_ROLE_ID } from '../../src/metadata/index.js';
import { engines } from '../helpers/engines.js';
import { alerts, create, evaluated, eventually, metric, startApp, type Running } from './helpers.js';

const RULE = { measure: 'Temperature', op: 'gt', value: 70 };

async function sdkClient(srv: Running, recordId: string): Promise<device.Client> {
  const res = await srv.fetch(`msdyn_iotdevices(${recordId})/Microsoft.Dynamics.CRM.ccs_GetDeviceConnectionString()`);
  const { ConnectionString } = (await res.json()) as { ConnectionString: string };
  const client = device.Client.fromConnectionString(ConnectionString, deviceMqtt.Mqtt);
  await client.setOptions({ ca: srv.app.tls().ca });
  await client.open();
  return client;
}

function message(body: string, id: string): device.Message {
  const m = new device.Message(body);
  m.messageId = id;
  return m;
}

for (const engine of engines()) {
  describe(`rules pipeline (${engine.name})`, () => {
    let srv: Running;
    before(async () => {
      srv = await startApp(engine.url());
    });
    after(() => srv.stop());

    test('a reading over a rule from the unmodified SDK raises exactly one alert with Microsoft\'s mapping', async () => {
      const ruleId = await create(srv, 'ccs_iotrules', { ccs_name: 'Hot', ccs_condition: JSON.stringify(RULE), ccs_ruleoutput: 'AlarmTemp' });
      const recordId = await create(srv, 'msdyn_iotdevices', { msdyn_name: 'Boiler', msdyn_deviceid: 'boiler-1' });
      const assetId = await create(srv, 'msdyn_customerassets', { msdyn_name: 'Boiler room' });
      await srv.app.records.create(srv.app.system, 'connection', {
        record1id: { id: assetId, table: 'msdyn_customerasset' },
        record2id: { id: recordId, table: 'msdyn_iotdevice' },
        record2roleid: CONNECTED_DEVICE_ROLE_ID,
      });
      const before = await metric(srv, 'ccs_pipeline_readings_total');
      const client = await sdkClient(srv, recordId);
      try {
        await client.sendEvent(message(JSON.stringify({ Temperature: 75 }), 'msg-1'));
        const [alert] = await eventually(async () => ((await alerts(srv, 'boiler-1')).length > 0 ? alerts(srv, 'boiler-1') : undefined));
        const [record] = await srv.app.hub.readTelemetry({ deviceId: 'boiler-1' });
        const time = new Date(record!.enqueuedTime).toISOString();
        assert.equal(alert!['msdyn_description'], 'Temperature reading of 75 exceeded a threshold of 70');
        assert.deepEqual(JSON.parse(String(alert!['msdyn_alertdata'])), {
          deviceid: 'boiler-1', readingtype: 'Temperature', reading: 75, threshold: 70, ruleoutput: 'AlarmTemp', time, eventtoken: 'msg-1',
        });
        assert.equal(alert!['msdyn_alerttoken'], `msg-1/${ruleId}`);
        assert.equal(alert!['msdyn_alerttype'], 192350000);
        assert.equal(alert!['msdyn_deviceid'], 'boiler-1');
        assert.equal(alert!['_msdyn_device_value'], recordId);
        assert.equal(alert!['_msdyn_customerasset_value'], assetId);
        assert.equal(Date.parse(String(alert!['msdyn_alerttime'])), Math.floor(record!.enqueuedTime / 1000) * 1000);

        // Back under (re-arms), then the identical reading within 60 s: suppressed, as Stream Analytics does.
        await client.sendEvent(message(JSON.stringify({ Temperature: 60 }), 'msg-2'));
        await client.sendEvent(message(JSON.stringify({ Temperature: 75 }), 'msg-3'));
        // Telemetry that is not JSON, or JSON without numbers, changes nothing and stops nothing.
        await client.sendEvent(message('not json at all', 'msg-4'));
        await client.sendEvent(new device.Message(Buffer.from([0xff, 0x00, 0x13])));
        await client.sendEvent(message(JSON.stringify({ Temperature: 'hot' }), 'msg-5'));
        await evaluated(srv, before + 6);
        assert.equal((await alerts(srv, 'boiler-1')).length, 1);
        // Stored as sent, whatever it is: the telemetry log keeps text as text and other bytes exactly.
        const stored = (await srv.app.hub.readTelemetry({ deviceId: 'boiler-1' })).map((r) => Buffer.from(r.message.body));
        assert.ok(stored.some((b) => b.toString() === 'not json at all'));
        assert.ok(stored.some((b) => b.equals(Buffer.from([0xff, 0x00, 0x13]))));
        assert.ok(stored.some((b) => b.toString() === '{"Temperature":"hot"}'));
        assert.ok((await metric(srv, 'ccs_pipeline_firings_total', 'outcome="suppressed"')) >= 1);
        assert.ok((await metric(srv, 'ccs_pipeline_readings_total', 'body="not_json"')) >= 2);
        assert.ok((await metric(srv, 'ccs_pipeline_readings_total', 'body="no_number"')) >= 1);

        // The pipeline still works: a new reading over the threshold after re-arming raises the next alert.
        await client.sendEvent(message(JSON.stringify({ Temperature: 60 }), 'msg-6'));
        await client.sendEvent(message(JSON.stringify({ Temperature: 81 }), 'msg-7'));
        const two = await eventually(async () => {
          const list = await alerts(srv, 'boiler-1');
          return list.length === 2 ? list : undefined;
        });
        assert.equal(JSON.parse(String(two[1]!['msdyn_alertdata'])).reading, 81);
      } finally {
        await client.close();
      }
      const metrics = await (await srv.fetch('/metrics')).text();
      assert.match(metrics, /ccs_pipeline_reading_to_alert_seconds_count \d/);
      assert.match(metrics, /ccs_pipeline_evaluation_seconds_count \d/);
    });

    test('a redelivered message creates no second alert', async () => {
      await create(srv, 'ccs_iotrules', { ccs_name: 'Pressure', ccs_condition: JSON.stringify({ measure: 'Pressure', op: 'gt', value: 5 }), ccs_suppressseconds: 0 });
      const ingest = (pressure: number, id: string) =>
        srv.app.hub.ingest('pump-1', { body: Buffer.from(JSON.stringify({ Pressure: pressure })), properties: {}, messageId: id }, 'https');
      const before = await metric(srv, 'ccs_pipeline_readings_total');
      const duplicates = await metric(srv, 'ccs_pipeline_firings_total', 'outcome="duplicate"');
      const first = await ingest(9, 'p-1');
      await eventually(async () => ((await alerts(srv, 'pump-1')).length === 1 ? true : undefined));
      await ingest(1, 'p-2'); // re-armed
      // The bus delivers the same record again (at-least-once): it is recognised by its sequence and not evaluated.
      await srv.app.bus.publish(telemetrySubject('pump-1'), first);
      await ingest(1, 'p-3');
      await evaluated(srv, before + 3);
      await srv.app.pipeline.checkpoint();
      assert.equal(await metric(srv, 'ccs_pipeline_readings_total'), before + 3);
      // The device sends the same message again (a retry after a lost PUBACK): the rule fires, the token exists.
      await ingest(9, 'p-1');
      await evaluated(srv, before + 4);
      await eventually(async () => ((await metric(srv, 'ccs_pipeline_firings_total', 'outcome="duplicate"')) === duplicates + 1 ? true : undefined));
      assert.equal((await alerts(srv, 'pump-1')).length, 1);
    });

    test('a device that moves to another hub node goes on being evaluated, though that node numbers its records lower', async () => {
      await create(srv, 'ccs_iotrules', { ccs_name: 'Flow', ccs_condition: JSON.stringify({ measure: 'Flow', op: 'gt', value: 5 }), ccs_suppressseconds: 0 });
      const ingest = (flow: number, id: string) =>
        srv.app.hub.ingest('mover-1', { body: Buffer.from(JSON.stringify({ Flow: flow })), properties: {}, messageId: id }, 'https');
      const before = await metric(srv, 'ccs_pipeline_readings_total');
      const here = await ingest(1, 'f-1');
      await evaluated(srv, before + 1);
      // What another hub node publishes: sequences from the block it reserved earlier, lower than this node's.
      const elsewhere = (flow: number, id: string, n: number) => ({
        ...here,
        sequence: here.sequence - 5000 + n,
        enqueuedTime: here.enqueuedTime + 1000 * n,
        message: { body: Buffer.from(JSON.stringify({ Flow: flow })), properties: {}, messageId: id },
      });
      await srv.app.bus.publish(telemetrySubject('mover-1'), elsewhere(9, 'f-2', 1));
      const [alert] = await eventually(async () => ((await alerts(srv, 'mover-1')).length > 0 ? alerts(srv, 'mover-1') : undefined));
      assert.equal(JSON.parse(String(alert!['msdyn_alertdata'])).eventtoken, 'f-2');
      // The same record delivered again is still recognised.
      await srv.app.bus.publish(telemetrySubject('mover-1'), elsewhere(9, 'f-2', 1));
      await srv.app.bus.publish(telemetrySubject('mover-1'), elsewhere(1, 'f-3', 2));
      await evaluated(srv, before + 3);
      assert.equal(await metric(srv, 'ccs_pipeline_readings_total'), before + 3);
    });

    test('an invalid rule is refused with a 400 that names the field', async () => {
      const bad = await srv.fetch('ccs_iotrules', { method: 'POST', body: JSON.stringify({ ccs_name: 'Bad', ccs_condition: '{"measure":"Temperature","op":"gtx","value":70}' }) });
      assert.equal(bad.status, 400);
      assert.match(((await bad.json()) as { error: { message: string } }).error.message, /ccs_condition/);
      const notJson = await srv.fetch('ccs_iotrules', { method: 'POST', body: JSON.stringify({ ccs_name: 'Bad', ccs_condition: '{' }) });
      assert.equal(notJson.status, 400);
      assert.match(((await notJson.json()) as { error: { message: string } }).error.message, /ccs_condition/);
      // An update is checked on the whole row: a device scope without a device is refused.
      const id = await create(srv, 'ccs_iotrules', { ccs_name: 'Fine', ccs_condition: JSON.stringify(RULE), statecode: 1, statuscode: 2 });
      const patch = await srv.fetch(`ccs_iotrules(${id})`, { method: 'PATCH', body: JSON.stringify({ ccs_scope: 192350002 }) });
      assert.equal(patch.status, 400);
      assert.match(((await patch.json()) as { error: { message: string } }).error.message, /ccs_device/);
      const ok = await srv.fetch(`ccs_iotrules(${id})`, { method: 'PATCH', body: JSON.stringify({ ccs_suppressseconds: 10 }) });
      assert.equal(ok.status, 204);
    });
  });

  describe(`rules pipeline across restarts (${engine.name})`, () => {
    test('a duration rule half-way through when the server restarts fires at the right time afterwards', async () => {
      const storeUrl = engine.url();
      let now = Date.UTC(2030, 0, 1, 12, 0, 0);
      const clock = () => now;
      let srv = await startApp(storeUrl, { clock });
      const dataDir = srv.dataDir;
      try {
        await create(srv, 'ccs_iotrules', { ccs_name: 'Hot for 5 min', ccs_condition: JSON.stringify({ ...RULE, for: 'PT5M' }) });
        const t0 = now;
        await srv.app.hub.ingest('oven-1', { body: Buffer.from(JSON.stringify({ Temperature: 90 })), properties: {}, messageId: 'o-1' }, 'https');
        await evaluated(srv, 1);
        now = t0 + 2 * 60_000;
        await srv.app.pipeline.tick();
        assert.equal((await alerts(srv, 'oven-1')).length, 0);
        await srv.stop({ drop: false });

        srv = await startApp(storeUrl, { dataDir, clock });
        now = t0 + 4 * 60_000;
        await srv.app.pipeline.tick();
        assert.equal((await alerts(srv, 'oven-1')).length, 0);
        now = t0 + 6 * 60_000;
        await srv.app.pipeline.tick();
        const [alert] = await alerts(srv, 'oven-1');
        assert.ok(alert, 'the duration completed after the restart');
        const data = JSON.parse(String(alert['msdyn_alertdata'])) as Record<string, unknown>;
        assert.equal(data['time'], new Date(t0 + 5 * 60_000).toISOString());
        assert.equal(data['eventtoken'], `tick:oven-1:${t0 + 5 * 60_000}`);
      } finally {
        await srv.stop();
      }
    });

    test('a crash before the checkpoint replays the log and duplicates no alert', async () => {
      const storeUrl = engine.url();
      let srv = await startApp(storeUrl);
      const dataDir = srv.dataDir;
      try {
        await create(srv, 'ccs_iotrules', { ccs_name: 'Hot', ccs_condition: JSON.stringify(RULE), ccs_suppressseconds: 0 });
        for (const [i, t] of [75, 60, 76, 60].entries()) {
          await srv.app.hub.ingest('kiln-1', { body: Buffer.from(JSON.stringify({ Temperature: t })), properties: {}, messageId: `k-${i}` }, 'https');
        }
        await evaluated(srv, 4);
        assert.equal((await alerts(srv, 'kiln-1')).length, 2);
        await srv.stop({ drop: false });
        // As if the process had died before any checkpoint: the states and the watermark are gone.
        const reopened = await startApp(storeUrl, { dataDir });
        await reopened.app.store.delete('ccs_rulestate', { kind: 'true' });
        await reopened.app.store.delete('ccs_rulewatermark', { kind: 'true' });
        await reopened.stop({ drop: false });
        srv = await startApp(storeUrl, { dataDir });
        assert.ok((await metric(srv, 'ccs_pipeline_readings_total', 'source="replay"')) >= 4);
        assert.equal((await alerts(srv, 'kiln-1')).length, 2);
        assert.ok((await metric(srv, 'ccs_pipeline_firings_total', 'outcome="duplicate"')) >= 2);
      } finally {
        await srv.stop();
      }
    });
  });
}
