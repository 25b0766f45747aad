import { CcsError, toHttpError } from '../errors/index.js';
import {
  fromStoreValue,
  renderCsdl,
  renderServiceDocument,
  isLookup,
  type MetadataRegistry,
  type Navigation,
  type Table,
} from '../metadata/index.js';
import { compileQuery, parseFunctionArgs, parseKey, type CompiledQuery, type ExpandPlan } from '../odata/index.js';
import { columnsToLoad, type ExpandSpec, type InputValues, type RecordContext, type RecordEvent, type RecordsService } from '../records/index.js';
import type { Principal } from '../security/index.js';
import type { Queryable, Store } from '../store/types.js';
import { executeBatch, type InnerRequest, type InnerResponse } from './batch/index.js';
import { EntityDefinitionsRoutes } from './entity-definitions-routes.js';
import { OperationRegistry } from './operations.js';
import { NAMESPACE, parseEntityUrl, parseResourcePath, type Resource } from './resource-path.js';
import { AnnotationFilter, etagOf, Serializer } from './serialize.js';

export interface ApiRequest {
  readonly method: string;
  /** Path relative to the service root, without the query, as sent (percent-encoded). */
  readonly path: string;
  /** Raw query string without the leading `?`. */
  readonly query: string;
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: string;
  /** Absolute URL of the service root as the client addressed it, ending in `/`. */
  readonly serviceRoot: string;
  readonly principal: Principal;
  /** Set inside a `$batch` change set: the transaction, and where its events wait for the commit. */
  readonly db?: Queryable;
  readonly pending?: RecordEvent[];
  /** Set for the parts of a `$batch`, which may not hold another `$batch`. */
  readonly inBatch?: boolean;
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

const JSON_TYPE = 'application/json; odata.metadata=minimal';
const MAX_PAGE = 5000;

function json(status: number, body: unknown, headers: Record<string, string> = {}): ApiResponse {
  return { status, headers: { 'Content-Type': JSON_TYPE, ...headers }, body: JSON.stringify(body) };
}
function empty(status: number, headers: Record<string, string> = {}): ApiResponse {
  return { status, headers, body: '' };
}

interface Prefer {
  readonly returnRepresentation: boolean;
  readonly maxPageSize?: number;
  readonly annotations: AnnotationFilter;
  readonly continueOnError: boolean;
}

function parsePrefer(header: string | undefined): Prefer {
  const parts = (header ?? '').split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/).map((p) => p.trim());
  let maxPageSize: number | undefined;
  let annotations: string | undefined;
  for (const p of parts) {
    const m = /^odata\.maxpagesize\s*=\s*(\d+)$/i.exec(p);
    if (m) maxPageSize = Math.min(Number(m[1]), MAX_PAGE) || undefined;
    const a = /^odata\.include-annotations\s*=\s*"?([^"]*)"?$/i.exec(p);
    if (a) annotations = a[1];
  }
  return {
    returnRepresentation: parts.some((p) => /^return\s*=\s*representation$/i.test(p)),
    maxPageSize,
    annotations: AnnotationFilter.fromPrefer(annotations),
    continueOnError: parts.some((p) => /^odata\.continue-on-error$/i.test(p)),
  };
}

/** `If-Match` / `If-None-Match`: `*`, a weak ETag, or absent (`null` is Dataverse's way of saying absent). */
type Precondition = { kind: 'none' } | { kind: 'any' } | { kind: 'version'; version: number };

function parsePrecondition(value: string | undefined): Precondition {
  if (value === undefined || value === '' || value === 'null') return { kind: 'none' };
  if (value.trim() === '*') return { kind: 'any' };
  const m = /^\s*(?:W\/)?"(\d+)"\s*$/.exec(value);
  if (!m) throw new CcsError('BadRequest', `The ETag '${value}' is not valid.`);
  return { kind: 'version', version: Number(m[1]) };
}

function parseJsonBody(body: string): Record<string, unknown> {
  if (body.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (e) {
    throw new CcsError('MalformedJson', `Invalid JSON in request body: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CcsError('MalformedJson', 'The request body must be a JSON object.');
  }
  return value as Record<string, unknown>;
}

interface SkipToken {
  readonly offset: number;
}
function encodeSkipToken(t: SkipToken): string {
  return Buffer.from(JSON.stringify(t)).toString('base64url');
}
function decodeSkipToken(raw: string): SkipToken {
  try {
    const t = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as SkipToken;
    if (Number.isSafeInteger(t.offset) && t.offset >= 0) return t;
  } catch {
    // fall through
  }
  throw new CcsError('InvalidQuery', 'The $skiptoken is not valid. Use the @odata.nextLink returned by the server unchanged.');
}

function toExpandSpec(plan: ExpandPlan): ExpandSpec {
  const q = plan.query;
  return {
    navigation: plan.navigation,
    query: { columns: q.select, where: q.where, orderBy: q.orderBy, limit: q.top, expand: q.expand.map(toExpandSpec) },
  };
}

/**
 * The Web API, independent of the HTTP server: one request in, one response out. `$batch` parts come back in here,
 * with a transaction when they belong to a change set.
 */
export class WebApi {
  readonly #entityDefinitions: EntityDefinitionsRoutes;

  constructor(
    private readonly deps: {
      readonly store: Store;
      readonly metadata: MetadataRegistry;
      readonly records: RecordsService;
      readonly operations: OperationRegistry;
      readonly clock: () => number;
      readonly log: { error(obj: unknown, msg?: string): void };
    },
  ) {
    this.#entityDefinitions = new EntityDefinitionsRoutes(deps.metadata);
  }

  async handle(req: ApiRequest): Promise<ApiResponse> {
    try {
      return await this.#dispatch(req);
    } catch (e) {
      const err = toHttpError(e);
      if (err.status >= 500) this.deps.log.error({ err: e, method: req.method, path: req.path }, 'request failed');
      return json(err.status, err.body, err.headers);
    }
  }

  #context(req: ApiRequest): RecordContext {
    return { db: req.db ?? this.deps.store, principal: req.principal, pending: req.pending };
  }

  async #dispatch(req: ApiRequest): Promise<ApiResponse> {
    const model = this.deps.metadata.model;
    let path: string;
    try {
      path = decodeURIComponent(req.path);
    } catch {
      throw new CcsError('BadRequest', 'The request URL is not correctly percent-encoded.');
    }
    const resource = parseResourcePath(path, model, (name, boundTo) => !!this.deps.operations.get(name, boundTo));
    const method = req.method.toUpperCase();
    const prefer = parsePrefer(req.headers['prefer']);
    const params = new URLSearchParams(req.query);
    const ctx = this.#context(req);
    const allow = (...methods: string[]) => {
      if (!methods.includes(method)) {
        throw new CcsError('MethodNotAllowed', `The HTTP method '${method}' is not allowed for this resource. Allowed: ${methods.join(', ')}.`);
      }
    };

    switch (resource.kind) {
      case 'service':
        allow('GET');
        return json(200, renderServiceDocument(model, `${req.serviceRoot}$metadata`));
      case 'metadata': {
        allow('GET');
        const annotations = params.get('annotations') === 'true' || prefer.annotations.any;
        return { status: 200, headers: { 'Content-Type': 'application/xml' }, body: renderCsdl(model, this.deps.operations.defs(), { annotations }) };
      }
      case 'batch':
        allow('POST');
        return this.#batch(req, prefer);
      case 'entityDefinitions':
        return this.#entityDefinitions.handle(method, resource, params, req, ctx);
      case 'collection':
        if (resource.count) {
          allow('GET');
          const q = compileQuery(params, resource.table, model, () => new Date(this.deps.clock()));
          const n = await this.deps.records.count(ctx, resource.table.logicalName, q.where);
          return { status: 200, headers: { 'Content-Type': 'text/plain' }, body: String(n) };
        }
        allow('GET', 'POST');
        if (method === 'POST') return this.#create(req, ctx, resource.table, parseJsonBody(req.body), prefer, params);
        return this.#list(req, ctx, resource.table, params, prefer);
      case 'entity':
        allow('GET', 'PATCH', 'DELETE', 'PUT');
        if (method === 'PUT') {
          throw new CcsError('MethodNotAllowed', 'PUT is supported for single properties only; use PATCH to update a record.');
        }
        if (method === 'GET') return this.#retrieve(req, ctx, resource.table, resource.key, params, prefer);
        if (method === 'PATCH') return this.#patch(req, ctx, resource.table, resource.key, prefer, params);
        return this.#delete(req, ctx, resource.table, resource.key);
      case 'property':
        return this.#property(req, ctx, resource, method);
      case 'navigation':
        return this.#navigation(req, ctx, resource, method, params, prefer);
      case 'operation':
        return this.#operation(req, ctx, resource, method, params);
    }
  }

  // ---- keys and bodies -------------------------------------------------------------------------------------

  /** The id of the record `keyText` names; RecordNotFound when none. */
  async #idOf(ctx: RecordContext, table: Table, keyText: string): Promise<string> {
    const id = await this.#maybeIdOf(ctx, table, keyText);
    if (!id) throw new CcsError('RecordNotFound', `${table.logicalName} With Id = ${keyText} Does Not Exist`);
    return id;
  }

  #maybeIdOf(ctx: RecordContext, table: Table, keyText: string): Promise<string | undefined> {
    return this.deps.records.resolve(ctx, table.logicalName, parseKey(keyText, table));
  }

  /**
   * Turns a request body into column values: `Nav@odata.bind` becomes the lookup column, annotations are dropped,
   * `_x_value` is read-only. Collection binds are returned as links to make once the record exists.
   */
  async #input(ctx: RecordContext, table: Table, body: Record<string, unknown>): Promise<{ values: InputValues; links: { nav: Navigation; id: string }[] }> {
    const model = this.deps.metadata.model;
    const values: Record<string, unknown> = {};
    const links: { nav: Navigation; id: string }[] = [];
    for (const [key, value] of Object.entries(body)) {
      const at = key.indexOf('@');
      if (at === 0) continue; // @odata.type, @odata.etag, @odata.context…
      if (at > 0) {
        const name = key.slice(0, at);
        if (key.slice(at + 1) !== 'odata.bind') continue; // annotations such as x@OData.Community.Display.V1.FormattedValue
        const nav = table.navigation(name);
        if (!nav) {
          throw new CcsError('UnknownProperty', `An undeclared property '${name}' which only has property annotations in the payload but no property value was found in the payload.`);
        }
        if (nav.kind === 'single') {
          if (value === null) {
            values[nav.column] = null;
            continue;
          }
          if (typeof value !== 'string') throw new CcsError('BadRequest', `The value of '${key}' must be an entity URL or null.`);
          const ref = parseEntityUrl(value, model);
          if (ref.table.logicalName !== nav.target) {
            throw new CcsError('BadRequest', `'${name}' refers to '${nav.target}' records, not '${ref.table.logicalName}'.`);
          }
          values[nav.column] = { id: await this.#idOf(ctx, ref.table, ref.key), table: nav.target };
        } else {
          if (!Array.isArray(value)) throw new CcsError('BadRequest', `The value of '${key}' must be an array of entity URLs.`);
          for (const v of value) {
            if (typeof v !== 'string') throw new CcsError('BadRequest', `The value of '${key}' must be an array of entity URLs.`);
            const ref = parseEntityUrl(v, model);
            links.push({ nav, id: await this.#idOf(ctx, ref.table, ref.key) });
          }
        }
        continue;
      }
      const column = table.column(key);
      if (column && isLookup(column)) {
        throw new CcsError('BadRequest', `Set the lookup '${key}' with '<navigation property>@odata.bind', not by its column name.`);
      }
      if (!column && table.lookupByValueProperty(key)) {
        throw new CcsError('BadRequest', `The property '${key}' is read-only; set it with '<navigation property>@odata.bind'.`);
      }
      if (!column && table.navigation(key)) {
        throw new CcsError('NotImplemented', `Deep insert through '${key}' is not supported; create the related record and bind it with '${key}@odata.bind'.`);
      }
      values[key] = value;
    }
    return { values, links };
  }

  #entityUrl(req: ApiRequest, table: Table, id: string): string {
    return `${req.serviceRoot}${table.entitySetName}(${id})`;
  }

  async #representation(req: ApiRequest, ctx: RecordContext, table: Table, id: string, select: readonly string[] | undefined, prefer: Prefer): Promise<Record<string, unknown>> {
    const row = await this.deps.records.retrieve(ctx, table.logicalName, id, select);
    if (!row) throw new CcsError('RecordNotFound', `${table.logicalName} With Id = ${id} Does Not Exist`);
    const [entity] = await new Serializer(this.deps.records, ctx, prefer.annotations).entities(table, [{ row, expanded: {} }], select);
    return { '@odata.context': `${req.serviceRoot}$metadata#${table.entitySetName}/$entity`, ...entity };
  }

  #applied(prefer: Prefer, extra: string[] = []): Record<string, string> {
    const list = [...extra];
    if (prefer.annotations.any) list.push(prefer.annotations.toString());
    return list.length ? { 'Preference-Applied': list.join(',') } : {};
  }

  // ---- create, read, update, delete ------------------------------------------------------------------------

  async #create(req: ApiRequest, ctx: RecordContext, table: Table, body: Record<string, unknown>, prefer: Prefer, params: URLSearchParams, fixed: InputValues = {}): Promise<ApiResponse> {
    const { values, links } = await this.#input(ctx, table, body);
    const id = await this.deps.records.create(ctx, table.logicalName, { ...values, ...fixed });
    for (const l of links) await this.deps.records.associate(ctx, table.logicalName, id, l.nav, l.id);
    const url = this.#entityUrl(req, table, id);
    const headers = { 'OData-EntityId': url, Location: url };
    if (prefer.returnRepresentation) {
      const select = params.has('$select') ? compileQuery(new URLSearchParams({ $select: params.get('$select')! }), table, this.deps.metadata.model).select : undefined;
      const entity = await this.#representation(req, ctx, table, id, select, prefer);
      return json(201, entity, { ...headers, ETag: String(entity['@odata.etag']), ...this.#applied(prefer, ['return=representation']) });
    }
    return empty(204, headers);
  }

  async #retrieve(req: ApiRequest, ctx: RecordContext, table: Table, key: string, params: URLSearchParams, prefer: Prefer): Promise<ApiResponse> {
    const q = compileQuery(params, table, this.deps.metadata.model, () => new Date(this.deps.clock()));
    if (q.where || q.orderBy || q.top !== undefined) {
      throw new CcsError('InvalidQuery', 'Query options $filter, $orderby and $top apply to collections, not to a single record.');
    }
    const id = await this.#idOf(ctx, table, key);
    const expand = q.expand.map(toExpandSpec);
    const row = await this.deps.records.retrieve(ctx, table.logicalName, id, columnsToLoad(q.select, expand));
    if (!row) throw new CcsError('RecordNotFound', `${table.logicalName} With Id = ${id} Does Not Exist`);
    const etag = etagOf(row);
    // Never 304 when related records or annotations are asked for: they may have changed on their own.
    const inm = parsePrecondition(req.headers['if-none-match']);
    if (inm.kind === 'version' && etag === `W/"${inm.version}"` && q.expand.length === 0 && !prefer.annotations.any) {
      return empty(304, { ETag: etag });
    }
    const [tree] = await this.deps.records.expand(ctx, [row], expand);
    const [entity] = await new Serializer(this.deps.records, ctx, prefer.annotations).entities(table, [tree!], q.select);
    return json(200, { '@odata.context': `${req.serviceRoot}$metadata#${table.entitySetName}/$entity`, ...entity }, { ETag: etag, ...this.#applied(prefer) });
  }

  async #list(req: ApiRequest, ctx: RecordContext, table: Table, params: URLSearchParams, prefer: Prefer, scope?: { where: NonNullable<CompiledQuery['where']>; context: string }): Promise<ApiResponse> {
    const q = compileQuery(params, table, this.deps.metadata.model, () => new Date(this.deps.clock()));
    const where = scope ? (q.where ? { kind: 'and' as const, items: [scope.where, q.where] } : scope.where) : q.where;
    const offset = (q.skipToken ? decodeSkipToken(q.skipToken).offset : 0) + (q.skip ?? 0);
    const pageSize = prefer.maxPageSize ?? MAX_PAGE;
    const remaining = q.top !== undefined ? Math.max(0, q.top - offset) : Infinity;
    const take = Math.min(pageSize, remaining);
    // A stable order makes pages stable: the primary key breaks ties, in the direction of the last key so that an
    // index ending in the primary key can serve the whole order.
    const order = q.orderBy ?? [];
    const last = order[order.length - 1];
    const orderBy = order.some((o) => o.column === table.primaryIdAttribute)
      ? order
      : [...order, { column: table.primaryIdAttribute, descending: last?.descending ?? false }];
    const expand = q.expand.map(toExpandSpec);
    const columns = columnsToLoad(q.select, expand);
    const rows = take === 0 ? [] : await this.deps.records.query(ctx, table.logicalName, { columns, where, orderBy, limit: take + 1, offset });
    const more = rows.length > take && remaining > take;
    const page = rows.slice(0, take);
    const trees = await this.deps.records.expand(ctx, page, expand);
    const value = await new Serializer(this.deps.records, ctx, prefer.annotations).entities(table, trees, q.select);
    const body: Record<string, unknown> = { '@odata.context': `${req.serviceRoot}$metadata#${scope?.context ?? table.entitySetName}` };
    if (q.count) body['@odata.count'] = await this.deps.records.count(ctx, table.logicalName, where);
    body['value'] = value;
    if (more) {
      const rest = req.query.split('&').filter((p) => p && !/^(\$|%24)skiptoken=/i.test(p));
      rest.push(`$skiptoken=${encodeSkipToken({ offset: offset + take - (q.skip ?? 0) })}`);
      body['@odata.nextLink'] = `${req.serviceRoot}${req.path}?${rest.join('&')}`;
    }
    const applied = prefer.maxPageSize !== undefined ? [`odata.maxpagesize=${prefer.maxPageSize}`] : [];
    return json(200, body, this.#applied(prefer, applied));
  }

  async #patch(req: ApiRequest, ctx: RecordContext, table: Table, key: string, prefer: Prefer, params: URLSearchParams): Promise<ApiResponse> {
    const ifMatch = parsePrecondition(req.headers['if-match']);
    const ifNoneMatch = parsePrecondition(req.headers['if-none-match']);
    const parsedKey = parseKey(key, table);
    const existing = await this.deps.records.resolve(ctx, table.logicalName, parsedKey);
    const found = existing !== undefined && (await this.deps.records.retrieve(ctx, table.logicalName, existing, [table.primaryIdAttribute])) !== undefined;
    if (ifNoneMatch.kind === 'any' && found) throw new CcsError('RecordExists', 'A record with matching key values already exists.');
    if (!found) {
      if (ifMatch.kind !== 'none') throw new CcsError('RecordNotFound', `${table.logicalName} With Id = ${key} Does Not Exist`);
      // Upsert: create the record with the key it was addressed by.
      const fixed: Record<string, unknown> = parsedKey.kind === 'id' ? { [table.primaryIdAttribute]: parsedKey.id } : {};
      if (parsedKey.kind === 'alternate') {
        for (const [c, v] of Object.entries(parsedKey.values)) {
          const col = table.column(c);
          fixed[c] = col ? fromStoreValue(col, v) : v;
        }
      }
      return this.#create(req, ctx, table, parseJsonBody(req.body), prefer, params, fixed);
    }
    const { values, links } = await this.#input(ctx, table, parseJsonBody(req.body));
    await this.deps.records.update(ctx, table.logicalName, existing!, values, { ifVersion: ifMatch.kind === 'version' ? ifMatch.version : undefined });
    for (const l of links) await this.deps.records.associate(ctx, table.logicalName, existing!, l.nav, l.id);
    const url = this.#entityUrl(req, table, existing!);
    if (prefer.returnRepresentation) {
      const select = params.has('$select') ? compileQuery(new URLSearchParams({ $select: params.get('$select')! }), table, this.deps.metadata.model).select : undefined;
      const entity = await this.#representation(req, ctx, table, existing!, select, prefer);
      return json(200, entity, { 'OData-EntityId': url, ETag: String(entity['@odata.etag']), ...this.#applied(prefer, ['return=representation']) });
    }
    return empty(204, { 'OData-EntityId': url });
  }

  async #delete(req: ApiRequest, ctx: RecordContext, table: Table, key: string): Promise<ApiResponse> {
    const ifMatch = parsePrecondition(req.headers['if-match']);
    const id = await this.#idOf(ctx, table, key);
    await this.deps.records.delete(ctx, table.logicalName, id, { ifVersion: ifMatch.kind === 'version' ? ifMatch.version : undefined });
    return empty(204);
  }

  async #property(req: ApiRequest, ctx: RecordContext, r: Extract<Resource, { kind: 'property' }>, method: string): Promise<ApiResponse> {
    const table = r.table;
    const column = table.column(r.column)!;
    const id = await this.#idOf(ctx, table, r.key);
    if (method === 'GET') {
      if (column.isValidForRead === false) throw new CcsError('BadRequest', `The property '${r.column}' is write-only: it cannot be read.`);
      const row = await this.deps.records.retrieve(ctx, table.logicalName, id, [r.column]);
      const [entity] = await new Serializer(this.deps.records, ctx, AnnotationFilter.fromPrefer(undefined)).entities(table, [{ row: row!, expanded: {} }], [r.column]);
      const prop = isLookup(column) ? `_${r.column}_value` : r.column;
      const value = entity![prop];
      if (value === null) return empty(204);
      return json(200, { '@odata.context': `${req.serviceRoot}$metadata#${table.entitySetName}(${id})/${prop}`, value });
    }
    if (isLookup(column)) throw new CcsError('BadRequest', `Change the lookup '${r.column}' through its navigation property's $ref.`);
    if (r.column === table.primaryIdAttribute || column.readOnly) throw new CcsError('ReadOnlyColumn', `The column '${r.column}' is read-only.`);
    if (method === 'PUT') {
      const body = parseJsonBody(req.body);
      if (!('value' in body)) throw new CcsError('BadRequest', "The request body must be an object with a 'value' property.");
      await this.deps.records.update(ctx, table.logicalName, id, { [r.column]: body['value'] });
      return empty(204);
    }
    if (method === 'DELETE') {
      await this.deps.records.update(ctx, table.logicalName, id, { [r.column]: null });
      return empty(204);
    }
    throw new CcsError('MethodNotAllowed', `The HTTP method '${method}' is not allowed for a property. Allowed: GET, PUT, DELETE.`);
  }

  async #navigation(req: ApiRequest, ctx: RecordContext, r: Extract<Resource, { kind: 'navigation' }>, method: string, params: URLSearchParams, prefer: Prefer): Promise<ApiResponse> {
    const model = this.deps.metadata.model;
    const nav = r.navigation;
    const target = model.table(nav.target)!;
    const id = await this.#idOf(ctx, r.table, r.key);
    if (r.ref) {
      if (method === 'GET') return this.#getRef(req, ctx, r.table, id, nav, target);
      if (method === 'POST' || method === 'PUT') {
        if ((method === 'POST') !== (nav.kind !== 'single')) {
          throw new CcsError('MethodNotAllowed', method === 'POST' ? `Use PUT to set the single-valued navigation property '${nav.name}'.` : `Use POST to add to the collection '${nav.name}'.`);
        }
        const body = parseJsonBody(req.body);
        const ref = body['@odata.id'];
        if (typeof ref !== 'string') throw new CcsError('BadRequest', "The request body must have an '@odata.id' property with the related record's URL.");
        const related = parseEntityUrl(ref, model);
        if (related.table.logicalName !== nav.target) throw new CcsError('BadRequest', `'${nav.name}' relates '${nav.target}' records, not '${related.table.logicalName}'.`);
        await this.deps.records.associate(ctx, r.table.logicalName, id, nav, await this.#idOf(ctx, related.table, related.key));
        return empty(204);
      }
      if (method === 'DELETE') {
        let relatedKey = r.relatedKey;
        const byParam = params.get('$id');
        if (relatedKey === undefined && byParam) relatedKey = parseEntityUrl(byParam, model).key;
        const relatedId = relatedKey === undefined ? undefined : await this.#idOf(ctx, target, relatedKey);
        await this.deps.records.disassociate(ctx, r.table.logicalName, id, nav, relatedId);
        return empty(204);
      }
      throw new CcsError('MethodNotAllowed', `The HTTP method '${method}' is not allowed for $ref.`);
    }
    if (r.relatedKey !== undefined) {
      throw new CcsError('NotImplemented', `Address the related record directly: ${target.entitySetName}(${r.relatedKey}).`);
    }
    if (nav.kind === 'single') {
      if (method !== 'GET') throw new CcsError('MethodNotAllowed', `The HTTP method '${method}' is not allowed for a single-valued navigation property.`);
      const row = await this.deps.records.retrieve(ctx, r.table.logicalName, id, [nav.column]);
      const relatedId = row?.[nav.column];
      if (typeof relatedId !== 'string') return empty(204);
      return this.#retrieve(req, ctx, target, relatedId, params, prefer);
    }
    const scopeWhere =
      nav.kind === 'collection'
        ? ({ kind: 'compare', op: 'eq', left: { kind: 'column', column: nav.column }, right: { kind: 'value', value: id } } as const)
        : ({
            kind: 'exists', table: nav.intersect, column: nav.otherColumn, outerColumn: target.primaryIdAttribute,
            where: { kind: 'compare', op: 'eq', left: { kind: 'column', column: nav.ownColumn }, right: { kind: 'value', value: id } },
          } as const);
    if (r.count) {
      if (method !== 'GET') throw new CcsError('MethodNotAllowed', 'Only GET is allowed for $count.');
      const n = await this.deps.records.count(ctx, target.logicalName, scopeWhere);
      return { status: 200, headers: { 'Content-Type': 'text/plain' }, body: String(n) };
    }
    if (method === 'POST' && nav.kind === 'collection') {
      // Create a related record already linked to this one.
      return this.#create(req, ctx, target, parseJsonBody(req.body), prefer, params, { [nav.column]: { id, table: r.table.logicalName } });
    }
    if (method !== 'GET') throw new CcsError('MethodNotAllowed', `The HTTP method '${method}' is not allowed for '${nav.name}'.`);
    return this.#list(req, ctx, target, params, prefer, { where: scopeWhere, context: target.entitySetName });
  }

  async #getRef(req: ApiRequest, ctx: RecordContext, table: Table, id: string, nav: Navigation, target: Table): Promise<ApiResponse> {
    const context = `${req.serviceRoot}$metadata#$ref`;
    if (nav.kind === 'single') {
      const row = await this.deps.records.retrieve(ctx, table.logicalName, id, [nav.column]);
      const relatedId = row?.[nav.column];
      if (typeof relatedId !== 'string') return empty(204);
      return json(200, { '@odata.context': context, '@odata.id': this.#entityUrl(req, target, relatedId) });
    }
    const [tree] = await this.deps.records.expand(ctx, [(await this.deps.records.retrieve(ctx, table.logicalName, id))!], [
      { navigation: nav, query: { columns: [target.primaryIdAttribute] } },
    ]);
    const related = (tree!.expanded[nav.name] as { row: Record<string, unknown> }[]) ?? [];
    return json(200, {
      '@odata.context': `${req.serviceRoot}$metadata#Collection($ref)`,
      value: related.map((t) => ({ '@odata.id': this.#entityUrl(req, target, String(t.row[target.primaryIdAttribute])) })),
    });
  }

  // ---- operations and batch --------------------------------------------------------------------------------

  async #operation(req: ApiRequest, ctx: RecordContext, r: Extract<Resource, { kind: 'operation' }>, method: string, params: URLSearchParams): Promise<ApiResponse> {
    const op = this.deps.operations.get(r.name, r.bound?.table.logicalName);
    if (!op || (r.bound && (op.def.boundToCollection ?? false) !== (r.bound.key === undefined))) {
      throw new CcsError('ResourceNotFound', `Resource not found for the segment '${r.bound ? NAMESPACE : ''}${r.name}'.`);
    }
    let args: Record<string, unknown>;
    if (op.def.kind === 'function') {
      if (method !== 'GET') throw new CcsError('MethodNotAllowed', `'${r.name}' is a function: call it with GET.`);
      const aliases = new Map<string, string>();
      for (const [k, v] of params) if (k.startsWith('@')) aliases.set(k, v);
      args = r.args === undefined ? {} : parseFunctionArgs(r.args, aliases);
    } else {
      if (method !== 'POST') throw new CcsError('MethodNotAllowed', `'${r.name}' is an action: call it with POST.`);
      if (r.args !== undefined) throw new CcsError('BadRequest', `Pass the parameters of the action '${r.name}' in the request body.`);
      args = parseJsonBody(req.body);
    }
    OperationRegistry.validate(op.def, args);
    const bound = r.bound ? { table: r.bound.table, id: r.bound.key === undefined ? undefined : await this.#idOf(ctx, r.bound.table, r.bound.key) } : undefined;
    const result = await op.invoke({ records: this.deps.records, record: ctx, bound }, args);
    if (result === undefined) return empty(204);
    return json(200, { '@odata.context': `${req.serviceRoot}$metadata#${NAMESPACE}${op.def.name}Response`, ...result });
  }

  async #batch(req: ApiRequest, prefer: Prefer): Promise<ApiResponse> {
    if (req.inBatch) throw new CcsError('InvalidBatch', 'A $batch request cannot contain another $batch request.');
    const inner = (db?: Queryable, pending?: RecordEvent[]) => async (r: InnerRequest): Promise<InnerResponse> => {
      const q = r.url.indexOf('?');
      const res = await this.handle({
        method: r.method,
        path: q < 0 ? r.url : r.url.slice(0, q),
        query: q < 0 ? '' : r.url.slice(q + 1),
        headers: r.headers,
        body: r.body,
        serviceRoot: req.serviceRoot,
        principal: req.principal,
        db,
        pending,
        inBatch: true,
      });
      return res;
    };
    const result = await executeBatch({
      contentType: req.headers['content-type'] ?? '',
      body: req.body,
      serviceRoot: req.serviceRoot,
      continueOnError: prefer.continueOnError,
      handle: inner(),
      changeSet: async (fn) => {
        const pending: RecordEvent[] = [];
        const out = await this.deps.store.transaction((tx) => fn(inner(tx, pending)));
        this.deps.records.publish(pending);
        return out;
      },
    });
    return { status: result.status, headers: result.headers, body: result.body };
  }
}
