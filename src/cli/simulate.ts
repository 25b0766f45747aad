import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseFlags } from '../config/index.js';
import { createProgressLine, createSimulator, ProvisionError } from '../simulator/index.js';

export const SIMULATE_USAGE = `  simulate --devices <n> --rate <msg/s> [--server <url>] [--token <admin token>] [--ca <file>]
           [--duration <seconds>] [--prefix sim-]
                                 Run a fleet of simulated thermostats (Azure IoT device SDK over MQTT/TLS)
                                 sending Temperature/Humidity and answering the commands "Reset Thermostat",
                                 "Notification" and "Set Values". Devices sim-0001… are created through the
                                 Web API when missing. --server defaults to http://localhost:<http port>;
                                 the token to CCS_TOKEN, else the configured admin token; the CA to
                                 <data-dir>/tls/ca.pem when present. Runs until Ctrl-C or --duration.
`;

const FLAGS = ['devices', 'rate', 'server', 'token', 'ca', 'duration', 'prefix'];

function positiveNumber(flags: ReadonlyMap<string, string>, name: string, fallback: number | undefined, integer: boolean): number | undefined {
  const raw = flags.get(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) {
    throw new ConfigError(`simulate: --${name} expects ${integer ? 'a whole number' : 'a number'}, got '${raw}'`);
  }
  return n;
}

/**
 * `ccs simulate`. `env` is passed in by the command line entry point (config/ reads CCS_* settings of the server;
 * CCS_TOKEN is the simulator's own credential).
 */
export async function simulate(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const flags = parseFlags(argv, FLAGS);
  const config = loadConfig(flags, env);
  const devices = positiveNumber(flags, 'devices', 10, true)!;
  const rate = positiveNumber(flags, 'rate', devices, false)!;
  const duration = positiveNumber(flags, 'duration', undefined, false);
  if (devices < 1) throw new ConfigError('simulate: --devices must be at least 1');
  const server = flags.get('server') ?? `http://localhost:${config.httpPort}`;
  const token = flags.get('token') ?? env['CCS_TOKEN'] ?? config.adminToken;
  if (!token) throw new ConfigError('simulate: an admin token is needed to read device connection strings: --token <token> or CCS_TOKEN');
  const caFile = flags.get('ca') ?? join(config.dataDir, 'tls', 'ca.pem');
  if (flags.has('ca') && !existsSync(caFile)) throw new ConfigError(`simulate: --ca: file not found: ${caFile}`);
  const ca = existsSync(caFile) ? readFileSync(caFile, 'utf8') : undefined;

  const sim = createSimulator({ devices, rate, server, token, ca, prefix: flags.get('prefix') ?? 'sim-', onEvent: (text) => progress.note(text) });
  const last = sim.deviceIds.at(-1);
  process.stderr.write(
    `Simulating ${devices} thermostat${devices === 1 ? '' : 's'} (${sim.deviceIds[0]}${devices > 1 ? `…${last}` : ''}) at ${rate} msg/s against ${server}` +
      `${ca ? ` (trusting ${caFile})` : ''}; Ctrl-C stops.\n`,
  );
  if (!ca) {
    process.stderr.write(`No CA at ${caFile}: trusting the system's CAs only. A local server's devices need --data-dir <its data dir> or --ca <ca.pem>.\n`);
  }
  const progress = createProgressLine({ stats: sim.stats, devices });

  let stopping: Promise<void> | undefined;
  const stop = (why: string): Promise<void> =>
    (stopping ??= (async () => {
      progress.note(`${why}: closing ${devices} device connection${devices === 1 ? '' : 's'}…`);
      await sim.stop();
      progress.stop();
      const s = sim.stats;
      process.stderr.write(`Done: ${s.acked} readings acknowledged of ${s.sent} sent, ${s.skipped} skipped, ${s.errors} errors, ${s.commands} commands, ${s.methods} methods.\n`);
    })());
  process.once('SIGINT', () => {
    // A second Ctrl-C while closing gives up on a clean close.
    process.once('SIGINT', () => process.exit(130));
    void stop('Interrupted').then(() => process.exit(0));
  });
  process.once('SIGTERM', () => void stop('Terminated').then(() => process.exit(0)));

  try {
    await sim.start();
  } catch (e) {
    await sim.stop();
    progress.stop();
    if (e instanceof ProvisionError) throw new ConfigError(`simulate: ${e.message}`);
    if (e instanceof TypeError && /fetch failed/.test(e.message)) throw new ConfigError(`simulate: cannot reach ${server}: ${String((e as { cause?: unknown }).cause ?? e.message)}`);
    throw e;
  }
  if (duration !== undefined) {
    await new Promise((resolve) => setTimeout(resolve, duration * 1000));
    await stop(`${duration} s elapsed`);
  }
}
