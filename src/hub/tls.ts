import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import forge from 'node-forge';
import { stripPort } from './sas.js';

export interface TlsOptions {
  readonly dataDir: string;
  /** Names the server certificate must cover besides localhost, 127.0.0.1 and ::1 (ports are ignored). */
  readonly hostNames: readonly string[];
  /** The user's own certificate (PEM, may include the chain) and key; both or neither. */
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly clock?: () => number;
}

export interface TlsMaterial {
  /** Server certificate (PEM). */
  readonly cert: string;
  readonly key: string;
  /** The private CA that signed `cert` (PEM), for devices to trust; undefined with the user's own certificate. */
  readonly ca: string | undefined;
  /** Path of `ca`: `<data-dir>/tls/ca.pem`. */
  readonly caFile: string | undefined;
  /** Whether this call generated anything. */
  readonly generated: boolean;
}

const DAY = 24 * 60 * 60 * 1000;
/** Regenerate the server certificate this long before it expires. */
const RENEW_BEFORE = 30 * DAY;

/** RSA 2048 from Node's native generator (milliseconds, where node-forge's JS generator takes seconds). */
function newKeyPair(): { privatePem: string; forgeKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(privatePem) as forge.pki.rsa.PrivateKey;
  return { privatePem, forgeKey, publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e) };
}

function serial(): string {
  // Positive (high bit clear), 16 bytes, as RFC 5280 §4.1.2.2 wants.
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

function subjectAltNames(hostNames: readonly string[]): string[] {
  const names = new Set(['localhost', '127.0.0.1', '::1']);
  for (const h of hostNames) {
    const bare = stripPort(h).replace(/^\[(.*)\]$/, '$1').toLowerCase();
    if (bare) names.add(bare);
  }
  return [...names].sort();
}

function createCa(now: number): { cert: string; key: string } {
  const keys = newKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(now - DAY);
  cert.validity.notAfter = new Date(now + 10 * 365 * DAY);
  const subject = [{ name: 'commonName', value: 'ccs local CA' }, { name: 'organizationName', value: 'ccs' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.forgeKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.privatePem };
}

function createServerCert(ca: { cert: string; key: string }, names: readonly string[], now: number): { cert: string; key: string } {
  const keys = newKeyPair();
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const caKey = forge.pki.privateKeyFromPem(ca.key);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(now - DAY);
  // Under 398 days, which TLS clients that cap server-certificate lifetimes accept.
  cert.validity.notAfter = new Date(now + 397 * DAY);
  cert.setSubject([{ name: 'commonName', value: names.includes('localhost') ? 'localhost' : names[0]! }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    // SAN is what clients check (mqtt.js sets servername = host, §2.1); IP entries for address-based HostNames.
    { name: 'subjectAltName', altNames: names.map((n) => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n })) },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.privatePem };
}

/** The names a PEM certificate covers (DNS and IP SANs), lower-case and sorted. */
function certNames(x: X509Certificate): string[] {
  return (x.subjectAltName ?? '')
    .split(', ')
    .filter(Boolean)
    .map((e) => e.replace(/^(DNS|IP Address):/, '').toLowerCase())
    .map((e) => (e.includes(':') ? normaliseIpv6(e) : e))
    .sort();
}

function normaliseIpv6(ip: string): string {
  // Node prints ::1 as 0:0:0:0:0:0:0:1; compare in one form.
  return ip === '0:0:0:0:0:0:0:1' ? '::1' : ip;
}

/**
 * TLS material for the device listeners. With `certFile`/`keyFile`, the user's certificate. Otherwise a private CA
 * and a server certificate under `<data-dir>/tls/` (ca.pem, ca-key.pem, server.pem, server-key.pem), generated on
 * first start and reused afterwards; the server certificate is issued again when the host names change, when it
 * nears expiry, or when the CA was replaced. Devices trust `ca.pem` (setOptions({ ca }) or NODE_EXTRA_CA_CERTS).
 */
export function ensureTlsMaterial(opts: TlsOptions): TlsMaterial {
  if (opts.certFile || opts.keyFile) {
    if (!opts.certFile || !opts.keyFile) throw new Error('--tls-cert and --tls-key go together: give both or neither.');
    const cert = readFileSync(opts.certFile, 'utf8');
    const key = readFileSync(opts.keyFile, 'utf8');
    try {
      const x = new X509Certificate(cert);
      if (!x.checkPrivateKey(createPrivateKey(key))) throw new Error('the key does not belong to the certificate');
    } catch (e) {
      throw new Error(`--tls-cert ${opts.certFile} / --tls-key ${opts.keyFile}: ${(e as Error).message}`);
    }
    return { cert, key, ca: undefined, caFile: undefined, generated: false };
  }
  const now = (opts.clock ?? Date.now)();
  const dir = join(opts.dataDir, 'tls');
  mkdirSync(dir, { recursive: true });
  const files = { ca: join(dir, 'ca.pem'), caKey: join(dir, 'ca-key.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server-key.pem') };
  let generated = false;
  let ca: { cert: string; key: string };
  if (existsSync(files.ca) && existsSync(files.caKey) && Date.parse(new X509Certificate(readFileSync(files.ca)).validTo) > now + RENEW_BEFORE) {
    ca = { cert: readFileSync(files.ca, 'utf8'), key: readFileSync(files.caKey, 'utf8') };
  } else {
    ca = createCa(now);
    writeFileSync(files.caKey, ca.key, { mode: 0o600 });
    writeFileSync(files.ca, ca.cert);
    generated = true;
  }
  const names = subjectAltNames(opts.hostNames);
  let server: { cert: string; key: string } | undefined;
  if (!generated && existsSync(files.cert) && existsSync(files.key)) {
    const cert = readFileSync(files.cert, 'utf8');
    const x = new X509Certificate(cert);
    const fresh = Date.parse(x.validTo) > now + RENEW_BEFORE;
    const signedByCa = x.verify(new X509Certificate(ca.cert).publicKey);
    if (fresh && signedByCa && certNames(x).join(',') === names.join(',')) server = { cert, key: readFileSync(files.key, 'utf8') };
  }
  if (!server) {
    server = createServerCert(ca, names, now);
    writeFileSync(files.key, server.key, { mode: 0o600 });
    writeFileSync(files.cert, server.cert);
    generated = true;
  }
  return { cert: server.cert, key: server.key, ca: ca.cert, caFile: files.ca, generated };
}
