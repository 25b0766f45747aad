import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Moves WAL checkpoints off the main thread. SQLite's automatic checkpoint runs inside the COMMIT that crosses the
 * threshold (1,000 pages): it copies the log into the database file and syncs it, and the event loop waits meanwhile
 * — a stall every few hundred commits, which is most of what a commit costs on average on a busy server. With
 * automatic checkpoints off, this thread runs PASSIVE checkpoints on a connection of its own: they never wait for
 * the writer, and the writer starts the log over once one has copied everything. When the log still grows past
 * `truncateBytes` (writes outrun the copies), a TRUNCATE checkpoint is tried, without waiting for the lock.
 */
export interface Checkpointer {
  close(): Promise<void>;
}

const CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const { statSync } = require('node:fs');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
const wal = workerData.path + '-wal';
const timer = setInterval(() => {
  try {
    let size = 0;
    try { size = statSync(wal).size; } catch {}
    if (size === 0) return;
    db.pragma(size > workerData.truncateBytes ? 'wal_checkpoint(TRUNCATE)' : 'wal_checkpoint(PASSIVE)');
  } catch {
    // Busy, or the database is going away: the next round tries again.
  }
}, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export function startCheckpointer(path: string, opts: { intervalMs?: number; truncateBytes?: number } = {}): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(CODE, { eval: true, workerData: { path, driver, intervalMs: opts.intervalMs ?? 200, truncateBytes: opts.truncateBytes ?? 64 * 1024 * 1024 } });
  worker.unref();
  // A checkpointer that fails (cannot open the file) leaves the log growing: better than taking the server down.
  worker.on('error', () => undefined);
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    async close() {
      // Held open until it has closed its connection: a process exiting right after must not cut it short.
      worker.ref();
      worker.postMessage('close');
      await exited;
    },
  };
}
