/**
 * `GET /api/events`: a server-sent event stream for the console (and any other client) so that it need not poll.
 *
 * - `hello` first: who the token stands for, its role and, per table, the privileges the role grants (`R`, `C`, `W`,
 *   `D`). The Web API has no place for the role (WhoAmI returns ids only), and the console needs it to decide which
 *   menus to show; the privileges are what the Web API enforces, so the menus follow them exactly.
 * - `record`: `{ type, table, id, columns }` for every record created, updated or deleted in a table the principal may
 *   read — the same check the Web API makes on a read (`prvRead<table>`). Values are not included: the client reads
 *   the record through the Web API, which applies the column-level rules a record event does not know about.
 * - `telemetry` (with `?device=<IoT Hub device id>`, needs `prvReadmsdyn_iotdevice`): that device's messages as they
 *   become durable, `{ deviceId, sequence, enqueuedTime, body }` (the body parsed when it is JSON, else text). They
 *   come from the bus (a plain, non-durable subscription), so in scale-out an `api` node streams telemetry that a
 *   `hub` node received.
 *
 * Authentication: `Authorization: Bearer <token>`, or `?token=` for EventSource, which cannot set headers. A comment
 * line every 15 s keeps proxies from closing an idle stream. A client that cannot keep up (more than 1 MB waiting
 * to be written) is disconnected rather than buffered without limit; it reconnects and reloads.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { telemetrySubject, type Bus, type Subscription } from '../bus/index.js';
import { CcsError, toHttpError } from '../errors/index.js';
import type { TelemetryRecord } from '../hub/index.js';
import type { RecordEvent, RecordsService } from '../records/index.js';
import { demand, type Principal, type Privilege, type TokenService } from '../security/index.js';

export interface EventsDeps {
  readonly tokens: TokenService;
  readonly records: RecordsService;
  readonly bus: Bus;
  /** Milliseconds between keep-alive comments; 15 s unless a test wants them sooner. */
  readonly heartbeatMs?: number;
}

export interface Hello {
  readonly userId: string;
  readonly name: string;
  readonly role: string;
  /** Table logical name → the letters of the privileges held: R(ead) C(reate) W(rite) D(elete). */
  readonly access: Record<string, string>;
}

const MAX_BUFFERED = 1024 * 1024;
const PRIVILEGES: readonly (readonly [Privilege, string])[] = [['Read', 'R'], ['Create', 'C'], ['Write', 'W'], ['Delete', 'D']];

export function sendError(reply: FastifyReply, e: unknown): FastifyReply {
  const err = toHttpError(e);
  return reply
    .status(err.status)
    .headers({ 'Content-Type': 'application/json; charset=utf-8', ...err.headers })
    .send(JSON.stringify(err.body));
}

/** The principal of the request's bearer token (header, or `?token=` when `allowQuery`). */
export async function principalOf(req: FastifyRequest, tokens: TokenService, allowQuery: boolean): Promise<Principal> {
  const header = req.headers.authorization;
  let token: string | undefined;
  if (header) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new CcsError('Unauthorized', 'The Authorization header must be "Bearer <token>".', { 'WWW-Authenticate': 'Bearer' });
    token = m[1];
  } else if (allowQuery) {
    const q = (req.query as Record<string, unknown> | undefined)?.['token'];
    if (typeof q === 'string' && q !== '') token = q;
  }
  if (!token) {
    throw new CcsError('Unauthorized', 'Authentication is required: send "Authorization: Bearer <token>" (or ?token=<token>).', { 'WWW-Authenticate': 'Bearer' });
  }
  const principal = await tokens.authenticate(token);
  if (!principal) throw new CcsError('Unauthorized', 'The bearer token is not valid or has been revoked.', { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
  return principal;
}

export function helloFor(principal: Principal, records: RecordsService): Hello {
  const access: Record<string, string> = {};
  for (const t of records.model.tables()) {
    const letters = PRIVILEGES.filter(([p]) => principal.can(p, t.logicalName)).map(([, l]) => l).join('');
    if (letters) access[t.logicalName] = letters;
  }
  return { userId: principal.userId, name: principal.name, role: principal.role, access };
}

function parseBody(body: unknown): unknown {
  const bytes = Buffer.isBuffer(body) ? body : body instanceof Uint8Array ? Buffer.from(body) : undefined;
  if (!bytes) return null;
  const text = bytes.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function isTelemetryRecord(value: unknown): value is TelemetryRecord {
  const v = value as Partial<TelemetryRecord> | null;
  return typeof v === 'object' && v !== null && typeof v.deviceId === 'string' && typeof v.message === 'object' && v.message !== null;
}

/** Mounts `GET /api/events` on `app`. Open streams end when the server closes. */
export function registerEventRoutes(app: FastifyInstance, deps: EventsDeps): void {
  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of [...open]) end();
  });

  app.get('/api/events', async (req, reply) => {
    let principal: Principal;
    const query = (req.query ?? {}) as Record<string, unknown>;
    let device: string | undefined;
    try {
      principal = await principalOf(req, deps.tokens, true);
      if (query['device'] !== undefined) {
        if (typeof query['device'] !== 'string' || query['device'].trim() === '') throw new CcsError('BadRequest', "The parameter 'device' must be an IoT Hub device id.");
        demand(principal, 'Read', 'msdyn_iotdevice');
        device = query['device'];
      }
    } catch (e) {
      return sendError(reply, e);
    }

    reply.hijack();
    const res: ServerResponse = reply.raw;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    let ended = false;
    let subscription: Subscription | undefined;
    const end = () => {
      if (ended) return;
      ended = true;
      open.delete(end);
      clearInterval(heartbeat);
      stopRecords();
      void subscription?.unsubscribe().catch(() => undefined);
      res.end();
    };
    const write = (event: string, data: unknown) => {
      if (ended) return;
      if (res.writableLength > MAX_BUFFERED) return end();
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    open.add(end);
    req.raw.on('close', end);
    res.on('error', end);
    const heartbeat = setInterval(() => {
      if (!ended) res.write(': keep-alive\n\n');
    }, deps.heartbeatMs ?? 15_000);
    heartbeat.unref();

    const stopRecords = deps.records.onEvent((e: RecordEvent) => {
      if (!principal.can('Read', e.table)) return;
      write('record', { type: e.type, table: e.table, id: e.id, columns: e.columns });
    });
    if (device !== undefined) {
      const deviceId = device;
      subscription = deps.bus.subscribe(telemetrySubject(deviceId), (payload) => {
        if (!isTelemetryRecord(payload) || payload.deviceId !== deviceId) return;
        write('telemetry', { deviceId, sequence: payload.sequence, enqueuedTime: payload.enqueuedTime, body: parseBody(payload.message.body) });
      });
      try {
        await subscription.ready;
      } catch {
        write('error', { message: 'The telemetry stream is not available right now; reconnect to try again.' });
        return end();
      }
    }
    write('hello', { ...helloFor(principal, deps.records), ...(device !== undefined ? { device } : {}) });
  });
}
