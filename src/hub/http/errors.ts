import { randomUUID } from 'node:crypto';
import { ERRORS, isCcsError, type ErrorCode } from '../../errors/index.js';

/**
 * IoT Hub's HTTP error shape. The service SDK reads only `Message`, splits it on `;` and takes `ErrorCode:<code>` from
 * the first part and the text from the second (azure-iothub `common-http/http.ts` parseErrorBody); its
 * `translateError` then picks the error class from the status, and for 404 from the code (DeviceNotFound,
 * IotHubNotFound). `ExceptionMessage` carries a tracking id, as IoT Hub's does, for support.
 */
export interface IotHubErrorBody {
  readonly Message: string;
  readonly ExceptionMessage: string;
}

export interface IotHubHttpError {
  readonly status: number;
  /** IoT Hub's error code name, also sent as the `iothub-errorcode` header. */
  readonly code: string;
  readonly headers: Record<string, string>;
  readonly body: IotHubErrorBody;
}

/**
 * ccs's generic codes, named as IoT Hub names the same condition (IoT Hub error codes:
 * https://learn.microsoft.com/azure/iot-hub/troubleshoot-error-codes). Codes already named after IoT Hub's
 * (DeviceNotFound, DeviceNotOnline, PreconditionFailed…) pass through unchanged.
 */
const IOTHUB_NAME: Readonly<Partial<Record<ErrorCode, string>>> = {
  BadRequest: 'ArgumentInvalid',
  MalformedJson: 'ArgumentInvalid',
  InvalidQuery: 'ArgumentInvalid',
  UnknownProperty: 'ArgumentInvalid',
  InvalidValue: 'ArgumentInvalid',
  MaxLengthExceeded: 'ArgumentInvalid',
  RequiredValueMissing: 'ArgumentInvalid',
  ReadOnlyColumn: 'ArgumentInvalid',
  InvalidKey: 'ArgumentInvalid',
  ResourceNotFound: 'NotFound',
  RecordNotFound: 'DeviceNotFound',
  VersionMismatch: 'PreconditionFailed',
  RecordExists: 'DeviceAlreadyExists',
  DuplicateKey: 'DeviceAlreadyExists',
  Unauthorized: 'IotHubUnauthorizedAccess',
  MissingPrivilege: 'IotHubUnauthorizedAccess',
  TooManyRequests: 'ThrottlingException',
  PayloadTooLarge: 'MessageTooLarge',
  Internal: 'ServerError',
};

/** IoT Hub stamps each error with a tracking id and a UTC time; clients show it, none parses it. */
function exceptionMessage(): string {
  return `Tracking ID:${randomUUID().replaceAll('-', '')}-TimeStamp:${new Date().toISOString()}`;
}

/**
 * The one mapping of errors to IoT Hub HTTP answers for the hub's HTTP routes: the status comes from the shared
 * catalogue, the code is IoT Hub's name for it. Unknown errors become a bare 500 (the caller logs them).
 */
export function toIotHubError(e: unknown): IotHubHttpError {
  let code = 'ServerError';
  let status = 500;
  let text = 'An unexpected error occurred.';
  let extra: Record<string, string> = {};
  if (isCcsError(e)) {
    code = IOTHUB_NAME[e.code] ?? e.code;
    status = ERRORS[e.code].status;
    text = e.code === 'Internal' ? text : e.message;
    extra = e.headers;
  }
  // `;` separates the code from the text in `Message`: one in the text would cut what the SDK shows.
  const safe = text.replaceAll(';', ',').replaceAll(/[\r\n]+/g, ' ');
  return {
    status,
    code,
    headers: { ...extra, 'iothub-errorcode': code, 'content-type': 'application/json; charset=utf-8' },
    body: { Message: `ErrorCode:${code};${safe}`, ExceptionMessage: exceptionMessage() },
  };
}
