import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { CcsError } from '../errors/index.js';
import { eq } from '../store/index.js';
import type { PhysicalTable, Store } from '../store/types.js';
import { createPrincipal, type Principal, type RoleDefinition } from './principal.js';

/** Bearer tokens, stored as SHA-256 hashes only. Not part of the Web API model. */
export const TOKEN_TABLE: PhysicalTable = {
  name: 'ccs_apitoken',
  primaryKey: 'id',
  columns: [
    { name: 'id', type: 'text' },
    { name: 'name', type: 'text' },
    { name: 'role', type: 'text' },
    { name: 'hash', type: 'text' },
    { name: 'userid', type: 'text' },
    { name: 'createdon', type: 'bigint' },
    { name: 'revokedon', type: 'bigint' },
  ],
  indexes: [{ columns: ['hash'], unique: true }],
};

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export interface TokenInfo {
  readonly id: string;
  readonly name: string;
  readonly role: string;
  readonly userId: string;
  readonly createdOn: number;
  readonly revoked: boolean;
}


/**
 * Issues, checks and revokes bearer tokens. Each token acts as one systemuser record (created with the token), which
 * is what `createdby`, `ownerid` and `WhoAmI` report.
 */
export class TokenService {
  /** hash → principal, so a request costs no query once its token has been seen. */
  readonly #cache = new Map<string, { principal: Principal; at: number }>();

  constructor(
    private readonly deps: {
      readonly store: Store;
      readonly roles: Readonly<Record<string, RoleDefinition>>;
      readonly clock: () => number;
      /** Creates the systemuser record that stands for a new token; returns its id. */
      readonly createUser: (name: string) => Promise<string>;
    },
  ) {}

  roleNames(): string[] {
    return Object.keys(this.deps.roles);
  }

  principalFor(opts: { userId: string; name: string; role: string; tokenId?: string }): Principal {
    const access = this.deps.roles[opts.role];
    if (!access) throw new CcsError('BadRequest', `Unknown role '${opts.role}'. Roles: ${this.roleNames().join(', ')}.`);
    return createPrincipal({ ...opts, access });
  }

  /** Creates a token; the secret is returned once and never stored. `secret` fixes it (for `--admin-token`). */
  async create(opts: { role: string; name: string; secret?: string }): Promise<{ token: string; info: TokenInfo }> {
    this.principalFor({ userId: '', name: opts.name, role: opts.role }); // validates the role
    const token = opts.secret ?? `ccs_${randomBytes(32).toString('base64url')}`;
    const userId = await this.deps.createUser(opts.name);
    const info: TokenInfo = { id: randomUUID(), name: opts.name, role: opts.role, userId, createdOn: this.deps.clock(), revoked: false };
    await this.deps.store.insert(TOKEN_TABLE.name, {
      id: info.id, name: info.name, role: info.role, hash: hashToken(token), userid: userId, createdon: info.createdOn, revokedon: null,
    });
    return { token, info };
  }

  async list(): Promise<TokenInfo[]> {
    const rows = await this.deps.store.select({ table: TOKEN_TABLE.name, orderBy: [{ column: 'createdon' }] });
    return rows.map((r) => ({
      id: String(r['id']), name: String(r['name']), role: String(r['role']), userId: String(r['userid']),
      createdOn: Number(r['createdon']), revoked: r['revokedon'] !== null,
    }));
  }

  async revoke(id: string): Promise<boolean> {
    const n = await this.deps.store.update(TOKEN_TABLE.name, { revokedon: this.deps.clock() }, eq('id', id));
    this.#cache.clear();
    return n > 0;
  }

  async hasRole(role: string): Promise<boolean> {
    return (await this.list()).some((t) => t.role === role && !t.revoked);
  }

  async existsWithSecret(secret: string): Promise<boolean> {
    return (await this.deps.store.count({ table: TOKEN_TABLE.name, where: eq('hash', hashToken(secret)) })) > 0;
  }

  /** The principal a bearer token stands for, or undefined when the token is unknown or revoked. */
  async authenticate(token: string): Promise<Principal | undefined> {
    const hash = hashToken(token);
    const cached = this.#cache.get(hash);
    // Short cache: a revocation on another node takes effect within this time.
    if (cached && this.deps.clock() - cached.at < 30_000) return cached.principal;
    const rows = await this.deps.store.select({ table: TOKEN_TABLE.name, where: eq('hash', hash), limit: 1 });
    const r = rows[0];
    if (!r || r['revokedon'] !== null || !this.deps.roles[String(r['role'])]) return undefined;
    const principal = this.principalFor({ userId: String(r['userid']), name: String(r['name']), role: String(r['role']), tokenId: String(r['id']) });
    this.#cache.set(hash, { principal, at: this.deps.clock() });
    return principal;
  }
}

/** Service protection: at most `limit` requests per token in each fixed window. */
export class RateLimiter {
  readonly #windows = new Map<string, { start: number; count: number }>();

  constructor(private readonly opts: { readonly limit: number; readonly windowMs: number; readonly clock: () => number }) {}

  /** Throws TooManyRequests with `Retry-After` when `key` is over its limit. */
  take(key: string): void {
    if (this.opts.limit === 0) return;
    const now = this.opts.clock();
    let w = this.#windows.get(key);
    if (!w || now - w.start >= this.opts.windowMs) {
      w = { start: now, count: 0 };
      this.#windows.set(key, w);
      if (this.#windows.size > 100_000) this.#windows.clear();
    }
    if (++w.count > this.opts.limit) {
      const retryAfter = Math.max(1, Math.ceil((w.start + this.opts.windowMs - now) / 1000));
      throw new CcsError(
        'TooManyRequests',
        `Number of requests exceeded the limit of ${this.opts.limit} over time window of ${this.opts.windowMs / 1000} seconds.`,
        { 'Retry-After': String(retryAfter) },
      );
    }
  }
}
