/**
 * The Bus port: how ccs capabilities hand messages to each other (telemetry from the hub to the rules pipeline,
 * alerts to the alert writer, hub-to-hub routing in scale-out). The in-process adapter passes payloads by reference;
 * a networked adapter (NATS JetStream, a later issue) encodes them, so payloads must be plain data: JSON values,
 * with `Buffer`/`Uint8Array` allowed where a subject's payload type says so.
 *
 * Subjects are dot-separated tokens (`telemetry.<deviceId>`); patterns use NATS's wildcards: `*` matches exactly one
 * token, `>` (last token only) matches one or more. Use `subjectToken()` for any token that comes from outside
 * (device ids may contain `.` and `*`).
 */

export type BusHandler = (payload: unknown, subject: string) => void | Promise<void>;

export interface Subscription {
  /** Stops delivery to this handler; resolves once a handler call in progress has finished. */
  unsubscribe(): Promise<void>;
}

export interface Bus {
  /**
   * Publishes `payload` on `subject`. Resolves once the bus has accepted it (in-process: handed to every matching
   * subscription's queue). Each subscription receives messages in publish order, one handler call at a time.
   */
  publish(subject: string, payload: unknown): Promise<void>;
  subscribe(pattern: string, handler: BusHandler): Subscription;
  close(): Promise<void>;
}
