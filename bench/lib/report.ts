/** Shared by the benchmarks: the machine line, statistics, and appending a section to BENCHMARKS.md. */
import { appendFileSync, existsSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

export function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);
}

export function machine(): string {
  return `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform} ${process.arch}`;
}

/** The value below which `p` percent of `sorted` (ascending) lies. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** `1234567` → `1,234,567`; fractions kept to `digits`. */
export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function appendBenchmark(section: string, file = 'BENCHMARKS.md'): void {
  if (!existsSync(file)) {
    appendFileSync(file, '# Benchmarks\n\nFigures from `npm run bench:*` on the machine named in each entry. Medians and ratios; the machine is shared.\n\n');
  }
  appendFileSync(file, `${section.trimEnd()}\n\n`);
}
