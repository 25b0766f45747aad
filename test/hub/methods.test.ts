import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engines } from '../helpers/engines.js';
import { FakeChannel, isCode, openHub, type TestHub } from './helpers.js';

for (const engine of engines()) {
  describe(`direct methods (${engine.name})`, () => {
    let t: TestHub;
    before(async () => {
      t = await openHub(engine);
      for (const id of ['m-1', 'm-2', 'm-3', 'm-4', 'm-5', 'm-6']) await t.hub.registry.create({ deviceId: id });
    });
    after(() => t.close());

    /** A device that answers every method with status 200 and an echo of the request. */
    function answering(deviceId: string): FakeChannel {
      const ch = new FakeChannel(deviceId);
      ch.onMethod((rid, methodName, payload) => {
        const body = Buffer.from(JSON.stringify({ method: methodName, got: JSON.parse(payload.toString()) }));
        setImmediate(() => t.hub.methodResponse(deviceId, rid, 200, body));
      });
      return ch;
    }

    test('the request reaches the device with a rid; its answer (status, JSON payload) comes back', async () => {
      const ch = answering('m-1');
      const detach = t.hub.attach(ch);
      const res = await t.hub.invokeMethod('m-1', { methodName: 'Reset Thermostat', payload: { level: 3 } });
      assert.deepEqual(res, { status: 200, payload: { method: 'Reset Thermostat', got: { level: 3 } } });
      assert.equal(ch.methodRequests.length, 1);
      assert.match(ch.methodRequests[0]!.rid, /^[0-9a-f]+$/);
      // Concurrent calls are told apart by rid.
      const many = await Promise.all([1, 2, 3].map((n) => t.hub.invokeMethod('m-1', { methodName: 'Set Values', payload: n })));
      assert.deepEqual(many.map((r) => (r.payload as { got: number }).got), [1, 2, 3]);
      assert.equal(new Set(ch.methodRequests.map((r) => r.rid)).size, 4);
      detach();
    });

    test('an empty answer is a null payload; a non-JSON answer comes back as text; the status is the device\'s', async () => {
      const ch = new FakeChannel('m-2');
      const replies = [Buffer.alloc(0), Buffer.from('not json')];
      ch.onMethod((rid) => setImmediate(() => t.hub.methodResponse('m-2', rid, 404, replies.shift()!)));
      t.hub.attach(ch);
      assert.deepEqual(await t.hub.invokeMethod('m-2', { methodName: 'x', payload: null }), { status: 404, payload: null });
      assert.deepEqual(await t.hub.invokeMethod('m-2', { methodName: 'x', payload: null }), { status: 404, payload: 'not json' });
    });

    test('an offline device is 404 DeviceNotOnline at once; an unknown one DeviceNotFound', async () => {
      const started = Date.now();
      await assert.rejects(t.hub.invokeMethod('m-3', { methodName: 'x', payload: {} }), isCode('DeviceNotOnline'));
      assert.ok(Date.now() - started < 1000);
      await assert.rejects(t.hub.invokeMethod('ghost', { methodName: 'x', payload: {} }), isCode('DeviceNotFound'));
      // Connected but not subscribed to methods counts as offline for methods.
      const ch = new FakeChannel('m-3');
      ch.acceptsMethods = false;
      const detach = t.hub.attach(ch);
      await assert.rejects(t.hub.invokeMethod('m-3', { methodName: 'x', payload: {} }), isCode('DeviceNotOnline'));
      detach();
    });

    test('connectTimeoutInSeconds waits for the device to connect (and subscribe) in time', async () => {
      const call = t.hub.invokeMethod('m-4', { methodName: 'late', payload: 1, connectTimeoutInSeconds: 5 });
      await new Promise((r) => setTimeout(r, 50));
      const ch = answering('m-4');
      ch.acceptsMethods = false;
      t.hub.attach(ch);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(ch.methodRequests.length, 0, 'not before it subscribes');
      ch.acceptsMethods = true;
      t.hub.ready('m-4', 'methods');
      const res = await call;
      assert.equal(res.status, 200);
      // A device that does not come within the connect timeout: 404.
      await assert.rejects(t.hub.invokeMethod('m-5', { methodName: 'x', payload: 1, connectTimeoutInSeconds: 1 }), isCode('DeviceNotOnline'));
    });

    test('no answer within responseTimeoutInSeconds is 504 GatewayTimeout; a late or foreign answer is ignored', async () => {
      const ch = new FakeChannel('m-5');
      t.hub.attach(ch);
      const started = Date.now();
      await assert.rejects(t.hub.invokeMethod('m-5', { methodName: 'slow', payload: {}, responseTimeoutInSeconds: 5 }), isCode('GatewayTimeout'));
      assert.ok(Date.now() - started >= 4900);
      t.hub.methodResponse('m-5', ch.methodRequests[0]!.rid, 200, Buffer.from('{}')); // late: ignored, no throw
      // Another device cannot answer m-5's call.
      const call = t.hub.invokeMethod('m-5', { methodName: 'x', payload: {}, responseTimeoutInSeconds: 5 });
      await new Promise((r) => setTimeout(r, 20));
      const rid = ch.methodRequests[1]!.rid;
      t.hub.methodResponse('m-6', rid, 500, Buffer.from('{"from":"m-6"}'));
      t.hub.methodResponse('m-5', rid, 201, Buffer.from('{"from":"m-5"}'));
      assert.deepEqual(await call, { status: 201, payload: { from: 'm-5' } });
    });

    test('a takeover or disconnect fails waiting calls with DeviceNotOnline instead of a timeout', async () => {
      const ch = new FakeChannel('m-6');
      const detach = t.hub.attach(ch);
      const call = t.hub.invokeMethod('m-6', { methodName: 'x', payload: {} });
      await new Promise((r) => setTimeout(r, 20));
      t.hub.attach(new FakeChannel('m-6'));
      await assert.rejects(call, isCode('DeviceNotOnline'));
      detach();
    });

    test('bad requests: timeouts out of range, payload over 128 KB, a method name that breaks topics', async () => {
      const bad = isCode('ArgumentInvalid');
      await assert.rejects(t.hub.invokeMethod('m-1', { methodName: 'x', payload: 1, responseTimeoutInSeconds: 4 }), bad);
      await assert.rejects(t.hub.invokeMethod('m-1', { methodName: 'x', payload: 1, responseTimeoutInSeconds: 301 }), bad);
      await assert.rejects(t.hub.invokeMethod('m-1', { methodName: 'x', payload: 1, connectTimeoutInSeconds: -1 }), bad);
      await assert.rejects(t.hub.invokeMethod('m-1', { methodName: 'a/b', payload: 1 }), bad);
      await assert.rejects(t.hub.invokeMethod('m-1', { methodName: '', payload: 1 }), bad);
      await assert.rejects(t.hub.invokeMethod('m-1', { methodName: 'x', payload: 'x'.repeat(128 * 1024) }), isCode('MessageTooLarge'));
    });
  });
}
