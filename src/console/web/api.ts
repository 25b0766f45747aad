/**
 * The console's only way to the server: the public Web API at /api/data/v9.2 with the signed-in token, plus the
 * token routes at /api/tokens. Errors carry the Web API's message (Dataverse error body) so forms can show it.
 */
import { getToken } from './session';

export const BASE = '/api/data/v9.2/';
const ANNOTATIONS = 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"';
export const FORMATTED = '@OData.Community.Display.V1.FormattedValue';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export type Row = Record<string, unknown>;

export interface Page<T = Row> {
  readonly value: T[];
  readonly count?: number;
  readonly nextLink?: string;
}

interface RequestOptions {
  readonly method?: string;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  readonly signal?: AbortSignal;
  /** Absolute path (starts with `/`); otherwise relative to the Web API root. */
  readonly raw?: boolean;
}

async function errorOf(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  let code: string | undefined;
  try {
    const body = (await res.json()) as { error?: { message?: string; code?: string } };
    if (body.error?.message) message = body.error.message;
    code = body.error?.code;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(message, res.status, code);
}

/** What the sign-out handler does when the token stops working (set by the session). */
let onUnauthorized: () => void = () => undefined;
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

export async function request(path: string, opts: RequestOptions = {}, token = getToken()): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json', 'OData-MaxVersion': '4.0', 'OData-Version': '4.0', ...opts.headers };
  if (token) headers['Authorization'] = `Bearer ${token}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers['Content-Type'] ??= 'application/json';
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  }
  const url = opts.raw || path.startsWith('/') ? path : BASE + path;
  const res = await fetch(url, { method: opts.method ?? 'GET', headers, body, signal: opts.signal });
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && token) onUnauthorized();
    throw err;
  }
  return res;
}

export async function getJson<T = Row>(path: string, opts: RequestOptions & { prefer?: string } = {}): Promise<T> {
  const prefer = [ANNOTATIONS, opts.prefer].filter(Boolean).join(',');
  const res = await request(path, { ...opts, headers: { Prefer: prefer, ...opts.headers } });
  return (await res.json()) as T;
}

/** A collection query: `value`, `@odata.count` and `@odata.nextLink` unpacked. `pageSize` sets odata.maxpagesize. */
export async function query<T = Row>(path: string, opts: { pageSize?: number; signal?: AbortSignal } = {}): Promise<Page<T>> {
  const body = await getJson<{ value: T[]; '@odata.count'?: number; '@odata.nextLink'?: string }>(path, {
    prefer: opts.pageSize ? `odata.maxpagesize=${opts.pageSize}` : undefined,
    signal: opts.signal,
  });
  return { value: body.value, count: body['@odata.count'], nextLink: body['@odata.nextLink'] };
}

export async function count(path: string, signal?: AbortSignal): Promise<number> {
  const res = await request(path, { signal, headers: { Accept: 'text/plain' } });
  return Number(await res.text());
}

/** Creates a record; returns its id (from OData-EntityId). */
export async function create(entitySet: string, values: Row): Promise<string> {
  const res = await request(entitySet, { method: 'POST', body: values });
  const location = res.headers.get('OData-EntityId') ?? '';
  const m = /\(([0-9a-f-]{36})\)$/i.exec(location);
  if (!m) throw new ApiError('The server did not say which record it created.', res.status, undefined);
  return m[1]!;
}

export async function update(entitySet: string, id: string, values: Row): Promise<void> {
  await request(`${entitySet}(${id})`, { method: 'PATCH', body: values, headers: { 'If-Match': '*' } });
}

export async function remove(entitySet: string, id: string): Promise<void> {
  await request(`${entitySet}(${id})`, { method: 'DELETE' });
}

/** Calls an action; returns its response body, or undefined for 204. */
export async function action<T = Row>(path: string, params: Row = {}): Promise<T | undefined> {
  const res = await request(path, { method: 'POST', body: params });
  if (res.status === 204) return undefined;
  return (await res.json()) as T;
}

/**
 * Several GETs in one `$batch` request (each answered independently). Returns the parsed JSON or text of each, or
 * the ApiError it failed with.
 */
export async function batchGet(paths: readonly string[]): Promise<(unknown | ApiError)[]> {
  if (paths.length === 0) return [];
  const boundary = `batch_${Math.random().toString(36).slice(2)}`;
  const parts = paths.map(
    (p) => `--${boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET ${BASE}${p} HTTP/1.1\r\nAccept: application/json\r\nPrefer: ${ANNOTATIONS}\r\n\r\n`,
  );
  const res = await request('$batch', {
    method: 'POST',
    body: `${parts.join('')}--${boundary}--\r\n`,
    headers: { 'Content-Type': `multipart/mixed; boundary=${boundary}` },
  });
  const type = res.headers.get('Content-Type') ?? '';
  const rb = /boundary=([^;]+)/.exec(type)?.[1]?.replace(/"/g, '');
  const text = await res.text();
  if (!rb) throw new ApiError('The $batch response has no boundary.', res.status, undefined);
  const chunks = text.split(`--${rb}`).slice(1, -1);
  return chunks.map((chunk) => {
    const httpStart = chunk.indexOf('HTTP/1.1');
    const status = Number(/HTTP\/1\.1 (\d{3})/.exec(chunk)?.[1] ?? 500);
    const bodyStart = chunk.indexOf('\r\n\r\n', httpStart);
    const body = bodyStart < 0 ? '' : chunk.slice(bodyStart + 4).trim();
    let parsed: unknown = body;
    try {
      parsed = JSON.parse(body);
    } catch {
      // a $count answer is plain text
    }
    if (status >= 400) {
      const message = (parsed as { error?: { message?: string } })?.error?.message ?? `${status}`;
      return new ApiError(message, status, undefined);
    }
    return parsed;
  });
}

/** OData string literal. */
export function lit(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export function formatted(row: Row, column: string): string {
  const f = row[`${column}${FORMATTED}`];
  if (typeof f === 'string') return f;
  const v = row[column];
  return v === null || v === undefined ? '' : String(v);
}

/** `_x_value` and its formatted value (the related record's name). */
export function lookupOf(row: Row, column: string): { id: string; name: string } | undefined {
  const id = row[`_${column}_value`];
  if (typeof id !== 'string') return undefined;
  return { id, name: formatted(row, `_${column}_value`) || id };
}

/** Whether the Web API advertises an operation (actions other parts of the platform may or may not provide). */
let metadataText: Promise<string> | undefined;
export async function hasOperation(name: string): Promise<boolean> {
  metadataText ??= request('$metadata', { headers: { Accept: 'application/xml' } }).then((r) => r.text());
  try {
    return (await metadataText).includes(`Name="${name}"`);
  } catch {
    metadataText = undefined;
    return false;
  }
}

/** Whether the model has a table (entity set); tables added by newer versions are shown only when present. */
export async function hasEntitySet(name: string): Promise<boolean> {
  metadataText ??= request('$metadata', { headers: { Accept: 'application/xml' } }).then((r) => r.text());
  try {
    return (await metadataText).includes(`EntitySet Name="${name}"`);
  } catch {
    metadataText = undefined;
    return false;
  }
}

export function resetMetadataCache(): void {
  metadataText = undefined;
}
