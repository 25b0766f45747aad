import { AckPolicy, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, type ConsumerConfig, type StreamConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';

/**
 * Where bus messages live in JetStream. One stream per installation, named after the prefix, over `<prefix>.>`; a bus
 * subject `s` is stored as `<prefix>.<partition>.<s>`, with `partition = fnv1a(s) mod partitions`.
 *
 * Why partitions in the subject: JetStream (2.9 here; pinned priority groups only came in 2.11) has no "one subject to
 * one worker" delivery. A durable name becomes one pull consumer per partition, each filtered to
 * `<prefix>.<p>.<pattern>` with `max_ack_pending: 1`: the server hands out a partition's next message only once the
 * previous one is acknowledged, so whichever worker pulls it, a subject's messages are handled one at a time, in
 * order — across workers, restarts and redeliveries (a nak'd message stays pending and blocks its partition until it is
 * acked or dropped). Workers share the load by pulling from every partition: different partitions run concurrently,
 * the same partition never does. More partitions mean more parallelism and a smaller head-of-line block when a
 * message is retried; every process of an installation must use the same count, since it decides the subjects.
 *
 * Retention is `limits` (not `workqueue` or `interest`): several durable names (rules, telemetry writers, …) may each
 * read every message, and messages published before any consumer exists are kept. They go after `maxAgeMs` or when
 * the stream exceeds `maxBytes`, oldest first.
 */
export interface Layout {
  readonly prefix: string;
  readonly stream: string;
  readonly partitions: number;
}

export function createLayout(prefix: string, partitions: number): Layout {
  if (!/^[A-Za-z0-9_-]+$/.test(prefix)) throw new TypeError(`NATS bus prefix must be one subject token of letters, digits, '_' or '-', got '${prefix}'`);
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > 1024) throw new TypeError(`NATS bus partitions must be 1..1024, got ${partitions}`);
  return { prefix, stream: prefix.toUpperCase(), partitions };
}

/** FNV-1a (32-bit) over the subject's UTF-8 bytes: stable across processes and Node versions, and cheap. */
export function partitionOf(layout: Layout, subject: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(subject, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % layout.partitions;
}

export function storedSubject(layout: Layout, subject: string): string {
  return `${layout.prefix}.${partitionOf(layout, subject)}.${subject}`;
}

/**
 * Where request/reply travels (`Bus.request` / `respond`): core NATS only, outside the stream (whose subjects are
 * `<prefix>.>`), since a request is answered by a live process or not at all and must never be kept.
 */
export function requestSubject(layout: Layout, subject: string): string {
  return `${layout.prefix}_rpc.${subject}`;
}

/** The bus subject of a stored subject: drops the prefix and partition tokens. */
export function busSubject(stored: string): string {
  return stored.split('.').slice(2).join('.');
}

export interface StreamLimits {
  readonly maxAgeMs: number;
  /** -1: no limit. */
  readonly maxBytes: number;
}

export function streamConfig(layout: Layout, limits: StreamLimits): Partial<StreamConfig> & { name: string } {
  return {
    name: layout.stream,
    subjects: [`${layout.prefix}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(limits.maxAgeMs),
    max_bytes: limits.maxBytes,
    // PublishOptions.id de-duplicates within this window.
    duplicate_window: nanos(2 * 60_000),
  };
}

export function consumerName(durable: string, partition: number): string {
  return `${durable}_p${partition}`;
}

export function consumerConfig(
  layout: Layout,
  durable: string,
  partition: number,
  pattern: string,
  opts: { ackWaitMs: number; maxDeliver: number },
): Partial<ConsumerConfig> {
  return {
    durable_name: consumerName(durable, partition),
    filter_subject: `${layout.prefix}.${partition}.${pattern}`,
    ack_policy: AckPolicy.Explicit,
    // A new durable name starts now rather than replaying the stream's whole retained history.
    deliver_policy: DeliverPolicy.New,
    max_ack_pending: 1,
    ack_wait: nanos(opts.ackWaitMs),
    // The client drops a message itself at the limit (term, reported to onError); the server's limit is the backstop
    // for a worker that dies mid-message every time (the server then drops it and frees the partition).
    max_deliver: opts.maxDeliver,
  };
}
