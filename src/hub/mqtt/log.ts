/** The structured logger the gateway writes to; a pino `Logger` fits. */
export interface GatewayLog {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
