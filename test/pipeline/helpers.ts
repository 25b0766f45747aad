import type { App } from '../../src/app.js';
import type { Bus } from '../../src/bus/index.js';
import { startServer } from '../helpers/server.js';

export interface Running {
  readonly app: App;
  readonly url: string;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** Stops the app; `drop` removes a PostgreSQL test schema (leave it for a restart on the same data). */
  stop(opts?: { drop?: boolean }): Promise<void>;
}

/** The whole server on ephemeral ports, with an injectable clock; a restart passes the same `storeUrl` and `dataDir`. */
export async function startApp(storeUrl: string, opts: { dataDir?: string; clock?: () => number; bus?: Bus } = {}): Promise<Running & { dataDir: string }> {
  const srv = await startServer({ name: 'sqlite', url: () => storeUrl }, { storeUrl, dataDir: opts.dataDir, clock: opts.clock, bus: opts.bus });
  return {
    app: srv.app,
    url: srv.url,
    dataDir: srv.dataDir,
    fetch: (path, init = {}) => {
      const headers = new Headers(init.headers);
      if (init.body !== undefined) headers.set('content-type', 'application/json');
      return srv.fetch(path, { ...init, headers });
    },
    stop: (o) => srv.stop(o),
  };
}

/** POSTs a record and returns its id. */
export async function create(srv: Pick<Running, 'fetch'>, set: string, body: Record<string, unknown>): Promise<string> {
  const res = await srv.fetch(set, { method: 'POST', body: JSON.stringify(body) });
  if (res.status !== 204) throw new Error(`POST ${set}: ${res.status} ${await res.text()}`);
  return /\(([^)]+)\)$/.exec(res.headers.get('odata-entityid')!)![1]!;
}

export async function eventually<T>(probe: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function alerts(srv: Pick<Running, 'fetch'>, deviceId: string): Promise<Record<string, unknown>[]> {
  const res = await srv.fetch(`msdyn_iotalerts?$filter=msdyn_deviceid eq '${deviceId}'&$orderby=msdyn_alerttime`);
  if (res.status !== 200) throw new Error(`alerts: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { value: Record<string, unknown>[] }).value;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The sum of a metric's samples at /metrics, over the series whose labels contain `match`. */
export async function metric(srv: Pick<Running, 'fetch'>, name: string, match = ''): Promise<number> {
  const text = await (await srv.fetch('/metrics')).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (match && !line.includes(match)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Waits until the pipeline has evaluated `n` readings in all. */
export function evaluated(srv: Pick<Running, 'fetch'>, n: number): Promise<number> {
  return eventually(async () => {
    const v = await metric(srv, 'ccs_pipeline_readings_total');
    return v >= n ? v : undefined;
  });
}
