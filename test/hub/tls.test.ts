import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isIP, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer } from 'node:tls';
import { describe, test } from 'node:test';
import { ensureTlsMaterial, type TlsMaterial } from '../../src/hub/index.js';

/** Opens a real TLS connection to a server using `material`, verifying against its CA with the given server name. */
async function handshake(material: TlsMaterial, host: string): Promise<void> {
  const server = createServer({ cert: material.cert, key: material.key }, (s) => s.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    await new Promise<void>((resolve, reject) => {
      // Node checks the certificate's SAN against `servername` (a name) or the host (an address), as mqtt.js does.
      const s = connect({ host: '127.0.0.1', port, ca: material.ca, ...(isIP(host) ? {} : { servername: host }) }, () => {
        s.end();
        resolve();
      });
      s.on('error', reject);
    });
  } finally {
    server.close();
  }
}

describe('TLS material', () => {
  test('first start makes a CA and a server certificate that clients trusting ca.pem accept by name and address', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ccs-tls-'));
    const m = ensureTlsMaterial({ dataDir, hostNames: ['hub.example.net:8883'] });
    assert.ok(m.generated);
    assert.equal(m.caFile, join(dataDir, 'tls', 'ca.pem'));
    assert.equal(readFileSync(m.caFile!, 'utf8'), m.ca);
    for (const f of ['ca.pem', 'ca-key.pem', 'server.pem', 'server-key.pem']) statSync(join(dataDir, 'tls', f));
    assert.equal(statSync(join(dataDir, 'tls', 'server-key.pem')).mode & 0o077, 0, 'private keys are owner-only');
    const x = new X509Certificate(m.cert);
    assert.match(x.subjectAltName!, /DNS:localhost/);
    assert.match(x.subjectAltName!, /DNS:hub\.example\.net/);
    assert.match(x.subjectAltName!, /IP Address:127\.0\.0\.1/);
    assert.ok(x.checkIssued(new X509Certificate(m.ca!)));
    assert.equal(x.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    await handshake(m, 'localhost');
    await handshake(m, 'hub.example.net');
    await handshake(m, '127.0.0.1');
    await assert.rejects(handshake(m, 'other.example.net'), /altnames|Hostname/i);
  });

  test('a restart reuses the files; a new host name reissues the server certificate under the same CA', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ccs-tls-'));
    const first = ensureTlsMaterial({ dataDir, hostNames: ['localhost'] });
    const again = ensureTlsMaterial({ dataDir, hostNames: ['localhost:8883'] });
    assert.equal(again.generated, false);
    assert.equal(again.cert, first.cert);
    assert.equal(again.key, first.key);
    const renamed = ensureTlsMaterial({ dataDir, hostNames: ['hub.local'] });
    assert.ok(renamed.generated);
    assert.equal(renamed.ca, first.ca, 'devices keep trusting the same CA');
    assert.notEqual(renamed.cert, first.cert);
    assert.match(new X509Certificate(renamed.cert).subjectAltName!, /DNS:hub\.local/);
    await handshake(renamed, 'hub.local');
  });

  test("the user's own certificate and key are used as given; a mismatched pair is refused", () => {
    const source = ensureTlsMaterial({ dataDir: mkdtempSync(join(tmpdir(), 'ccs-tls-')), hostNames: [] });
    const other = ensureTlsMaterial({ dataDir: mkdtempSync(join(tmpdir(), 'ccs-tls-')), hostNames: [] });
    const dir = mkdtempSync(join(tmpdir(), 'ccs-own-'));
    writeFileSync(join(dir, 'cert.pem'), source.cert);
    writeFileSync(join(dir, 'key.pem'), source.key);
    writeFileSync(join(dir, 'other-key.pem'), other.key);
    const dataDir = mkdtempSync(join(tmpdir(), 'ccs-tls-'));
    const m = ensureTlsMaterial({ dataDir, hostNames: [], certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') });
    assert.equal(m.cert, source.cert);
    assert.equal(m.ca, undefined);
    assert.equal(m.caFile, undefined);
    assert.throws(() => ensureTlsMaterial({ dataDir, hostNames: [], certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'other-key.pem') }), /does not belong/);
    assert.throws(() => ensureTlsMaterial({ dataDir, hostNames: [], certFile: join(dir, 'cert.pem') }), /together/);
  });
});
