/**
 * The signed-in session: the token (sessionStorage, so it ends with the tab), who it stands for (the `hello` event of
 * /api/events: user, role, per-table privileges) and the live event stream, shared by every page.
 *
 * The stream is read with fetch rather than EventSource so the token travels in the Authorization header, not in
 * the URL (where proxies and logs would keep it). It reconnects with a growing delay and tells listeners when it
 * did, so pages can reload what they may have missed.
 */
const TOKEN_KEY = 'ccs.token';

export interface Hello {
  readonly userId: string;
  readonly name: string;
  readonly role: string;
  readonly access: Record<string, string>;
}

export interface RecordEventData {
  readonly type: 'created' | 'updated' | 'deleted';
  readonly table: string;
  readonly id: string;
  readonly columns: readonly string[];
}

export interface TelemetryEventData {
  readonly deviceId: string;
  readonly sequence: number;
  readonly enqueuedTime: number;
  readonly body: unknown;
}

export function getToken(): string | undefined {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

export function setToken(token: string | undefined): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Whether the role may do `privilege` (R, C, W, D) on `table`. */
export function can(hello: Hello | undefined, privilege: 'R' | 'C' | 'W' | 'D', table: string): boolean {
  return !!hello && (hello.access[table] ?? '').includes(privilege);
}

type Handler = (event: string, data: unknown) => void;

/**
 * One server-sent event stream. `onEvent` gets every event (`hello`, `record`, `telemetry`, `reconnected`);
 * `close` stops it. The first `hello` resolves `ready`; a 401 rejects it (and ends the stream).
 */
export interface EventStream {
  readonly ready: Promise<Hello>;
  close(): void;
}

export function openEventStream(token: string, onEvent: Handler, opts: { device?: string } = {}): EventStream {
  const controller = new AbortController();
  let closed = false;
  let resolveReady!: (h: Hello) => void;
  let rejectReady!: (e: Error) => void;
  const ready = new Promise<Hello>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  ready.catch(() => undefined);
  let attempt = 0;
  let connectedOnce = false;

  async function run(): Promise<void> {
    while (!closed) {
      try {
        const url = `/api/events${opts.device ? `?device=${encodeURIComponent(opts.device)}` : ''}`;
        const res = await fetch(url, { headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' }, signal: controller.signal });
        if (!res.ok || !res.body) {
          let message = `${res.status}`;
          try {
            message = ((await res.json()) as { error?: { message?: string } }).error?.message ?? message;
          } catch {
            // keep the status
          }
          if (res.status === 401 || res.status === 403 || res.status === 400) {
            rejectReady(new Error(message));
            closed = true;
            onEvent('failed', { status: res.status, message });
            return;
          }
          throw new Error(message);
        }
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let event = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) continue;
              if (line.startsWith('event:')) event = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
            }
            if (data.length === 0) continue;
            let parsed: unknown;
            try {
              parsed = JSON.parse(data.join('\n'));
            } catch {
              continue;
            }
            if (event === 'hello') {
              attempt = 0;
              resolveReady(parsed as Hello);
              if (connectedOnce) onEvent('reconnected', parsed);
              connectedOnce = true;
            }
            onEvent(event, parsed);
          }
        }
      } catch (e) {
        if (closed || (e as Error).name === 'AbortError') return;
      }
      if (closed) return;
      onEvent('disconnected', {});
      attempt++;
      await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** Math.min(attempt, 5))));
    }
  }
  void run();
  return {
    ready,
    close() {
      closed = true;
      controller.abort();
    },
  };
}

// ---- the app-wide stream: one per signed-in session, shared by pages ------------------------------------------

const recordListeners = new Set<(e: RecordEventData) => void>();
const statusListeners = new Set<(live: boolean) => void>();
let shared: EventStream | undefined;
let live = false;

function setLive(value: boolean): void {
  live = value;
  for (const l of statusListeners) l(value);
}

export function startSharedStream(token: string, onFailed: (message: string) => void): Promise<Hello> {
  shared?.close();
  shared = openEventStream(token, (event, data) => {
    if (event === 'record') for (const l of recordListeners) l(data as RecordEventData);
    else if (event === 'hello') setLive(true);
    else if (event === 'disconnected') setLive(false);
    else if (event === 'reconnected') for (const l of recordListeners) l({ type: 'updated', table: '*', id: '', columns: [] });
    else if (event === 'failed') {
      setLive(false);
      onFailed((data as { message: string }).message);
    }
  });
  return shared.ready;
}

export function stopSharedStream(): void {
  shared?.close();
  shared = undefined;
  setLive(false);
}

/** Subscribes to record events (table `*` after a reconnect: reload everything); returns the unsubscribe. */
export function onRecordEvent(listener: (e: RecordEventData) => void): () => void {
  recordListeners.add(listener);
  return () => recordListeners.delete(listener);
}

export function onLiveStatus(listener: (live: boolean) => void): () => void {
  statusListeners.add(listener);
  listener(live);
  return () => statusListeners.delete(listener);
}
