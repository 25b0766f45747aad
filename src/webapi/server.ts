import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { CcsError, toHttpError } from '../errors/index.js';
import { DURATION_BUCKETS, type Metrics } from '../metrics/index.js';
import type { Principal, RateLimiter, TokenService } from '../security/index.js';
import type { WebApi } from './handler.js';

/** Versions Dataverse clients ask for; all are served by the same API and echoed back in generated URLs. */
const VERSION = /^v(8\.\d|9\.[0-2])$/;

export interface HttpDeps {
  readonly api: WebApi;
  readonly tokens: TokenService;
  readonly limiter: RateLimiter;
  readonly maxBodyBytes: number;
  readonly log: { error(obj: unknown, msg?: string): void };
  /** Request counters and durations go here, and `/metrics` serves them. */
  readonly metrics: Metrics;
  /** Extra routes (the console, the hub's HTTPS surfaces) mounted by other capabilities. */
  readonly routes?: (app: FastifyInstance) => void;
  /** Serve HTTPS with this certificate instead of plain HTTP. */
  readonly https?: { readonly cert: string; readonly key: string };
}

function sendError(reply: FastifyReply, e: unknown): FastifyReply {
  const err = toHttpError(e);
  return reply
    .status(err.status)
    .headers({ 'OData-Version': '4.0', 'Content-Type': 'application/json; odata.metadata=minimal', ...err.headers })
    .send(JSON.stringify(err.body));
}

/** The origin the client used, honouring a reverse proxy's X-Forwarded-* headers, so links lead back to it. */
function origin(req: FastifyRequest): string {
  const proto = String(req.headers['x-forwarded-proto'] ?? req.protocol).split(',')[0]!.trim();
  const host = String(req.headers['x-forwarded-host'] ?? req.headers.host ?? 'localhost').split(',')[0]!.trim();
  return `${proto}://${host}`;
}

async function authenticate(req: FastifyRequest, tokens: TokenService): Promise<Principal> {
  const header = req.headers.authorization;
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!m) {
    throw new CcsError('Unauthorized', header ? 'The Authorization header must be "Bearer <token>".' : 'Authentication is required: send "Authorization: Bearer <token>" (create one with `ccs token create`).', { 'WWW-Authenticate': 'Bearer' });
  }
  const principal = await tokens.authenticate(m[1]!);
  if (!principal) throw new CcsError('Unauthorized', 'The bearer token is not valid or has been revoked.', { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
  return principal;
}

export function createHttpServer(deps: HttpDeps): FastifyInstance {
  const options = { bodyLimit: deps.maxBodyBytes, logger: false, routerOptions: { caseSensitive: true, maxParamLength: 64 * 1024 } };
  // Typed as a plain FastifyInstance either way: the routes do not care which transport carries them.
  const app = (deps.https ? Fastify({ ...options, https: { cert: deps.https.cert, key: deps.https.key } }) : Fastify(options)) as unknown as FastifyInstance;
  // Bodies reach the Web API as text: it parses JSON and multipart itself, with Dataverse's errors.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((error: { code?: string; statusCode?: number }, _req, reply) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendError(reply, new CcsError('PayloadTooLarge', `The request body is larger than the limit of ${deps.maxBodyBytes} bytes.`));
    }
    if (error.statusCode && error.statusCode < 500) return sendError(reply, new CcsError('BadRequest', String((error as Error).message)));
    deps.log.error({ err: error }, 'request failed');
    return sendError(reply, error);
  });
  const requests = deps.metrics.counter('ccs_http_requests_total', 'HTTP requests answered, by method and status.', ['method', 'status']);
  const durations = deps.metrics.histogram('ccs_http_request_duration_seconds', 'Time to answer HTTP requests.', DURATION_BUCKETS, ['method']);
  app.addHook('onResponse', async (req, reply) => {
    requests.inc({ method: req.method, status: String(reply.statusCode) });
    durations.observe(reply.elapsedTime / 1000, { method: req.method });
  });
  // Public like Prometheus targets usually are: counts and timings only, nothing about records or devices.
  app.get('/metrics', async (_req, reply) => reply.header('Content-Type', 'text/plain; version=0.0.4').send(deps.metrics.render()));

  app.setNotFoundHandler((req, reply) => sendError(reply, new CcsError('ResourceNotFound', `No resource at '${req.url.split('?')[0]}'.`)));

  app.all('/api/data/*', async (req, reply) => {
    try {
      const raw = req.raw.url ?? '';
      const q = raw.indexOf('?');
      const pathname = q < 0 ? raw : raw.slice(0, q);
      const rest = pathname.slice('/api/data/'.length);
      const slash = rest.indexOf('/');
      const version = slash < 0 ? rest : rest.slice(0, slash);
      if (!VERSION.test(version)) throw new CcsError('ResourceNotFound', `Unsupported API version '${version}'. Use v9.2 (v8.x, v9.0 and v9.1 are also served).`);
      const path = slash < 0 ? '' : rest.slice(slash + 1);
      const method = req.method.toUpperCase();
      // The service document and $metadata are public, so tools can browse the API before signing in.
      const isPublic = method === 'GET' && (path === '' || path === '$metadata') && !req.headers.authorization;
      const principal = isPublic ? anonymous : await authenticate(req, deps.tokens);
      if (!isPublic) deps.limiter.take(principal.tokenId ?? principal.userId);
      const headers: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const res = await deps.api.handle({
        method,
        path,
        query: q < 0 ? '' : raw.slice(q + 1),
        headers,
        body: typeof req.body === 'string' ? req.body : '',
        serviceRoot: `${origin(req)}/api/data/${version}/`,
        principal,
      });
      return reply.status(res.status).headers({ 'OData-Version': '4.0', ...res.headers }).send(res.body === '' ? undefined : res.body);
    } catch (e) {
      if (toHttpError(e).status >= 500) deps.log.error({ err: e }, 'request failed');
      return sendError(reply, e);
    }
  });
  deps.routes?.(app);
  return app;
}

/** Stands for unauthenticated callers of the public documents; it holds no privilege. */
const anonymous: Principal = { userId: '00000000-0000-0000-0000-000000000000', name: 'anonymous', role: 'anonymous', tokenId: undefined, can: () => false };
