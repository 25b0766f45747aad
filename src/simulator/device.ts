import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { COMMAND_NAMES, parseCommandMessage, parseMethodCall, type ThermostatCommand } from './commands.js';
import type { SimulatorStats } from './stats.js';
import { Thermostat, type ReportedState } from './thermostat.js';

type DeviceClient = InstanceType<typeof device.Client>;
type SdkMessage = InstanceType<typeof device.Message>;
type SdkTwin = InstanceType<typeof device.Twin>;
/** The SDK types reported properties as an index signature; `update` is the method it adds to that object. */
type ReportedProperties = { update(patch: Record<string, unknown>, done: (err?: Error) => void): void };

export interface SimulatedDeviceOptions {
  readonly deviceId: string;
  readonly connectionString: string;
  /** PEM of the CA the server certificate chains to (the server's `<data-dir>/tls/ca.pem`); absent: system CAs. */
  readonly ca?: string;
  readonly stats: SimulatorStats;
  readonly thermostat?: Thermostat;
  readonly clock?: () => number;
  /** Told about anything worth a line in the output (commands received, failures). */
  readonly onEvent?: (deviceId: string, text: string) => void;
  /** How long to wait before opening again after the SDK gave up on a connection. */
  readonly reopenDelayMs?: number;
}

/**
 * The method names to listen on. The SDK takes the name from the request topic with the legacy `url.parse`, which
 * escapes a space to `%20` (azure-iot-device-mqtt dist/mqtt.js `_parseMessage`), so "Set Values" arrives as
 * `Set%20Values`; both spellings are registered.
 */
function methodNames(): string[] {
  return [...new Set(COMMAND_NAMES.flatMap((n) => [n, n.replace(/ /g, '%20')]))];
}

function decodeMethodName(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

/** Readings a device may have waiting for their PUBACK before it skips sending (a slow or stuck hub). */
export const MAX_IN_FLIGHT = 100;

/**
 * One thermostat on the unmodified `azure-iot-device` SDK with the MQTT transport (MQTT 3.1.1 over TLS): sends
 * readings when asked, applies the §1.3 commands whether they come as cloud-to-device messages or direct methods,
 * and keeps its twin's reported properties up to date.
 */
export class SimulatedDevice {
  readonly deviceId: string;
  readonly thermostat: Thermostat;
  readonly #opts: SimulatedDeviceOptions;
  readonly #client: DeviceClient;
  readonly #stats: SimulatorStats;
  #twin: SdkTwin | undefined;
  #connected = false;
  #stopping = false;
  #inFlight = 0;
  #reopenTimer: NodeJS.Timeout | undefined;

  constructor(opts: SimulatedDeviceOptions) {
    this.deviceId = opts.deviceId;
    this.#opts = opts;
    this.#stats = opts.stats;
    this.thermostat = opts.thermostat ?? new Thermostat();
    this.#client = device.Client.fromConnectionString(opts.connectionString, deviceMqtt.Mqtt);
    // Without an 'error' listener an SDK error (a failed subscription, say) would end the process.
    this.#client.on('error', (err: Error) => this.#failed('client error', err));
    this.#client.on('connect', () => this.#setConnected(true));
    this.#client.on('disconnect', () => {
      // Emitted once the SDK has stopped retrying on its own: try again later, as a real device would.
      this.#setConnected(false);
      if (!this.#stopping) this.#scheduleReopen();
    });
  }

  get connected(): boolean {
    return this.#connected;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  #setConnected(on: boolean): void {
    if (on === this.#connected) return;
    this.#connected = on;
    this.#stats.connected += on ? 1 : -1;
  }

  #failed(what: string, err: unknown): void {
    this.#stats.errors++;
    this.#opts.onEvent?.(this.deviceId, `${what}: ${err instanceof Error ? err.message : String(err)}`);
  }

  /** Connects, subscribes to commands and methods, and reports its initial state. */
  async open(): Promise<void> {
    if (this.#opts.ca !== undefined) await this.#client.setOptions({ ca: this.#opts.ca });
    await this.#client.open();
    this.#setConnected(true);
    // Listeners after open(): registering them first would make the SDK open the connection itself, retrying.
    this.#client.on('message', (m: SdkMessage) => this.#onMessage(m));
    for (const name of methodNames()) {
      this.#client.onDeviceMethod(name, (request, response) => {
        this.#stats.methods++;
        let status = 200;
        let payload: Record<string, unknown>;
        try {
          payload = { result: this.#apply(parseMethodCall(decodeMethodName(request.methodName), request.payload as unknown)) };
        } catch (e) {
          status = 400;
          payload = { error: e instanceof Error ? e.message : String(e) };
          this.#failed(`method '${request.methodName}'`, e);
        }
        response.send(status, payload).catch((e: unknown) => this.#failed('method response', e));
      });
    }
    this.#twin = await this.#client.getTwin();
    await this.#report(this.thermostat.reported);
  }

  #scheduleReopen(): void {
    if (this.#reopenTimer) return;
    this.#reopenTimer = setTimeout(() => {
      this.#reopenTimer = undefined;
      if (this.#stopping) return;
      this.#client.open().then(
        () => this.#setConnected(true),
        (e: unknown) => {
          this.#failed('reconnect', e);
          this.#scheduleReopen();
        },
      );
    }, this.#opts.reopenDelayMs ?? 5000);
  }

  /** Sends one reading (QoS 1); counts it acknowledged on the PUBACK. Returns false when it skipped sending. */
  send(): boolean {
    if (!this.#connected || this.#stopping || this.#inFlight >= MAX_IN_FLIGHT) return false;
    const message = new device.Message(JSON.stringify(this.thermostat.next()));
    // A JSON body marked as such, as IoT Hub routing and rules expect.
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
    this.#inFlight++;
    this.#stats.sent++;
    this.#client.sendEvent(message).then(
      () => {
        this.#inFlight--;
        this.#stats.acked++;
      },
      (e: unknown) => {
        this.#inFlight--;
        this.#failed('sendEvent', e);
      },
    );
    return true;
  }

  #onMessage(m: SdkMessage): void {
    this.#stats.commands++;
    const data: unknown = m.getData();
    const text = Buffer.isBuffer(data) ? data.toString('utf8') : String(data);
    try {
      this.#apply(parseCommandMessage(text));
    } catch (e) {
      this.#failed('command', e);
    }
    // Over MQTT the PUBACK completes the message; complete() is a no-op kept for other transports.
    this.#client.complete(m).catch((e: unknown) => this.#failed('complete', e));
  }

  #apply(command: ThermostatCommand): string {
    const now = new Date(this.#opts.clock?.() ?? Date.now());
    const result = this.thermostat.apply(command, now);
    this.#opts.onEvent?.(this.deviceId, `${command.name}: ${result}`);
    this.#report(this.thermostat.reported).catch((e: unknown) => this.#failed('twin update', e));
    return result;
  }

  #report(state: ReportedState): Promise<void> {
    const twin = this.#twin;
    if (!twin) return Promise.resolve();
    const reported = twin.properties.reported as ReportedProperties;
    return new Promise<void>((resolve, reject) => {
      reported.update({ ...state }, (err?: Error) => {
        if (err) return reject(err);
        this.#stats.reportedUpdates++;
        resolve();
      });
    });
  }

  /** Closes the client; safe to call more than once. */
  async close(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#reopenTimer);
    try {
      await this.#client.close();
    } catch {
      // Closing a client whose connection already failed: nothing left to release.
    }
    this.#setConnected(false);
  }
}
