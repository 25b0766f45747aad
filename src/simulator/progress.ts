import type { SimulatorStats } from './stats.js';

export interface ProgressLine {
  /** Prints a line that stays (a command received, an error) above the progress line. */
  note(text: string): void;
  /** Stops updating and leaves the last state on its own line. */
  stop(): void;
}

export interface ProgressOptions {
  readonly stats: SimulatorStats;
  readonly devices: number;
  readonly stream?: NodeJS.WriteStream;
  readonly intervalMs?: number;
}

export function formatProgress(stats: SimulatorStats, devices: number, perSecond: number): string {
  return (
    `${stats.connected}/${devices} connected · ${perSecond.toFixed(perSecond < 10 ? 1 : 0)} msg/s · ` +
    `${stats.acked} acked / ${stats.sent} sent · ${stats.errors} errors · ${stats.commands} commands, ${stats.methods} methods`
  );
}

/**
 * The live progress line on stderr: rewritten in place on a terminal (`\r` + erase line); elsewhere (a log file, CI)
 * a plain line every few updates, so the output stays readable.
 */
export function createProgressLine(opts: ProgressOptions): ProgressLine {
  const stream = opts.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const intervalMs = opts.intervalMs ?? 1000;
  let lastAcked = opts.stats.acked;
  let lastAt = performance.now();
  let ticks = 0;
  let current = '';

  function render(): void {
    const now = performance.now();
    const rate = ((opts.stats.acked - lastAcked) * 1000) / Math.max(1, now - lastAt);
    lastAcked = opts.stats.acked;
    lastAt = now;
    current = formatProgress(opts.stats, opts.devices, rate);
    if (tty) stream.write(`\r\x1b[K${current}`);
    else if (ticks++ % 10 === 0) stream.write(`${current}\n`);
  }

  const timer = setInterval(render, intervalMs);
  timer.unref();
  return {
    note(text) {
      stream.write(tty ? `\r\x1b[K${text}\n${current}` : `${text}\n`);
    },
    stop() {
      clearInterval(timer);
      render();
      if (tty) stream.write('\n');
      else if (ticks % 10 !== 1) stream.write(`${current}\n`);
    },
  };
}
