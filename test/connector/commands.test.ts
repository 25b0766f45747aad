import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type device from 'azure-iot-device';
import { engines } from '../helpers/engines.js';
import { connectDevice, create, eventually, rejectsWith, retrieve, startConnector, type Connector } from './helpers.js';

const STATUS = { inProgress: 192350000, sent: 192350001, error: 192350002, delivered: 192350003, expired: 192350004 } as const;

for (const engine of engines()) {
  describe(`commands to devices on ${engine.name}`, () => {
    let c: Connector;
    before(async () => {
      c = await startConnector(engine);
    });
    after(() => c.srv.stop());

    /** A device record registered through the Web API. */
    async function registeredDevice(deviceId: string): Promise<string> {
      const id = await create(c, 'msdyn_iotdevices', { msdyn_name: deviceId, msdyn_deviceid: deviceId });
      await c.api.callAction({ actionName: 'msdyn_RegisterIoTDevice', action: { IoTDeviceIds: id } });
      return id;
    }
    const command = (data: Record<string, unknown>) => create(c, 'msdyn_iotdevicecommands', { msdyn_name: 'cmd', ...data });
    const status = (id: string) => retrieve(c, 'msdyn_iotdevicecommands', id, ['msdyn_commandstatus', 'msdyn_commandstatusreason', 'msdyn_deviceid']);
    const until = (id: string, wanted: number, ms = 5000) =>
      eventually(async () => {
        const s = await status(id);
        return s['msdyn_commandstatus'] === wanted ? s : undefined;
      }, ms, `command status ${wanted}`);

    test('a command created through the Web API reaches the connected SDK client: Sent, then Delivered', async () => {
      const dev = await registeredDevice('thermo-1');
      const alert = await create(c, 'msdyn_iotalerts', { msdyn_description: 'Too hot', 'msdyn_Device@odata.bind': `/msdyn_iotdevices(${dev})` });
      const client = await connectDevice(c, dev);
      try {
        const received = new Promise<device.Message>((resolve) => client.on('message', (m: device.Message) => resolve(m)));
        const body = '{"CommandName":"Reset Thermostat","Parameters":{}}';
        const id = await command({ msdyn_message: body, 'msdyn_Device@odata.bind': `/msdyn_iotdevices(${dev})`, 'msdyn_ParentAlert@odata.bind': `/msdyn_iotalerts(${alert})` });
        const msg = await received;
        assert.equal(msg.messageId, id, 'the command id is the message id');
        assert.equal(msg.getData().toString(), body);
        await client.complete(msg);
        const done = await until(id, STATUS.delivered);
        assert.match(String(done['msdyn_commandstatusreason']), /The device received the message/);
        assert.equal(done['msdyn_deviceid'], 'thermo-1', 'filled in from the device');
        const a = await retrieve(c, 'msdyn_iotalerts', alert, ['_msdyn_lastcommandsent_value']);
        assert.equal(a['_msdyn_lastcommandsent_value'], id);
      } finally {
        await client.close();
      }
    });

    test('a command to an offline device with a short time-to-live is Sent, then Expired', async () => {
      await registeredDevice('offline-1');
      const id = await command({ msdyn_message: 'ping', msdyn_deviceid: 'offline-1', ccs_timetolive: 1 });
      const sent = await until(id, STATUS.sent, 1000);
      assert.match(String(sent['msdyn_commandstatusreason']), /Queued for device 'offline-1'; expires at/);
      const expired = await until(id, STATUS.expired, 4000);
      assert.match(String(expired['msdyn_commandstatusreason']), /time-to-live/);
    });

    test('a command to an unregistered device, or to no device, is an Error with a reason', async () => {
      const ghost = await command({ msdyn_message: 'x', msdyn_deviceid: 'ghost' });
      assert.match(String((await until(ghost, STATUS.error))['msdyn_commandstatusreason']), /Device 'ghost' is not registered with the hub/);
      const noId = await create(c, 'msdyn_iotdevices', { msdyn_name: 'never registered' });
      const unreg = await command({ msdyn_message: 'x', 'msdyn_Device@odata.bind': `/msdyn_iotdevices(${noId})` });
      assert.match(String((await until(unreg, STATUS.error))['msdyn_commandstatusreason']), /has no Device ID/);
      const none = await command({ msdyn_message: 'x' });
      assert.match(String((await until(none, STATUS.error))['msdyn_commandstatusreason']), /names no device/);
    });

    test("a device whose queue is full (IoT Hub's 50 pending messages) gets an Error naming the hub's refusal", async () => {
      await registeredDevice('full-1');
      for (let i = 0; i < 50; i++) await c.srv.app.hub.sendC2d('full-1', { body: Buffer.from('x'), properties: {} });
      const id = await command({ msdyn_message: 'one more', msdyn_deviceid: 'full-1' });
      assert.match(String((await until(id, STATUS.error))['msdyn_commandstatusreason']), /The hub refused the message: .*50 cloud-to-device messages pending/);
    });

    test('a command definition refuses a message that does not fit it', async () => {
      await registeredDevice('defined-1');
      const def = await create(c, 'msdyn_iotdevicecommanddefinitions', { msdyn_name: 'Set Values' });
      const param = await create(c, 'msdyn_iotpropertydefinitions', { msdyn_name: 'Temperature', msdyn_type: 192350004 });
      await c.api.associate({ collection: 'msdyn_iotdevicecommanddefinitions', primaryKey: def, relationshipName: 'msdyn_iotdevicecommandparameters', relatedCollection: 'msdyn_iotpropertydefinitions', relatedKey: param });
      const send = (message: string) => command({ msdyn_message: message, msdyn_deviceid: 'defined-1', 'msdyn_Command@odata.bind': `/msdyn_iotdevicecommanddefinitions(${def})` });
      const reason = async (id: string) => String((await until(id, STATUS.error))['msdyn_commandstatusreason']);
      // What the row alone shows wrong is refused at create; the server keeps serving.
      await rejectsWith(send('{"CommandName":"Set Values",'), 400, /The message is not valid JSON, which a command with a command definition \(msdyn_command\) requires: .*\(msdyn_message\)/);
      await rejectsWith(send('[1, 2]'), 400, /The message must be a JSON object for a command with a command definition/);
      // An empty message is not JSON either, but only the definition tells whether it is a method's (no payload).
      assert.match(await reason(await send('')), /The message is not valid JSON, which the command definition 'Set Values' requires/);
      assert.match(await reason(await send('{"CommandName":"Reset","Parameters":{}}')), /'CommandName' is "Reset", but its command definition is 'Set Values'/);
      assert.match(await reason(await send('{"Parameters":{"Temperature":"hot"}}')), /Parameter 'Temperature' .* must be a whole number/);
      assert.match(await reason(await send('{"Parameters":{"Humidity":30}}')), /'Humidity' is not a parameter .*\(parameters: Temperature\)/);
      await until(await send('{"CommandName":"Set Values","Parameters":{"Temperature":30}}'), STATUS.sent);
    });
  });
}
