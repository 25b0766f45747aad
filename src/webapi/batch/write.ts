/**
 * Serialisation of a `$batch` response in Dataverse's exact layout (execute-batch-operations-using-web-api.md,
 * "Batch responses" and "Change sets"). DynamicsWebApi 2.5.0 parses it with string splitting, not a MIME parser, so
 * the constraints of reference/odata.md §2.5 are load-bearing:
 *  1. the body starts with the `--batchresponse_<uuid>` line (the client takes its first line as the delimiter);
 *  2. a change set part has exactly one header line, `Content-Type: multipart/mixed; boundary=changesetresponse_<uuid>`
 *     (the client drops one line and expects the change-set delimiter next);
 *  3. every inner response has a status line `HTTP/1.1 <3 digits> <reason of word characters and spaces>`, and an
 *     `OData-EntityId:` line inside the part carries the id of an empty-bodied create/upsert.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';

export interface WrittenResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface ResponseEntry {
  readonly response: WrittenResponse;
  /** Echoed as `Content-ID` so clients can pair responses with requests (§1.10). */
  readonly contentId?: string;
}

export type ResponsePart =
  | ({ readonly kind: 'response' } & ResponseEntry)
  | { readonly kind: 'changeset'; readonly entries: readonly ResponseEntry[] };

const CRLF = '\r\n';

/**
 * Reason phrases restricted to word characters and spaces: DynamicsWebApi's status regex is
 * `HTTP\/?\s*[\d.]*\s+(\d{3})\s+([\w\s]*)$`, so `Non-Authoritative Information` or `I'm a Teapot` would make it
 * throw on a null match. Dataverse itself only uses plain phrases (`No Content`, `Bad Request`, `Precondition Failed`).
 */
export function reasonPhrase(status: number): string {
  const phrase = (STATUS_CODES[status] ?? 'Unknown Status').replace(/[^\w ]+/g, ' ').replace(/ {2,}/g, ' ').trim();
  return phrase === '' ? 'Unknown Status' : phrase;
}

/** Header names as Dataverse spells them; unknown lower-case names are title-cased word by word. */
const CANONICAL: Record<string, string> = {
  etag: 'ETag',
  'odata-version': 'OData-Version',
  'odata-maxversion': 'OData-MaxVersion',
  'odata-entityid': 'OData-EntityId',
  'www-authenticate': 'WWW-Authenticate',
  'content-id': 'Content-ID',
};

function headerName(name: string): string {
  const lower = name.toLowerCase();
  if (CANONICAL[lower] !== undefined) return CANONICAL[lower];
  if (name !== lower) return name;
  return lower.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

/**
 * Headers that describe the outer HTTP message, or that would be wrong once the body sits inside a multipart part
 * (Dataverse writes no `Content-Length` on inner responses).
 */
const DROPPED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive']);

/** A header value may not break out of its line: that would forge headers or parts. */
function headerValue(value: string): string {
  return value.replace(/[\r\n]+/g, ' ');
}

function writeResponse(lines: string[], response: WrittenResponse): void {
  lines.push(`HTTP/1.1 ${response.status} ${reasonPhrase(response.status)}`);
  let hasVersion = false;
  for (const [name, value] of Object.entries(response.headers)) {
    const lower = name.toLowerCase();
    if (DROPPED.has(lower)) continue;
    if (lower === 'odata-version') hasVersion = true;
    lines.push(`${headerName(name)}: ${headerValue(value)}`);
  }
  // Every Dataverse response carries OData-Version (§1.13), inner batch responses included.
  if (!hasVersion) lines.push('OData-Version: 4.0');
  lines.push('', response.body);
}

function writeEntry(lines: string[], entry: ResponseEntry): void {
  lines.push('Content-Type: application/http', 'Content-Transfer-Encoding: binary');
  if (entry.contentId !== undefined) lines.push(`Content-ID: ${headerValue(entry.contentId)}`);
  lines.push('');
  writeResponse(lines, entry.response);
}

/**
 * Writes the multipart body and its Content-Type. `uuid` is injectable so tests can pin the boundaries.
 */
export function writeBatchResponse(
  parts: readonly ResponsePart[],
  uuid: () => string = randomUUID,
): { contentType: string; body: string } {
  const boundary = `batchresponse_${uuid()}`;
  const lines: string[] = [];
  for (const part of parts) {
    lines.push(`--${boundary}`);
    if (part.kind === 'response') {
      writeEntry(lines, part);
      continue;
    }
    const csBoundary = `changesetresponse_${uuid()}`;
    lines.push(`Content-Type: multipart/mixed; boundary=${csBoundary}`, '');
    for (const entry of part.entries) {
      lines.push(`--${csBoundary}`);
      writeEntry(lines, entry);
    }
    lines.push(`--${csBoundary}--`);
  }
  lines.push(`--${boundary}--`, '');
  return { contentType: `multipart/mixed; boundary=${boundary}`, body: lines.join(CRLF) };
}
