/**
 * Parsing of a `$batch` request body (multipart/mixed, OData v4.0 part 1 §11.7; Dataverse's profile in
 * reference/odata.md §1.10 and the exact DynamicsWebApi 2.5.0 request in §2.5).
 *
 * The parser is deliberately lenient about what real clients vary on (CRLF or LF, quoted or bare boundary, `:` with or
 * without a space, a blank line before a delimiter, preamble and epilogue) and strict about structure: anything that
 * cannot be split into parts and embedded requests is a `CcsError('InvalidBatch')`, which the HTTP layer answers 400.
 */
import { CcsError } from '../../errors/index.js';

/** One embedded HTTP request, as written by the client (URL not yet resolved). */
export interface ParsedRequest {
  readonly method: string;
  /** The request-target exactly as sent: absolute, root-relative, service-root-relative or `$n…`. */
  readonly url: string;
  /** Lower-case names. */
  readonly headers: Record<string, string>;
  readonly body: string;
  /** From the part's MIME `Content-ID` header (or, failing that, from the embedded request's headers). */
  readonly contentId?: string;
}

export type BatchItem =
  | { readonly kind: 'request'; readonly request: ParsedRequest }
  | { readonly kind: 'changeset'; readonly requests: readonly ParsedRequest[] };

/** Dataverse's documented limit (execute-batch-operations-using-web-api.md, "When to use batch requests"). */
export const MAX_REQUESTS_PER_BATCH = 1000;

function invalid(message: string): never {
  throw new CcsError('InvalidBatch', message);
}

/**
 * Returns the `boundary` parameter of a `multipart/mixed` media type. DynamicsWebApi sends
 * `multipart/mixed;boundary=dwa_batch_<uuid>` (no space, unquoted); Microsoft's samples send
 * `multipart/mixed; boundary="batch_<id>"` (§1.10), so both spellings are accepted.
 */
export function multipartBoundary(contentType: string, what: string): string {
  const [mediaType = '', ...params] = splitParams(contentType);
  if (mediaType.trim().toLowerCase() !== 'multipart/mixed') {
    invalid(`The ${what} must have Content-Type multipart/mixed with a boundary, not '${contentType}'.`);
  }
  for (const param of params) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    if (param.slice(0, eq).trim().toLowerCase() !== 'boundary') continue;
    let value = param.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    if (value === '') break;
    return value;
  }
  return invalid(`The ${what} Content-Type '${contentType}' has no boundary parameter.`);
}

/** Splits `type; a=b; c="d;e"` on the semicolons that are not inside a quoted string. */
function splitParams(value: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (quoted && ch === '\\' && i + 1 < value.length) {
      current += ch + value[i + 1];
      i++;
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (ch === ';' && !quoted) {
      out.push(current);
      current = '';
      continue;
    }
    current += ch;
  }
  out.push(current);
  return out;
}

/**
 * Splits a multipart body into the raw text of its body parts (RFC 2046 §5.1.1). A delimiter is a line that is exactly
 * `--boundary` (trailing spaces allowed); the line break in front of it belongs to the delimiter, not to the part.
 * Everything before the first delimiter (DynamicsWebApi starts its body with a CRLF) and after the close delimiter is
 * preamble/epilogue and ignored.
 */
export function splitMultipart(body: string, boundary: string, what: string): string[] {
  const open = `--${boundary}`;
  const close = `${open}--`;
  const parts: string[] = [];
  let partStart = -1;
  let pos = 0;
  while (pos <= body.length) {
    const nl = body.indexOf('\n', pos);
    const lineEnd = nl < 0 ? body.length : nl;
    const next = nl < 0 ? body.length + 1 : nl + 1;
    if (body.startsWith('--', pos)) {
      const line = body.slice(pos, lineEnd).replace(/[ \t\r]+$/, '');
      if (line === open || line === close) {
        if (partStart >= 0) parts.push(body.slice(partStart, lineBreakStart(body, pos)));
        if (line === close) {
          if (partStart < 0) invalid(`The ${what} closes with '${close}' before any part.`);
          return parts;
        }
        partStart = Math.min(next, body.length);
      }
    }
    pos = next;
  }
  if (partStart < 0) invalid(`The ${what} has no part: no line '${open}' was found.`);
  return invalid(`The ${what} is not terminated: the closing delimiter '${close}' is missing.`);
}

/** Index of the CRLF or LF that precedes the line starting at `lineStart` (or `lineStart` when there is none). */
function lineBreakStart(text: string, lineStart: number): number {
  if (lineStart > 0 && text[lineStart - 1] === '\n') return lineStart >= 2 && text[lineStart - 2] === '\r' ? lineStart - 2 : lineStart - 1;
  return lineStart;
}

const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*:[ \t]*(.*)$/;

/** Reads header lines up to the first empty line; returns them (lower-case names) and the text after the empty line. */
function readHeaders(text: string, where: string): { headers: Record<string, string>; rest: string } {
  const headers: Record<string, string> = {};
  let lastName: string | undefined;
  let pos = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    const lineEnd = nl < 0 ? text.length : nl;
    const line = text.slice(pos, lineEnd).replace(/\r$/, '');
    pos = nl < 0 ? text.length : nl + 1;
    if (line === '') return { headers, rest: text.slice(pos) };
    if ((line.startsWith(' ') || line.startsWith('\t')) && lastName !== undefined) {
      // Obsolete line folding (RFC 7230 §3.2.4): a continuation of the previous header.
      headers[lastName] = `${headers[lastName]} ${line.trim()}`;
      continue;
    }
    const m = HEADER_LINE.exec(line);
    if (!m) invalid(`Malformed header line '${line}' in ${where}.`);
    lastName = m[1]!.toLowerCase();
    const value = m[2]!.trim();
    headers[lastName] = headers[lastName] === undefined ? value : `${headers[lastName]}, ${value}`;
  }
  return { headers, rest: '' };
}

const REQUEST_LINE = /^([A-Za-z]+)[ \t]+(\S+)(?:[ \t]+HTTP\/\d(?:\.\d)?)?[ \t]*$/;

/** Parses one `application/http` body part into its embedded request (method line, headers, blank line, body). */
function parseEmbeddedRequest(text: string, mimeHeaders: Record<string, string>, where: string): ParsedRequest {
  checkTransferEncoding(mimeHeaders, where);
  // Some hand-written batches put an extra blank line between the MIME headers and the request line.
  const trimmed = text.replace(/^(?:[ \t]*\r?\n)+/, '');
  const nl = trimmed.indexOf('\n');
  const requestLine = (nl < 0 ? trimmed : trimmed.slice(0, nl)).replace(/\r$/, '');
  const m = REQUEST_LINE.exec(requestLine);
  if (!m) {
    return requestLine === ''
      ? invalid(`${capitalise(where)} has no request line.`)
      : invalid(`Malformed request line '${requestLine}' in ${where}; expected 'METHOD URL HTTP/1.1'.`);
  }
  const { headers, rest } = readHeaders(nl < 0 ? '' : trimmed.slice(nl + 1), where);
  // The blank line clients put before the next delimiter (DynamicsWebApi, §2.5) is not part of the entity.
  const body = rest.replace(/(?:\r?\n)+$/, '');
  const contentId = mimeHeaders['content-id'] ?? headers['content-id'];
  delete headers['content-id'];
  return { method: m[1]!.toUpperCase(), url: m[2]!, headers, body, ...(contentId === undefined ? {} : { contentId }) };
}

function checkTransferEncoding(mimeHeaders: Record<string, string>, where: string): void {
  const cte = mimeHeaders['content-transfer-encoding'];
  // §1.10: parts carry `Content-Transfer-Encoding: binary`; 7bit/8bit are equivalent for text. Anything else
  // (base64, quoted-printable) would need decoding that no Dataverse client asks for.
  if (cte !== undefined && !['binary', '7bit', '8bit'].includes(cte.toLowerCase())) {
    invalid(`Unsupported Content-Transfer-Encoding '${cte}' in ${where}; use 'binary'.`);
  }
}

function mediaTypeOf(headers: Record<string, string>): string {
  return (headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/**
 * Parses a `$batch` request into top-level requests and change sets, in order. Throws `CcsError('InvalidBatch')`
 * for anything structurally wrong, including more than {@link MAX_REQUESTS_PER_BATCH} requests.
 */
export function parseBatch(contentType: string, body: string): BatchItem[] {
  const boundary = multipartBoundary(contentType, '$batch request');
  const items: BatchItem[] = [];
  let count = 0;
  splitMultipart(body, boundary, '$batch body').forEach((raw, i) => {
    const where = `batch part ${i + 1}`;
    const { headers, rest } = readHeaders(raw, where);
    const type = mediaTypeOf(headers);
    if (type === 'application/http') {
      items.push({ kind: 'request', request: parseEmbeddedRequest(rest, headers, where) });
      count++;
    } else if (type === 'multipart/mixed') {
      const csBoundary = multipartBoundary(headers['content-type']!, `change set in ${where}`);
      const requests = splitMultipart(rest, csBoundary, `change set in ${where}`).map((csRaw, j) => {
        const csWhere = `request ${j + 1} of the change set in ${where}`;
        const csPart = readHeaders(csRaw, csWhere);
        const csType = mediaTypeOf(csPart.headers);
        if (csType === 'multipart/mixed') invalid(`Change sets cannot be nested (${csWhere}).`);
        if (csType !== 'application/http') {
          invalid(`${capitalise(csWhere)} must have Content-Type application/http, not '${csPart.headers['content-type'] ?? ''}'.`);
        }
        return parseEmbeddedRequest(csPart.rest, csPart.headers, csWhere);
      });
      checkUniqueContentIds(requests, where);
      items.push({ kind: 'changeset', requests });
      count += requests.length;
    } else {
      invalid(`${capitalise(where)} must have Content-Type application/http or multipart/mixed, not '${headers['content-type'] ?? ''}'.`);
    }
    if (count > MAX_REQUESTS_PER_BATCH) {
      invalid(`A batch can contain at most ${MAX_REQUESTS_PER_BATCH} requests.`);
    }
  });
  return items;
}

/** A Content-ID names one request of its change set (OData v4.0 part 1 §11.7.3.1), so it must be unique there. */
function checkUniqueContentIds(requests: readonly ParsedRequest[], where: string): void {
  const seen = new Set<string>();
  for (const r of requests) {
    if (r.contentId === undefined) continue;
    if (seen.has(r.contentId)) invalid(`Content-ID '${r.contentId}' is used twice in the change set in ${where}.`);
    seen.add(r.contentId);
  }
}

/**
 * Turns any request-target clients write inside a batch into the service-root-relative form the handler expects:
 * `http://host/api/data/v9.2/x?q`, `/api/data/v9.1/x?q` and `x?q` all become `x?q` (§1.10; any version segment is
 * accepted, §1.1). Absolute URLs are not checked against the host: proxies and `localhost` vs `127.0.0.1` make the host
 * spelling unreliable, and the batch was already addressed to us. The text is kept verbatim (no `new URL`), because
 * WHATWG URL parsing would re-encode quotes in key and query segments. Returns undefined for a path outside the API.
 */
export function toServiceRelative(url: string): string | undefined {
  let path = url;
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(path);
  if (scheme) {
    path = path.slice(scheme[0].length);
    if (!path.startsWith('/')) path = `/${path}`;
  }
  if (!path.startsWith('/')) return path;
  const root = /^[^?#]*?\/api\/data\/v\d+(?:\.\d+)?(?:\/|(?=[?#]|$))/i.exec(path);
  return root ? path.slice(root[0].length) : undefined;
}
