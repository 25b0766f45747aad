/**
 * Every error ccs reports to a client, with a stable code. Domain code throws `CcsError(code, message)`; the Web API
 * maps the code to an HTTP status and a Dataverse error code in one place (`toHttpError`).
 */
export const ERRORS = {
  // Request syntax and shape
  BadRequest: { status: 400, hex: '0x80060888' },
  MalformedJson: { status: 400, hex: '0x80040333' },
  InvalidQuery: { status: 400, hex: '0x80060888' },
  UnknownProperty: { status: 400, hex: '0x80060888' },
  InvalidValue: { status: 400, hex: '0x80044331' },
  MaxLengthExceeded: { status: 400, hex: '0x80044331' },
  RequiredValueMissing: { status: 400, hex: '0x80044331' },
  ReadOnlyColumn: { status: 400, hex: '0x80044331' },
  InvalidKey: { status: 400, hex: '0x8006088a' },
  UnresolvedParameters: { status: 400, hex: '0x80060891' },
  InvalidBatch: { status: 400, hex: '0x80060889' },
  ContentIdNotFound: { status: 400, hex: '0x80060889' },
  InvalidMetadata: { status: 400, hex: '0x80044355' },
  // Resource resolution
  ResourceNotFound: { status: 404, hex: '0x8006088a' },
  RecordNotFound: { status: 404, hex: '0x80040217' },
  MethodNotAllowed: { status: 405, hex: '0x80060888' },
  NotAcceptable: { status: 406, hex: '0x80060888' },
  // Concurrency and conflicts
  VersionMismatch: { status: 412, hex: '0x80060882' },
  RecordExists: { status: 412, hex: '0x80040237' },
  DuplicateKey: { status: 412, hex: '0x80040237' },
  // Security
  Unauthorized: { status: 401, hex: '0x80040220' },
  MissingPrivilege: { status: 403, hex: '0x80040220' },
  TooManyRequests: { status: 429, hex: '0x80072322' },
  // Size and support
  PayloadTooLarge: { status: 413, hex: '0x80060888' },
  UnsupportedMediaType: { status: 415, hex: '0x80060888' },
  NotImplemented: { status: 501, hex: '0x8006088b' },
  Internal: { status: 500, hex: '0x80040216' },
  // IoT Hub conditions. The code is IoT Hub's own `ErrorCode` name, so the hub's REST layer can answer
  // `{"Message":"ErrorCode:<code>;…"}` as the service SDK expects (rest_api_client.ts translateError); the hex is the
  // nearest Dataverse code, for when one of these surfaces through the Web API.
  ArgumentInvalid: { status: 400, hex: '0x80060888' },
  IotHubUnauthorizedAccess: { status: 401, hex: '0x80040220' },
  DeviceMaximumQueueDepthExceeded: { status: 403, hex: '0x80060888' },
  DeviceNotFound: { status: 404, hex: '0x80040217' },
  DeviceNotOnline: { status: 404, hex: '0x80040217' },
  DeviceAlreadyExists: { status: 409, hex: '0x80040237' },
  PreconditionFailed: { status: 412, hex: '0x80060882' },
  DeviceMessageLockLost: { status: 412, hex: '0x80060882' },
  MessageTooLarge: { status: 413, hex: '0x80060888' },
  GatewayTimeout: { status: 504, hex: '0x80040216' },
} as const satisfies Record<string, { status: number; hex: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class CcsError extends Error {
  override readonly name = 'CcsError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra response headers, e.g. `Retry-After` for throttling. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function isCcsError(e: unknown): e is CcsError {
  return e instanceof CcsError;
}

/** Raised by store adapters when a primary or unique key already exists. */
export class DuplicateKeyError extends CcsError {
  constructor(message = 'A record with matching key values already exists.') {
    super('DuplicateKey', message);
  }
}
