import type { Client, PublishPacket } from 'aedes';
import type { C2dMessage, DeviceChannel } from '../types.js';
import type { GatewayLog } from './log.js';
import { c2dTopic, desiredPatchTopic, methodRequestTopic, topicMatches, type SubscriptionKind } from './topics.js';

/**
 * Packets the gateway publishes to one client carry these aedes broker ids, so that `authorizeForward` can tell them
 * from anything the broker might route (nothing should be) and find the delivery a QoS 1 packet belongs to.
 *
 * aedes drops a packet whose (brokerId, brokerCounter) is not above the last one it forwarded to that client
 * (lib/client.js `dedupe`). QoS 0 packets reach that check synchronously and QoS 1 packets of a persistent session one
 * microtask later (after `outgoingEnqueue`), so each kind has its own id and counter: within a kind the check always
 * runs in counter order.
 */
export const QOS0_BROKER_ID = 'ccs-hub-gateway/qos0';
export const QOS1_BROKER_ID = 'ccs-hub-gateway/qos1';

/**
 * How long a C2D message handed over before the device subscribed to `devicebound` waits for that subscription. It
 * is below the hub's 60 s acknowledgement timeout (C2D_LOCK_MS), so the hub learns of the failure from us and no
 * message goes out after the hub has given up on it (which would deliver it twice).
 */
export const C2D_SUBSCRIPTION_WAIT_MS = 30_000;

/** What aedes hands to `authorizeForward` for packets the gateway sent: the fields it copies from ours. */
export interface ForwardedPacket {
  readonly brokerId?: string;
  readonly brokerCounter?: number;
  readonly qos: number;
  messageId?: number;
}

interface Delivery {
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  messageId?: number;
}

interface WaitingC2d {
  readonly message: C2dMessage;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface Filter {
  readonly kind: SubscriptionKind;
  readonly qos: number;
}

export interface DeviceSessionOptions {
  readonly deviceId: string;
  readonly transport: string;
  readonly client: Client;
  readonly log: GatewayLog;
  /**
   * The device asked for a persistent session that this process has no record of (it restarted, or the device
   * last connected to another node). Its subscriptions are unknown; the Node SDK does not subscribe to the twin
   * topics again after such a reconnect (reference/iot-hub.md §2.6 item 5), so desired-property patches are sent
   * as if it had.
   */
  readonly unknownSession: boolean;
  /** Next counter for `QOS0_BROKER_ID` / `QOS1_BROKER_ID` packets. */
  readonly nextCounter: (qos: 0 | 1) => number;
}

class ConnectionClosedError extends Error {
  override readonly name = 'ConnectionClosedError';
}

class NotSubscribedError extends Error {
  override readonly name = 'NotSubscribedError';
}

/**
 * One device's MQTT connection as the hub sees it (`DeviceChannel`), and the per-connection state behind it: the
 * topic filters it holds, the cloud-to-device messages it has not acknowledged yet, and the messages waiting for it to
 * subscribe. All `$iothub` traffic is written to this one connection (`client.publish`), never through the broker:
 * `$iothub/...` topics do not name the device (reference/iot-hub.md §2.6 item 8).
 */
export class DeviceSession implements DeviceChannel {
  readonly deviceId: string;
  readonly transport: string;
  readonly client: Client;
  readonly #log: GatewayLog;
  readonly #unknownSession: boolean;
  readonly #nextCounter: DeviceSessionOptions['nextCounter'];
  readonly #filters = new Map<string, Filter>();
  /** QoS 1 packets handed to aedes, by broker counter, until `authorizeForward` gives them a packet id. */
  readonly #outbound = new Map<number, Delivery>();
  /** QoS 1 packets written, by packet id, until the PUBACK. */
  readonly #inflight = new Map<number, Delivery>();
  readonly #waiting: WaitingC2d[] = [];
  #nextPacketId = 1;
  #ready = false;
  #closed = false;
  #unregister: (() => void) | undefined;

  constructor(opts: DeviceSessionOptions) {
    this.deviceId = opts.deviceId;
    this.transport = opts.transport;
    this.client = opts.client;
    this.#log = opts.log;
    this.#unknownSession = opts.unknownSession;
    this.#nextCounter = opts.nextCounter;
  }

  get closed(): boolean {
    return this.#closed;
  }

  // ---- subscriptions -------------------------------------------------------------------------------------------

  get subscriptionCount(): number {
    return this.#filters.size;
  }

  holds(filter: string): boolean {
    return this.#filters.has(filter);
  }

  addFilter(filter: string, kind: SubscriptionKind, qos: number): void {
    this.#filters.set(filter, { kind, qos });
  }

  removeFilter(filter: string): void {
    this.#filters.delete(filter);
  }

  /** Highest QoS among the held filters of `kind` that match `topic`; undefined when none does. */
  #grantedQos(kind: SubscriptionKind, topic: string): number | undefined {
    let qos: number | undefined;
    for (const [filter, f] of this.#filters) {
      if (f.kind === kind && topicMatches(filter, topic)) qos = Math.max(qos ?? 0, f.qos);
    }
    return qos;
  }

  /** Whether the device holds a `devicebound` subscription (C2D goes out at once rather than waiting for one). */
  get acceptsC2d(): boolean {
    if (this.#closed) return false;
    for (const f of this.#filters.values()) if (f.kind === 'c2d') return true;
    return false;
  }

  get acceptsMethods(): boolean {
    if (this.#closed) return false;
    for (const f of this.#filters.values()) if (f.kind === 'methods') return true;
    return false;
  }

  // ---- lifecycle -----------------------------------------------------------------------------------------------

  /** CONNACK has gone out: the hub may push now, and messages waiting for a restored subscription can go. */
  attached(unregister: () => void): void {
    this.#unregister = unregister;
    this.#ready = true;
    this.subscriptionsChanged();
  }

  /** Sends the C2D messages that were waiting for a `devicebound` subscription, if there is one now. */
  subscriptionsChanged(): void {
    if (!this.#ready || this.#closed) return;
    for (let i = 0; i < this.#waiting.length; ) {
      const w = this.#waiting[i]!;
      const qos = this.#grantedQos('c2d', c2dTopic(this.deviceId, w.message));
      if (qos === undefined) {
        i++;
        continue;
      }
      this.#waiting.splice(i, 1);
      clearTimeout(w.timer);
      this.#send(c2dTopic(this.deviceId, w.message), w.message.body, qos === 0 ? 0 : 1).then(w.resolve, w.reject);
    }
  }

  /** The connection is gone: everything still pending on it fails, and the hub forgets it. */
  dispose(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = new ConnectionClosedError(`The MQTT connection of device '${this.deviceId}' closed.`);
    for (const w of this.#waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(error);
    }
    for (const d of this.#outbound.values()) d.reject(error);
    for (const d of this.#inflight.values()) d.reject(error);
    this.#outbound.clear();
    this.#inflight.clear();
    const unregister = this.#unregister;
    this.#unregister = undefined;
    unregister?.();
  }

  close(reason: string): void {
    this.#log.info({ deviceId: this.deviceId, transport: this.transport, reason }, 'closing device connection');
    this.client.close();
  }

  // ---- hub → device --------------------------------------------------------------------------------------------

  /**
   * Resolves on the device's PUBACK: over MQTT the PUBACK completes a C2D message ([MQTT-doc] "Receiving
   * cloud-to-device messages"). Waits for a `devicebound` subscription first (at most C2D_SUBSCRIPTION_WAIT_MS): with
   * CleanSession=1 IoT Hub delivers nothing until the device subscribes, and with CleanSession=0 the restored
   * subscription is already there; the SDK subscribes right after connecting. A subscription at QoS 0 gets the message at QoS 0, resolved once written ([MQTT-3.8.4-6]: never above the
   * granted QoS).
   */
  deliverC2d(message: C2dMessage): Promise<void> {
    if (this.#closed) return Promise.reject(new ConnectionClosedError(`Device '${this.deviceId}' is not connected here.`));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiting.indexOf(entry);
        if (i === -1) return;
        this.#waiting.splice(i, 1);
        reject(new NotSubscribedError(`Device '${this.deviceId}' has not subscribed to cloud-to-device messages.`));
      }, C2D_SUBSCRIPTION_WAIT_MS);
      timer.unref();
      const entry: WaitingC2d = { message, resolve, reject, timer };
      this.#waiting.push(entry);
      this.subscriptionsChanged();
    });
  }

  sendMethodRequest(rid: string, methodName: string, payload: Buffer): void {
    const topic = methodRequestTopic(methodName, rid);
    if (this.#grantedQos('methods', topic) === undefined) {
      // Only a narrower filter (`$iothub/methods/POST/other/#`) can get here; the invocation times out at the hub.
      this.#log.debug({ deviceId: this.deviceId, methodName }, 'device holds no subscription for this method');
      return;
    }
    // IoT Hub sends method requests at QoS 0 (reference/iot-hub.md §1.5).
    this.#send(topic, payload, 0).catch(() => {});
  }

  sendDesiredPatch(patch: Record<string, unknown>, version: number): void {
    const topic = desiredPatchTopic(version);
    if (!this.#unknownSession && this.#grantedQos('desired', topic) === undefined) return;
    // The body is JSON with `$version` ([MQTT-doc] "Receiving desired properties update notifications"); the SDK
    // JSON.parses it inside an event handler, so anything else would crash the device (reference/iot-hub.md §2.6).
    const body = Buffer.from(JSON.stringify({ ...patch, $version: version }));
    this.#send(topic, body, 0).catch(() => {});
  }

  /**
   * A reply on `$iothub/twin/res/…`, sent whether or not the device holds `$iothub/twin/res/#`: the SDK waits for
   * twin replies without a timeout and does not subscribe again after a reconnect (reference/iot-hub.md §2.6 items 5
   * and 6).
   */
  reply(topic: string, body: Buffer): void {
    this.#send(topic, body, 0).catch(() => {});
  }

  #send(topic: string, payload: Buffer, qos: 0 | 1): Promise<void> {
    if (this.#closed) return Promise.reject(new ConnectionClosedError(`Device '${this.deviceId}' is not connected here.`));
    const brokerCounter = this.#nextCounter(qos);
    const packet: PublishPacket & { brokerId: string; brokerCounter: number } = {
      cmd: 'publish',
      topic,
      payload,
      qos,
      retain: false,
      dup: false,
      brokerId: qos === 0 ? QOS0_BROKER_ID : QOS1_BROKER_ID,
      brokerCounter,
    };
    return new Promise<void>((resolve, reject) => {
      if (qos === 0) {
        // aedes reports write failures on the client ('clientError'), not here; QoS 0 promises nothing more.
        this.client.publish(packet, () => resolve());
        return;
      }
      const delivery: Delivery = { resolve, reject };
      this.#outbound.set(brokerCounter, delivery);
      this.client.publish(packet, () => {
        // Called once the packet is written (or dropped): without a packet id it never went out.
        if (delivery.messageId === undefined && this.#outbound.delete(brokerCounter)) {
          reject(new ConnectionClosedError(`The message to device '${this.deviceId}' could not be sent.`));
        }
      });
    });
  }

  /**
   * aedes' `authorizeForward` for this client. Only the gateway's own packets go out (nothing is routed between
   * devices); a QoS 1 packet gets a packet id here, so that its PUBACK can be matched to its delivery.
   */
  forward<P extends ForwardedPacket>(packet: P): P | null {
    if (packet.brokerId === QOS0_BROKER_ID) return packet;
    if (packet.brokerId !== QOS1_BROKER_ID || packet.brokerCounter === undefined) return null;
    const delivery = this.#outbound.get(packet.brokerCounter);
    if (!delivery) return null;
    this.#outbound.delete(packet.brokerCounter);
    const id = this.#allocatePacketId();
    if (id === undefined) {
      delivery.reject(new Error(`Device '${this.deviceId}' has 65535 unacknowledged messages.`));
      return null;
    }
    delivery.messageId = id;
    this.#inflight.set(id, delivery);
    packet.messageId = id;
    return packet;
  }

  /** The device acknowledged packet `messageId`. */
  puback(messageId: number): void {
    const d = this.#inflight.get(messageId);
    if (!d) return;
    this.#inflight.delete(messageId);
    d.resolve();
  }

  /** MQTT 3.1.1 §2.3.1: a non-zero id not in use by another unacknowledged packet. */
  #allocatePacketId(): number | undefined {
    for (let tries = 0; tries < 65535; tries++) {
      const id = this.#nextPacketId;
      this.#nextPacketId = id >= 65535 ? 1 : id + 1;
      if (!this.#inflight.has(id)) return id;
    }
    return undefined;
  }
}
