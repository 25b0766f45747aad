/**
 * Execution of a parsed `$batch` with Dataverse's semantics (reference/odata.md §1.10,
 * execute-batch-operations-using-web-api.md): parts run in order; a change set runs in one transaction and answers
 * either all its responses or only the failing one; without `Prefer: odata.continue-on-error` the batch stops at the
 * first failure and answers 400 with only the failing part; with it, 200 and one response per part.
 */
import { CcsError, isCcsError, toHttpError, type ErrorCode } from '../../errors/index.js';
import { parseBatch, toServiceRelative, type ParsedRequest } from './parse.js';
import { MissingReference, resolveBodyReferences, resolveUrlReference, type EntityRef, type Refs } from './references.js';
import { writeBatchResponse, type ResponseEntry, type ResponsePart } from './write.js';

export interface InnerRequest {
  method: string;
  /**
   * Path and query relative to the service root, e.g. `msdyn_iotdevices(…)?$select=a` (no leading slash), after
   * resolving absolute URLs, root-relative `/api/data/v9.2/…` URLs and `$n` references. Still percent-encoded as sent.
   */
  url: string;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: string;
}

export interface InnerResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type Handler = (req: InnerRequest) => Promise<InnerResponse>;

export interface BatchOptions {
  /** The `$batch` request's Content-Type header (`multipart/mixed; boundary=…`, quoted or not). */
  contentType: string;
  body: string;
  /** Absolute service root the client used, e.g. `http://localhost:8080/api/data/v9.2/`. */
  serviceRoot: string;
  /** `Prefer: odata.continue-on-error`. */
  continueOnError: boolean;
  /**
   * Executes one request outside any change set. A `CcsError` it throws becomes that part's error response; any other
   * error aborts the batch (the HTTP layer logs it and answers 500).
   */
  handle: Handler;
  /** Runs `fn` in one transaction; if `fn` throws, everything it did is rolled back and the error is rethrown. */
  changeSet<T>(fn: (handle: Handler) => Promise<T>): Promise<T>;
}

export interface BatchResult {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Thrown inside `opts.changeSet` so the transaction rolls back; carries the response that made it fail. */
class ChangeSetFailed extends Error {
  constructor(readonly entry: ResponseEntry) {
    super('change set failed');
  }
}

function errorResponse(code: ErrorCode, message: string): InnerResponse {
  return fromError(new CcsError(code, message));
}

/** The same Dataverse error envelope a non-batch request gets (errors/index.ts `toHttpError`, §1.12). */
function fromError(e: CcsError): InnerResponse {
  const http = toHttpError(e);
  return {
    status: http.status,
    headers: { 'content-type': 'application/json; odata.metadata=minimal', 'odata-version': '4.0', ...http.headers },
    body: JSON.stringify(http.body),
  };
}

function header(headers: Record<string, string>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

function missing(ref: MissingReference): InnerResponse {
  // Dataverse's wording (execute-batch-operations-using-web-api.md, "Reference URIs in an operation").
  return errorResponse('ContentIdNotFound', `Content-ID Reference: '${ref.reference}' does not exist in the batch context.`);
}

/**
 * Resolves the URL and `$n` references of one request and runs it. `refs` holds the Content-IDs defined so far in the
 * enclosing change set; outside a change set it is empty, so every `$n` is undefined there (§1.10).
 */
async function runOne(req: ParsedRequest, handle: Handler, refs: Refs): Promise<InnerResponse> {
  const relative = toServiceRelative(req.url);
  if (relative === undefined) {
    return errorResponse('BadRequest', `The request URL '${req.url}' is not under the Web API root '/api/data/v<version>/'.`);
  }
  const url = resolveUrlReference(relative, refs);
  if (url instanceof MissingReference) return missing(url);
  if (/^\$batch(?:[/?#]|$)/.test(url)) {
    // execute-batch-operations-using-web-api.md: batch requests "can't contain other batch requests".
    return errorResponse('InvalidBatch', 'A batch request cannot contain another batch request.');
  }
  const body = resolveBodyReferences(req.body, refs);
  if (body instanceof MissingReference) return missing(body);
  try {
    return await handle({ method: req.method, url, headers: { ...req.headers }, body });
  } catch (e) {
    if (isCcsError(e)) return fromError(e);
    throw e;
  }
}

/**
 * The entity a successful request stands for, from its `OData-EntityId` header (Dataverse sends it on creates,
 * updates and upserts, also inside batches), else `Location`. Kept relative for binds and URLs, and re-rooted on the
 * client's service root for `@odata.id`, so the version segment the client used is echoed (§1.1).
 */
function entityRefOf(response: InnerResponse, serviceRoot: string): EntityRef | undefined {
  const url = header(response.headers, 'odata-entityid') ?? header(response.headers, 'location');
  if (url === undefined) return undefined;
  const relative = toServiceRelative(url);
  if (relative === undefined || relative === '') return undefined;
  return { relative, absolute: serviceRoot + relative };
}

function entry(req: ParsedRequest, response: InnerResponse): ResponseEntry {
  return req.contentId === undefined ? { response } : { response, contentId: req.contentId };
}

type Outcome = { part: ResponsePart; failed: boolean };

async function runChangeSet(requests: readonly ParsedRequest[], opts: BatchOptions, serviceRoot: string): Promise<Outcome> {
  // Checked before opening the transaction: a change set with a GET can never succeed (§1.10, "GET is not allowed").
  const get = requests.find((r) => r.method === 'GET');
  if (get) {
    const response = errorResponse('InvalidBatch', 'GET requests are not allowed inside a change set.');
    return { part: { kind: 'response', ...entry(get, response) }, failed: true };
  }
  try {
    const entries = await opts.changeSet(async (tx) => {
      const refs = new Map<string, EntityRef>();
      const done: ResponseEntry[] = [];
      for (const req of requests) {
        const response = await runOne(req, tx, refs);
        // Throwing is what rolls the transaction back; the failing response is the change set's only answer.
        if (response.status >= 400) throw new ChangeSetFailed(entry(req, response));
        if (req.contentId !== undefined) {
          const ref = entityRefOf(response, serviceRoot);
          if (ref) refs.set(req.contentId, ref);
        }
        done.push(entry(req, response));
      }
      return done;
    });
    return { part: { kind: 'changeset', entries }, failed: false };
  } catch (e) {
    if (e instanceof ChangeSetFailed) return { part: { kind: 'response', ...e.entry }, failed: true };
    throw e;
  }
}

/**
 * Parses, executes and answers one `$batch`. Throws `CcsError('InvalidBatch')` when the body cannot be parsed (or has
 * more than 1000 requests); the HTTP layer maps it to a plain 400 error, as for any malformed request.
 */
export async function executeBatch(opts: BatchOptions): Promise<BatchResult> {
  const items = parseBatch(opts.contentType, opts.body);
  const serviceRoot = opts.serviceRoot.endsWith('/') ? opts.serviceRoot : `${opts.serviceRoot}/`;
  const parts: ResponsePart[] = [];
  let failure: ResponsePart | undefined;
  for (const item of items) {
    let outcome: Outcome;
    if (item.kind === 'request') {
      const response = await runOne(item.request, opts.handle, new Map());
      outcome = { part: { kind: 'response', ...entry(item.request, response) }, failed: response.status >= 400 };
    } else {
      outcome = await runChangeSet(item.requests, opts, serviceRoot);
    }
    if (outcome.failed && !opts.continueOnError) {
      failure = outcome.part;
      break;
    }
    parts.push(outcome.part);
  }
  // §1.10: without odata.continue-on-error the batch answers 400 and its body holds only the failing part.
  const written = writeBatchResponse(failure ? [failure] : parts);
  const headers: Record<string, string> = { 'content-type': written.contentType, 'odata-version': '4.0' };
  if (opts.continueOnError) headers['preference-applied'] = 'odata.continue-on-error';
  return { status: failure ? 400 : 200, headers, body: written.body };
}
