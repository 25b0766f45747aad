import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The one configuration schema. Sources, later ones winning: defaults, the JSON config file (`--config`, else
 * `<data-dir>/ccs.json` when present), `CCS_*` environment variables, command-line flags.
 */
export interface Config {
  readonly dataDir: string;
  readonly host: string;
  readonly httpPort: number;
  /** `sqlite:<path>` or `postgres://…`; defaults to `sqlite:<data-dir>/ccs.db`. */
  readonly store: string;
  /** `memory` (the in-process bus) or `nats://host:port` (NATS JetStream, for scale-out). */
  readonly bus: string;
  /**
   * NATS only: first subject token and (upper-cased) stream name, so that several installations (or test runs) can
   * share one NATS server. Every process of an installation must use the same.
   */
  readonly busPrefix: string;
  /** A fixed admin token; otherwise one is generated on first start and printed once. */
  readonly adminToken: string | undefined;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Largest request body accepted, in bytes. */
  readonly maxBodyBytes: number;
  /** Service protection: requests allowed per token within `rateLimitWindowSeconds`; 0 disables it. */
  readonly rateLimit: number;
  readonly rateLimitWindowSeconds: number;
  /** JSON file mapping role names to per-table privileges, replacing the built-in defaults. */
  readonly rolesFile: string | undefined;
  /** The IoT hub's host name as devices and services name it (`HostName=` in connection strings); may carry `:port`. */
  readonly hubHostName: string;
  /** MQTT 3.1.1 over TLS for devices (IoT Hub's 8883); 0 picks a free one. */
  readonly mqttsPort: number;
  /** HTTPS: device routes, IoT Hub service REST, MQTT over WebSocket, Web API; 0 picks a free one. */
  readonly httpsPort: number;
  /** The user's TLS certificate and key (PEM); otherwise a private CA under `<data-dir>/tls/` issues one. */
  readonly tlsCert: string | undefined;
  readonly tlsKey: string | undefined;
  /** Telemetry older than this many days is deleted (at start, then hourly); 0 keeps it forever. */
  readonly telemetryRetentionDays: number;
  /**
   * What this node runs (scale-out, docs/scale-out.md): `api` (Web API and console), `hub` (device listeners and the
   * IoT Hub service REST), `worker` (rules pipeline and connector processes). Default all three.
   */
  readonly roles: readonly NodeRole[];
  /** `ccs start --demo`: deploy examples/thermostat.json and simulate its thermostats in-process. */
  readonly demo: boolean;
}

export type NodeRole = 'api' | 'hub' | 'worker';
export const NODE_ROLES: readonly NodeRole[] = ['api', 'hub', 'worker'];

type Kind = 'string' | 'port' | 'int' | 'optional' | 'boolean';
interface Field {
  readonly key: keyof Config;
  readonly flag: string;
  readonly kind: Kind;
  readonly values?: readonly string[];
}

const FIELDS: readonly Field[] = [
  { key: 'dataDir', flag: 'data-dir', kind: 'string' },
  { key: 'host', flag: 'host', kind: 'string' },
  { key: 'httpPort', flag: 'http-port', kind: 'port' },
  { key: 'store', flag: 'store', kind: 'string' },
  { key: 'bus', flag: 'bus', kind: 'string' },
  { key: 'busPrefix', flag: 'bus-prefix', kind: 'string' },
  { key: 'adminToken', flag: 'admin-token', kind: 'optional' },
  { key: 'logLevel', flag: 'log-level', kind: 'string', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
  { key: 'maxBodyBytes', flag: 'max-body-bytes', kind: 'int' },
  { key: 'rateLimit', flag: 'rate-limit', kind: 'int' },
  { key: 'rateLimitWindowSeconds', flag: 'rate-limit-window-seconds', kind: 'int' },
  { key: 'rolesFile', flag: 'roles-file', kind: 'optional' },
  { key: 'hubHostName', flag: 'hub-hostname', kind: 'string' },
  { key: 'mqttsPort', flag: 'mqtts-port', kind: 'port' },
  { key: 'httpsPort', flag: 'https-port', kind: 'port' },
  { key: 'tlsCert', flag: 'tls-cert', kind: 'optional' },
  { key: 'tlsKey', flag: 'tls-key', kind: 'optional' },
  { key: 'telemetryRetentionDays', flag: 'telemetry-retention-days', kind: 'int' },
  { key: 'roles', flag: 'roles', kind: 'string' },
  { key: 'demo', flag: 'demo', kind: 'boolean' },
];

const DEFAULTS = {
  dataDir: './data',
  host: '0.0.0.0',
  httpPort: 8080,
  bus: 'memory',
  busPrefix: 'ccs',
  logLevel: 'info',
  maxBodyBytes: 4 * 1024 * 1024,
  rateLimit: 6000,
  rateLimitWindowSeconds: 300,
  hubHostName: 'localhost',
  mqttsPort: 8883,
  httpsPort: 8443,
  telemetryRetentionDays: 30,
  roles: 'api,hub,worker',
  demo: false,
} as const;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function envName(flag: string): string {
  return `CCS_${flag.toUpperCase().replace(/-/g, '_')}`;
}

function coerce(field: Field, raw: unknown, source: string): unknown {
  if (field.kind === 'boolean') {
    // A flag without a value (`--demo`) arrives as 'true'.
    if (raw === true || raw === 'true' || raw === '1') return true;
    if (raw === false || raw === 'false' || raw === '0') return false;
    throw new ConfigError(`${source}: expected true or false, got '${String(raw)}'`);
  }
  if (field.kind === 'optional' || field.kind === 'string') {
    if (typeof raw !== 'string' || (field.kind === 'string' && raw === '')) {
      throw new ConfigError(`${source}: expected a non-empty string`);
    }
    if (field.values && !field.values.includes(raw)) {
      throw new ConfigError(`${source}: expected one of ${field.values.join(', ')}, got '${raw}'`);
    }
    return raw;
  }
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < 0 || (field.kind === 'port' && n > 65535)) {
    throw new ConfigError(`${source}: expected ${field.kind === 'port' ? 'a port number (0 picks a free one)' : 'a non-negative integer'}, got '${String(raw)}'`);
  }
  return n;
}

/**
 * Parses `--flag value` / `--flag=value` arguments for the known options. Unknown flags are an error so a typo never
 * silently falls back to a default.
 */
export function parseFlags(argv: readonly string[], extra: readonly string[] = []): Map<string, string> {
  const known = new Set([...FIELDS.map((f) => f.flag), 'config', ...extra]);
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`Unexpected argument '${arg}'`);
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    if (!known.has(name)) throw new ConfigError(`Unknown option --${name}`);
    let value = eq > 0 ? arg.slice(eq + 1) : argv[i + 1];
    if (eq < 0) {
      if (value === undefined || value.startsWith('--')) value = 'true';
      else i++;
    }
    out.set(name, value);
  }
  return out;
}

/** `api,hub,worker` in any order; each role once, at least one. */
function parseRoles(raw: string): readonly NodeRole[] {
  const items = raw.split(',').map((r) => r.trim());
  const bad = items.filter((r) => !(NODE_ROLES as readonly string[]).includes(r));
  if (bad.length > 0 || new Set(items).size !== items.length) {
    throw new ConfigError(`--roles / ${envName('roles')}: expected a comma-separated list of ${NODE_ROLES.join(', ')} (each once), got '${raw}'`);
  }
  return Object.freeze(NODE_ROLES.filter((r) => items.includes(r)));
}

export function loadConfig(flags: ReadonlyMap<string, string>, env: NodeJS.ProcessEnv = process.env): Config {
  const values: Record<string, unknown> = { ...DEFAULTS };
  const dataDirHint = flags.get('data-dir') ?? env[envName('data-dir')] ?? DEFAULTS.dataDir;
  const file = flags.get('config') ?? env['CCS_CONFIG'] ?? join(dataDirHint, 'ccs.json');
  if (existsSync(file)) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError(`${file}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(`${file}: expected a JSON object`);
    for (const [k, v] of Object.entries(json)) {
      const field = FIELDS.find((f) => f.key === k);
      if (!field) throw new ConfigError(`${file}: unknown setting '${k}'`);
      values[k] = coerce(field, v, `${file}: ${k}`);
    }
  } else if (flags.has('config')) {
    throw new ConfigError(`--config: file not found: ${file}`);
  }
  for (const field of FIELDS) {
    const e = env[envName(field.flag)];
    if (e !== undefined && e !== '') values[field.key] = coerce(field, e, envName(field.flag));
    const f = flags.get(field.flag);
    if (f !== undefined) values[field.key] = coerce(field, f, `--${field.flag}`);
  }
  const dataDir = resolve(String(values['dataDir']));
  values['dataDir'] = dataDir;
  values['store'] ??= `sqlite:${join(dataDir, 'ccs.db')}`;
  const store = String(values['store']);
  if (!/^(sqlite:|postgres(ql)?:\/\/)/.test(store)) {
    throw new ConfigError(`--store / ${envName('store')}: expected sqlite:<path> or postgres://…, got '${store}'`);
  }
  const bus = String(values['bus']);
  if (bus !== 'memory' && !/^nats:\/\/[^\s/]+\/?$/.test(bus)) {
    throw new ConfigError(`--bus / ${envName('bus')}: expected memory or nats://host:port, got '${bus}'`);
  }
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(String(values['busPrefix']))) {
    throw new ConfigError(`--bus-prefix / ${envName('bus-prefix')}: expected letters, digits, '_' or '-', got '${String(values['busPrefix'])}'`);
  }
  const hub = String(values['hubHostName']);
  // A DNS name or address, optionally with a port: it goes into certificates, SAS `sr` and connection strings.
  if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:\d{1,5})?$/.test(hub)) {
    throw new ConfigError(`--hub-hostname / ${envName('hub-hostname')}: expected a host name with an optional :port, got '${hub}'`);
  }
  values['roles'] = parseRoles(String(values['roles']));
  if ((values['tlsCert'] === undefined) !== (values['tlsKey'] === undefined)) {
    throw new ConfigError('--tls-cert and --tls-key go together: give both or neither');
  }
  return Object.freeze(values) as unknown as Config;
}
