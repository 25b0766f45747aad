import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CommandError, parseCommandMessage, parseMethodCall, Thermostat } from '../../src/simulator/index.js';

/** A deterministic uniform source (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('thermostat commands as Microsoft\'s sample sends them (reference ms-connected-service.md §1.3)', () => {
  test('the three documented messages parse', () => {
    assert.deepEqual(parseCommandMessage('{"CommandName":"Reset Thermostat","Parameters":{}}'), { name: 'Reset Thermostat' });
    assert.deepEqual(parseCommandMessage('{"CommandName":"Notification","Parameters":{"Message":"Technician has been dispatched"}}'), {
      name: 'Notification',
      message: 'Technician has been dispatched',
    });
    assert.deepEqual(parseCommandMessage('{"CommandName":"Set Values","Parameters":{"Reading":{"Temperature":"30","Humidity":"30"}}}'), {
      name: 'Set Values',
      temperature: 30,
      humidity: 30,
    });
  });

  test('names and keys are matched without regard to case or stray spaces; numbers may be numbers', () => {
    assert.deepEqual(parseCommandMessage('{"commandname":"set  values","parameters":{"reading":{"temperature":21.5}}}'), { name: 'Set Values', temperature: 21.5 });
    assert.deepEqual(parseCommandMessage('{"CommandName":"ResetThermostat"}'), { name: 'Reset Thermostat' });
  });

  test('what is not a command is refused with a reason', () => {
    assert.throws(() => parseCommandMessage('Set Values'), CommandError);
    assert.throws(() => parseCommandMessage('{"CommandName":"Reboot"}'), /Unknown command 'Reboot'/);
    assert.throws(() => parseCommandMessage('{"CommandName":"Notification","Parameters":{}}'), /Message must be a string/);
    assert.throws(() => parseCommandMessage('{"CommandName":"Set Values","Parameters":{"Reading":{"Temperature":"warm"}}}'), /must be a number/);
    assert.throws(() => parseCommandMessage('{"CommandName":"Set Values","Parameters":{}}'), /needs Temperature or Humidity/);
  });

  test('a direct method takes the Parameters object, or the whole command document', () => {
    assert.deepEqual(parseMethodCall('Set Values', { Reading: { Humidity: '40' } }), { name: 'Set Values', humidity: 40 });
    assert.deepEqual(parseMethodCall('Notification', { CommandName: 'Notification', Parameters: { Message: 'hi' } }), { name: 'Notification', message: 'hi' });
    assert.deepEqual(parseMethodCall('Reset Thermostat', null), { name: 'Reset Thermostat' });
  });
});

describe('the simulated thermostat', () => {
  test('readings hover around the set point, with occasional excursions over 70', () => {
    const t = new Thermostat({ random: seeded(7) });
    const readings = Array.from({ length: 2000 }, () => t.next());
    const temps = readings.map((r) => r.Temperature);
    const median = [...temps].sort((a, b) => a - b)[1000]!;
    assert.ok(median > 60 && median < 70, `median ${median}`);
    const over = temps.filter((x) => x > 70).length;
    assert.ok(over > 0 && over < 400, `${over} of 2000 readings over 70`);
    assert.ok(readings.every((r) => r.Humidity >= 0 && r.Humidity <= 100));
  });

  test('Set Values moves readings to the new values; Reset Thermostat brings the factory set point back', () => {
    const t = new Thermostat({ random: seeded(1), excursionChance: 0 });
    const now = new Date('2026-01-01T00:00:00Z');
    t.apply({ name: 'Set Values', temperature: 30, humidity: 35 }, now);
    assert.deepEqual(t.reported.setPoint, { Temperature: 30, Humidity: 35 });
    for (let i = 0; i < 20; i++) {
      const r = t.next();
      assert.ok(Math.abs(r.Temperature - 30) < 3, `temperature ${r.Temperature}`);
    }
    t.apply({ name: 'Reset Thermostat' }, now);
    assert.deepEqual(t.reported.setPoint, { Temperature: 65, Humidity: 45 });
    assert.equal(t.reported.resets, 1);
    assert.deepEqual(t.reported.lastCommand, { name: 'Reset Thermostat', at: '2026-01-01T00:00:00.000Z' });
  });

  test('Notification is remembered as the last notification', () => {
    const t = new Thermostat({ random: seeded(2) });
    t.apply({ name: 'Notification', message: 'Technician has been dispatched' }, new Date(0));
    assert.deepEqual(t.reported.lastNotification, { message: 'Technician has been dispatched', at: '1970-01-01T00:00:00.000Z' });
  });
});
