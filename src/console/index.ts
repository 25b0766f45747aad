/**
 * The agents' console: a single-page app (Preact, built by Vite from ./web into dist/console/web) served at `/`,
 * talking only to the public Web API, plus the two server routes the Web API has no place for: the live event
 * stream (./events.ts) and token administration (./tokens-routes.ts).
 *
 * When the console has not been built (a checkout without `npm run build`), `/` serves a plain start page that says
 * so and still offers a token check against the Web API.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Bus } from '../bus/index.js';
import type { RecordsService } from '../records/index.js';
import type { RateLimiter, TokenService } from '../security/index.js';
import { registerEventRoutes } from './events.js';
import { registerTokenRoutes } from './tokens-routes.js';

export { helloFor, registerEventRoutes, type EventsDeps, type Hello } from './events.js';
export { registerTokenRoutes, TOKEN_ADMIN_ROLE } from './tokens-routes.js';

export interface ConsoleDeps {
  readonly tokens: TokenService;
  readonly records: RecordsService;
  readonly bus: Bus;
  readonly limiter?: RateLimiter;
  /**
   * Where the built console is; by default found next to this module (dist) or under dist/ (running from src).
   * `null`: serve the start page as if the console had not been built.
   */
  readonly webDir?: string | null;
}

/** The built console: `dist/console/web` beside the compiled server, or the same from the source tree. */
export function defaultWebDir(): string | undefined {
  const candidates = [fileURLToPath(new URL('./web/', import.meta.url)), fileURLToPath(new URL('../../dist/console/web/', import.meta.url))];
  return candidates.find((dir) => existsSync(join(dir, 'index.html')) && existsSync(join(dir, 'assets')));
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

export function registerConsoleRoutes(app: FastifyInstance, deps?: ConsoleDeps): void {
  const webDir = deps?.webDir === null ? undefined : (deps?.webDir ?? defaultWebDir());
  if (deps) {
    registerEventRoutes(app, { tokens: deps.tokens, records: deps.records, bus: deps.bus });
    registerTokenRoutes(app, { tokens: deps.tokens, limiter: deps.limiter });
  }
  if (!webDir) {
    app.get('/', async (_req, reply) => reply.headers({ 'Content-Type': 'text/html; charset=utf-8', ...SECURITY_HEADERS }).send(START_PAGE));
    return;
  }
  const index = readFileSync(join(webDir, 'index.html'), 'utf8');
  const assets = join(webDir, 'assets');
  app.get('/', async (_req, reply) =>
    reply.headers({ 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache', ...SECURITY_HEADERS }).send(index),
  );
  app.get<{ Params: { '*': string } }>('/assets/*', async (req, reply) => {
    const file = normalize(join(assets, req.params['*']));
    const type = TYPES[extname(file)];
    if (!file.startsWith(assets + sep) || !type) return reply.status(404).send();
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      return reply.status(404).send();
    }
    // Vite puts a content hash in every asset name, so an asset never changes under its name.
    return reply.headers({ 'Content-Type': type, 'Cache-Control': 'public, max-age=31536000, immutable', ...SECURITY_HEADERS }).send(body);
  });
}

/** Served at `/` when the console has not been built. */
const START_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ccs — Connected Customer Service</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 48rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
  h1 { font-size: 1.6rem; margin-bottom: 0.25rem; }
  code { background: #f1f1f1; padding: 0 0.25rem; border-radius: 3px; }
  label { display: block; font-weight: 600; margin-top: 1rem; }
  input { width: 100%; padding: 0.5rem; font: inherit; border: 1px solid #6b6b6b; border-radius: 4px; }
  button { margin-top: 0.5rem; padding: 0.5rem 1rem; font: inherit; background: #0b5cad; color: #fff; border: 0; border-radius: 4px; cursor: pointer; }
  button:focus-visible, input:focus-visible { outline: 3px solid #f5a623; outline-offset: 2px; }
  #result { margin-top: 1rem; white-space: pre-wrap; }
</style>
</head>
<body>
<main>
<h1>ccs — Connected Customer Service</h1>
<p>Connects IoT devices to customer service: devices send telemetry, rules turn readings into IoT alerts, alerts
become cases.</p>
<p><strong>The agents' console has not been built.</strong> Run <code>npm run build</code> and restart to serve it here.</p>
<ul>
  <li>Web API (Dataverse-compatible, OData v4): <a href="/api/data/v9.2/"><code>/api/data/v9.2/</code></a> ·
      <a href="/api/data/v9.2/$metadata"><code>$metadata</code></a></li>
  <li>Live events (server-sent events): <code>/api/events</code></li>
  <li>Metrics: <a href="/metrics"><code>/metrics</code></a></li>
</ul>
<form id="signin">
  <label for="token">Check a token</label>
  <input id="token" name="token" type="password" autocomplete="current-password" required aria-describedby="token-help">
  <p id="token-help">The admin token printed when ccs first started, or one from <code>ccs token create</code>.</p>
  <button type="submit">Check</button>
</form>
<div id="result" role="status" aria-live="polite"></div>
</main>
<script type="module">
const form = document.getElementById('signin');
const result = document.getElementById('result');
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const res = await fetch('/api/data/v9.2/WhoAmI()', { headers: { Authorization: 'Bearer ' + form.token.value.trim(), Accept: 'application/json' } });
  const body = await res.json();
  result.textContent = res.ok ? 'Valid token (user ' + body.UserId + ').' : body.error.message;
});
</script>
</body>
</html>`;
