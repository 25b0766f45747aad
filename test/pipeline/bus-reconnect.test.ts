import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMemoryBus, type Bus } from '../../src/bus/index.js';
import { engines } from '../helpers/engines.js';
import { alerts, create, evaluated, eventually, startApp } from './helpers.js';

/**
 * A bus that loses the telemetry its subscribers should get while "disconnected", the way a NATS plain subscription
 * does across a reconnect, and says so through `onConnection`.
 */
function lossyBus(): { bus: Bus; disconnect(): void; reconnect(): void } {
  const inner = createMemoryBus();
  const listeners = new Set<(change: 'disconnected' | 'reconnected') => void>();
  let lost = false;
  const bus: Bus = {
    publish: (subject, payload, options) => inner.publish(subject, payload, options),
    subscribe: (pattern, handler, options) => inner.subscribe(pattern, (payload, subject) => (lost && subject.startsWith('telemetry.') ? undefined : handler(payload, subject)), options),
    request: (subject, payload, options) => inner.request(subject, payload, options),
    respond: (subject, handler) => inner.respond(subject, handler),
    close: () => inner.close(),
    onConnection(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  };
  const tell = (change: 'disconnected' | 'reconnected') => {
    for (const l of listeners) l(change);
  };
  return {
    bus,
    disconnect() {
      lost = true;
      tell('disconnected');
    },
    reconnect() {
      lost = false;
      tell('reconnected');
    },
  };
}

for (const engine of engines()) {
  describe(`rules pipeline across a bus reconnect (${engine.name})`, () => {
    test('readings the live feed lost while the bus was away are evaluated in order once it is back', async () => {
      const lossy = lossyBus();
      const srv = await startApp(engine.url(), { bus: lossy.bus });
      try {
        await create(srv, 'ccs_iotrules', { ccs_name: 'Hot', ccs_condition: JSON.stringify({ measure: 'Temperature', op: 'gt', value: 70 }), ccs_suppressseconds: 0 });
        const send = (t: number, id: string) => srv.app.hub.ingest('oven-7', { body: Buffer.from(JSON.stringify({ Temperature: t })), properties: {}, messageId: id }, 'https');
        await send(60, 'o-0');
        await evaluated(srv, 1);
        await srv.app.pipeline.checkpoint();
        lossy.disconnect();
        await send(75, 'o-1'); // over the threshold: the alert the live feed never sees
        await send(60, 'o-2');
        lossy.reconnect();
        await send(61, 'o-3'); // live again: alone it would make the device's state pass over o-1 and o-2
        const raised = await eventually(async () => {
          const list = await alerts(srv, 'oven-7');
          return list.length > 0 ? list : undefined;
        });
        assert.equal(raised.length, 1);
        assert.equal(JSON.parse(String(raised[0]!['msdyn_alertdata'])).eventtoken, 'o-1');
      } finally {
        await srv.stop();
      }
    });
  });
}
