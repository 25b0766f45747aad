/**
 * Device connection strings through the Web API, so the simulator works against a remote server as well as a local
 * one: each `msdyn_iotdevice` record is created if missing (an upsert on the `msdyn_deviceid` alternate key with
 * `If-None-Match: *`, which never touches an existing record), then the admin-only bound function
 * `ccs_GetDeviceConnectionString()` returns the string (and registers the hub identity on first call).
 */

export interface ProvisionOptions {
  /** Base URL of the server, e.g. `http://localhost:8080`. */
  readonly server: string;
  /** An admin bearer token: only admins may read device keys. */
  readonly token: string;
  readonly deviceIds: readonly string[];
  /** Requests in flight at once. */
  readonly concurrency?: number;
  /** Called after each device, for a progress display. */
  readonly onDevice?: (done: number, total: number) => void;
}

export class ProvisionError extends Error {
  override readonly name = 'ProvisionError';
}

/** An OData string literal inside a key: single quotes doubled, then URL-encoded. */
function keyLiteral(value: string): string {
  return encodeURIComponent(`'${value.replace(/'/g, "''")}'`);
}

async function failure(res: Response, what: string): Promise<ProvisionError> {
  let detail = '';
  try {
    const body = (await res.json()) as { error?: { message?: string } };
    detail = body.error?.message ?? '';
  } catch {
    // not a Dataverse error body
  }
  const hint =
    res.status === 401 ? ' Give an admin token with --token or CCS_TOKEN.' : res.status === 403 ? ' Reading connection strings needs an admin token.' : '';
  return new ProvisionError(`${what}: HTTP ${res.status}${detail ? ` (${detail})` : ''}.${hint}`);
}

async function provisionOne(base: string, headers: Record<string, string>, deviceId: string): Promise<string> {
  const record = `${base}/msdyn_iotdevices(msdyn_deviceid=${keyLiteral(deviceId)})`;
  const created = await fetch(record, {
    method: 'PATCH',
    headers: { ...headers, 'content-type': 'application/json', 'if-none-match': '*' },
    // msdyn_issimulated 192350000 = Yes.
    body: JSON.stringify({ msdyn_name: `Simulated thermostat ${deviceId}`, msdyn_issimulated: 192350000 }),
  });
  // 204/201: created; 412: it already exists, which is what If-None-Match: * is for.
  if (!created.ok && created.status !== 412) throw await failure(created, `creating msdyn_iotdevice '${deviceId}'`);
  await created.body?.cancel();
  const res = await fetch(`${record}/Microsoft.Dynamics.CRM.ccs_GetDeviceConnectionString()`, { headers });
  if (!res.ok) throw await failure(res, `ccs_GetDeviceConnectionString for '${deviceId}'`);
  const body = (await res.json()) as { ConnectionString?: unknown };
  if (typeof body.ConnectionString !== 'string') throw new ProvisionError(`ccs_GetDeviceConnectionString for '${deviceId}' returned no ConnectionString.`);
  return body.ConnectionString;
}

/** Returns each device's connection string, creating the records that are missing. */
export async function provisionDevices(opts: ProvisionOptions): Promise<Map<string, string>> {
  const base = `${opts.server.replace(/\/+$/, '')}/api/data/v9.2`;
  const headers = { authorization: `Bearer ${opts.token}`, accept: 'application/json' };
  const result = new Map<string, string>();
  let next = 0;
  let done = 0;
  async function worker(): Promise<void> {
    while (next < opts.deviceIds.length) {
      const id = opts.deviceIds[next++]!;
      result.set(id, await provisionOne(base, headers, id));
      opts.onDevice?.(++done, opts.deviceIds.length);
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 8, opts.deviceIds.length)) }, worker));
  return result;
}
