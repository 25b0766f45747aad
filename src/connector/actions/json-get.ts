/**
 * `msdyn_JsonGetString`, `msdyn_JsonGetNumber`, `msdyn_JsonGetBoolean` ("JSON-based Field Value – Get …"): unbound
 * actions that read one value out of a JSON document, made for workflows that branch on `msdyn_alertdata`
 * (ms-connected-service.md §3.5; odata.md §1.9). Parameters as in Microsoft's reference: `Json` (Edm.String,
 * nullable), `PropertyPath` (Edm.String, required), `DefaultReturnValue` (Edm.String / Edm.Decimal / Edm.Boolean,
 * nullable). The response type is `msdyn_JsonGet<Type>Response`; Microsoft's reference does not show its property,
 * so ccs names it `ReturnValue`.
 *
 * Decisions where the reference is silent:
 * - `Json` that is not JSON, or a `PropertyPath` that is not a path, is the caller's mistake: 400 naming the parameter.
 * - A missing `Json` (null) or a path that leads nowhere returns `DefaultReturnValue` (null when not given).
 * - A value of another type is treated as not found and returns `DefaultReturnValue`, except that GetString gives
 *   numbers and booleans as their JSON text and objects and arrays as compact JSON (a string view of any value
 *   loses nothing). A workflow branching on a reading should not stop because a device sent `"71"` instead of 71;
 *   it gets the default it chose and takes that branch.
 */
import { CcsError } from '../../errors/index.js';
import type { Operation } from '../../webapi/index.js';
import { parsePath, PathSyntaxError, valueAt } from '../json-path.js';

type Convert = (value: unknown) => string | number | boolean | undefined;

function createJsonGet(name: string, edmType: 'Edm.String' | 'Edm.Decimal' | 'Edm.Boolean', convert: Convert): Operation {
  return {
    def: {
      name,
      kind: 'action',
      parameters: [
        { name: 'Json', type: 'Edm.String' },
        { name: 'PropertyPath', type: 'Edm.String', nullable: false },
        { name: 'DefaultReturnValue', type: edmType },
      ],
      returns: { properties: [{ name: 'ReturnValue', type: edmType }] },
    },
    invoke: async (_ctx, params) => {
      const json = params['Json'] as string | null | undefined;
      const path = params['PropertyPath'] as string;
      const fallback = (params['DefaultReturnValue'] ?? null) as string | number | boolean | null;
      let steps;
      try {
        steps = parsePath(path);
      } catch (e) {
        if (!(e instanceof PathSyntaxError)) throw e;
        throw new CcsError('InvalidValue', `Parameter 'PropertyPath' of '${name}' is not a valid property path (${e.message}): use names separated by dots, with array indexes as [0] or .0.`);
      }
      if (json === null || json === undefined) return { ReturnValue: fallback };
      let document: unknown;
      try {
        document = JSON.parse(json);
      } catch (e) {
        throw new CcsError('InvalidValue', `Parameter 'Json' of '${name}' is not valid JSON: ${(e as Error).message}.`);
      }
      const found = convert(valueAt(document, steps));
      return { ReturnValue: found === undefined ? fallback : found };
    },
  };
}

export function createJsonGetString(): Operation {
  return createJsonGet('msdyn_JsonGetString', 'Edm.String', (v) => {
    if (v === undefined || v === null) return undefined;
    return typeof v === 'string' ? v : JSON.stringify(v);
  });
}

export function createJsonGetNumber(): Operation {
  return createJsonGet('msdyn_JsonGetNumber', 'Edm.Decimal', (v) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined));
}

export function createJsonGetBoolean(): Operation {
  return createJsonGet('msdyn_JsonGetBoolean', 'Edm.Boolean', (v) => (typeof v === 'boolean' ? v : undefined));
}
