/**
 * The IoT Hub-compatible gateway's internal surface. Transports (MQTT over TLS and WebSocket, HTTPS device routes,
 * the IoT Hub service REST) and the rest of ccs (Web API actions, workflows, the console) all go through `Hub`;
 * nothing outside src/hub/ touches the hub's tables.
 */

export type DeviceStatus = 'enabled' | 'disabled';
export type ConnectionState = 'Connected' | 'Disconnected';

/** A device identity, in the shape IoT Hub's registry REST uses (api-version 2021-04-12). */
export interface DeviceIdentity {
  readonly deviceId: string;
  /** Changes on every update of the identity; quoted in REST as `"etag"`. */
  readonly etag: string;
  readonly status: DeviceStatus;
  readonly statusReason: string | null;
  readonly primaryKey: string;
  readonly secondaryKey: string;
  readonly connectionState: ConnectionState;
  /** Epoch milliseconds, or null when never. */
  readonly connectionStateUpdatedTime: number | null;
  readonly lastActivityTime: number | null;
  readonly statusUpdatedTime: number | null;
  /** Pending cloud-to-device messages. */
  readonly cloudToDeviceMessageCount: number;
  readonly generationId: string;
}

export interface IdentityInput {
  readonly deviceId: string;
  readonly status?: DeviceStatus;
  readonly statusReason?: string | null;
  /** Empty or absent keys are generated. */
  readonly primaryKey?: string;
  readonly secondaryKey?: string;
}

export type PolicyName = 'iothubowner' | 'service' | 'device' | 'registryRead' | 'registryReadWrite';
export type PolicyRight = 'RegistryRead' | 'RegistryWrite' | 'ServiceConnect' | 'DeviceConnect';

export interface AccessPolicy {
  readonly keyName: PolicyName;
  readonly primaryKey: string;
  readonly secondaryKey: string;
  readonly rights: readonly PolicyRight[];
}

export interface DeviceRegistry {
  /** Creates an identity; DeviceAlreadyExists (409) if the id is taken. */
  create(input: IdentityInput): Promise<DeviceIdentity>;
  get(deviceId: string): Promise<DeviceIdentity | undefined>;
  list(opts?: { top?: number }): Promise<DeviceIdentity[]>;
  /** Updates status and keys; `etag` makes it conditional (412 on mismatch). */
  update(input: IdentityInput, etag?: string): Promise<DeviceIdentity>;
  /** Deletes the identity with its twin and queued messages; DeviceNotFound if absent. */
  delete(deviceId: string, etag?: string): Promise<void>;
  regenerateKey(deviceId: string, which: 'primary' | 'secondary'): Promise<DeviceIdentity>;
  policies(): Promise<AccessPolicy[]>;
  policy(name: string): Promise<AccessPolicy | undefined>;
  /** Replaces a policy's primary or secondary key with a new random one. */
  regeneratePolicyKey(name: string, which: 'primary' | 'secondary'): Promise<AccessPolicy>;
}

/** Message as it travels device→cloud or cloud→device. Properties are IoT Hub's (`$.mid` etc. are system ones). */
export interface HubMessage {
  readonly body: Buffer;
  /** Application properties. */
  readonly properties: Readonly<Record<string, string>>;
  readonly messageId?: string;
  readonly correlationId?: string;
  readonly userId?: string;
  readonly contentType?: string;
  readonly contentEncoding?: string;
  /** Absolute expiry, epoch milliseconds. */
  readonly expiryTime?: number;
}

/** A device-to-cloud message once it is durable. */
export interface TelemetryRecord {
  /** Monotonic per hub; the message's position in the telemetry log. */
  readonly sequence: number;
  readonly deviceId: string;
  /** Epoch milliseconds at which the hub accepted it (IoT Hub's `iothub-enqueuedtime`). */
  readonly enqueuedTime: number;
  readonly message: HubMessage;
  /** `mqtt`, `mqtt-ws` or `https`. */
  readonly transport: string;
}

export interface C2dMessage extends HubMessage {
  readonly messageId: string;
  /** Lock token / etag used to complete the message over HTTPS. */
  readonly lockToken: string;
  readonly enqueuedTime: number;
  readonly deliveryCount: number;
}

export interface Twin {
  readonly deviceId: string;
  readonly etag: string;
  /** Twin version, increases with every change. */
  readonly version: number;
  readonly tags: Record<string, unknown>;
  readonly properties: {
    /** Includes `$version`. */
    readonly desired: Record<string, unknown>;
    readonly reported: Record<string, unknown>;
  };
  readonly status: DeviceStatus;
  readonly connectionState: ConnectionState;
  readonly lastActivityTime: number | null;
}

export interface TwinPatch {
  readonly tags?: Record<string, unknown>;
  readonly properties?: { readonly desired?: Record<string, unknown> };
}

export interface MethodRequest {
  readonly methodName: string;
  readonly payload: unknown;
  /** Default 30, 5–300. */
  readonly responseTimeoutInSeconds?: number;
  /** How long to wait for an offline device to connect; default 0 (fail at once). */
  readonly connectTimeoutInSeconds?: number;
}

export interface MethodResponse {
  readonly status: number;
  readonly payload: unknown;
}

/**
 * A live connection of one device on this node, registered by a transport. The hub calls it to push traffic to the
 * device; only the connection that holds the device receives its `$iothub` traffic.
 */
export interface DeviceChannel {
  readonly deviceId: string;
  readonly transport: string;
  /** Delivers a C2D message; resolves when the device has acknowledged it (PUBACK), rejects if it cannot. */
  deliverC2d(message: C2dMessage): Promise<void>;
  /** Sends a method request on `$iothub/methods/POST/{name}/?$rid={rid}`. */
  sendMethodRequest(rid: string, methodName: string, payload: Buffer): void;
  /** Sends a desired-properties patch (body includes `$version`). */
  sendDesiredPatch(patch: Record<string, unknown>, version: number): void;
  /** Whether the device has subscribed to methods (`$iothub/methods/POST/#`). */
  readonly acceptsMethods: boolean;
  /** Closes the connection (a newer connection took over, or the identity was disabled or deleted). */
  close(reason: string): void;
}

/** Connection state and last activity of a device, as just written to the registry. */
export interface DeviceStatusUpdate {
  readonly deviceId: string;
  /** Undefined when only activity changed (a device seen over HTTPS). */
  readonly connectionState: ConnectionState | undefined;
  readonly lastActivityTime: number | null;
}

export interface HubEvents {
  /** A device connected or disconnected. */
  connection(deviceId: string, state: ConnectionState, at: number): void;
  /** Connection states and last activity, batched: one event per registry flush (about once a second). */
  status(updates: readonly DeviceStatusUpdate[]): void;
  /** Reported properties changed (after a device PATCH). */
  reported(deviceId: string, reported: Record<string, unknown>, version: number): void;
  /**
   * A C2D message left the queue: completed by the device, expired, rejected, or dead-lettered after 100 deliveries
   * (IoT Hub feedback status `DeliveryCountExceeded`).
   */
  c2d(deviceId: string, messageId: string, outcome: 'completed' | 'expired' | 'rejected' | 'deliveryCountExceeded'): void;
}

export interface Hub {
  readonly hostName: string;
  readonly registry: DeviceRegistry;

  // ---- device side: called by transports ----------------------------------------------------------------------
  /**
   * Authenticates a device from its SAS token (MQTT password or HTTPS Authorization header), checking signature,
   * expiry, `sr` against `deviceId`, and that the device is enabled. Throws CcsError('IotHubUnauthorizedAccess')
   * otherwise (the same error whatever the reason, so nothing can be probed). The identity returned does not carry
   * the queue count (`cloudToDeviceMessageCount` is 0).
   */
  authenticateDevice(deviceId: string, sasToken: string): Promise<DeviceIdentity>;
  /** Authenticates a service caller (`skn` policy token, `sr` = host) for the given right. */
  authenticateService(sasToken: string, right: PolicyRight): Promise<AccessPolicy>;
  /** Registers the connection that now holds `deviceId`, closing any older one; returns the unregister function. */
  attach(channel: DeviceChannel): () => void;
  /** Accepts device telemetry; resolves once the message is durable (then PUBACK / 204 may be sent). */
  ingest(deviceId: string, message: HubMessage, transport: string): Promise<TelemetryRecord>;
  /** Device twin GET: `{ desired, reported }` with `$version`s. */
  getTwinDocument(deviceId: string): Promise<{ desired: Record<string, unknown>; reported: Record<string, unknown> }>;
  /** Device reported PATCH; resolves to the new reported `$version`. */
  patchReported(deviceId: string, patch: Record<string, unknown>): Promise<number>;
  /** A method response from the device. Unknown `rid`s are ignored. */
  methodResponse(deviceId: string, rid: string, status: number, payload: Buffer): void;
  /** Next pending C2D message for HTTPS polling (`GET /devices/{id}/messages/deviceBound`), locked for a while. */
  receiveC2d(deviceId: string): Promise<C2dMessage | undefined>;
  /** Completes (DELETE …/{lockToken}), rejects (`?reject`) or abandons (POST …/abandon) a locked message. */
  settleC2d(deviceId: string, lockToken: string, outcome: 'complete' | 'reject' | 'abandon'): Promise<void>;
  /** Records activity (for lastActivityTime, batched). */
  touch(deviceId: string): void;
  /**
   * The device now subscribed, on its current connection, to C2D (`devices/{id}/messages/devicebound/#`) or to methods
   * (`$iothub/methods/POST/#`): pending C2D messages are delivered now, and method calls waiting for the device
   * (connectTimeoutInSeconds) proceed. Optional for transports: the hub also retries and polls.
   */
  ready(deviceId: string, feature: 'c2d' | 'methods'): void;

  // ---- service side: called by the service REST, the Web API and workflows -----------------------------------
  /** Queues a C2D message (at most 50 pending: 403 DeviceMaximumQueueDepthExceeded) and delivers it when possible. */
  sendC2d(deviceId: string, message: HubMessage & { ttlSeconds?: number }): Promise<C2dMessage>;
  invokeMethod(deviceId: string, request: MethodRequest): Promise<MethodResponse>;
  getTwin(deviceId: string): Promise<Twin>;
  /** Merges a patch into tags and desired properties (null deletes); `etag` makes it conditional. */
  updateTwin(deviceId: string, patch: TwinPatch, etag?: string): Promise<Twin>;
  /** Replaces tags and desired properties. */
  replaceTwin(deviceId: string, twin: TwinPatch, etag?: string): Promise<Twin>;
  /** Reads the durable telemetry log in sequence order (for consumers catching up and for tests). */
  readTelemetry(opts?: { deviceId?: string; afterSequence?: number; limit?: number }): Promise<TelemetryRecord[]>;
  /**
   * One device's records enqueued in [`from`, `to`) (epoch ms), in sequence order, at most `limit` (default 1,000, at
   * most 10,000); `afterSequence` pages on from the last record of the previous page.
   */
  readDeviceTelemetry(deviceId: string, range: { from: number; to: number; limit?: number; afterSequence?: number }): Promise<TelemetryRecord[]>;
  /** Deletes telemetry enqueued before `before` (epoch ms); resolves to the number of records deleted. */
  purgeTelemetry(before: number): Promise<number>;
  /**
   * `HostName=…;DeviceId=…;SharedAccessKey=<primary>`, with the MQTT port in HostName when it is not 8883.
   * `create` registers the identity first when there is none (DeviceNotFound otherwise).
   */
  deviceConnectionString(deviceId: string, opts?: { create?: boolean }): Promise<string>;
  /** `HostName=…;SharedAccessKeyName=<policy>;SharedAccessKey=<primary>`; default policy `iothubowner`. */
  serviceConnectionString(policy?: string): Promise<string>;
  /** Tells the hub the ports its listeners actually bound (port 0 picks one), for connection strings. */
  advertise(ports: { mqtts?: number; https?: number }): void;

  on<E extends keyof HubEvents>(event: E, listener: HubEvents[E]): () => void;
  /** Stops timers and flushes batched state. */
  close(): Promise<void>;
}
