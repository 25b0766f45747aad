import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createFrameGuard } from '../../src/hub/mqtt/frame-guard.js';
import {
  buildQuery,
  c2dTopic,
  classifyFilter,
  desiredPatchTopic,
  isValidFilter,
  messageFromBag,
  methodRequestTopic,
  parseDevicePublish,
  parseQuery,
  parseUsername,
  topicMatches,
  twinResponseTopic,
} from '../../src/hub/mqtt/topics.js';
import type { C2dMessage } from '../../src/hub/types.js';

describe('CONNECT username', () => {
  test('the SDK username, with a port in the host', () => {
    const u = parseUsername(
      'localhost:9883/dev1/?api-version=2021-04-12&DeviceClientType=azure-iot-device%2F1.18.4%20(node%20v20.20.2%3B%20Debian%2012%3B%20x64)',
    );
    assert.ok(u);
    assert.equal(u.host, 'localhost:9883');
    assert.equal(u.deviceId, 'dev1');
    assert.equal(u.moduleId, undefined);
    assert.equal(u.fields.get('api-version'), '2021-04-12');
    assert.equal(u.fields.get('DeviceClientType'), 'azure-iot-device/1.18.4 (node v20.20.2; Debian 12; x64)');
  });

  test('module identities and bare forms', () => {
    assert.equal(parseUsername('hub/dev1/mod1/?api-version=2021-04-12')?.moduleId, 'mod1');
    assert.equal(parseUsername('hub/dev1')?.deviceId, 'dev1');
    assert.equal(parseUsername('hub/dev1/')?.deviceId, 'dev1');
  });

  test('malformed', () => {
    for (const u of ['', 'hub', 'hub//?a=b', '/dev1/?a=b', 'hub/a/b/c/?x=1', 'hub/dev1/?a=%zz']) {
      assert.equal(parseUsername(u), undefined, u);
    }
  });
});

describe('property bags', () => {
  test('decodes what the SDK encodes: querystring system properties, encodeURIComponent application ones', () => {
    const bag = parseQuery('%24.mid=m-1&%24.ct=application%2Fjson&%24.ce=utf-8&alert=hot%20%26%20humid&plus=a+b&bare');
    assert.ok(bag);
    assert.deepEqual([...bag], [
      ['$.mid', 'm-1'], ['$.ct', 'application/json'], ['$.ce', 'utf-8'], ['alert', 'hot & humid'], ['plus', 'a+b'], ['bare', ''],
    ]);
    assert.equal(parseQuery('a=%E0%A4%A'), undefined);
  });

  test('round trip', () => {
    const entries: [string, string][] = [['$.mid', 'x/y'], ['k =&', 'v=&?/#+ é']];
    assert.deepEqual([...parseQuery(buildQuery(entries))!], entries);
  });

  test('messageFromBag maps system properties', () => {
    const m = messageFromBag(
      new Map([
        ['$.mid', 'm1'], ['$.cid', 'c1'], ['$.uid', 'u1'], ['$.ct', 'application/json'], ['$.ce', 'utf-8'],
        ['$.exp', '2030-01-02T03:04:05.000Z'], ['$.to', '/x'], ['$.sub', 'thermostat1'], ['$.ifid', 'dtmi:x;1'], ['temp', 'high'],
      ]),
      Buffer.from('{}'),
    );
    assert.equal(m.messageId, 'm1');
    assert.equal(m.correlationId, 'c1');
    assert.equal(m.userId, 'u1');
    assert.equal(m.contentType, 'application/json');
    assert.equal(m.contentEncoding, 'utf-8');
    assert.equal(m.expiryTime, Date.UTC(2030, 0, 2, 3, 4, 5));
    assert.deepEqual(m.properties, { 'dt-subject': 'thermostat1', 'iothub-interface-id': 'dtmi:x;1', temp: 'high' });
  });

  test('messageFromBag keeps application properties named like Object.prototype members; no bag, no optional fields', () => {
    const m = messageFromBag(new Map([['toString', '1'], ['constructor', '2']]), Buffer.from('x'));
    assert.deepEqual(Object.entries(m.properties), [['toString', '1'], ['constructor', '2']]);
    assert.deepEqual(Object.keys(messageFromBag(new Map(), Buffer.from('x'))).sort(), ['body', 'properties']);
  });
});

describe('device publish topics', () => {
  test('telemetry, with and without a bag', () => {
    const t = parseDevicePublish('devices/dev1/messages/events/%24.mid=m-1&a=b', 'dev1');
    assert.equal(t?.kind, 'telemetry');
    assert.deepEqual(t?.kind === 'telemetry' ? [...t.bag] : [], [['$.mid', 'm-1'], ['a', 'b']]);
    assert.equal(parseDevicePublish('devices/dev1/messages/events/', 'dev1')?.kind, 'telemetry');
    assert.equal(parseDevicePublish('devices/dev1/messages/events', 'dev1')?.kind, 'telemetry');
  });

  test('twin and method topics; $rid kept as sent', () => {
    assert.deepEqual(parseDevicePublish('$iothub/twin/GET/?$rid=ab%2Fc', 'dev1'), { kind: 'twinGet', rid: 'ab%2Fc' });
    assert.deepEqual(parseDevicePublish('$iothub/twin/PATCH/properties/reported/?$rid=7', 'dev1'), { kind: 'twinPatchReported', rid: '7' });
    assert.deepEqual(parseDevicePublish('$iothub/methods/res/200/?$rid=42', 'dev1'), { kind: 'methodResponse', rid: '42', status: 200 });
    assert.deepEqual(parseDevicePublish('$iothub/methods/res/500?$rid=1', 'dev1'), { kind: 'methodResponse', rid: '1', status: 500 });
  });

  test('refused: other devices, modules, hub→device topics, missing $rid, malformed bags', () => {
    for (const topic of [
      'devices/dev2/messages/events/',
      'devices/dev10/messages/events/',
      'devices/dev1/messages/eventsX',
      'devices/dev1/modules/m/messages/events/',
      'devices/dev1/messages/devicebound/x',
      '$iothub/methods/POST/reboot/?$rid=1',
      '$iothub/twin/res/200/?$rid=1',
      '$iothub/twin/PATCH/properties/desired/?$rid=1',
      '$iothub/twin/GET/',
      '$iothub/twin/GET/?$rid=',
      '$iothub/methods/res/abc/?$rid=1',
      'devices/dev1/messages/events/a=%zz',
      'anything/else',
    ]) {
      assert.equal(parseDevicePublish(topic, 'dev1'), undefined, topic);
    }
  });
});

describe('subscriptions', () => {
  test('documented filters and narrower ones of the device', () => {
    assert.equal(classifyFilter('devices/dev1/messages/devicebound/#', 'dev1'), 'c2d');
    assert.equal(classifyFilter('$iothub/methods/POST/#', 'dev1'), 'methods');
    assert.equal(classifyFilter('$iothub/methods/POST/reboot/#', 'dev1'), 'methods');
    assert.equal(classifyFilter('$iothub/twin/res/#', 'dev1'), 'twinResponses');
    assert.equal(classifyFilter('$iothub/twin/PATCH/properties/desired/#', 'dev1'), 'desired');
  });

  test('anything else is refused', () => {
    for (const f of [
      'devices/dev2/messages/devicebound/#', 'devices/+/messages/devicebound/#', 'devices/#', '#', '$iothub/#', '$iothub/methods/#',
      'devices/dev1/messages/events/#', 'devices/dev1/messages/devicebound/', '$iothub/twin/res/a#', 'x/y',
    ]) {
      assert.equal(classifyFilter(f, 'dev1'), undefined, f);
    }
  });

  test('MQTT filter syntax and matching (§4.7)', () => {
    assert.ok(isValidFilter('a/+/b/#'));
    assert.ok(!isValidFilter('a/#/b'));
    assert.ok(!isValidFilter('a/b+'));
    assert.ok(topicMatches('devices/d/messages/devicebound/#', 'devices/d/messages/devicebound/%24.mid=1'));
    assert.ok(topicMatches('devices/d/messages/devicebound/#', 'devices/d/messages/devicebound'));
    assert.ok(topicMatches('$iothub/methods/POST/+/#', '$iothub/methods/POST/reboot/?$rid=1'));
    assert.ok(!topicMatches('$iothub/methods/POST/reboot/#', '$iothub/methods/POST/other/?$rid=1'));
  });
});

describe('hub → device topics', () => {
  test('C2D: system and application properties in segment 4, decodable the way the SDK decodes', () => {
    const message: C2dMessage = {
      messageId: 'm 1', lockToken: 'l', enqueuedTime: 0, deliveryCount: 1, body: Buffer.alloc(0),
      correlationId: 'c/1', contentType: 'application/json', contentEncoding: 'utf-8', expiryTime: Date.UTC(2030, 0, 1),
      properties: { 'command-name': 'Set Values', 'a&b': 'x=y' },
    };
    const topic = c2dTopic('dev1', message);
    const parts = topic.split('/');
    assert.equal(parts.length, 5);
    assert.equal(parts.slice(0, 4).join('/'), 'devices/dev1/messages/devicebound');
    // azure-iot-device-mqtt _extractPropertiesFromTopicPart: split on & and =, decodeURIComponent each side.
    const got = Object.fromEntries(parts[4]!.split('&').map((kv) => kv.split('=').map(decodeURIComponent) as [string, string]));
    assert.deepEqual(got, {
      '$.mid': 'm 1', '$.to': '/devices/dev1/messages/deviceBound', '$.cid': 'c/1', '$.exp': '2030-01-01T00:00:00.000Z',
      '$.ct': 'application/json', '$.ce': 'utf-8', 'command-name': 'Set Values', 'a&b': 'x=y',
    });
  });

  test('method, twin and desired topics', () => {
    assert.equal(methodRequestTopic('reboot', '1'), '$iothub/methods/POST/reboot/?$rid=1');
    assert.equal(methodRequestTopic('a/b+c', '1'), '$iothub/methods/POST/a%2Fb%2Bc/?$rid=1');
    assert.equal(twinResponseTopic(200, 'r'), '$iothub/twin/res/200/?$rid=r');
    assert.equal(twinResponseTopic(204, 'r', 5), '$iothub/twin/res/204/?$rid=r&$version=5');
    assert.equal(desiredPatchTopic(3), '$iothub/twin/PATCH/properties/desired/?$version=3');
  });
});

describe('frame guard', () => {
  const publish = (remaining: number): Buffer => {
    const len: number[] = [];
    let x = remaining;
    do {
      let b = x % 128;
      x = Math.floor(x / 128);
      if (x > 0) b |= 0x80;
      len.push(b);
    } while (x > 0);
    return Buffer.concat([Buffer.from([0x32, ...len]), Buffer.alloc(remaining)]);
  };

  test('packets within the limit pass, split anywhere', () => {
    const stream = Buffer.concat([publish(10), publish(0), publish(300), publish(1000)]);
    for (const cut of [1, 2, 3, 7, 13, 200, stream.length]) {
      const g = createFrameGuard(1000);
      let verdict = 'ok';
      for (let i = 0; i < stream.length; i += cut) verdict = g.feed(stream.subarray(i, i + cut));
      assert.equal(verdict, 'ok', `cut ${cut}`);
    }
  });

  test('a packet over the limit is caught from its header alone', () => {
    const g = createFrameGuard(1000);
    assert.equal(g.feed(publish(10)), 'ok');
    assert.equal(g.feed(publish(1001).subarray(0, 3)), 'tooLarge');
    assert.equal(g.feed(Buffer.alloc(10)), 'tooLarge');
  });

  test('a Remaining Length longer than four bytes is malformed (§2.2.3)', () => {
    assert.equal(createFrameGuard(1e9).feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])), 'malformed');
  });
});
