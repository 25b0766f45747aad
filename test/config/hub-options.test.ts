import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig, parseFlags } from '../../src/config/index.js';

describe('hub configuration', () => {
  test('defaults: localhost, 8883, 8443, no certificate of the user', () => {
    const c = loadConfig(new Map([['data-dir', '/tmp/ccs-config-test']]), {});
    assert.equal(c.hubHostName, 'localhost');
    assert.equal(c.mqttsPort, 8883);
    assert.equal(c.httpsPort, 8443);
    assert.equal(c.tlsCert, undefined);
    assert.equal(c.tlsKey, undefined);
    assert.equal(c.telemetryRetentionDays, 30);
  });

  test('flags and CCS_* variables set them; a host name may carry a port', () => {
    const c = loadConfig(parseFlags(['--hub-hostname', 'hub.example.net:9883', '--mqtts-port', '0', '--https-port=443', '--data-dir', '/tmp/x']), {
      CCS_TLS_CERT: '/etc/ccs/cert.pem',
      CCS_TLS_KEY: '/etc/ccs/key.pem',
    });
    assert.equal(c.hubHostName, 'hub.example.net:9883');
    assert.equal(c.mqttsPort, 0);
    assert.equal(c.httpsPort, 443);
    assert.equal(c.tlsCert, '/etc/ccs/cert.pem');
    assert.equal(loadConfig(parseFlags(['--telemetry-retention-days', '0']), {}).telemetryRetentionDays, 0, '0 keeps telemetry forever');
    assert.equal(loadConfig(new Map(), { CCS_TELEMETRY_RETENTION_DAYS: '7' }).telemetryRetentionDays, 7);
  });

  test('bad values fail naming the option', () => {
    assert.throws(() => loadConfig(parseFlags(['--hub-hostname', 'https://hub']), {}), (e) => e instanceof ConfigError && /--hub-hostname/.test(e.message));
    assert.throws(() => loadConfig(parseFlags(['--mqtts-port', '70000']), {}), /--mqtts-port/);
    assert.throws(() => loadConfig(parseFlags(['--tls-cert', 'a.pem']), {}), /--tls-key/);
    assert.throws(() => loadConfig(parseFlags(['--telemetry-retention-days', '-1']), {}), /--telemetry-retention-days/);
  });
});
