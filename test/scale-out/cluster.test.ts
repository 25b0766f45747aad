import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Bus } from '../../src/bus/index.js';
import { createHub, type HubClusterOptions, type HubRuntime } from '../../src/hub/index.js';
import { createStore, eq, PostgresStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { engines } from '../helpers/engines.js';
import { FakeChannel, isCode } from '../hub/helpers.js';
import { sharedBuses, until, type SharedBus } from './nodes.js';

/**
 * Hub nodes at the hub's own surface (`createHub` with `cluster`), several on one store and one bus, with test doubles
 * for device connections (the `DeviceChannel` port): events handled once across worker nodes, method calls that wait
 * for a device to connect on another node, errors of the holding node passed through, sweeping a node whose
 * heartbeat stopped, and a node taking its devices back after it was presumed gone.
 */

for (const engine of engines()) {
  for (const makeBus of sharedBuses()) {
    const busName = makeBus().name;
    describe(`hub cluster (${engine.name}, ${busName} bus)`, () => {
      let bus: SharedBus;
      let storeUrl: string;
      const stores: Store[] = [];
      const hubs: HubRuntime[] = [];
      /** Installations other than the shared one (a node cut off from it). */
      const others: SharedBus[] = [];

      async function node(
        cluster: Partial<HubClusterOptions> & { nodeId: string },
        opts: { c2dScanMs?: number; bus?: Bus } = {},
      ): Promise<{ hub: HubRuntime; store: Store; bus: Bus }> {
        const store = createStore(storeUrl);
        stores.push(store);
        const connection = opts.bus ?? (await bus.connect());
        const hub = await createHub({
          store,
          bus: connection,
          hostName: 'hub.test',
          flushIntervalMs: 20,
          c2dScanMs: opts.c2dScanMs,
          cluster: { roles: ['hub'], holdsConnections: true, receivesEvents: false, ...cluster },
        });
        hubs.push(hub);
        await hub.join();
        return { hub, store, bus: connection };
      }

      before(() => {
        bus = makeBus();
        storeUrl = engine.url();
      });

      after(async () => {
        for (const h of hubs) await h.close().catch(() => undefined);
        const first = stores[0];
        if (first instanceof PostgresStore) await first.dropSchema();
        for (const s of stores) await s.close();
        await bus.cleanup();
        for (const o of others) await o.cleanup();
      });

      test('hub events of any node reach exactly one of the worker nodes', async () => {
        const a = await node({ nodeId: 'events-a' });
        const w1 = await node({ nodeId: 'events-w1', holdsConnections: false, receivesEvents: true });
        const w2 = await node({ nodeId: 'events-w2', holdsConnections: false, receivesEvents: true });
        await a.hub.registry.create({ deviceId: 'ev-1' });
        const heard: string[] = [];
        for (const [name, w] of [['w1', w1], ['w2', w2]] as const) {
          w.hub.on('connection', (id, state) => {
            if (id === 'ev-1') heard.push(`${name}:${state}`);
          });
        }
        const local: string[] = [];
        a.hub.on('connection', (id, state) => local.push(`${id}:${state}`));
        const detach = a.hub.attach(new FakeChannel('ev-1'));
        await until(() => (heard.length >= 1 ? true : undefined), 'the connection event on a worker');
        detach();
        await until(() => (heard.length >= 2 ? true : undefined), 'the disconnection event on a worker');
        await new Promise((r) => setTimeout(r, 200));
        assert.deepEqual(heard.map((h) => h.split(':')[1]), ['Connected', 'Disconnected'], `each event once: ${heard.join(', ')}`);
        assert.deepEqual(local, [], 'a node that is not a worker hands its events on rather than to its own listeners');
      });

      test('a method call waits for the device to connect on another node; the holding node’s errors pass through', { timeout: 60_000 }, async () => {
        const a = await node({ nodeId: 'methods-a' });
        const b = await node({ nodeId: 'methods-b' });
        await a.hub.registry.create({ deviceId: 'm-1' });
        const call = b.hub.invokeMethod('m-1', { methodName: 'ping', payload: { x: 1 }, responseTimeoutInSeconds: 10, connectTimeoutInSeconds: 20 });
        await new Promise((r) => setTimeout(r, 300));
        const channel = new FakeChannel('m-1');
        channel.onMethod((rid, methodName, payload) => a.hub.methodResponse('m-1', rid, 200, Buffer.from(JSON.stringify({ methodName, got: JSON.parse(payload.toString()) }))));
        const detach = a.hub.attach(channel);
        assert.deepEqual(await call, { status: 200, payload: { methodName: 'ping', got: { x: 1 } } });

        // The device on A does not answer: A's GatewayTimeout (504) is what B's caller gets.
        channel.onMethod(() => undefined);
        await assert.rejects(b.hub.invokeMethod('m-1', { methodName: 'ping', payload: null, responseTimeoutInSeconds: 5 }), isCode('GatewayTimeout'));
        // A bad request fails on B the same way, without bothering A.
        await assert.rejects(b.hub.invokeMethod('m-1', { methodName: 'bad/name', payload: null }), isCode('ArgumentInvalid'));
        await assert.rejects(b.hub.invokeMethod('m-1', { methodName: 'ping', payload: null, responseTimeoutInSeconds: 1 }), isCode('ArgumentInvalid'));
        await assert.rejects(b.hub.invokeMethod('no-such-device', { methodName: 'ping', payload: null }), isCode('DeviceNotFound'));
        detach();
        await until(async () => ((await a.store.select({ table: 'ccs_hubpresence', where: eq('deviceid', 'm-1') })).length === 0 ? true : undefined), 'the presence removed');
        await assert.rejects(b.hub.invokeMethod('m-1', { methodName: 'ping', payload: null }), isCode('DeviceNotOnline'));
      });

      test('a queued C2D message whose notification never came is found by the holding node', async () => {
        const holder = await node({ nodeId: 'scan-a' }, { c2dScanMs: 100 });
        await holder.hub.registry.create({ deviceId: 'sc-1' });
        const channel = new FakeChannel('sc-1');
        holder.hub.attach(channel);
        await until(async () => ((await holder.store.select({ table: 'ccs_hubpresence', where: eq('deviceid', 'sc-1') })).length === 1 ? true : undefined), 'the presence of sc-1');
        // A node cut off from the others' bus: its notification to the holder cannot arrive.
        const elsewhere = makeBus();
        others.push(elsewhere);
        const isolated = await node({ nodeId: 'scan-cut-off', holdsConnections: false }, { bus: await elsewhere.connect() });
        await isolated.hub.sendC2d('sc-1', { body: Buffer.from('found by the scan'), properties: {} });
        await until(() => (channel.delivered.some((m) => m.body.toString() === 'found by the scan') ? true : undefined), 'the message delivered by the scan');
      });

      test('a node whose heartbeat stopped is swept: its devices are disconnected and their presence removed', async () => {
        // The silent node beats once an hour; the sweeper presumes a node gone after 300 ms.
        const silent = await node({ nodeId: 'sweep-silent', heartbeatMs: 3_600_000 });
        const sweeper = await node({ nodeId: 'sweep-live', heartbeatMs: 50, staleAfterMs: 300 });
        const worker = await node({ nodeId: 'sweep-worker', holdsConnections: false, receivesEvents: true, heartbeatMs: 3_600_000 });
        await silent.hub.registry.create({ deviceId: 'sw-1' });
        const statuses: string[] = [];
        // Whichever worker node of the installation gets the event (earlier tests left some running).
        for (const h of hubs) {
          h.on('status', (updates) => {
            for (const u of updates) if (u.deviceId === 'sw-1') statuses.push(String(u.connectionState));
          });
        }
        silent.hub.attach(new FakeChannel('sw-1'));
        await until(async () => ((await sweeper.hub.registry.get('sw-1'))?.connectionState === 'Connected' ? true : undefined), 'sw-1 connected');
        await until(async () => ((await sweeper.hub.registry.get('sw-1'))?.connectionState === 'Disconnected' ? true : undefined), 'the sweep marking sw-1 disconnected');
        assert.equal((await sweeper.store.select({ table: 'ccs_hubpresence', where: eq('deviceid', 'sw-1') })).length, 0);
        assert.equal((await sweeper.store.select({ table: 'ccs_hubnode', where: eq('nodeid', 'sweep-silent') })).length, 0);
        await until(() => (statuses.includes('Disconnected') ? true : undefined), 'the disconnection reaching the worker');
        assert.equal(worker.hub.nodeId, 'sweep-worker');
        await silent.hub.close();
      });

      test('a node that was presumed gone claims its devices again at its next heartbeat', async () => {
        const back = await node({ nodeId: 'back-a', heartbeatMs: 50 });
        await back.hub.registry.create({ deviceId: 'bk-1' });
        back.hub.attach(new FakeChannel('bk-1'));
        const presence = async () => (await back.store.select({ table: 'ccs_hubpresence', where: eq('deviceid', 'bk-1') }))[0];
        await until(async () => ((await presence())?.['nodeid'] === 'back-a' ? true : undefined), 'the presence of bk-1');
        // What another node's sweep does to a node it presumed gone.
        await back.store.delete('ccs_hubpresence', eq('nodeid', 'back-a'));
        await back.store.delete('ccs_hubnode', eq('nodeid', 'back-a'));
        await back.store.update('ccs_hubdevice', { connectionstate: 'Disconnected', connectionstateupdatedtime: 0 }, eq('deviceid', 'bk-1'));
        await until(async () => ((await presence())?.['nodeid'] === 'back-a' ? true : undefined), 'bk-1 claimed again');
        const stored = async () => (await back.store.select({ table: 'ccs_hubdevice', where: eq('deviceid', 'bk-1') }))[0]?.['connectionstate'];
        await until(async () => ((await stored()) === 'Connected' ? true : undefined), 'bk-1 written as connected again');
        assert.equal((await back.store.select({ table: 'ccs_hubnode', where: eq('nodeid', 'back-a') })).length, 1);
      });
    });
  }
}
