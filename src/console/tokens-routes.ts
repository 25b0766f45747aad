/**
 * Token administration over HTTP, for the console's Tokens page: what `ccs token create|list|revoke` does on the
 * command line. Tokens are not a Web API table (they are stored as hashes outside the model), so these routes live
 * beside the Web API rather than in it:
 *
 * - `GET /api/tokens` → `{ value: TokenInfo[], roles: string[] }`
 * - `POST /api/tokens` `{ "name": "…", "role": "…" }` → 201 `{ token, info }`; the secret is shown this once
 * - `DELETE /api/tokens/{id}` → 204
 *
 * Only the `admin` role may call them: a token can grant any role, so holding every table privilege (as the
 * `integration` role does) is not enough — that would let an integration mint itself an admin token.
 */
import type { FastifyInstance } from 'fastify';
import { CcsError } from '../errors/index.js';
import type { RateLimiter, TokenService } from '../security/index.js';
import { principalOf, sendError } from './events.js';

export const TOKEN_ADMIN_ROLE = 'admin';

export interface TokenRoutesDeps {
  readonly tokens: TokenService;
  readonly limiter?: RateLimiter;
}

const NAME_MAX = 100;

function parseBody(body: unknown): Record<string, unknown> {
  const text = typeof body === 'string' ? body : '';
  let value: unknown;
  try {
    value = JSON.parse(text === '' ? '{}' : text);
  } catch (e) {
    throw new CcsError('MalformedJson', `Invalid JSON in request body: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CcsError('MalformedJson', 'The request body must be a JSON object.');
  return value as Record<string, unknown>;
}

export function registerTokenRoutes(app: FastifyInstance, deps: TokenRoutesDeps): void {
  const { tokens } = deps;
  const admin = async (req: Parameters<typeof principalOf>[0]) => {
    const principal = await principalOf(req, tokens, false);
    deps.limiter?.take(principal.tokenId ?? principal.userId);
    if (principal.role !== TOKEN_ADMIN_ROLE) {
      throw new CcsError('MissingPrivilege', `Only the '${TOKEN_ADMIN_ROLE}' role may manage tokens; this token has the role '${principal.role}'.`);
    }
    return principal;
  };
  const json = { 'Content-Type': 'application/json; charset=utf-8' };

  app.get('/api/tokens', async (req, reply) => {
    try {
      await admin(req);
      return reply.headers(json).send(JSON.stringify({ value: await tokens.list(), roles: tokens.roleNames() }));
    } catch (e) {
      return sendError(reply, e);
    }
  });

  app.post('/api/tokens', async (req, reply) => {
    try {
      await admin(req);
      const body = parseBody(req.body);
      const name = body['name'];
      const role = body['role'];
      if (typeof name !== 'string' || name.trim() === '') throw new CcsError('RequiredValueMissing', "'name' is required: a name that says who or what uses the token.");
      if (name.length > NAME_MAX) throw new CcsError('MaxLengthExceeded', `'name' is longer than ${NAME_MAX} characters.`);
      if (typeof role !== 'string' || !tokens.roleNames().includes(role)) {
        throw new CcsError('InvalidValue', `'role' must be one of ${tokens.roleNames().join(', ')}.`);
      }
      const created = await tokens.create({ name: name.trim(), role });
      return reply.status(201).headers(json).send(JSON.stringify(created));
    } catch (e) {
      return sendError(reply, e);
    }
  });

  app.delete<{ Params: { id: string } }>('/api/tokens/:id', async (req, reply) => {
    try {
      const principal = await admin(req);
      if (req.params.id === principal.tokenId) throw new CcsError('BadRequest', 'A token cannot revoke itself; sign in with another admin token to revoke this one.');
      const known = (await tokens.list()).some((t) => t.id === req.params.id);
      if (!known || !(await tokens.revoke(req.params.id))) throw new CcsError('RecordNotFound', `No token with the id '${req.params.id}'.`);
      return reply.status(204).send();
    } catch (e) {
      return sendError(reply, e);
    }
  });
}
