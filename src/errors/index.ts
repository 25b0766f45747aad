import { CcsError, ERRORS, isCcsError, type ErrorCode } from './catalogue.js';

export { CcsError, DuplicateKeyError, ERRORS, isCcsError, type ErrorCode } from './catalogue.js';

export interface HttpError {
  readonly status: number;
  readonly headers: Record<string, string>;
  /** Dataverse error envelope. */
  readonly body: { error: { code: string; message: string } };
}

/**
 * The one mapping of errors to HTTP. Unknown errors become a 500 whose message says nothing about internals; the
 * caller logs them in full.
 */
export function toHttpError(e: unknown): HttpError {
  if (isCcsError(e)) {
    const entry = ERRORS[e.code];
    return { status: entry.status, headers: e.headers, body: { error: { code: entry.hex, message: e.message } } };
  }
  return {
    status: 500,
    headers: {},
    body: { error: { code: ERRORS.Internal.hex, message: 'An unexpected error occurred.' } },
  };
}

export function fail(code: ErrorCode, message: string): never {
  throw new CcsError(code, message);
}
