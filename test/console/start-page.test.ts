import assert from 'node:assert/strict';
import { test } from 'node:test';
import { engines } from '../helpers/engines.js';
import { startServer } from '../helpers/server.js';

test('the start page at / says where the APIs are and offers a token sign-in', async () => {
  const srv = await startServer(engines()[0]!);
  try {
    const res = await fetch(`${srv.url}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    const html = await res.text();
    assert.match(html, /href="\/api\/data\/v9\.2\/"/);
    assert.match(html, /<label for="token">/);
  } finally {
    await srv.stop();
  }
});
