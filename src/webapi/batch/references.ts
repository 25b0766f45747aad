/**
 * Content-ID references (`$n`) inside a change set: OData v4.0 part 1 §11.7.3.1 and Dataverse's
 * execute-batch-operations-using-web-api.md, "Reference URIs in an operation" (reference/odata.md §1.5, §1.10).
 * `$n` may start a request URL (`PATCH $1`, `PUT $1/primarycontactid/$ref`), be an `…@odata.bind` value
 * (`"primarycontactid@odata.bind": "$2"`, also inside a collection-valued bind array) or an `@odata.id` value
 * (`{"@odata.id": "$2"}`), at any depth of the JSON body (deep insert).
 */

/** What `$n` stands for: the entity the request with `Content-ID: n` created or updated. */
export interface EntityRef {
  /** Service-root-relative, e.g. `msdyn_iotdevices(<guid>)`: what `@odata.bind` and request URLs get. */
  readonly relative: string;
  /** Absolute, under the service root the client used: what `@odata.id` gets (it is an IRI, §1.5). */
  readonly absolute: string;
}

export type Refs = ReadonlyMap<string, EntityRef>;

/** The reference that was used but is not defined (yet, or at all, or outside a change set). */
export class MissingReference {
  constructor(readonly reference: string) {}
}

/**
 * Is `$id` meant as a Content-ID reference? Always when `id` is defined; otherwise only when it is numeric, so that
 * system resources such as `$metadata`, `$batch` or `$count` are left alone while `$7` fails loudly (Dataverse answers
 * `Content-ID Reference: '$7' does not exist in the batch context.`).
 */
function isReference(id: string, refs: Refs): boolean {
  return refs.has(id) || /^\d+$/.test(id);
}

/** Replaces a leading `$n` in a service-root-relative URL: `$1/lastname` → `contacts(<guid>)/lastname`. */
export function resolveUrlReference(url: string, refs: Refs): string | MissingReference {
  const m = /^\$([^/?#()]+)(?=[/?#]|$)/.exec(url);
  if (!m || !isReference(m[1]!, refs)) return url;
  const ref = refs.get(m[1]!);
  return ref ? ref.relative + url.slice(m[0].length) : new MissingReference(m[0]);
}

/**
 * Replaces `$n` values of `…@odata.bind` and `@odata.id` members in a JSON text. The text is edited token by token
 * instead of being parsed and re-serialised, so every other value keeps its exact spelling: `JSON.parse` would round
 * decimals such as `123456789.1234567891` that Dataverse stores exactly. A body that is not valid JSON is returned
 * unchanged; the handler reports it with the usual error.
 */
export function resolveBodyReferences(body: string, refs: Refs): string | MissingReference {
  if (!body.includes('"$')) return body;
  try {
    JSON.parse(body);
  } catch {
    return body;
  }
  type Frame = { kind: 'object'; key: string | undefined; expectKey: boolean } | { kind: 'array'; key: string | undefined };
  const stack: Frame[] = [];
  let out = '';
  let copied = 0;
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    const top = stack[stack.length - 1];
    if (ch === '{') {
      stack.push({ kind: 'object', key: undefined, expectKey: true });
    } else if (ch === '[') {
      // An array inherits the member name it is the value of, for collection-valued binds: `"x@odata.bind": ["$1"]`.
      stack.push({ kind: 'array', key: top?.kind === 'object' ? top.key : undefined });
    } else if (ch === '}' || ch === ']') {
      stack.pop();
    } else if (ch === ':' && top?.kind === 'object') {
      top.expectKey = false;
    } else if (ch === ',' && top?.kind === 'object') {
      top.expectKey = true;
    } else if (ch === '"') {
      let end = i + 1;
      while (body[end] !== '"') end += body[end] === '\\' ? 2 : 1;
      const token = body.slice(i, end + 1);
      const text = JSON.parse(token) as string;
      if (top?.kind === 'object' && top.expectKey) {
        top.key = text;
      } else if (text.startsWith('$') && top !== undefined) {
        const key = top.key ?? '';
        const isBind = key.endsWith('@odata.bind');
        const isId = key === '@odata.id' && top.kind === 'object';
        const id = text.slice(1);
        if ((isBind || isId) && isReference(id, refs)) {
          const ref = refs.get(id);
          if (!ref) return new MissingReference(text);
          out += body.slice(copied, i) + JSON.stringify(isBind ? ref.relative : ref.absolute);
          copied = end + 1;
        }
      }
      i = end;
    }
  }
  return copied === 0 ? body : out + body.slice(copied);
}
