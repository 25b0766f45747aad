/**
 * Installed in every server child of a benchmark: answers `{ type: 'probe' }` over IPC after a full garbage
 * collection (the child runs with --expose-gc), so resident memory is read with no collectable garbage in it.
 */
export interface ProbeReply {
  readonly id: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

export function installProbe(): void {
  if (!process.send) return;
  process.on('message', (m: { id?: unknown; type?: unknown }) => {
    if (m.type !== 'probe' || typeof m.id !== 'number') return;
    const gc = (globalThis as { gc?: () => void }).gc;
    // Twice: the first pass runs finalizers that free more on the second.
    gc?.();
    gc?.();
    const u = process.memoryUsage();
    const reply: ProbeReply = { id: m.id, rss: u.rss, heapUsed: u.heapUsed, external: u.external, arrayBuffers: u.arrayBuffers };
    process.send!(reply);
  });
  // The IPC channel must not keep a stopped server alive, and a benchmark that died must not leave its server behind.
  process.channel?.unref();
  process.once('disconnect', () => process.exit(0));
}
