import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { registerConsoleRoutes } from '../../src/console/index.js';
import { ensureConsoleBuilt } from '../helpers/browser.js';
import { engines } from '../helpers/engines.js';
import { startServer } from '../helpers/server.js';

test('/ serves the built console: its page, and its hashed assets with long caching', async () => {
  ensureConsoleBuilt();
  const srv = await startServer(engines()[0]!);
  try {
    const res = await fetch(`${srv.url}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const html = await res.text();
    assert.match(html, /<div id="app"><\/div>/);
    const script = /<script type="module" crossorigin src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(script, 'the page loads its script from /assets/');
    const js = await fetch(`${srv.url}${script}`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match(js.headers.get('cache-control') ?? '', /immutable/);
    // Nothing outside the assets folder is served through it, and unknown assets are 404.
    assert.equal((await fetch(`${srv.url}/assets/..%2Findex.html`)).status, 404);
    assert.equal((await fetch(`${srv.url}/assets/nope.js`)).status, 404);
    // The server keeps serving after those refusals.
    assert.equal((await fetch(`${srv.url}/`)).status, 200);
  } finally {
    await srv.stop();
  }
});

test('without a console build, / serves a start page that says so and where the APIs are', async () => {
  const app = Fastify();
  registerConsoleRoutes(app, { webDir: null } as Parameters<typeof registerConsoleRoutes>[1]);
  try {
    const res = await app.inject({ method: 'GET', url: '/' });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /^text\/html/);
    assert.match(res.body, /has not been built/);
    assert.match(res.body, /href="\/api\/data\/v9\.2\/"/);
    assert.match(res.body, /<label for="token">/);
  } finally {
    await app.close();
  }
});
