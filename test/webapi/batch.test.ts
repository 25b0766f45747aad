import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CcsError } from '../../src/errors/index.js';
import {
  executeBatch,
  MAX_REQUESTS_PER_BATCH,
  type BatchOptions,
  type Handler,
  type InnerRequest,
  type InnerResponse,
} from '../../src/webapi/batch/index.js';

const ROOT = 'http://localhost:8080/api/data/v9.2/';
const DEVICE_ID = '6a9b1c2d-0000-4000-8000-000000000001';

/**
 * A fake store behind the handler port: records every call, tags calls made inside a change set with the change
 * set's number, and models commit/rollback so tests can see what a real transaction would have kept.
 */
function fakeApi(respond?: (req: InnerRequest) => InnerResponse | undefined) {
  const calls: Array<InnerRequest & { tx: number | null }> = [];
  const committed: number[] = [];
  const rolledBack: number[] = [];
  let txCount = 0;
  let nextId = 1;
  const base = (req: InnerRequest): InnerResponse => {
    const custom = respond?.(req);
    if (custom) return custom;
    if (req.method === 'POST' && /^[a-z_]+s$/.test(req.url)) {
      const id = `00000000-0000-4000-8000-${String(nextId++).padStart(12, '0')}`;
      const entity = `${ROOT}${req.url}(${id})`;
      return { status: 204, headers: { 'OData-Version': '4.0', Location: entity, 'OData-EntityId': entity }, body: '' };
    }
    if (req.method === 'PATCH') {
      const entity = ROOT + req.url.split('?')[0];
      return { status: 204, headers: { 'odata-version': '4.0', 'odata-entityid': entity }, body: '' };
    }
    if (req.method === 'GET') {
      return {
        status: 200,
        headers: { 'content-type': 'application/json; odata.metadata=minimal' },
        body: JSON.stringify({ '@odata.context': `${ROOT}$metadata#x`, value: [{ n: 1 }] }),
      };
    }
    return { status: 204, headers: {}, body: '' };
  };
  const handle: Handler = async (req) => {
    calls.push({ ...req, tx: null });
    return base(req);
  };
  const opts = (contentType: string, body: string, continueOnError = false): BatchOptions => ({
    contentType,
    body,
    serviceRoot: ROOT,
    continueOnError,
    handle,
    async changeSet<T>(fn: (h: Handler) => Promise<T>): Promise<T> {
      const tx = ++txCount;
      try {
        const result = await fn(async (req) => {
          calls.push({ ...req, tx });
          return base(req);
        });
        committed.push(tx);
        return result;
      } catch (e) {
        rolledBack.push(tx);
        throw e;
      }
    },
  });
  return { calls, committed, rolledBack, opts };
}

function failWith(status: number, message: string): InnerResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; odata.metadata=minimal', 'odata-version': '4.0' },
    body: JSON.stringify({ error: { code: '0x80040217', message } }),
  };
}

/** Builds a body the way DynamicsWebApi 2.5.0's convertToBatch does: items joined by CRLF, delimiters prefixed by CRLF. */
function dwaBody(lines: string[]): string {
  return lines.join('\r\n');
}

/** The request of reference/odata.md §2.5, as DynamicsWebApi 2.5.0 writes it. */
function dynamicsWebApiSample(): { contentType: string; body: string } {
  const b = 'dwa_batch_0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';
  const cs = 'changeset_11111111-2222-4333-8444-555555555555';
  const api = 'http://localhost:8080/api/data/v9.2/';
  const body = dwaBody([
    `\r\n--${b}`,
    'Content-Type: application/http',
    'Content-Transfer-Encoding: binary',
    `\r\nGET ${api}msdyn_iotalerts?$select=msdyn_description&$top=1 HTTP/1.1`,
    'Accept: application/json',
    `\r\n--${b}`,
    `Content-Type: multipart/mixed;boundary=${cs}`,
    `\r\n--${cs}`,
    'Content-Type: application/http',
    'Content-Transfer-Encoding: binary',
    'Content-ID: 1',
    `\r\nPOST ${api}msdyn_iotdevices HTTP/1.1`,
    'Content-Type: application/json',
    '\r\n{"msdyn_name":"batch dev"}',
    `\r\n--${cs}`,
    'Content-Type: application/http',
    'Content-Transfer-Encoding: binary',
    'Content-ID: 100001',
    `\r\nPOST ${api}msdyn_iotalerts HTTP/1.1`,
    'Content-Type: application/json',
    '\r\n{"msdyn_description":"batch alert","msdyn_Device@odata.bind":"$1"}',
    `\r\n--${cs}`,
    'Content-Type: application/http',
    'Content-Transfer-Encoding: binary',
    'Content-ID: 100002',
    `\r\nPATCH ${api}msdyn_iotdevices(${DEVICE_ID}) HTTP/1.1`,
    'Content-Type: application/json',
    'If-Match: *',
    '\r\n{"msdyn_name":"renamed"}',
    `\r\n--${cs}--`,
    `\r\n--${b}`,
    'Content-Type: application/http',
    'Content-Transfer-Encoding: binary',
    `\r\nPOST ${api}msdyn_RegisterIoTDevice HTTP/1.1`,
    'Content-Type: application/json',
    `\r\n{"IoTDeviceIds":"${DEVICE_ID}"}`,
    `\r\n--${b}--\r\n`,
  ]);
  return { contentType: `multipart/mixed;boundary=${b}`, body };
}

/** A hand-written batch in Microsoft's documented style, with a configurable line ending. */
function msBatch(parts: string[], eol = '\r\n', boundary = 'batch_AAA123'): string {
  return [...parts.map((p) => `--${boundary}${eol}${p.replace(/\n/g, eol)}`), `--${boundary}--${eol}`].join(eol);
}

function changeSet(requests: string[], boundary = 'changeset_BBB456'): string {
  const inner = requests.map((r) => `--${boundary}\n${r}`).join('\n');
  return `Content-Type: multipart/mixed; boundary=${boundary}\n\n${inner}\n--${boundary}--`;
}

function httpPart(request: string, contentId?: string): string {
  const id = contentId === undefined ? '' : `Content-ID: ${contentId}\n`;
  return `Content-Type: application/http\nContent-Transfer-Encoding: binary\n${id}\n${request}`;
}

/** Splits a batch response into its top-level parts (text between delimiters). */
function topParts(body: string): string[] {
  const boundary = body.slice(0, body.indexOf('\r\n'));
  const pieces = body.split(boundary);
  assert.equal(pieces.shift(), '', 'the body starts with the delimiter');
  assert.equal(pieces.pop(), '--\r\n', 'the body ends with the close delimiter and CRLF');
  return pieces;
}

function statusLines(body: string): number[] {
  return [...body.matchAll(/^HTTP\/1\.1 (\d{3}) [\w ]+\r$/gm)].map((m) => Number(m[1]));
}

async function rejectsInvalid(opts: BatchOptions, message: RegExp): Promise<void> {
  await assert.rejects(executeBatch(opts), (e: unknown) => {
    assert.ok(e instanceof CcsError, `expected a CcsError, got ${String(e)}`);
    assert.equal(e.code, 'InvalidBatch');
    assert.match(e.message, message);
    return true;
  });
}

describe('$batch: parsing what clients send', () => {
  it('parses the exact request DynamicsWebApi 2.5.0 sends (§2.5) and resolves $1 in a bind', async () => {
    const api = fakeApi();
    const { contentType, body } = dynamicsWebApiSample();
    const res = await executeBatch(api.opts(contentType, body));
    assert.equal(res.status, 200);
    assert.deepEqual(
      api.calls.map((c) => [c.tx, c.method, c.url]),
      [
        [null, 'GET', 'msdyn_iotalerts?$select=msdyn_description&$top=1'],
        [1, 'POST', 'msdyn_iotdevices'],
        [1, 'POST', 'msdyn_iotalerts'],
        [1, 'PATCH', `msdyn_iotdevices(${DEVICE_ID})`],
        [null, 'POST', 'msdyn_RegisterIoTDevice'],
      ],
    );
    assert.deepEqual(api.calls[0]!.headers, { accept: 'application/json' });
    assert.equal(api.calls[0]!.body, '');
    assert.equal(api.calls[1]!.body, '{"msdyn_name":"batch dev"}');
    assert.deepEqual(JSON.parse(api.calls[2]!.body), {
      msdyn_description: 'batch alert',
      'msdyn_Device@odata.bind': 'msdyn_iotdevices(00000000-0000-4000-8000-000000000001)',
    });
    assert.deepEqual(api.calls[3]!.headers, { 'content-type': 'application/json', 'if-match': '*' });
    assert.equal(api.calls[4]!.body, `{"IoTDeviceIds":"${DEVICE_ID}"}`);
    assert.deepEqual(api.committed, [1]);
    assert.deepEqual(statusLines(res.body), [200, 204, 204, 204, 204]);
  });

  it('accepts root-relative, relative and absolute URLs with any version segment', async () => {
    const api = fakeApi();
    const body = msBatch([
      httpPart('GET /api/data/v9.2/msdyn_iotdevices?$select=msdyn_name HTTP/1.1\n'),
      httpPart('GET msdyn_iotalerts(1)?%24select=msdyn_description HTTP/1.1\n'),
      httpPart('GET /api/data/v8.1/accounts HTTP/1.1\n'),
      httpPart('GET https://org.example.com/api/data/v9.0/contacts HTTP/1.1\n'),
      httpPart("GET http://h/tenant/api/data/v9.1/contacts(emailaddress1='a@b.c') HTTP/1.1\n"),
      httpPart('GET /api/data/v9.2/ HTTP/1.1\n'),
      httpPart('GET $metadata HTTP/1.1\n'),
    ]);
    const res = await executeBatch(api.opts('multipart/mixed; boundary=batch_AAA123', body));
    assert.equal(res.status, 200);
    assert.deepEqual(
      api.calls.map((c) => c.url),
      [
        'msdyn_iotdevices?$select=msdyn_name',
        'msdyn_iotalerts(1)?%24select=msdyn_description',
        'accounts',
        'contacts',
        "contacts(emailaddress1='a@b.c')",
        '',
        '$metadata',
      ],
    );
  });

  it('answers 400 for a root-relative URL outside the Web API', async () => {
    const api = fakeApi();
    const body = msBatch([httpPart('GET /other/thing HTTP/1.1\n')]);
    const res = await executeBatch(api.opts('multipart/mixed; boundary=batch_AAA123', body, true));
    assert.equal(api.calls.length, 0);
    assert.deepEqual(statusLines(res.body), [400]);
    assert.match(res.body, /not under the Web API root/);
  });

  it('accepts a quoted boundary, LF-only line endings, preamble, epilogue and header spacing variants', async () => {
    const api = fakeApi();
    const body =
      'This is a preamble.\n' +
      msBatch(
        [
          'Content-Type:application/http\nContent-Transfer-Encoding:binary\n\nPOST /api/data/v9.2/tasks HTTP/1.1\nContent-Type:  application/json; type=entry\n\n{\n  "subject": "Task 1"\n}',
          changeSet(
            [httpPart('POST /api/data/v9.2/tasks HTTP/1.1\nContent-Type: application/json\n\n{"subject":"Task 2"}\n', '1')],
            'changeset_246e6bfe',
          ),
        ],
        '\n',
        'batch_22975cad',
      ) +
      'and an epilogue\n';
    const res = await executeBatch(api.opts('multipart/mixed; boundary="batch_22975cad"', body));
    assert.equal(res.status, 200);
    assert.deepEqual(
      api.calls.map((c) => [c.method, c.url, c.headers['content-type'], c.body]),
      [
        ['POST', 'tasks', 'application/json; type=entry', '{\n  "subject": "Task 1"\n}'],
        ['POST', 'tasks', 'application/json', '{"subject":"Task 2"}'],
      ],
    );
  });

  it('accepts a quoted changeset boundary and Content-ID given among the embedded request headers', async () => {
    const api = fakeApi();
    const cs =
      'Content-Type: multipart/mixed; boundary="changeset_q"\r\n\r\n--changeset_q\r\nContent-Type: application/http\r\n' +
      'Content-Transfer-Encoding: binary\r\n\r\nPOST accounts HTTP/1.1\r\nContent-ID: 7\r\nContent-Type: application/json\r\n\r\n{}\r\n' +
      '--changeset_q\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n' +
      'PATCH $7 HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{"name":"x"}\r\n--changeset_q--';
    const res = await executeBatch(api.opts('multipart/mixed;boundary="b"', `--b\r\n${cs}\r\n--b--`));
    assert.equal(res.status, 200);
    assert.deepEqual(
      api.calls.map((c) => c.url),
      ['accounts', 'accounts(00000000-0000-4000-8000-000000000001)'],
    );
    assert.equal(api.calls[0]!.headers['content-id'], undefined, 'Content-ID is a batch header, not the request’s');
    assert.match(res.body, /Content-ID: 7\r\n/);
  });
});

describe('$batch: Content-ID references', () => {
  it('replaces $n at the start of URLs, in binds (nested, arrays) and in @odata.id', async () => {
    const api = fakeApi();
    const body = msBatch([
      changeSet([
        httpPart('POST /api/data/v9.2/accounts HTTP/1.1\nContent-Type: application/json\n\n{"name":"A"}\n', '1'),
        httpPart('POST /api/data/v9.2/contacts HTTP/1.1\nContent-Type: application/json\n\n{"firstname":"C"}\n', '2'),
        httpPart('PUT $1/primarycontactid/$ref HTTP/1.1\nContent-Type: application/json\n\n{"@odata.id":"$2"}\n', '3'),
        httpPart('PATCH $1 HTTP/1.1\nContent-Type: application/json\n\n{"primarycontactid@odata.bind":"$2"}\n', '4'),
        httpPart('PUT $2/lastname HTTP/1.1\nContent-Type: application/json\n\n{"value":"$1"}\n', '5'),
        httpPart(
          'POST /api/data/v9.2/tasks?$select=subject HTTP/1.1\nContent-Type: application/json\n\n' +
            '{"subject":"t","revenue":123456789.1234567891,"regardingobjectid_account_task@odata.bind":"$1",' +
            '"task_parties":[{"partyid_contact@odata.bind":"$2","x@odata.bind":["$1","accounts(9)"]}],' +
            '"@odata.id":"$metadata","other":"$2"}\n',
          '6',
        ),
      ]),
    ]);
    const res = await executeBatch(api.opts('multipart/mixed; boundary=batch_AAA123', body));
    assert.equal(res.status, 200);
    const account = 'accounts(00000000-0000-4000-8000-000000000001)';
    const contact = 'contacts(00000000-0000-4000-8000-000000000002)';
    assert.deepEqual(
      api.calls.map((c) => [c.method, c.url, c.body]),
      [
        ['POST', 'accounts', '{"name":"A"}'],
        ['POST', 'contacts', '{"firstname":"C"}'],
        ['PUT', `${account}/primarycontactid/$ref`, `{"@odata.id":${JSON.stringify(ROOT + contact)}}`],
        ['PATCH', account, `{"primarycontactid@odata.bind":"${contact}"}`],
        // Only binds and @odata.id are references; a plain string value "$1" is data.
        ['PUT', `${contact}/lastname`, '{"value":"$1"}'],
        [
          'POST',
          'tasks?$select=subject',
          // Edited in place: the decimal keeps every digit, unrelated "$…" strings are left alone.
          `{"subject":"t","revenue":123456789.1234567891,"regardingobjectid_account_task@odata.bind":"${account}",` +
            `"task_parties":[{"partyid_contact@odata.bind":"${contact}","x@odata.bind":["${account}","accounts(9)"]}],` +
            '"@odata.id":"$metadata","other":"$2"}',
        ],
      ],
    );
  });

  it('a $n query suffix is kept: $1?$select=… → set(id)?$select=…', async () => {
    const api = fakeApi();
    const body = msBatch([
      changeSet([
        httpPart('POST accounts HTTP/1.1\nContent-Type: application/json\n\n{}', '1'),
        httpPart('PATCH $1?$select=name HTTP/1.1\nContent-Type: application/json\n\n{}', '2'),
      ]),
    ]);
    await executeBatch(api.opts('multipart/mixed; boundary=batch_AAA123', body));
    assert.equal(api.calls[1]!.url, 'accounts(00000000-0000-4000-8000-000000000001)?$select=name');
  });

  it('a reference used before its Content-ID is defined fails the change set with Dataverse’s message', async () => {
    const api = fakeApi();
    // The example from execute-batch-operations-using-web-api.md ("Referencing a Content-ID before it has been declared").
    const body = msBatch([
      changeSet([
        httpPart('POST phonecalls HTTP/1.1\nContent-Type: application/json;type=entry\n\n{"phonenumber":"911","regardingobjectid_account_phonecall@odata.bind" : "$1"}', '2'),
        httpPart('POST accounts HTTP/1.1\nContent-Type: application/json;type=entry\n\n{"name":"QQQQ","revenue": 1.50}', '1'),
      ]),
    ]);
    const res = await executeBatch(api.opts('multipart/mixed; boundary=batch_AAA123', body));
    assert.equal(res.status, 400);
    assert.equal(api.calls.length, 0);
    assert.deepEqual(api.rolledBack, [1]);
    assert.deepEqual(statusLines(res.body), [400]);
    assert.match(res.body, /"message":"Content-ID Reference: '\$1' does not exist in the batch context\."/);
  });

  it('references do not cross change sets and are invalid outside them', async () => {
    const api = fakeApi();
    const body = msBatch([
      changeSet([httpPart('POST accounts HTTP/1.1\nContent-Type: application/json\n\n{}', '1')], 'changeset_1'),
      changeSet([httpPart('PATCH $1 HTTP/1.1\nContent-Type: application/json\n\n{}', '1')], 'changeset_2'),
      httpPart('DELETE $1 HTTP/1.1\n'),
      httpPart('POST tasks HTTP/1.1\nContent-Type: application/json\n\n{"regardingobjectid_account_task@odata.bind":"$1"}'),
    ]);
    const res = await executeBatch(api.opts('multipart/mixed; boundary=batch_AAA123', body, true));
    assert.equal(res.status, 200);
    assert.deepEqual(api.calls.map((c) => c.url), ['accounts']);
    assert.deepEqual(statusLines(res.body), [204, 400, 400, 400]);
    assert.equal(res.body.match(/Content-ID Reference: '\$1' does not exist in the batch context\./g)?.length, 3);
  });
});

describe('$batch: execution semantics', () => {
  it('rolls back a change set whose request fails and answers 400 with only the failing part', async () => {
    const api = fakeApi((req) => (req.url === 'contacts' ? failWith(412, 'A record with matching key values already exists.') : undefined));
    const body = msBatch([
      httpPart('GET accounts HTTP/1.1\n'),
      changeSet([
        httpPart('POST accounts HTTP/1.1\nContent-Type: application/json\n\n{}', '1'),
        httpPart('POST contacts HTTP/1.1\nContent-Type: application/json\n\n{}', '2'),
        httpPart('POST tasks HTTP/1.1\nContent-Type: application/json\n\n{}', '3'),
      ]),
      httpPart('GET tasks HTTP/1.1\n'),
    ]);
    const res = await executeBatch(api.opts('multipart/mixed; boundary=batch_AAA123', body));
    assert.equal(res.status, 400);
    assert.deepEqual(api.calls.map((c) => [c.tx, c.url]), [[null, 'accounts'], [1, 'accounts'], [1, 'contacts']]);
    assert.deepEqual(api.rolledBack, [1]);
    assert.deepEqual(api.committed, []);
    const parts = topParts(res.body);
    assert.equal(parts.length, 1);
    assert.doesNotMatch(parts[0]!, /changesetresponse_/, 'a failed change set answers with a plain part');
    assert.match(parts[0]!, /Content-ID: 2\r\n\r\nHTTP\/1\.1 412 Precondition Failed\r\n/);
    assert.match(parts[0]!, /A record with matching key values already exists\./);
  });

  it('stops at the first failing request outside a change set', async () => {
    const api = fakeApi((req) => (req.url === 'missing(1)' ? failWith(404, 'missing With Id = 1 Does Not Exist') : undefined));
    const body = msBatch([
      httpPart('POST accounts HTTP/1.1\nContent-Type: application/json\n\n{}'),
      httpPart('GET missing(1) HTTP/1.1\n'),
      httpPart('POST contacts HTTP/1.1\nContent-Type: application/json\n\n{}'),
    ]);
    const res = await executeBatch(api.opts('multipart/mixed; boundary=batch_AAA123', body));
    assert.equal(res.status, 400);
    assert.deepEqual(api.calls.map((c) => c.url), ['accounts', 'missing(1)']);
    assert.deepEqual(statusLines(res.body), [404]);
    assert.equal(res.headers['preference-applied'], undefined);
  });

  it('with odata.continue-on-error runs every part, answers 200, and a failed change set contributes its failure', async () => {
    const api = fakeApi((req) =>
      req.url === 'contacts' || req.url === 'missing(1)' ? failWith(400, `bad ${req.url}`) : undefined,
    );
    const body = msBatch([
      httpPart('GET missing(1) HTTP/1.1\n'),
      changeSet([
        httpPart('POST accounts HTTP/1.1\nContent-Type: application/json\n\n{}', '1'),
        httpPart('POST contacts HTTP/1.1\nContent-Type: application/json\n\n{}', '2'),
      ], 'changeset_1'),
      changeSet([httpPart('POST tasks HTTP/1.1\nContent-Type: application/json\n\n{}', '1')], 'changeset_2'),
      httpPart('GET accounts HTTP/1.1\n'),
    ]);
    const res = await executeBatch(api.opts('multipart/mixed; boundary=batch_AAA123', body, true));
    assert.equal(res.status, 200);
    assert.equal(res.headers['preference-applied'], 'odata.continue-on-error');
    assert.deepEqual(api.rolledBack, [1]);
    assert.deepEqual(api.committed, [2]);
    const parts = topParts(res.body);
    assert.equal(parts.length, 4);
    assert.deepEqual(statusLines(parts[0]!), [400]);
    assert.deepEqual(statusLines(parts[1]!), [400]);
    assert.doesNotMatch(parts[1]!, /changesetresponse_/);
    assert.match(parts[1]!, /bad contacts/);
    assert.match(parts[2]!, /changesetresponse_/);
    assert.deepEqual(statusLines(parts[2]!), [204]);
    assert.deepEqual(statusLines(parts[3]!), [200]);
  });

  it('refuses GET inside a change set without opening a transaction', async () => {
    const api = fakeApi();
    const body = msBatch([
      changeSet([
        httpPart('POST accounts HTTP/1.1\nContent-Type: application/json\n\n{}', '1'),
        httpPart('GET accounts HTTP/1.1\n', '2'),
      ]),
    ]);
    const res = await executeBatch(api.opts('multipart/mixed; boundary=batch_AAA123', body));
    assert.equal(res.status, 400);
    assert.equal(api.calls.length, 0);
    assert.deepEqual([...api.committed, ...api.rolledBack], []);
    assert.deepEqual(statusLines(res.body), [400]);
    assert.match(res.body, /Content-ID: 2\r\n/);
    assert.match(res.body, /GET requests are not allowed inside a change set\./);
  });

  it('refuses a nested $batch request for that part', async () => {
    const api = fakeApi();
    const body = msBatch([
      httpPart('POST /api/data/v9.2/$batch HTTP/1.1\nContent-Type: multipart/mixed; boundary=x\n\n--x\n--x--'),
      httpPart('GET accounts HTTP/1.1\n'),
    ]);
    const res = await executeBatch(api.opts('multipart/mixed; boundary=batch_AAA123', body, true));
    assert.deepEqual(api.calls.map((c) => c.url), ['accounts']);
    assert.deepEqual(statusLines(res.body), [400, 200]);
    assert.match(res.body, /cannot contain another batch request/);
  });

  it('turns a CcsError thrown by the handler into that part’s error response; other errors abort', async () => {
    const throwing = (err: Error): BatchOptions => ({
      ...fakeApi().opts('multipart/mixed; boundary=batch_AAA123', msBatch([httpPart('GET accounts HTTP/1.1\n')])),
      handle: async () => {
        throw err;
      },
    });
    const res = await executeBatch(throwing(new CcsError('RecordNotFound', 'account With Id = 1 Does Not Exist')));
    assert.equal(res.status, 400);
    assert.deepEqual(statusLines(res.body), [404]);
    assert.match(res.body, /\{"error":\{"code":"0x80040217","message":"account With Id = 1 Does Not Exist"\}\}/);
    await assert.rejects(executeBatch(throwing(new TypeError('boom'))), /boom/);
  });

  it('an unexpected error inside a change set rolls it back and aborts the batch', async () => {
    const api = fakeApi((req) => {
      if (req.url === 'contacts') throw new RangeError('db down');
      return undefined;
    });
    const body = msBatch([
      changeSet([
        httpPart('POST accounts HTTP/1.1\nContent-Type: application/json\n\n{}', '1'),
        httpPart('POST contacts HTTP/1.1\nContent-Type: application/json\n\n{}', '2'),
      ]),
    ]);
    await assert.rejects(executeBatch(api.opts('multipart/mixed; boundary=batch_AAA123', body)), /db down/);
    assert.deepEqual(api.rolledBack, [1]);
  });

  it(`accepts ${MAX_REQUESTS_PER_BATCH} requests and refuses one more before running any`, async () => {
    const part = httpPart('DELETE accounts(1) HTTP/1.1\n');
    const ok = fakeApi();
    const full = msBatch([
      changeSet(Array.from({ length: 10 }, () => part)),
      ...Array.from({ length: MAX_REQUESTS_PER_BATCH - 10 }, () => part),
    ]);
    assert.equal((await executeBatch(ok.opts('multipart/mixed; boundary=batch_AAA123', full))).status, 200);
    assert.equal(ok.calls.length, MAX_REQUESTS_PER_BATCH);

    const over = fakeApi();
    const tooMany = msBatch([
      ...Array.from({ length: MAX_REQUESTS_PER_BATCH - 1 }, () => part),
      changeSet([part, part]),
    ]);
    await rejectsInvalid(over.opts('multipart/mixed; boundary=batch_AAA123', tooMany), /at most 1000 requests/);
    assert.equal(over.calls.length, 0);
  });
});

describe('$batch: malformed requests are InvalidBatch', () => {
  const ok = httpPart('GET accounts HTTP/1.1\n');
  const cases: Array<[string, string, string, RegExp]> = [
    ['no boundary parameter', 'multipart/mixed', msBatch([ok]), /has no boundary parameter/],
    ['an empty boundary', 'multipart/mixed; boundary=""', msBatch([ok]), /has no boundary parameter/],
    ['a JSON batch', 'application/json', '{"requests":[]}', /must have Content-Type multipart\/mixed/],
    ['a body without delimiters', 'multipart/mixed; boundary=batch_AAA123', 'garbage\r\nmore garbage', /no line '--batch_AAA123'/],
    ['a different boundary in the body', 'multipart/mixed; boundary=other', msBatch([ok]), /no line '--other'/],
    ['a missing closing delimiter', 'multipart/mixed; boundary=batch_AAA123', `--batch_AAA123\r\n${ok}\r\n`, /closing delimiter '--batch_AAA123--' is missing/],
    ['an empty batch', 'multipart/mixed; boundary=batch_AAA123', '--batch_AAA123--\r\n', /closes with '--batch_AAA123--' before any part/],
    ['a part that is not HTTP', 'multipart/mixed; boundary=batch_AAA123', msBatch(['Content-Type: text/plain\n\nhello']), /batch part 1 must have Content-Type application\/http or multipart\/mixed, not 'text\/plain'/i],
    ['a part without headers', 'multipart/mixed; boundary=batch_AAA123', msBatch(['GET accounts HTTP/1.1\n']), /Malformed header line 'GET accounts HTTP\/1\.1' in batch part 1/],
    ['a malformed request line', 'multipart/mixed; boundary=batch_AAA123', msBatch([httpPart('GET\n')]), /Malformed request line 'GET' in batch part 1/],
    ['an empty embedded request', 'multipart/mixed; boundary=batch_AAA123', msBatch([httpPart('')]), /Batch part 1 has no request line/],
    ['base64 transfer encoding', 'multipart/mixed; boundary=batch_AAA123', msBatch(['Content-Type: application/http\nContent-Transfer-Encoding: base64\n\nR0VU']), /Unsupported Content-Transfer-Encoding 'base64'/],
    ['an unterminated change set', 'multipart/mixed; boundary=batch_AAA123', msBatch(['Content-Type: multipart/mixed; boundary=cs\n\n--cs\n' + ok]), /change set in batch part 1 is not terminated/],
    ['a change set without boundary', 'multipart/mixed; boundary=batch_AAA123', msBatch(['Content-Type: multipart/mixed\n\n--cs\n--cs--']), /change set in batch part 1 Content-Type 'multipart\/mixed' has no boundary/],
    ['an empty change set', 'multipart/mixed; boundary=batch_AAA123', msBatch(['Content-Type: multipart/mixed; boundary=cs\n\n--cs--']), /closes with '--cs--' before any part/],
    ['a nested change set', 'multipart/mixed; boundary=batch_AAA123', msBatch([changeSet([changeSet([ok], 'inner')], 'outer')]), /Change sets cannot be nested/],
    ['a duplicate Content-ID', 'multipart/mixed; boundary=batch_AAA123', msBatch([changeSet([httpPart('DELETE a(1) HTTP/1.1\n', '1'), httpPart('DELETE a(2) HTTP/1.1\n', '1')])]), /Content-ID '1' is used twice/],
  ];
  for (const [name, contentType, body, message] of cases) {
    it(`refuses ${name}`, async () => {
      const api = fakeApi();
      await rejectsInvalid(api.opts(contentType, body), message);
      assert.equal(api.calls.length, 0);
    });
  }
});

describe('$batch: response format (reference/odata.md §2.5)', () => {
  it('meets every structural constraint DynamicsWebApi’s parser relies on', async () => {
    const api = fakeApi((req) =>
      req.url === 'msdyn_RegisterIoTDevice'
        ? { status: 203, headers: { 'content-type': 'application/json', 'content-length': '2' }, body: '{}' }
        : undefined,
    );
    const { contentType, body } = dynamicsWebApiSample();
    const res = await executeBatch(api.opts(contentType, body));
    const ct = /^multipart\/mixed; boundary=(batchresponse_[0-9a-f-]{36})$/.exec(res.headers['content-type'] ?? '');
    assert.ok(ct, `content-type ${res.headers['content-type']}`);
    assert.equal(res.headers['odata-version'], '4.0');
    const boundary = ct[1]!;
    // 1. Starts with the delimiter line, ends with the close delimiter + CRLF; CRLF everywhere.
    assert.ok(res.body.startsWith(`--${boundary}\r\n`));
    assert.ok(res.body.endsWith(`\r\n--${boundary}--\r\n`));
    assert.doesNotMatch(res.body, /[^\r]\n/, 'no bare LF');
    const parts = topParts(res.body);
    assert.equal(parts.length, 3);
    // 2. The change set part: exactly one header line, a blank line, then the change-set delimiter.
    const cs = /^\r\nContent-Type: multipart\/mixed; boundary=(changesetresponse_[0-9a-f-]{36})\r\n\r\n--\1\r\n/.exec(parts[1]!);
    assert.ok(cs, `change set part:\n${parts[1]}`);
    const csParts = parts[1]!.split(`--${cs[1]}`);
    assert.equal(csParts.length, 5);
    assert.equal(csParts[4], '--\r\n');
    const ids = ['1', '100001', '100002'];
    csParts.slice(1, 4).forEach((p, i) => {
      assert.match(
        p,
        new RegExp(
          `^\\r\\nContent-Type: application/http\\r\\nContent-Transfer-Encoding: binary\\r\\nContent-ID: ${ids[i]}\\r\\n\\r\\n` +
            'HTTP/1\\.1 204 No Content\\r\\n',
        ),
      );
      // 3. The entity id is on an OData-EntityId line inside the part, ending in (<guid>).
      assert.match(p, /\r\nOData-EntityId: http:\/\/localhost:8080\/api\/data\/v9\.2\/msdyn_iot\w+\([0-9a-f-]{36}\)\r\n/);
    });
    assert.match(csParts[1]!, /\r\nLocation: http:\/\/localhost:8080\/api\/data\/v9\.2\/msdyn_iotdevices\([0-9a-f-]{36}\)\r\n/);
    // Top-level parts: application/http + binary, status line, OData-Version added, body after a blank line.
    assert.match(
      parts[0]!,
      /^\r\nContent-Type: application\/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP\/1\.1 200 OK\r\nContent-Type: application\/json; odata\.metadata=minimal\r\nOData-Version: 4\.0\r\n\r\n\{.*\}\r\n$/,
    );
    // A reason phrase with a hyphen would break the client's status regex; Content-Length is not copied.
    assert.match(parts[2]!, /\r\nHTTP\/1\.1 203 Non Authoritative Information\r\nContent-Type: application\/json\r\nOData-Version: 4\.0\r\n\r\n\{\}\r\n$/);
  });

  it('keeps header values from breaking out of their line', async () => {
    const api = fakeApi(() => ({ status: 204, headers: { 'x-evil': 'a\r\n--batchresponse_x\r\nb' }, body: '' }));
    const res = await executeBatch(api.opts('multipart/mixed; boundary=b', '--b\r\n' + httpPart('DELETE a(1) HTTP/1.1\n') + '\r\n--b--'));
    assert.match(res.body, /\r\nX-Evil: a --batchresponse_x b\r\n/);
  });
});
