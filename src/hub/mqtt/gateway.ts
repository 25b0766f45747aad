import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { Aedes, type AuthErrorCode, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { Hub, HubMessage } from '../types.js';
import { DeviceSession, type ForwardedPacket } from './device-session.js';
import { createFrameGuard } from './frame-guard.js';
import { errorStatus, isRefusal, twinErrorBody } from './hub-errors.js';
import type { GatewayLog } from './log.js';
import { SessionStore } from './session-store.js';
import { classifyFilter, messageFromBag, parseDevicePublish, parseUsername, twinResponseTopic } from './topics.js';

/** IoT Hub's device-to-cloud message limit: 256 KB ([MQTT-doc]; iot-hub-devguide-quotas-throttling.md). */
export const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024;
/** A device holds at most 5 subscriptions ([MQTT-doc]; iot-hub-devguide-direct-methods.md). */
export const MAX_SUBSCRIPTIONS = 5;
/** Where IoT Hub serves MQTT over WebSocket on 443 (the SDK's `MqttWs`: `wss://{host}:443/$iothub/websocket`). */
export const WEBSOCKET_PATH = '/$iothub/websocket';
/** How long `close()` waits for devices to close their side before cutting connections. */
const SHUTDOWN_GRACE_MS = 2000;

export interface MqttGatewayOptions {
  readonly hub: Hub;
  /** PEM server certificate (chain) and key for MQTT over TLS. */
  readonly tls: { readonly cert: string; readonly key: string };
  readonly log: GatewayLog;
  /** Largest device-to-cloud message body; larger ones close the connection. Default 256 KiB. */
  readonly maxMessageBytes?: number;
}

export interface MqttGateway {
  /** Starts MQTT over TLS on `port` (0 picks a free one); resolves to the port. */
  listen(port: number, host?: string): Promise<number>;
  /** Whether an HTTP upgrade request is for this gateway (`GET /$iothub/websocket`). */
  isUpgradeRequest(req: IncomingMessage): boolean;
  /**
   * Takes an HTTP `upgrade` for `/$iothub/websocket` (from the HTTPS server's 'upgrade' event) and serves MQTT over
   * the WebSocket, subprotocol `mqtt`.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Live MQTT connections (TLS and WebSocket), authenticated or not. */
  readonly connectionCount: number;
  /** Stops listening, closes every connection, and fails whatever was waiting on them. */
  close(): Promise<void>;
}

type Transport = 'mqtt' | 'mqtt-ws';

interface ConnectionContext {
  readonly transport: Transport;
  readonly conn: Duplex;
  /** From CONNECT (preConnect), for authenticate. */
  clean: boolean;
  will: unknown;
  deviceId: string | undefined;
  session: DeviceSession | undefined;
  /** Settles when the last QoS 1 PUBLISH may be acknowledged: PUBACKs go out in PUBLISH order ([MQTT-4.6.0-2]). */
  ackTail: Promise<unknown>;
}

function authError(returnCode: 2 | 3 | 4 | 5, message: string): AuthenticateError {
  // aedes sends CONNACK with `returnCode` (MQTT 3.1.1 §3.2.2.3). The SDK maps mqtt.js's "Bad username or password"
  // and "Not authorized" to UnauthorizedError and "Server unavailable" to a retryable error (mqtt_translate_error.ts).
  return Object.assign(new Error(message), { returnCode: returnCode as AuthErrorCode });
}

class ProtocolViolation extends Error {
  override readonly name = 'ProtocolViolation';
}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * The MQTT face of the IoT Hub-compatible endpoint: MQTT 3.1.1 over TLS and over WebSocket, speaking IoT Hub's topics
 * to the `Hub`. aedes does the MQTT work (packet codec, CONNECT/CONNACK, keepalive, SUBSCRIBE/SUBACK, sessions); it
 * is not used as a pub/sub broker: every device publish is handled here and nothing is routed between clients.
 */
export async function createMqttGateway(opts: MqttGatewayOptions): Promise<MqttGateway> {
  const { hub, log } = opts;
  const maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  // The framing guard allows the body plus the largest topic (2 + 65535 bytes) and the packet id.
  const maxRemainingLength = maxMessageBytes + 2 + 0xffff + 2;

  const contexts = new WeakMap<object, ConnectionContext>();
  const connections = new Set<Duplex>();
  /** Devices that connected with CleanSession=0 through this process: their sessions are known here. */
  const persistentSessions = new Set<string>();
  const counters = { 0: 0, 1: 0 };
  let closing = false;

  const sessions = new SessionStore({
    onPuback: (client, messageId) => contexts.get(client)?.session?.puback(messageId),
  });

  const broker = await Aedes.createBroker({
    persistence: sessions,
    // A connection that has not sent CONNECT within 30 s is dropped. Keepalive needs no setting: aedes allows 1.5×
    // the client's value ([MQTT-3.1.2-24]), as IoT Hub does ([MQTT-doc]); the SDK uses 180 s.
    connectTimeout: 30_000,
    // Client ids are device ids (up to 128 characters, iot-hub-devguide-identity-registry.md), not 23.
    maxClientsIdLength: 128,

    preConnect(client, packet, done) {
      const ctx = contexts.get(client);
      if (ctx) {
        ctx.clean = packet.clean !== false;
        ctx.will = packet.will ?? undefined;
      }
      done(null, true);
    },

    authenticate(client, username, password, done) {
      const ctx = contexts.get(client);
      if (!ctx) return done(authError(3, 'Server unavailable'), null);
      // [MQTT-doc] "Using the MQTT protocol directly (as a device)": ClientId is the device id, Username
      // `{host}/{deviceId}/?api-version=…`, Password a SAS token; client id, username and token must agree.
      const parsed = username === undefined ? undefined : parseUsername(username);
      if (!parsed || parsed.deviceId !== client.id) return done(authError(4, 'Bad username or password'), null);
      // Module identities are not served (the client id would be `{deviceId}/{moduleId}`, refused above anyway).
      if (parsed.moduleId !== undefined) return done(authError(5, 'Not authorized'), null);
      // X.509 authentication (no password) is not supported.
      if (!password || password.length === 0) return done(authError(4, 'Bad username or password'), null);
      // A Will must be telemetry of the device itself ([MQTT-doc] "Using the MQTT protocol directly": Will topic).
      const willTopic = (ctx.will as { topic?: unknown } | undefined)?.topic;
      if (ctx.will !== undefined && (typeof willTopic !== 'string' || parseDevicePublish(willTopic, parsed.deviceId)?.kind !== 'telemetry')) {
        return done(authError(5, 'Not authorized'), null);
      }
      const deviceId = parsed.deviceId;
      hub.authenticateDevice(deviceId, password.toString('utf8')).then(
        () => {
          const unknownSession = !ctx.clean && !persistentSessions.has(deviceId) && !sessions.hasSubscriptions(deviceId);
          if (ctx.clean) persistentSessions.delete(deviceId);
          else persistentSessions.add(deviceId);
          ctx.deviceId = deviceId;
          ctx.session = new DeviceSession({
            deviceId,
            transport: ctx.transport,
            client,
            log,
            unknownSession,
            nextCounter: (qos) => ++counters[qos],
          });
          done(null, true);
        },
        (e: unknown) => {
          if (isRefusal(e)) {
            log.info({ deviceId, transport: ctx.transport, err: e }, 'device authentication refused');
            done(authError(5, 'Not authorized'), null);
          } else {
            log.error({ deviceId, transport: ctx.transport, err: e }, 'device authentication failed');
            done(authError(3, 'Server unavailable'), null);
          }
        },
      );
    },

    // Every device publish ends here. Calling `done` with an error makes aedes close the connection, as IoT Hub does
    // for anything it refuses; `done(null)` makes it send the PUBACK of a QoS 1 message (lib/handlers/publish.js).
    authorizePublish(client, packet, done) {
      const ctx = client ? contexts.get(client) : undefined;
      const deviceId = ctx?.deviceId;
      if (!ctx || deviceId === undefined) return done(new ProtocolViolation('not authenticated'));
      let work: Promise<unknown>;
      try {
        work = handlePublish(ctx, deviceId, packet);
      } catch (e) {
        return done(toError(e));
      }
      // PUBACKs leave in the order the PUBLISHes came ([MQTT-4.6.0-2]), whatever order the hub settles them in.
      const settled = packet.qos === 1 ? ctx.ackTail.then(() => work) : work;
      if (packet.qos === 1) ctx.ackTail = settled.catch(() => {});
      settled.then(() => done(null), (e: unknown) => done(toError(e)));
    },

    authorizeSubscribe(client, sub, done) {
      const session = contexts.get(client)?.session;
      if (!session) return done(new ProtocolViolation('not authenticated'));
      // Only the device's own documented topics ([MQTT-doc]); IoT Hub ends the connection when a SUBSCRIBE fails
      // rather than answering SUBACK 0x80 (Azure/azure-iot-middleware-freertos#89: "Hub will terminate if there is
      // an error on their end processing the sub").
      const kind = classifyFilter(sub.topic, session.deviceId);
      if (!kind) return done(new ProtocolViolation(`device '${session.deviceId}' may not subscribe to '${sub.topic}'`));
      if (!session.holds(sub.topic) && session.subscriptionCount >= MAX_SUBSCRIPTIONS) {
        return done(new ProtocolViolation(`device '${session.deviceId}' already holds ${MAX_SUBSCRIPTIONS} subscriptions`));
      }
      // QoS 2 is granted as QoS 1 ([MQTT-doc]); aedes stores the object it was handed, so lower it in place.
      const qos = Math.min(sub.qos, 1);
      (sub as { qos: number }).qos = qos;
      session.addFilter(sub.topic, kind, qos);
      done(null, sub);
    },

    authorizeForward(client, packet) {
      const session = contexts.get(client)?.session;
      return session ? session.forward(packet as typeof packet & ForwardedPacket) : null;
    },
  });

  broker.on('clientReady', (client: Client) => {
    const ctx = contexts.get(client);
    const session = ctx?.session;
    if (!session || session.closed) return;
    hub.touch(session.deviceId);
    let unregister: () => void;
    try {
      // One connection per device: attaching closes the one that held the device before ([MQTT-doc] 400027).
      unregister = hub.attach(session);
    } catch (e) {
      log.error({ deviceId: session.deviceId, err: e }, 'could not attach the device connection');
      client.close();
      return;
    }
    session.attached(unregister);
    log.debug({ deviceId: session.deviceId, transport: session.transport, clean: ctx.clean }, 'device connected');
  });
  broker.on('subscribe', (subs: Subscription[], client: Client) => {
    const session = contexts.get(client)?.session;
    if (!session || session.closed) return;
    hub.touch(session.deviceId);
    session.subscriptionsChanged();
    // Tell the hub at once rather than leaving it to its retry and polling timers.
    const kinds = new Set(subs.map((s) => classifyFilter(s.topic, session.deviceId)));
    if (kinds.has('c2d')) hub.ready(session.deviceId, 'c2d');
    if (kinds.has('methods')) hub.ready(session.deviceId, 'methods');
  });
  broker.on('unsubscribe', (topics: string[], client: Client) => {
    const session = contexts.get(client)?.session;
    if (session && !session.closed) for (const t of topics) session.removeFilter(t);
  });
  broker.on('ping', (_packet: unknown, client: Client) => {
    const deviceId = contexts.get(client)?.deviceId;
    if (deviceId !== undefined) hub.touch(deviceId);
  });
  broker.on('clientError', (client: Client, err: Error) => {
    log.debug({ deviceId: contexts.get(client)?.deviceId, err: err.message }, 'device connection closed on error');
  });
  broker.on('connectionError', (_client: Client, err: Error) => {
    log.debug({ err: err.message }, 'connection closed before CONNECT completed');
  });
  // aedes emits 'error' for persistence failures; unhandled, an EventEmitter 'error' would end the process.
  // aedes' typings leave 'error' out; it is a plain EventEmitter.
  (broker as EventEmitter).on('error', (err: Error) => log.error({ err }, 'MQTT broker error'));

  // ---- device publishes ----------------------------------------------------------------------------------------

  /**
   * Handles one device publish; throws for what IoT Hub refuses. The promise gates the PUBACK (and, for any QoS, the
   * next read from the connection): for telemetry it settles once the message is durable; replies to `$iothub`
   * requests go out on their own.
   */
  function handlePublish(ctx: ConnectionContext, deviceId: string, packet: PublishPacket): Promise<unknown> {
    // [MQTT-doc] "IoT Hub doesn't support QoS 2 messages. If a device app publishes a message with QoS 2, IoT Hub
    // closes the network connection."
    if (packet.qos === 2) throw new ProtocolViolation('QoS 2 is not supported');
    const body = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    if (body.length > maxMessageBytes) {
      throw new ProtocolViolation(`message of ${body.length} bytes is over the ${maxMessageBytes}-byte limit`);
    }
    const route = parseDevicePublish(packet.topic, deviceId);
    // A topic the device may not publish to closes the connection: over MQTT, IoT Hub answers errors by closing
    // ([MQTT-doc] "Migrating a device app from AMQP to MQTT").
    if (!route) throw new ProtocolViolation(`device '${deviceId}' may not publish to '${packet.topic}'`);
    hub.touch(deviceId);
    const session = ctx.session;

    switch (route.kind) {
      case 'telemetry': {
        let message: HubMessage = messageFromBag(route.bag, body);
        const extra: Record<string, string> = {};
        // RETAIN is not stored; it becomes the `mqtt-retain` application property ([MQTT-doc]). Clearing the flag
        // keeps aedes from storing a retained message after the PUBACK.
        if (packet.retain) {
          extra['mqtt-retain'] = 'true';
          packet.retain = false;
        }
        // A Will is delivered as telemetry marked `iothub-MessageType: Will` ([MQTT-doc] "Will message"); aedes
        // hands over the very object it got in CONNECT.
        if (ctx.will !== undefined && packet === ctx.will) extra['iothub-MessageType'] = 'Will';
        if (Object.keys(extra).length > 0) message = { ...message, properties: { ...message.properties, ...extra } };
        // The PUBACK means the message is durable (issue 3, "Durability and hand-off").
        return hub.ingest(deviceId, message, ctx.transport).catch((e: unknown) => {
          log.warn({ deviceId, err: e }, 'telemetry not accepted; closing the connection');
          throw e;
        });
      }
      case 'twinGet': {
        hub.getTwinDocument(deviceId).then(
          (doc) => session?.reply(twinResponseTopic(200, route.rid), Buffer.from(JSON.stringify({ desired: doc.desired, reported: doc.reported }))),
          (e: unknown) => replyError(session, route.rid, e),
        );
        return Promise.resolve();
      }
      case 'twinPatchReported': {
        let patch: unknown;
        try {
          patch = JSON.parse(body.toString('utf8'));
        } catch {
          patch = undefined;
        }
        if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
          // [MQTT-doc] "Update device twin's reported properties": 400 for a malformed JSON body.
          session?.reply(twinResponseTopic(400, route.rid), twinErrorBody(400, new Error('The reported properties patch must be a JSON object.')));
          return Promise.resolve();
        }
        hub.patchReported(deviceId, patch as Record<string, unknown>).then(
          // 204 with an EMPTY body: the SDK JSON.parses any non-empty body (mqtt_twin_client.ts 240-270).
          (version) => session?.reply(twinResponseTopic(204, route.rid, version), Buffer.alloc(0)),
          (e: unknown) => replyError(session, route.rid, e),
        );
        return Promise.resolve();
      }
      case 'methodResponse': {
        let rid = route.rid;
        try {
          rid = decodeURIComponent(rid);
        } catch {
          // keep it as sent
        }
        hub.methodResponse(deviceId, rid, route.status, body);
        return Promise.resolve();
      }
    }
  }

  function replyError(session: DeviceSession | undefined, rid: string, e: unknown): void {
    const status = errorStatus(e);
    if (status >= 500) log.error({ deviceId: session?.deviceId, err: e }, 'twin request failed');
    session?.reply(twinResponseTopic(status, rid), twinErrorBody(status, e));
  }

  // ---- connections ---------------------------------------------------------------------------------------------

  function accept(conn: Duplex, transport: Transport, req?: IncomingMessage): void {
    if (closing) {
      conn.destroy();
      return;
    }
    connections.add(conn);
    const client = broker.handle(conn, req);
    const ctx: ConnectionContext = {
      transport, conn, clean: true, will: undefined, deviceId: undefined, session: undefined, ackTail: Promise.resolve(),
    };
    contexts.set(client, ctx);
    lowerSubscribeQos(client);
    const guard = createFrameGuard(maxRemainingLength);
    // aedes reads with 'readable' + read(); with a 'readable' listener present, 'data' fires for each chunk read()
    // returns and does not switch the stream to flowing mode (Node stream docs, "Choose one API style").
    conn.on('data', (chunk: Buffer) => {
      const verdict = guard.feed(chunk);
      if (verdict !== 'ok') {
        log.info({ deviceId: ctx.deviceId, transport, verdict }, 'closing connection: packet over the size limit or malformed');
        conn.destroy();
      }
    });
    conn.once('close', () => {
      connections.delete(conn);
      if (ctx.session) {
        ctx.session.dispose();
        log.debug({ deviceId: ctx.deviceId, transport }, 'device disconnected');
      }
    });
  }

  const tlsServer = createTlsServer({ cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2', handshakeTimeout: 30_000 });
  tlsServer.on('secureConnection', (socket: TLSSocket) => accept(socket, 'mqtt'));
  tlsServer.on('tlsClientError', (err: Error) => log.debug({ err: err.message }, 'TLS handshake failed'));

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: maxRemainingLength + 5,
    perMessageDeflate: false,
    // MQTT 3.1.1 §6.0: the WebSocket subprotocol is `mqtt`.
    handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false),
  });
  wss.on('error', (err: Error) => log.warn({ err }, 'WebSocket server error'));

  function offersMqtt(req: IncomingMessage): boolean {
    const header = req.headers['sec-websocket-protocol'];
    return typeof header === 'string' && header.split(',').some((p) => p.trim() === 'mqtt');
  }

  return {
    listen(port, host) {
      return new Promise<number>((resolve, reject) => {
        const onError = (e: Error) => reject(e);
        tlsServer.once('error', onError);
        tlsServer.listen(port, host, () => {
          tlsServer.off('error', onError);
          tlsServer.on('error', (e: Error) => log.error({ err: e }, 'MQTT listener error'));
          resolve((tlsServer.address() as AddressInfo).port);
        });
      });
    },

    isUpgradeRequest(req) {
      const path = (req.url ?? '').split('?')[0];
      return req.method === 'GET' && path === WEBSOCKET_PATH;
    },

    handleUpgrade(req, socket, head) {
      if (closing) {
        socket.destroy();
        return;
      }
      if (!offersMqtt(req)) {
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const stream = createWebSocketStream(ws);
        stream.on('error', () => {});
        accept(stream, 'mqtt-ws', req);
      });
    },

    get connectionCount() {
      return connections.size;
    },

    async close() {
      if (closing) return;
      closing = true;
      const serverClosed = new Promise<void>((resolve) => (tlsServer.listening ? tlsServer.close(() => resolve()) : resolve()));
      // Every connection still in the set has yet to emit 'close' (it leaves the set then).
      const gone = Promise.all([...connections].map((c) => new Promise<void>((resolve) => c.once('close', () => resolve()))));
      // End connections gracefully (TLS close_notify and FIN; a WebSocket close frame) and keep reading until the
      // device closes its side. Destroying a socket with unread input makes the kernel send RST, and the SDK
      // treats that ECONNRESET as final and never reconnects, where a clean close makes it reconnect.
      for (const c of connections) c.end();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([gone, new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_GRACE_MS)))]);
      clearTimeout(timer);
      for (const c of connections) c.destroy();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await gone;
      await serverClosed;
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await sessions.destroy();
    },
  };
}

/**
 * aedes computes SUBACK's granted QoS from the request before `authorizeSubscribe` runs, so a QoS 2 request would be
 * acknowledged as QoS 2 even though IoT Hub grants 1 ([MQTT-doc]). The only place to lower it first is the packet
 * as it leaves the parser; this relies on aedes' Client keeping its mqtt-packet parser in `_parser`, and degrades to
 * SUBACK 2 (still delivering at most QoS 1) if it ever does not.
 */
function lowerSubscribeQos(client: Client): void {
  const parser = (client as unknown as { _parser?: unknown })._parser;
  if (!(parser instanceof EventEmitter)) return;
  parser.prependListener('packet', (packet: { cmd?: string; subscriptions?: { qos: number }[] }) => {
    if (packet.cmd !== 'subscribe' || !packet.subscriptions) return;
    for (const s of packet.subscriptions) if (s.qos > 1) s.qos = 1;
  });
}
