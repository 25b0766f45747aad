/**
 * Why a bus request (`Bus.request`) got no answer. Every adapter raises these same classes, so callers can tell "no
 * process is there" (answer at once: the addressee is gone) from "nobody answered in time" (it may be alive but slow,
 * or it died with the request in hand) and from "the responder answered with an error".
 */
export class BusRequestError extends Error {
  override readonly name: string = 'BusRequestError';
  constructor(
    message: string,
    readonly subject: string,
  ) {
    super(message);
  }
}

/** No responder is subscribed to the subject: raised at once, without waiting for the timeout. */
export class BusNoResponderError extends BusRequestError {
  override readonly name = 'BusNoResponderError';
  constructor(subject: string) {
    super(`No responder for '${subject}'.`, subject);
  }
}

/** No answer within the request's timeout. */
export class BusTimeoutError extends BusRequestError {
  override readonly name = 'BusTimeoutError';
  constructor(subject: string, timeoutMs: number) {
    super(`No answer from '${subject}' within ${timeoutMs} ms.`, subject);
  }
}

/** The responder's handler threw: its message, and its `code` when it had a string one. */
export class BusRemoteError extends BusRequestError {
  override readonly name = 'BusRemoteError';
  constructor(
    subject: string,
    message: string,
    readonly code: string | undefined,
  ) {
    super(message, subject);
  }
}

/** What a throwing responder sends back: the message and a string `code` if the error carried one. */
export function describeRemoteError(e: unknown): { message: string; code?: string } {
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? { message, code } : { message };
}
