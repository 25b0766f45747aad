import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Requests to the server go to localhost: a proxy configured for the machine must not take them.
for (const k of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY']) delete process.env[k];

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
export const ADMIN_TOKEN = 'test-admin-token';

/** The real `ccs start` in a child process, as an operator runs it. */
export interface ServerProcess {
  readonly child: ChildProcess;
  /** `http://127.0.0.1:<port>`; '' on a node without the api role. */
  readonly url: string;
  /** 0 on a node without the hub role. */
  readonly mqttsPort: number;
  readonly httpsPort: number;
  /** The private CA the devices must trust (`<data-dir>/tls/ca.pem`). */
  readonly ca: string;
  /** Everything the process wrote, for failure messages. */
  output(): string;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** Resolves with the exit code (or signal) once the process has ended. */
  readonly exited: Promise<number | string>;
  /** SIGKILL: no shutdown code runs. */
  kill(): Promise<number | string>;
  /** SIGTERM: the orderly shutdown. */
  stop(): Promise<number | string>;
}

export interface SpawnOptions {
  readonly dataDir: string;
  readonly store: string;
  readonly bus?: string;
  /** More `--flag value` arguments. */
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** How long the start may take (the process compiles TypeScript on the fly). Default 90 s. */
  readonly startTimeoutMs?: number;
}

/**
 * Starts `ccs start` through tsx on ephemeral ports and waits for its start-up line, from which it takes the ports.
 * The pipeline has replayed the telemetry log by the time that line is printed (the app starts it before listening).
 */
export function spawnServer(opts: SpawnOptions): Promise<ServerProcess> {
  const args = [
    '--import', 'tsx', '--input-type=module', '-e', `import { main } from ${JSON.stringify(MAIN)}; await main(process.argv.slice(1));`, '--',
    'start', '--data-dir', opts.dataDir, '--store', opts.store, '--bus', opts.bus ?? 'memory',
    '--host', '127.0.0.1', '--http-port', '0', '--https-port', '0', '--mqtts-port', '0',
    '--admin-token', ADMIN_TOKEN, '--log-level', 'warn', ...(opts.args ?? []),
  ];
  const child = spawn(process.execPath, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  return new Promise<ServerProcess>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ccs start did not come up in time:\n${out}`));
    }, opts.startTimeoutMs ?? 90_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.length > 1_000_000) out = out.slice(-500_000);
      const line = /ccs is running: (.*)\n/.exec(out)?.[1];
      if (line === undefined) return;
      // Each part is there only for a node with the role: Web API (api), devices (hub).
      const api = /Web API (http:\/\/[^/\s]+)\/api\/data\/v9\.2\//.exec(line);
      const devices = /devices mqtts:\/\/[^:]+:(\d+) and https:\/\/[^:]+:(\d+)/.exec(line);
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.stdout!.on('data', (c: Buffer) => void (out += c.toString('utf8')));
      const url = api?.[1] ?? '';
      const server: ServerProcess = {
        child,
        url,
        mqttsPort: Number(devices?.[1] ?? 0),
        httpsPort: Number(devices?.[2] ?? 0),
        ca: readFileSync(join(opts.dataDir, 'tls', 'ca.pem'), 'utf8'),
        output: () => out,
        fetch(path, init = {}) {
          const headers = new Headers(init.headers);
          headers.set('authorization', `Bearer ${ADMIN_TOKEN}`);
          if (init.body !== undefined) headers.set('content-type', 'application/json');
          return fetch(`${url}${path.startsWith('/') ? path : `/api/data/v9.2/${path}`}`, { ...init, headers });
        },
        exited,
        kill() {
          child.kill('SIGKILL');
          return exited;
        },
        stop() {
          child.kill('SIGTERM');
          return exited;
        },
      };
      resolve(server);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => void (out += c.toString('utf8')));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`ccs start exited (${code}) before it was running:\n${out}`));
    });
  });
}

/** POSTs a record through the Web API and returns its id. */
export async function createRecord(srv: Pick<ServerProcess, 'fetch'>, set: string, body: Record<string, unknown>): Promise<string> {
  const res = await srv.fetch(set, { method: 'POST', body: JSON.stringify(body) });
  if (res.status !== 204) throw new Error(`POST ${set}: ${res.status} ${await res.text()}`);
  return /\(([^)]+)\)$/.exec(res.headers.get('odata-entityid')!)![1]!;
}

/** Registers a device (record and hub identity) and returns its primary key. */
export async function registerDevice(srv: Pick<ServerProcess, 'fetch'>, deviceId: string): Promise<string> {
  const id = await createRecord(srv, 'msdyn_iotdevices', { msdyn_name: deviceId, msdyn_deviceid: deviceId });
  const res = await srv.fetch(`msdyn_iotdevices(${id})/Microsoft.Dynamics.CRM.ccs_GetDeviceConnectionString()`);
  if (res.status !== 200) throw new Error(`connection string of ${deviceId}: ${res.status} ${await res.text()}`);
  const { ConnectionString } = (await res.json()) as { ConnectionString: string };
  return /SharedAccessKey=([^;]+)/.exec(ConnectionString)![1]!;
}
