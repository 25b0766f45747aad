import { SimulatedDevice } from './device.js';
import { provisionDevices } from './provision.js';
import { createStats, type SimulatorStats } from './stats.js';
import { Thermostat } from './thermostat.js';

export interface SimulatorOptions {
  /** Fleet size. */
  readonly devices: number;
  /** Readings per second across the whole fleet. */
  readonly rate: number;
  /** Device ids are `<prefix>0001`, `<prefix>0002`, … (default `sim-`). */
  readonly prefix?: string;
  /**
   * Where connection strings come from. Default: the Web API of `server` with the admin `token` (records created
   * when missing, then `ccs_GetDeviceConnectionString()`), which works against a remote server too.
   */
  readonly server?: string;
  readonly token?: string;
  /** Or a function giving each device's connection string (in-process use, tests). */
  readonly connectionStrings?: (deviceIds: readonly string[]) => Promise<ReadonlyMap<string, string>>;
  /** PEM of the CA the hub's certificate chains to; absent: the system's CAs. */
  readonly ca?: string;
  /** Devices opening their connection at once (TLS handshakes are the costly part). */
  readonly openConcurrency?: number;
  /** Uniform [0, 1) random source for the thermostats (tests make it deterministic). */
  readonly random?: () => number;
  readonly clock?: () => number;
  /** Lines worth showing: commands received, failures, fleet milestones. */
  readonly onEvent?: (text: string) => void;
}

export interface Simulator {
  readonly stats: SimulatorStats;
  readonly deviceIds: readonly string[];
  /** Provisions and connects the fleet, then starts sending; resolves once every device has tried to connect. */
  start(): Promise<void>;
  /** Stops sending and closes every client. */
  stop(): Promise<void>;
  /** The simulated device, to look at its state. */
  device(deviceId: string): SimulatedDevice | undefined;
}

/** How often the sender wakes up; the rate is spread evenly over each second whatever the tick. */
const TICK_MS = 50;

export function deviceIds(count: number, prefix = 'sim-'): string[] {
  const width = Math.max(4, String(count).length);
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i + 1).padStart(width, '0')}`);
}

/**
 * A thermostat fleet on the Azure IoT device SDK. Readings go out at `rate` per second across the fleet, round robin
 * over the connected devices, paced by elapsed time so that a slow tick does not lower the rate.
 */
export function createSimulator(opts: SimulatorOptions): Simulator {
  if (!Number.isInteger(opts.devices) || opts.devices < 1) throw new RangeError('devices must be a positive integer');
  if (!(opts.rate >= 0)) throw new RangeError('rate must be zero or more');
  const ids = deviceIds(opts.devices, opts.prefix);
  const stats = createStats();
  const fleet = new Map<string, SimulatedDevice>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let starting: Promise<void> | undefined;

  async function connectionStrings(): Promise<ReadonlyMap<string, string>> {
    if (opts.connectionStrings) return opts.connectionStrings(ids);
    if (!opts.server || !opts.token) throw new Error('The simulator needs a server URL and an admin token (or connectionStrings).');
    return provisionDevices({ server: opts.server, token: opts.token, deviceIds: ids });
  }

  function startSending(): void {
    const started = performance.now();
    let due = 0;
    let cursor = 0;
    timer = setInterval(() => {
      const target = Math.floor(((performance.now() - started) / 1000) * opts.rate);
      const devices = [...fleet.values()];
      // Whatever could not go out (nobody connected, everyone waiting on PUBACKs) is dropped, not owed.
      for (; due < target; due++) {
        let sent = false;
        for (let tries = 0; tries < devices.length && !sent; tries++) {
          sent = devices[cursor++ % devices.length]!.send();
        }
        if (!sent) stats.skipped++;
      }
    }, TICK_MS);
  }

  async function start(): Promise<void> {
    const strings = await connectionStrings();
    let next = 0;
    async function opener(): Promise<void> {
      while (next < ids.length && !stopped) {
        const id = ids[next++]!;
        const connectionString = strings.get(id);
        if (!connectionString) throw new Error(`No connection string for device '${id}'.`);
        const d = new SimulatedDevice({
          deviceId: id,
          connectionString,
          ca: opts.ca,
          stats,
          clock: opts.clock,
          thermostat: new Thermostat({ random: opts.random }),
          onEvent: (deviceId, text) => opts.onEvent?.(`${deviceId}: ${text}`),
        });
        fleet.set(id, d);
        try {
          await d.open();
        } catch (e) {
          stats.errors++;
          opts.onEvent?.(`${id}: could not connect: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(opts.openConcurrency ?? 20, ids.length) }, opener));
    if (!stopped) startSending();
  }

  return {
    stats,
    deviceIds: ids,
    start() {
      starting ??= start();
      return starting;
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      // Devices still opening are in the fleet map already; wait for the openers so none is left behind.
      await starting?.catch(() => undefined);
      await Promise.all([...fleet.values()].map((d) => d.close()));
    },
    device: (id) => fleet.get(id),
  };
}
