import type { FastifyError, FastifyInstance } from 'fastify';
import { CcsError } from '../../errors/index.js';
import type { Hub } from '../types.js';
import { registerDeviceRoutes } from './device-routes.js';
import { toIotHubError } from './errors.js';
import { registerServiceRoutes } from './service-routes.js';

export { toIotHubError, type IotHubErrorBody, type IotHubHttpError } from './errors.js';

export interface HubRoutesDeps {
  readonly hub: Hub;
  readonly log: { error(obj: unknown, msg?: string): void };
}

/**
 * Mounts IoT Hub's HTTPS device API and service REST (`/devices/…`, `/twins/…`) on a fastify instance, normally the
 * HTTPS one that also serves the Web API (whose routes live under `/api/data/`, so nothing overlaps). Mount it on the
 * TLS listener only: SAS tokens and device keys must not cross a plain-HTTP port.
 *
 * The routes live in their own encapsulated plugin so that they get raw-byte bodies and IoT Hub's error answers,
 * while the host app keeps its string bodies and Dataverse errors.
 */
export function registerHubRoutes(app: FastifyInstance, deps: HubRoutesDeps): void {
  void app.register(async (scope) => {
    // Telemetry and C2D bodies are bytes, and JSON bodies are parsed by the routes so that a syntax error gets IoT
    // Hub's 400 body; so every body, whatever its content type (or none), arrives as a Buffer.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

    scope.setErrorHandler((error: FastifyError, req, reply) => {
      let e: unknown = error;
      if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        e = new CcsError('MessageTooLarge', `The request body is larger than this endpoint accepts (${req.routeOptions.bodyLimit ?? 'limit'} bytes).`);
      } else if (error.code?.startsWith('FST_') && error.statusCode !== undefined && error.statusCode < 500) {
        e = new CcsError('ArgumentInvalid', error.message);
      }
      const answer = toIotHubError(e);
      if (answer.status >= 500 && answer.status !== 504) deps.log.error({ err: error, url: req.url }, 'hub request failed');
      return reply.status(answer.status).headers(answer.headers).send(JSON.stringify(answer.body));
    });

    registerDeviceRoutes(scope, deps.hub);
    registerServiceRoutes(scope, deps.hub);
  });
}
