import assert from 'node:assert/strict';
import { ERRORS, isCcsError, type ErrorCode } from '../../src/errors/index.js';

/** Asserts that `fn` throws a CcsError with `code`, and that its message matches `message` when given. */
export function assertCcsError(fn: () => unknown, code: ErrorCode, message?: string | RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown !== undefined, `expected a ${code} error, but nothing was thrown`);
  assert.ok(isCcsError(thrown), `expected a CcsError, got ${String(thrown)}`);
  assert.equal(thrown.code, code, `expected ${code}, got ${thrown.code}: ${thrown.message}`);
  if (typeof message === 'string') assert.equal(thrown.message, message);
  else if (message) assert.match(thrown.message, message);
}

/** A client error the Web API answers with 4xx or 501, never a 500. */
export function isClientError(e: unknown): boolean {
  if (!isCcsError(e)) return false;
  const status = ERRORS[e.code].status;
  return (status >= 400 && status < 500) || status === 501;
}
