import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DynamicsWebApi } from 'dynamics-web-api';
import type device from 'azure-iot-device';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { engines } from '../helpers/engines.js';
import { ADMIN_TOKEN, startServer, type TestServer } from '../helpers/server.js';
import { connectDevice, create, eventually, retrieve, type Connector } from './helpers.js';

const STATUS = { inProgress: 192350000, sent: 192350001, error: 192350002, delivered: 192350003, expired: 192350004 } as const;
const DIRECT_METHOD = 192350001;

function connector(srv: TestServer): Connector {
  return { srv, api: new DynamicsWebApi({ serverUrl: srv.url, onTokenRefresh: async () => ADMIN_TOKEN }) };
}

for (const engine of engines()) {
  describe(`commands after a restart on ${engine.name}`, () => {
    test('commands left In Progress are sent on start; a method call whose answer was lost is an Error', async () => {
      const first = connector(await startServer(engine));
      const { app } = first.srv;
      let second: Connector | undefined;
      try {
        const dev = await create(first, 'msdyn_iotdevices', { msdyn_name: 'resume-1', msdyn_deviceid: 'resume-1' });
        await first.api.callAction({ actionName: 'msdyn_RegisterIoTDevice', action: { IoTDeviceIds: dev } });
        const asset = await create(first, 'msdyn_customerassets', { msdyn_name: 'Depot' });
        await first.api.callAction({ actionName: 'msdyn_RegisterCustomEntity', action: { EntityIds: `${asset},${asset}`, EntityLogicalName: 'msdyn_customerasset', DeviceIds: 'depot-1,depot-2' } });
        const def = await create(first, 'msdyn_iotdevicecommanddefinitions', { msdyn_name: 'Reboot', ccs_deliverymethod: DIRECT_METHOD });

        // The process stopped after these commands were committed and before it acted on them: their record events
        // went to a list nobody publishes.
        const unpublished = { ...app.system, pending: [] };
        const body = '{"CommandName":"Reset Thermostat","Parameters":{}}';
        const single = await app.records.create(unpublished, 'msdyn_iotdevicecommand', { msdyn_name: 'reset', msdyn_message: body, msdyn_device: dev });
        const fan = await app.records.create(unpublished, 'msdyn_iotdevicecommand', { msdyn_name: 'all', msdyn_message: 'ping', msdyn_customerasset: asset, msdyn_sendtoallconnecteddevices: true });
        // A method call under way when the process stopped.
        const calling = await app.records.create(unpublished, 'msdyn_iotdevicecommand', {
          msdyn_name: 'reboot', msdyn_message: '{}', msdyn_device: dev, msdyn_deviceid: 'resume-1', msdyn_command: def, msdyn_commandstatus: STATUS.sent,
        });
        for (const id of [single, fan]) assert.equal((await retrieve(first, 'msdyn_iotdevicecommands', id, ['msdyn_commandstatus']))['msdyn_commandstatus'], STATUS.inProgress);
        await first.srv.stop({ drop: false });

        // An app that is built but not started (a one-off CLI command against the store) leaves them alone.
        const flags = new Map(Object.entries({ 'data-dir': first.srv.dataDir, store: first.srv.storeUrl, 'log-level': 'silent' }));
        const cli = await createApp(loadConfig(flags, {}));
        await cli.stop(); // waits for any work its command process had started
        const reader = await createApp(loadConfig(flags, {}));
        try {
          for (const id of [single, fan, calling]) {
            const row = await reader.records.retrieve(reader.system, 'msdyn_iotdevicecommand', id, ['msdyn_commandstatus']);
            assert.equal(row?.['msdyn_commandstatus'], id === calling ? STATUS.sent : STATUS.inProgress);
          }
        } finally {
          await reader.stop();
        }

        // Ten minutes later: no live process can still be sending them.
        second = connector(await startServer(engine, { storeUrl: first.srv.storeUrl, dataDir: first.srv.dataDir, clock: () => Date.now() + 10 * 60_000 }));
        const s = second;
        const until = (id: string, wanted: number) =>
          eventually(async () => {
            const row = await retrieve(s, 'msdyn_iotdevicecommands', id, ['msdyn_commandstatus', 'msdyn_commandstatusreason']);
            return row['msdyn_commandstatus'] === wanted ? row : undefined;
          }, 10_000, `command status ${wanted}`);

        assert.match(String((await until(single, STATUS.sent))['msdyn_commandstatusreason']), /Queued for device 'resume-1'/);
        assert.match(String((await until(fan, STATUS.sent))['msdyn_commandstatusreason']), /Sent to 2 devices/);
        assert.match(String((await until(calling, STATUS.error))['msdyn_commandstatusreason']), /The server stopped while waiting for device 'resume-1' to answer the method; its answer, if any, was lost/);

        // The device comes back and gets the command it was sent while it was away.
        const client = await connectDevice(s, dev);
        try {
          const received = await new Promise<device.Message>((resolve) => client.on('message', (m: device.Message) => resolve(m)));
          assert.equal(received.messageId, single);
          assert.equal(received.getData().toString(), body);
          await client.complete(received);
          await until(single, STATUS.delivered);
        } finally {
          await client.close();
        }
      } finally {
        if (second) await second.srv.stop();
        else await first.srv.stop().catch(() => undefined);
      }
    });
  });
}
