import { createMemoryBus } from './memory/memory-bus.js';
import { createNatsBus } from './nats/nats-bus.js';
import type { Bus, BusErrorHandler } from './types.js';

export type * from './types.js';
export type { RedeliveryOptions } from './durable.js';
export { decodePayload, encodePayload } from './codec.js';
export { BusNoResponderError, BusRemoteError, BusRequestError, BusTimeoutError } from './errors.js';
export { createMemoryBus, createMemoryBusNetwork, type MemoryBusNetwork } from './memory/memory-bus.js';
export { createNatsBus, type NatsBusOptions } from './nats/nats-bus.js';
export { fromSubjectToken, subjectMatches, subjectToken, telemetrySubject } from './subjects.js';

/**
 * The bus for a configuration's `--bus`: `memory` (or nothing) for the in-process bus, `nats://host:port` for NATS
 * JetStream, which connects and creates its stream before this resolves, so a bad URL fails at start.
 */
export async function createBus(opts: { url?: string; prefix?: string; onError?: BusErrorHandler } = {}): Promise<Bus> {
  const { url = 'memory', prefix, onError } = opts;
  if (url === 'memory') return createMemoryBus({ onError });
  if (/^nats:\/\//.test(url)) return createNatsBus({ url, onError, ...(prefix !== undefined ? { prefix } : {}) });
  throw new TypeError(`Bus URL must be 'memory' or nats://host:port, got '${url}'`);
}
