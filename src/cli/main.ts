import { createApp } from '../app.js';
import { ConfigError, loadConfig, parseFlags } from '../config/index.js';
import { CcsError } from '../errors/index.js';
import { simulate, SIMULATE_USAGE } from './simulate.js';
import { deploy, exportCommand, TEMPLATE_USAGE } from './deploy.js';
import { startDemo, type Demo } from './demo.js';
import { rulesCommand, RULES_USAGE } from './rules.js';

const USAGE = `Usage: ccs <command> [options]

Commands:
  start                          Run the server (Web API and console)
  token create --role <role> [--name <name>]
                                 Create a bearer token and print it (shown once)
  token list                     List tokens (never their secrets)
  token revoke --id <id>         Revoke a token
  device connection-string <deviceId>
                                 Print the device's connection string (registers the identity if needed)
  hub connection-string [--policy <name>]
                                 Print the service connection string (policy iothubowner by default; also
                                 service, device, registryRead, registryReadWrite)
${SIMULATE_USAGE}${TEMPLATE_USAGE}${RULES_USAGE}
Every command takes --data-dir <dir> (default ./data) and --config <file>.
start options (also CCS_* environment variables, e.g. CCS_HTTP_PORT):
  --http-port <port>             HTTP port (default 8080; 0 picks a free one)
  --host <address>               Address to listen on (default 0.0.0.0)
  --store <url>                  sqlite:<path> (default <data-dir>/ccs.db) or postgres://…
  --admin-token <token>          Use this admin token instead of generating one on first start
  --log-level <level>            fatal, error, warn, info (default), debug, trace, silent
  --max-body-bytes <n>           Largest request body (default 4194304)
  --rate-limit <n>               Requests per token per window (default 6000; 0 disables)
  --rate-limit-window-seconds <n> Window of the rate limit (default 300)
  --roles-file <file>            JSON role definitions replacing the built-in roles
  --hub-hostname <name[:port]>   IoT hub host name in connection strings and certificates (default localhost)
  --mqtts-port <port>            MQTT over TLS for devices (default 8883)
  --https-port <port>            HTTPS for devices, IoT Hub service REST and MQTT over WebSocket (default 8443)
  --bus <url>                    memory (default, in-process) or nats://host:4222 (NATS JetStream)
  --bus-prefix <name>            NATS subject prefix and stream name (default ccs): installations sharing a
                                 NATS server each take their own
  --roles <list>                 What this node runs: api (Web API, console), hub (device listeners, IoT Hub
                                 service REST), worker (rules, connector processes); default api,hub,worker
  --tls-cert <file> --tls-key <file>
                                 Your own certificate and key; otherwise a private CA in <data-dir>/tls/ issues one
  --demo                         Deploy examples/thermostat.json and simulate its thermostats: readings, an
                                 alert, a case and a command within a minute
`;

async function start(argv: string[]): Promise<void> {
  const config = loadConfig(parseFlags(argv));
  const app = await createApp(config);
  const info = await app.start();
  const parts = [
    ...(info.url ? [`Web API ${info.url}/api/data/v9.2/`, `console ${info.url}/`] : []),
    ...(info.mqttsPort ? [`devices mqtts://${config.hubHostName}:${info.mqttsPort} and https://${config.hubHostName}:${info.httpsPort}`] : []),
    `store ${app.store.engine}`,
    `roles ${info.roles.join(',')}`,
    ...(info.nodeId ? [`node ${info.nodeId}`] : []),
  ];
  const line = `ccs is running: ${parts.join(' · ')}`;
  process.stdout.write(`${line}\n`);
  if (info.generatedAdminToken) {
    process.stdout.write(`Sign in with this admin token (shown once; create more with \`ccs token create --role admin\`):\n  ${info.generatedAdminToken}\n`);
  }
  let demo: Demo | undefined;
  if (config.demo) {
    try {
      demo = await startDemo({ app, print: (line) => process.stdout.write(`${line}\n`) });
    } catch (e) {
      await app.stop();
      throw new ConfigError(`--demo: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal} received, shutting down\n`);
    (demo?.stop() ?? Promise.resolve()).then(() => app.stop()).then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`shutdown failed: ${String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function token(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const flags = parseFlags(rest, ['role', 'name', 'id']);
  const config = loadConfig(flags);
  const app = await createApp({ ...config, logLevel: 'silent' });
  try {
    if (sub === 'create') {
      const role = flags.get('role');
      if (!role) throw new ConfigError('token create: --role is required (admin, agent, readonly or integration)');
      const { token: secret, info } = await app.tokens.create({ role, name: flags.get('name') ?? `${role} token` });
      process.stdout.write(`${secret}\n`);
      process.stderr.write(`Created token ${info.id} (role ${info.role}, name "${info.name}"). It is shown only once.\n`);
    } else if (sub === 'list') {
      for (const t of await app.tokens.list()) {
        process.stdout.write(`${t.id}  ${t.role.padEnd(12)} ${t.revoked ? 'revoked' : 'active '}  ${new Date(t.createdOn).toISOString()}  ${t.name}\n`);
      }
    } else if (sub === 'revoke') {
      const id = flags.get('id');
      if (!id) throw new ConfigError('token revoke: --id is required');
      if (!(await app.tokens.revoke(id))) throw new ConfigError(`token revoke: no token with id ${id}`);
      process.stdout.write(`Revoked ${id}\n`);
    } else {
      throw new ConfigError(`Unknown token command '${sub ?? ''}'. Use create, list or revoke.`);
    }
  } finally {
    await app.stop();
  }
}

/** Splits `<positional> --flag value …`: the hub commands take one positional argument before their flags. */
function positional(argv: string[]): { arg: string | undefined; rest: string[] } {
  return argv[0] !== undefined && !argv[0].startsWith('--') ? { arg: argv[0], rest: argv.slice(1) } : { arg: undefined, rest: argv };
}

async function device(argv: string[]): Promise<void> {
  const [sub, ...more] = argv;
  if (sub !== 'connection-string') throw new ConfigError(`Unknown device command '${sub ?? ''}'. Use: ccs device connection-string <deviceId>`);
  const { arg: deviceId, rest } = positional(more);
  if (!deviceId) throw new ConfigError('device connection-string: give the device id, e.g. ccs device connection-string thermostat-1');
  const config = loadConfig(parseFlags(rest));
  const app = await createApp({ ...config, logLevel: 'silent' });
  try {
    const existed = (await app.hub.registry.get(deviceId)) !== undefined;
    const text = await app.hub.deviceConnectionString(deviceId, { create: true });
    const tls = app.tls();
    process.stdout.write(`${text}\n`);
    if (!existed) process.stderr.write(`Registered device identity '${deviceId}'.\n`);
    if (tls.caFile) {
      process.stderr.write(
        `Devices must trust the hub's CA: ${tls.caFile}\n` +
          `  Node SDK: await client.setOptions({ ca: '${tls.caFile}' }) before open(), or NODE_EXTRA_CA_CERTS=${tls.caFile}\n`,
      );
    }
  } catch (e) {
    if (e instanceof CcsError) throw new ConfigError(`device connection-string: ${e.message}`);
    throw e;
  } finally {
    await app.stop();
  }
}

async function hubCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'connection-string') throw new ConfigError(`Unknown hub command '${sub ?? ''}'. Use: ccs hub connection-string [--policy iothubowner]`);
  const flags = parseFlags(rest, ['policy']);
  const config = loadConfig(flags);
  const app = await createApp({ ...config, logLevel: 'silent' });
  try {
    const text = await app.hub.serviceConnectionString(flags.get('policy') ?? 'iothubowner');
    const tls = app.tls();
    process.stdout.write(`${text}\n`);
    process.stderr.write(
      `The azure-iothub SDK always connects to port 443 (a port in HostName breaks it): serve HTTPS on 443 ` +
        `(--https-port 443, or forward 443 to ${config.httpsPort})` +
        (tls.caFile ? ` and start Node with NODE_EXTRA_CA_CERTS=${tls.caFile}.\n` : '.\n'),
    );
  } catch (e) {
    if (e instanceof CcsError) throw new ConfigError(`hub connection-string: ${e.message}`);
    throw e;
  } finally {
    await app.stop();
  }
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    if (command === 'start') await start(rest);
    else if (command === 'token') await token(rest);
    else if (command === 'device') await device(rest);
    else if (command === 'hub') await hubCommand(rest);
    else if (command === 'simulate') await simulate(rest);
    else if (command === 'deploy') await deploy(rest);
    else if (command === 'export') await exportCommand(rest);
    else if (command === 'rules') await rulesCommand(rest);
    else if (command === undefined || command === 'help' || command === '--help') process.stdout.write(USAGE);
    else throw new ConfigError(`Unknown command '${command}'.\n\n${USAGE}`);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`ccs: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}
