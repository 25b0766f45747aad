/**
 * Servers under test run in child processes, so their CPU time and resident memory can be read from /proc without
 * the load generator's. Each child script announces itself with one stdout line and answers `probe` requests over
 * IPC (bench/lib/probe.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ProbeReply } from './probe.js';

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`; 100 on every Linux build Node supports). */
const CLK_TCK = 100;

export interface ChildServer {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Captures of the announcement regex. */
  readonly match: RegExpExecArray;
  /** Asks the child to collect garbage (it runs with --expose-gc) and report its memory. */
  probe(): Promise<ProbeReply>;
  /** SIGTERM, then waits for the exit (a CPU profile is written then). */
  stop(): Promise<void>;
}

export interface SpawnOptions {
  /** Extra node flags, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
  readonly nodeArgs?: readonly string[];
  /** File descriptor limit for the child (`ulimit -n` through bash; root may raise the hard limit too). */
  readonly nofile?: number;
  /** Stdout line that says the server is ready; its captures are returned. */
  readonly ready: RegExp;
  readonly timeoutMs?: number;
  /** Working directory of the child (another checkout of the sources, for an A/B). */
  readonly cwd?: string;
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs `node --import tsx --expose-gc <script> <args>` with an IPC channel and waits for its ready line. */
export function spawnServer(script: string, args: readonly string[], opts: SpawnOptions): Promise<ChildServer> {
  const node = [process.execPath, ...(opts.nodeArgs ?? []), '--expose-gc', '--import', 'tsx', script, ...args];
  // bash raises the soft limit (to the hard limit at most: raising that needs CAP_SYS_RESOURCE, which a container
  // may lack even as root), then exec keeps the same pid, and the inherited IPC descriptor, for node.
  const n = opts.nofile;
  const raise = `h=$(ulimit -Hn); if [ "$h" = unlimited ] || [ "$h" -ge ${n} ]; then ulimit -n ${n}; else ulimit -n "$h"; fi`;
  const command = n ? `${raise} && exec ${node.map(quote).join(' ')}` : undefined;
  const child = command
    ? spawn('bash', ['-c', command], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], cwd: opts.cwd })
    : spawn(node[0]!, node.slice(1), { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], cwd: opts.cwd });
  const pending = new Map<number, (r: ProbeReply) => void>();
  let nextId = 1;
  child.on('message', (m: ProbeReply) => {
    pending.get(m.id)?.(m);
    pending.delete(m.id);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${script} did not start in time; output: ${out.slice(-500)}`)), opts.timeoutMs ?? 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code}; output: ${out.slice(-500)}`));
    });
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = opts.ready.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.removeAllListeners('data');
      // Whatever the server prints from now on (warnings, --trace-gc) shows on this process's stderr.
      child.stdout!.pipe(process.stderr);
      resolve({
        pid: child.pid!,
        child,
        match: m,
        probe: () =>
          new Promise<ProbeReply>((done) => {
            const id = nextId++;
            pending.set(id, done);
            child.send({ id, type: 'probe' });
          }),
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          const timeout = setTimeout(() => child.kill('SIGKILL'), 20_000);
          await exited;
          clearTimeout(timeout);
        },
      });
    });
  });
}

/** Resident set size of a process, bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** User plus system CPU time a process has used, seconds (/proc/<pid>/stat fields 14 and 15). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}
