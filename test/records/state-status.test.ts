import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engines } from '../helpers/engines.js';
import { startServer, type TestServer } from '../helpers/server.js';

for (const engine of engines()) {
  describe(`statecode and statuscode on create (${engine.name})`, () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(engine);
    });
    after(async () => server.stop());

    async function createAlert(values: Record<string, unknown>): Promise<Response> {
      return server.fetch('msdyn_iotalerts', {
        method: 'POST',
        headers: { 'content-type': 'application/json', prefer: 'return=representation' },
        body: JSON.stringify({ msdyn_description: 'state test', ...values }),
      });
    }

    test('only statecode: the status is that state\'s first status', async () => {
      const res = await createAlert({ statecode: 1 });
      assert.equal(res.status, 201);
      const body = (await res.json()) as { statecode: number; statuscode: number };
      assert.deepEqual([body.statecode, body.statuscode], [1, 2]);
    });

    test('only statuscode: the state follows it', async () => {
      const res = await createAlert({ statuscode: 2 });
      assert.equal(res.status, 201);
      const body = (await res.json()) as { statecode: number; statuscode: number };
      assert.deepEqual([body.statecode, body.statuscode], [1, 2]);
    });

    test('neither: the defaults, active', async () => {
      const body = (await (await createAlert({})).json()) as { statecode: number; statuscode: number };
      assert.deepEqual([body.statecode, body.statuscode], [0, 1]);
    });

    test('a status of another state is refused with a 400', async () => {
      const res = await createAlert({ statecode: 0, statuscode: 2 });
      assert.equal(res.status, 400);
      const body = (await res.json()) as { error: { message: string } };
      assert.match(body.error.message, /2 is not a valid status code for state code 0/);
    });
  });
}
