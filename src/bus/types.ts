/**
 * The Bus port: how ccs capabilities hand messages to each other (telemetry from the hub to the rules pipeline,
 * alerts to the alert writer, hub-to-hub routing in scale-out). The in-process adapter passes payloads by reference;
 * the NATS JetStream adapter encodes them (`codec.ts`: JSON, with `Buffer`/`Uint8Array` kept as bytes), so payloads
 * must be plain data: JSON values, `Buffer` and `Uint8Array`.
 *
 * Subjects are dot-separated tokens (`telemetry.<deviceId>`); patterns use NATS's wildcards: `*` matches exactly one
 * token, `>` (last token only) matches one or more. Use `subjectToken()` for any token that comes from outside
 * (device ids may contain `.` and `*`).
 */

export type BusHandler = (payload: unknown, subject: string) => void | Promise<void>;

/** Answers one request (`Bus.respond`): what it returns (or resolves to) goes back to the requester. */
export type RequestHandler = (payload: unknown, subject: string) => unknown;

export interface RequestOptions {
  /** How long to wait for the answer before rejecting with `BusTimeoutError`. */
  readonly timeoutMs: number;
}

export interface PublishOptions {
  /**
   * A message id for de-duplication: a networked bus drops a second publish with the same id within its duplicate
   * window (NATS: `Nats-Msg-Id`, 2 minutes), so a producer that retries after a crash does not publish twice. The
   * in-process bus ignores it.
   */
  readonly id?: string;
}

export interface SubscribeOptions {
  /**
   * Makes the subscription a durable consumer with this name (letters, digits, `_`, `-`):
   * - messages published while no subscriber with this name runs are kept and delivered when one subscribes again
   *   (where the adapter has storage of its own — see the adapter's notes; the in-process bus has none);
   * - at least once: a handler that throws gets the message again after a short delay, up to a max-deliver limit;
   *   then the error is reported to `onError` and the message is dropped;
   * - subscribers with the same name (in any process) share the messages, and all messages of one subject go in
   *   publish order to one of them at a time, so a device's readings are handled in order;
   * - handler calls for different subjects may run concurrently; calls for one subject never do.
   * A new durable name starts with messages published after it was first created.
   */
  readonly durable?: string;
}

export interface Subscription {
  /**
   * Resolves once the subscription is in place on the bus (a networked bus sets up consumers asynchronously), so a
   * message published after it, from any process, reaches this subscription; rejects if it could not be set up.
   * Publishing through the same bus object already waits for it.
   */
  readonly ready?: Promise<void>;
  /** Stops delivery to this handler; resolves once a handler call in progress has finished. */
  unsubscribe(): Promise<void>;
}

export interface Bus {
  /**
   * Publishes `payload` on `subject`. Resolves once the bus has accepted it: in-process, handed to every matching
   * subscription's queue; NATS JetStream, stored and acknowledged by the stream. A non-durable subscription receives
   * messages in publish order, one handler call at a time.
   */
  publish(subject: string, payload: unknown, options?: PublishOptions): Promise<void>;
  subscribe(pattern: string, handler: BusHandler, options?: SubscribeOptions): Subscription;
  /**
   * Request/reply, for addressing one process (hub nodes route device operations to the node holding the device):
   * hands `payload` to one responder of `subject` and resolves with what its handler returned. Nothing is stored and
   * nothing is retried — at most once. Rejects with (src/bus/errors.ts):
   * - `BusNoResponderError` at once when no responder is subscribed to `subject` (a process that is gone has none);
   * - `BusTimeoutError` when no answer came within `timeoutMs` (the responder may also have died mid-request);
   * - `BusRemoteError` when the handler threw, with its message and string `code`.
   * `subject` must be concrete (no wildcards). Requests never reach `subscribe` handlers, nor messages `respond` ones.
   */
  request(subject: string, payload: unknown, options: RequestOptions): Promise<unknown>;
  /**
   * Answers requests sent to `subject` (concrete). Handler calls run concurrently (a direct method may wait minutes
   * for its device). With several responders on one subject, each request goes to one of them. `unsubscribe` stops
   * new requests and resolves once the calls in progress have answered.
   */
  respond(subject: string, handler: RequestHandler): Subscription;
  /** Stops every subscription and releases the connection; unfinished durable messages stay on a durable bus. */
  close(): Promise<void>;
  /**
   * A networked bus tells `listener` when its connection is lost and when it is back: what was published meanwhile
   * never reached its plain subscriptions (durable ones get it). Returns the function that removes the listener. The
   * in-process bus has no connection to lose and leaves this out.
   */
  onConnection?(listener: (change: 'disconnected' | 'reconnected') => void): () => void;
}

/** Reports a handler error (or, on a networked bus, a delivery problem) with the subject it concerns. */
export type BusErrorHandler = (e: unknown, subject: string) => void;
