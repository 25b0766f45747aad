/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): self time by function and by module (package, or file under
 * src/), and total (inclusive) time of chosen functions. For reading where a benchmark's server spends its time.
 *
 *   node --import tsx bench/lib/cpuprofile.ts <file.cpuprofile> [--top 25] [--inclusive name1,name2]
 *                                             [--window <fromUs>,<toUs>] [--us-per-unit <µs>]
 *
 * `--window` keeps the samples taken between two monotonic timestamps in microseconds (`process.hrtime`, the clock
 * V8 stamps profiles with; bench:ingest logs its measuring windows that way), which leaves start-up, connection set-up
 * and shutdown out. Percentages are of the time the process was not idle.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

/** Coarse layers of a ccs server, for comparing where the time per message goes (`--layers`). */
export function layerOf(module: string, functionName: string): string {
  if (module === '(garbage collector)') return 'garbage collection';
  if (module === '(native / V8)' || module === '(program)') return functionName === 'writev' || functionName === 'writeUtf8String' || functionName === 'writeBuffer' ? 'socket writes (TLS encrypt + syscall)' : 'V8 / native, other';
  if (/^(aedes|aedes-[a-z-]+|mqtt-packet|mqemitter|qlobber|fastparallel|fastfall|reusify|debug|bl|retimer|hyperid|uuid)$/.test(module)) return 'MQTT broker (aedes, mqtt-packet)';
  if (module.startsWith('src/hub/')) return 'ccs hub (gateway, topics, telemetry log, connections)';
  if (module.startsWith('src/store/') || module === 'better-sqlite3') return 'store (SQLite inserts)';
  if (/^src\/(pipeline|rules|bus|metrics)\//.test(module)) return 'rules pipeline, bus, metrics';
  if (module.startsWith('node:')) return 'Node streams, buffers, timers';
  return 'other';
}

/** `node_modules/aedes/lib/client.js` → `aedes`; `/work/main/src/hub/mqtt/gateway.ts` → `src/hub/mqtt/gateway.ts`. */
export function moduleOf(url: string): string {
  if (url === '') return '(native / V8)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const src = /\/(src\/.*|bench\/.*)$/.exec(url);
  if (src) return src[1]!;
  if (url.startsWith('node:')) return url;
  return url;
}

export function summarise(profile: Profile, opts: { top: number; inclusive: readonly string[]; window?: readonly [number, number]; usPerUnit?: number }): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const idleId = profile.nodes.find((n) => n.callFrame.functionName === '(idle)')?.id;
  const [from, to] = opts.window ?? [-Infinity, Infinity];
  const self = new Map<number, number>();
  let wall = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (at < from || at > to) continue;
    wall += profile.timeDeltas[i] ?? 0;
    if (profile.samples[i] === idleId) continue;
    self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fnSelf = new Map<string, number>();
  const modSelf = new Map<string, number>();
  const layerSelf = new Map<string, number>();
  const incl = new Map<string, number>(opts.inclusive.map((n) => [n, 0]));
  for (const [id, t] of self) {
    const n = byId.get(id)!;
    const f = n.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${moduleOf(f.url)}:${f.lineNumber + 1}`;
    fnSelf.set(key, (fnSelf.get(key) ?? 0) + t);
    const mod = f.url === '' ? f.functionName.startsWith('(') ? f.functionName : '(native / V8)' : moduleOf(f.url);
    modSelf.set(mod, (modSelf.get(mod) ?? 0) + t);
    const layer = layerOf(mod, f.functionName);
    layerSelf.set(layer, (layerSelf.get(layer) ?? 0) + t);
    // Inclusive: count the sample once for each named function found on its stack.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const name = byId.get(cur)!.callFrame.functionName;
      if (incl.has(name) && !seen.has(name)) {
        seen.add(name);
        incl.set(name, incl.get(name)! + t);
      }
    }
  }
  const pct = (t: number) => `${((t / total) * 100).toFixed(1).padStart(5)}%`;
  // With --us-per-unit (server CPU µs per message, from the benchmark), shares become µs per message too.
  const us = (t: number) => (opts.usPerUnit ? `  ${((t / total) * opts.usPerUnit).toFixed(1).padStart(5)} µs` : '');
  const top = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, opts.top).map(([k, t]) => `${pct(t)}${us(t)}  ${k}`);
  return [
    `busy ${(total / 1e6).toFixed(2)} s of ${(wall / 1e6).toFixed(2)} s (${((total / wall) * 100).toFixed(0)}%)${opts.window ? ', within the window' : ''}; percentages of busy time`,
    '',
    'self time by layer:',
    ...top(layerSelf),
    '',
    'self time by module:',
    ...top(modSelf),
    '',
    'self time by function:',
    ...top(fnSelf),
    ...(opts.inclusive.length ? ['', 'inclusive time:', ...[...incl].map(([k, t]) => `${pct(t)}  ${k}`)] : []),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' }, inclusive: { type: 'string', default: '' }, window: { type: 'string' }, 'us-per-unit': { type: 'string' } },
  });
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    process.stdout.write(`${file}\n${summarise(profile, { top: Number(values.top), inclusive: values.inclusive.split(',').filter(Boolean), window: values.window ? (values.window.split(',').map(Number) as [number, number]) : undefined,
      usPerUnit: values['us-per-unit'] ? Number(values['us-per-unit']) : undefined,
    })}\n\n`);
  }
}
