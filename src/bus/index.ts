import { createMemoryBus } from './memory/memory-bus.js';
import type { Bus } from './types.js';

export type * from './types.js';
export { createMemoryBus } from './memory/memory-bus.js';
export { fromSubjectToken, subjectMatches, subjectToken, telemetrySubject } from './subjects.js';

/** The bus for a configuration. Only the in-process bus exists so far; NATS JetStream comes with `--bus nats://…`. */
export function createBus(opts: { onError?: (e: unknown, subject: string) => void } = {}): Bus {
  return createMemoryBus(opts);
}
