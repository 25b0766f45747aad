import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  buildDeviceConnectionString,
  buildServiceConnectionString,
  createSasToken,
  deviceTokenFromConnectionString,
  isExpired,
  isSignedWith,
  parseDeviceConnectionString,
  parseSasToken,
  parseServiceConnectionString,
  resourceCovers,
  stripPort,
} from '../../src/hub/index.js';
import { isCode } from './helpers.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
const OTHER_KEY = Buffer.alloc(32, 8).toString('base64');

/** Signs exactly as a client would: HMAC over the given (already encoded) sr and se. */
function handSigned(rawSr: string, se: number, key = KEY, extra = ''): string {
  const sig = createHmac('sha256', Buffer.from(key, 'base64')).update(`${rawSr}\n${se}`).digest('base64');
  return `SharedAccessSignature sr=${rawSr}&sig=${encodeURIComponent(sig)}&se=${se}${extra}`;
}

describe('SAS tokens', () => {
  test('a created token parses and verifies; fields may come in any order', () => {
    const token = createSasToken({ resource: 'hub.test/devices/dev1', key: KEY, expiry: 2_000_000_000 });
    const t = parseSasToken(token);
    assert.equal(t.resource, 'hub.test/devices/dev1');
    assert.equal(t.rawResource, 'hub.test%2Fdevices%2Fdev1');
    assert.equal(t.expiry, 2_000_000_000);
    assert.equal(t.keyName, undefined);
    assert.ok(isSignedWith(t, KEY));
    // The Node SDK emits sr, sig, skn, se; others se first.
    const fields = token.slice('SharedAccessSignature '.length).split('&').reverse().join('&');
    assert.ok(isSignedWith(parseSasToken(`SharedAccessSignature ${fields}`), KEY));
  });

  test('a tampered signature, resource or expiry, or the wrong key, does not verify', () => {
    const token = createSasToken({ resource: 'hub.test/devices/dev1', key: KEY, expiry: 2_000_000_000 });
    assert.ok(!isSignedWith(parseSasToken(token), OTHER_KEY));
    assert.ok(!isSignedWith(parseSasToken(token.replace('dev1', 'dev2')), KEY));
    assert.ok(!isSignedWith(parseSasToken(token.replace('se=2000000000', 'se=2000000001')), KEY));
    const sig = /sig=([^&]+)/.exec(token)![1]!;
    const flipped = decodeURIComponent(sig).replace(/^./, (c) => (c === 'A' ? 'B' : 'A'));
    assert.ok(!isSignedWith(parseSasToken(token.replace(sig, encodeURIComponent(flipped))), KEY));
    // A signature of the wrong length is refused, not thrown on.
    assert.ok(!isSignedWith(parseSasToken(token.replace(sig, 'AAAA')), KEY));
  });

  test('the HMAC covers the sr exactly as received: lower-case (docs) and SDK-cased encodings both verify', () => {
    const se = 2_000_000_000;
    // The docs: lower-case URL-encoding of the lower-cased URI.
    const docs = parseSasToken(handSigned('hub.test%2fdevices%2fdev1', se));
    assert.ok(isSignedWith(docs, KEY));
    assert.equal(docs.resource, 'hub.test/devices/dev1');
    // The Node SDK: upper-case escapes, the id's case kept.
    const sdk = parseSasToken(handSigned('Hub.Test%2Fdevices%2FDev1', se));
    assert.ok(isSignedWith(sdk, KEY));
    // Re-encoding either one would have produced a different string to sign.
    assert.ok(!isSignedWith({ ...sdk, rawResource: encodeURIComponent(sdk.resource.toLowerCase()) }, KEY));
  });

  test('expiry is checked against the clock', () => {
    const t = parseSasToken(createSasToken({ resource: 'h', key: KEY, expiry: 1000 }));
    assert.ok(!isExpired(t, 999_999));
    assert.ok(isExpired(t, 1_000_000));
  });

  test('malformed tokens are IotHubUnauthorizedAccess', () => {
    for (const bad of [
      'Bearer abc',
      'SharedAccessSignature sr=a&sig=b',
      'SharedAccessSignature sr=a&sig=b&se=soon',
      'SharedAccessSignature sr=a&sig=b&se=1&se=2',
      'SharedAccessSignature sr=%E0%A4%A&sig=b&se=1',
      'SharedAccessSignature sr=a&sig&se=1',
    ]) {
      assert.throws(() => parseSasToken(bad), isCode('IotHubUnauthorizedAccess'), bad);
    }
  });

  test('policy tokens carry skn', () => {
    const t = parseSasToken(createSasToken({ resource: 'hub.test', key: KEY, expiry: 2_000_000_000, keyName: 'iothubowner' }));
    assert.equal(t.keyName, 'iothubowner');
    assert.ok(isSignedWith(t, KEY));
  });
});

describe('resource scope', () => {
  const hosts = ['hub.test', 'localhost'];
  test('prefix match by path segment, case-insensitive', () => {
    assert.ok(resourceCovers('hub.test/devices/dev1', 'hub.test/devices/dev1', hosts));
    assert.ok(resourceCovers('HUB.TEST/Devices/DEV1', 'hub.test/devices/dev1', hosts));
    assert.ok(resourceCovers('hub.test', 'hub.test/devices/dev1', hosts));
    assert.ok(resourceCovers('hub.test/devices', 'hub.test/devices/dev1', hosts));
    assert.ok(resourceCovers('hub.test/devices/dev1/', 'hub.test/devices/dev1', hosts));
    assert.ok(!resourceCovers('hub.test/devices/dev', 'hub.test/devices/dev1', hosts));
    assert.ok(!resourceCovers('hub.test/devices/dev1', 'hub.test/devices/dev10', hosts));
    assert.ok(!resourceCovers('hub.test/devices/dev1/modules/m', 'hub.test/devices/dev1', hosts));
  });

  test('the host may carry a port, and must be one of the hub names', () => {
    assert.ok(resourceCovers('hub.test:8883/devices/dev1', 'hub.test/devices/dev1', hosts));
    assert.ok(resourceCovers('localhost:9883/devices/dev1', 'hub.test/devices/dev1', hosts));
    assert.ok(!resourceCovers('other.test/devices/dev1', 'hub.test/devices/dev1', hosts));
    assert.ok(!resourceCovers('hub.test.evil/devices/dev1', 'hub.test/devices/dev1', hosts));
    assert.equal(stripPort('hub.test:8883'), 'hub.test');
    assert.equal(stripPort('[::1]:8883'), '[::1]');
    assert.equal(stripPort('hub.test'), 'hub.test');
  });
});

describe('connection strings', () => {
  test('device: parse and build round-trip; keys with = survive; GatewayHostName optional', () => {
    const text = buildDeviceConnectionString({ hostName: 'hub.test:8884', deviceId: 'dev1', sharedAccessKey: KEY });
    assert.equal(text, `HostName=hub.test:8884;DeviceId=dev1;SharedAccessKey=${KEY}`);
    assert.deepEqual(parseDeviceConnectionString(text), { hostName: 'hub.test:8884', deviceId: 'dev1', sharedAccessKey: KEY });
    const gw = parseDeviceConnectionString(`HostName=hub.test;DeviceId=d;SharedAccessKey=${KEY};GatewayHostName=localhost:9883`);
    assert.equal(gw.gatewayHostName, 'localhost:9883');
    assert.throws(() => parseDeviceConnectionString('HostName=h;DeviceId=d'), isCode('ArgumentInvalid'));
  });

  test('service: parse and build round-trip', () => {
    const text = buildServiceConnectionString({ hostName: 'hub.test', sharedAccessKeyName: 'service', sharedAccessKey: KEY });
    assert.equal(text, `HostName=hub.test;SharedAccessKeyName=service;SharedAccessKey=${KEY}`);
    assert.deepEqual(parseServiceConnectionString(text), { hostName: 'hub.test', sharedAccessKeyName: 'service', sharedAccessKey: KEY });
    assert.throws(() => parseServiceConnectionString('HostName=h;SharedAccessKey=x'), isCode('ArgumentInvalid'));
  });

  test('a device token from a connection string signs HostName (with its port) and the device id', () => {
    const token = parseSasToken(deviceTokenFromConnectionString(`HostName=hub.test:8884;DeviceId=dev1;SharedAccessKey=${KEY}`, 2_000_000_000));
    assert.equal(token.resource, 'hub.test:8884/devices/dev1');
    assert.ok(isSignedWith(token, KEY));
  });
});
