import { Readable } from 'node:stream';

/**
 * The aedes persistence for IoT Hub sessions. aedes stays the MQTT session engine (SUBSCRIBE/SUBACK, restoring a
 * persistent session's subscriptions on reconnect, CONNACK `sessionPresent`), but IoT Hub is not a pub/sub broker, so
 * most of a generic broker's persistence has nothing to hold here:
 *
 * - Subscriptions are kept per client id (= device id) for as long as this process lives, so that a device that
 *   reconnects with CleanSession=0 finds its C2D and method subscriptions again ([MQTT-doc] "Default subscriptions").
 * - Nothing is ever routed between clients: every device's topics are its own, so `subscriptionsByTopic` is empty and
 *   no message is queued for an offline subscriber.
 * - Retained messages are not stored: IoT Hub turns RETAIN into an `mqtt-retain` property ([MQTT-doc] "Sending
 *   device-to-cloud messages").
 * - Outbound QoS 1 state is not kept either: undelivered cloud-to-device messages live in the hub's durable queue,
 *   which redelivers them on the next connection. Keeping them here too would deliver them twice. A PUBACK is only
 *   reported (`onPuback`), which is how the gateway learns that the device has a message.
 * - Inbound QoS 2 never gets this far: IoT Hub does not support it and the gateway closes the connection first.
 */

interface StoredSubscription {
  readonly qos: number;
  readonly rh?: number;
  readonly rap?: boolean;
  readonly nl?: boolean;
}

interface ClientRef {
  readonly id: string;
}

interface SubscriptionIn extends StoredSubscription {
  readonly topic: string;
}

interface PacketRef {
  readonly messageId?: number;
}

export interface SessionStoreOptions {
  /** Called for each PUBACK a client sends (aedes hands every PUBACK to `outgoingClearMessageId`). */
  readonly onPuback: (client: ClientRef, messageId: number) => void;
}

export class SessionStore {
  readonly #subscriptions = new Map<string, Map<string, StoredSubscription>>();
  readonly #wills = new Map<string, unknown>();
  readonly #incoming = new Map<string, Map<number, unknown>>();
  readonly #onPuback: SessionStoreOptions['onPuback'];

  constructor(opts: SessionStoreOptions) {
    this.#onPuback = opts.onPuback;
  }

  /** Whether this process holds a session (subscriptions) for `clientId`. */
  hasSubscriptions(clientId: string): boolean {
    return (this.#subscriptions.get(clientId)?.size ?? 0) > 0;
  }

  // ---- the aedes persistence interface (aedes-persistence 11, asyncPersistence.js) ------------------------------
  // aedes checks that `setup` is an async function.
  async setup(_broker: unknown): Promise<void> {}

  async storeRetained(_packet: unknown): Promise<void> {}

  createRetainedStreamCombi(_patterns: readonly string[]): Readable {
    return Readable.from([]);
  }

  createRetainedStream(_pattern: string): Readable {
    return Readable.from([]);
  }

  async addSubscriptions(client: ClientRef, subs: readonly SubscriptionIn[]): Promise<void> {
    let stored = this.#subscriptions.get(client.id);
    if (!stored) this.#subscriptions.set(client.id, (stored = new Map()));
    for (const s of subs) {
      // A QoS 2 request is granted QoS 1 (the gateway lowers it before aedes stores it); clamp anyway.
      stored.set(s.topic, { qos: Math.min(s.qos, 1), rh: s.rh, rap: s.rap, nl: s.nl });
    }
  }

  async removeSubscriptions(client: ClientRef, topics: readonly string[]): Promise<void> {
    const stored = this.#subscriptions.get(client.id);
    if (!stored) return;
    for (const t of topics) stored.delete(t);
    if (stored.size === 0) this.#subscriptions.delete(client.id);
  }

  async subscriptionsByClient(client: ClientRef): Promise<SubscriptionIn[]> {
    const stored = this.#subscriptions.get(client.id);
    return stored ? [...stored].map(([topic, s]) => ({ topic, ...s })) : [];
  }

  async countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    let subsCount = 0;
    for (const s of this.#subscriptions.values()) subsCount += s.size;
    return { subsCount, clientsCount: this.#subscriptions.size };
  }

  async subscriptionsByTopic(_pattern: string): Promise<never[]> {
    return [];
  }

  async cleanSubscriptions(client: ClientRef): Promise<void> {
    this.#subscriptions.delete(client.id);
  }

  async outgoingEnqueue(_sub: unknown, _packet: unknown): Promise<void> {}

  async outgoingEnqueueCombi(_subs: unknown, _packet: unknown): Promise<void> {}

  async outgoingUpdate(_client: ClientRef, _packet: unknown): Promise<void> {}

  async outgoingClearMessageId(client: ClientRef, packet: PacketRef): Promise<undefined> {
    if (typeof packet.messageId === 'number') this.#onPuback(client, packet.messageId);
    return undefined;
  }

  outgoingStream(_client: ClientRef): Readable {
    return Readable.from([]);
  }

  async incomingStorePacket(client: ClientRef, packet: PacketRef): Promise<void> {
    if (typeof packet.messageId !== 'number') return;
    let m = this.#incoming.get(client.id);
    if (!m) this.#incoming.set(client.id, (m = new Map()));
    m.set(packet.messageId, packet);
  }

  async incomingGetPacket(client: ClientRef, packet: PacketRef): Promise<unknown> {
    const found = typeof packet.messageId === 'number' ? this.#incoming.get(client.id)?.get(packet.messageId) : undefined;
    if (found === undefined) throw new Error('no such packet');
    return found;
  }

  async incomingDelPacket(client: ClientRef, packet: PacketRef): Promise<void> {
    const m = this.#incoming.get(client.id);
    if (!m || typeof packet.messageId !== 'number' || !m.delete(packet.messageId)) throw new Error('no such packet');
  }

  async cleanIncoming(client: ClientRef): Promise<void> {
    this.#incoming.delete(client.id);
  }

  async putWill(client: ClientRef, packet: unknown): Promise<void> {
    this.#wills.set(client.id, packet);
  }

  async getWill(client: ClientRef): Promise<unknown> {
    return this.#wills.get(client.id);
  }

  async delWill(client: ClientRef): Promise<unknown> {
    const will = this.#wills.get(client.id);
    this.#wills.delete(client.id);
    return will;
  }

  /** Wills of other, dead brokers: there are none, a will is published by the node that held the connection. */
  streamWill(_brokers?: unknown): Readable {
    return Readable.from([]);
  }

  getClientList(topic: string): Readable {
    const ids: string[] = [];
    for (const [id, subs] of this.#subscriptions) if (subs.has(topic)) ids.push(id);
    return Readable.from(ids);
  }

  async destroy(): Promise<void> {
    this.#subscriptions.clear();
    this.#wills.clear();
    this.#incoming.clear();
  }
}
