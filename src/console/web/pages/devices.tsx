import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { action, create, formatted, lit, lookupOf, query, type Row } from '../api';
import { useSession } from '../app';
import { Badge, Empty, ErrorNote, Field, Loading, Pager, fieldOfError, relativeTime } from '../components/ui';
import { useAsync, usePageTitle, useRecordChanges } from '../hooks';
import { href, navigate } from '../router';
import { can } from '../session';

export const REGISTRATION = [
  { value: 192350000, label: 'Unknown' },
  { value: 192350001, label: 'Unregistered' },
  { value: 192350002, label: 'In Progress' },
  { value: 192350003, label: 'Registered' },
  { value: 192350004, label: 'Error' },
] as const;
const PAGE_SIZE = 50;
const COLUMNS = 'msdyn_name,msdyn_deviceid,msdyn_registrationstatus,msdyn_connectionstate,msdyn_lastactivitytime,_msdyn_category_value,_msdyn_account_value';

export function registrationBadge(row: Row): JSX.Element {
  const v = row['msdyn_registrationstatus'];
  const label = formatted(row, 'msdyn_registrationstatus') || 'Unknown';
  return <Badge tone={v === 192350003 ? 'ok' : v === 192350004 ? 'bad' : v === 192350002 ? 'info' : 'muted'}>{label}</Badge>;
}

export function connectionBadge(row: Row): JSX.Element {
  return row['msdyn_connectionstate'] === true ? <Badge tone="ok">Connected</Badge> : <Badge>Disconnected</Badge>;
}

function deviceFilter(p: URLSearchParams): string {
  const parts: string[] = [];
  const q = (p.get('q') ?? '').trim();
  if (q) parts.push(`(contains(msdyn_name,${lit(q)}) or contains(msdyn_deviceid,${lit(q)}))`);
  const reg = p.get('registration');
  if (reg && /^\d+$/.test(reg)) parts.push(`msdyn_registrationstatus eq ${reg}`);
  const conn = p.get('connection');
  if (conn === 'true' || conn === 'false') parts.push(`msdyn_connectionstate eq ${conn}`);
  const cat = p.get('category');
  if (cat && /^[0-9a-f-]{36}$/i.test(cat)) parts.push(`_msdyn_category_value eq ${cat}`);
  return parts.join(' and ');
}

export function DevicesPage(props: { params: URLSearchParams }): JSX.Element {
  usePageTitle('Devices');
  const hello = useSession();
  const p = props.params;
  const page = Math.max(0, Number(p.get('page') ?? 0) || 0);
  const filter = deviceFilter(p);
  const [search, setSearch] = useState(p.get('q') ?? '');
  const [adding, setAdding] = useState(false);
  const list = useAsync(
    (signal) =>
      query(`msdyn_iotdevices?$select=${COLUMNS}${filter ? `&$filter=${encodeURIComponent(filter)}` : ''}&$orderby=msdyn_name&$count=true${page ? `&$skip=${page * PAGE_SIZE}` : ''}`, {
        pageSize: PAGE_SIZE,
        signal,
      }),
    [filter, page],
  );
  useRecordChanges(['msdyn_iotdevice'], () => list.reload(), 3000);
  const categories = useAsync((signal) => query('msdyn_iotdevicecategories?$select=msdyn_name&$orderby=msdyn_name&$top=500', { signal }), []);
  const set = (change: Record<string, string | undefined>) => {
    const next: Record<string, string | undefined> = {};
    for (const [k, v] of p) next[k] = v;
    navigate('devices', { ...next, page: undefined, ...change }, { replace: true });
  };

  return (
    <div class="page">
      <div class="page-head">
        <h1>Devices</h1>
        {list.data?.count !== undefined && <span class="muted">{list.data.count.toLocaleString()} devices</span>}
        {can(hello, 'C', 'msdyn_iotdevice') && (
          <button type="button" class="primary" aria-expanded={adding} onClick={() => setAdding(!adding)}>
            New device
          </button>
        )}
      </div>
      {adding && <NewDevice categories={categories.data?.value ?? []} onCancel={() => setAdding(false)} />}
      <form
        class="filters"
        aria-label="Filter devices"
        onSubmit={(e) => {
          e.preventDefault();
          set({ q: search });
        }}
      >
        <label>
          Search
          <input type="search" value={search} placeholder="Name or device ID" onInput={(e) => setSearch(e.currentTarget.value)} />
        </label>
        <button type="submit">Search</button>
        <label>
          Registration
          <select value={p.get('registration') ?? ''} onChange={(e) => set({ registration: e.currentTarget.value })}>
            <option value="">Any</option>
            {REGISTRATION.map((r) => (
              <option key={r.value} value={String(r.value)}>
                {r.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Connection
          <select value={p.get('connection') ?? ''} onChange={(e) => set({ connection: e.currentTarget.value })}>
            <option value="">Any</option>
            <option value="true">Connected</option>
            <option value="false">Disconnected</option>
          </select>
        </label>
        <label>
          Category
          <select value={p.get('category') ?? ''} onChange={(e) => set({ category: e.currentTarget.value })}>
            <option value="">Any</option>
            {categories.data?.value.map((c) => (
              <option key={String(c['msdyn_iotdevicecategoryid'])} value={String(c['msdyn_iotdevicecategoryid'])}>
                {String(c['msdyn_name'])}
              </option>
            ))}
          </select>
        </label>
      </form>
      <ErrorNote error={list.error} />
      {!list.data && !list.error && <Loading what="devices" />}
      {list.data &&
        (list.data.value.length === 0 ? (
          <Empty>No devices match.</Empty>
        ) : (
          <>
            <div class="table-wrap">
              <table class="data" data-testid="devices-table">
                <caption class="sr-only">Devices</caption>
                <thead>
                  <tr>
                    <th scope="col">Device</th>
                    <th scope="col">Device ID</th>
                    <th scope="col">Registration</th>
                    <th scope="col">Connection</th>
                    <th scope="col">Last activity</th>
                    <th scope="col">Category</th>
                    <th scope="col">Account</th>
                  </tr>
                </thead>
                <tbody>
                  {list.data.value.map((d) => {
                    const category = lookupOf(d, 'msdyn_category');
                    const account = lookupOf(d, 'msdyn_account');
                    return (
                      <tr key={String(d['msdyn_iotdeviceid'])}>
                        <td>
                          <a href={href(`devices/${String(d['msdyn_iotdeviceid'])}`)}>{String(d['msdyn_name'] ?? '(no name)')}</a>
                        </td>
                        <td>
                          <code>{String(d['msdyn_deviceid'] ?? '—')}</code>
                        </td>
                        <td>{registrationBadge(d)}</td>
                        <td>{connectionBadge(d)}</td>
                        <td>{relativeTime(d['msdyn_lastactivitytime'])}</td>
                        <td>{category?.name ?? '—'}</td>
                        <td>{account?.name ?? '—'}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
            <Pager page={page} pageSize={PAGE_SIZE} total={list.data.count} hasNext={!!list.data.nextLink} onPage={(n) => set({ page: n ? String(n) : undefined })} />
          </>
        ))}
    </div>
  );
}

const DEVICE_FIELDS = ['msdyn_name', 'msdyn_deviceid', 'msdyn_category', 'msdyn_account'];

function NewDevice(props: { categories: Row[]; onCancel: () => void }): JSX.Element {
  const [values, setValues] = useState({ name: '', deviceId: '', category: '', account: '', register: true });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const accounts = useAsync((signal) => query('accounts?$select=name&$orderby=name&$top=500', { signal }), []);
  const submit = async (e: Event) => {
    e.preventDefault();
    setErrors({});
    setFormError(undefined);
    if (!values.name.trim()) {
      setErrors({ msdyn_name: 'A name is required.' });
      return;
    }
    setBusy(true);
    let id: string | undefined;
    try {
      const row: Row = { msdyn_name: values.name.trim() };
      if (values.deviceId.trim()) row['msdyn_deviceid'] = values.deviceId.trim();
      if (values.category) row['msdyn_Category@odata.bind'] = `/msdyn_iotdevicecategories(${values.category})`;
      if (values.account) row['msdyn_Account@odata.bind'] = `/accounts(${values.account})`;
      id = await create('msdyn_iotdevices', row);
      if (values.register) await action('msdyn_RegisterIoTDevice', { IoTDeviceIds: id });
      navigate(`devices/${id}`);
    } catch (err) {
      const msg = (err as Error).message;
      if (id) {
        // Created, but registration failed: the device page shows the registration status and message.
        navigate(`devices/${id}`);
        return;
      }
      const field = fieldOfError(msg, DEVICE_FIELDS);
      if (field) setErrors({ [field]: msg });
      else setFormError(msg);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="card" aria-labelledby="new-device-title">
      <h2 id="new-device-title">New device</h2>
      <form class="editor" onSubmit={submit} noValidate>
        <Field label="Name" name="msdyn_name" error={errors['msdyn_name']}>
          {(a) => <input {...a} type="text" maxLength={100} value={values.name} onInput={(e) => setValues({ ...values, name: e.currentTarget.value })} />}
        </Field>
        <Field label="Device ID" name="msdyn_deviceid" error={errors['msdyn_deviceid']} help="The device's identity in the hub (what it connects as). Empty: the device record's id.">
          {(a) => <input {...a} type="text" maxLength={100} value={values.deviceId} onInput={(e) => setValues({ ...values, deviceId: e.currentTarget.value })} />}
        </Field>
        <Field label="Category" name="msdyn_category" error={errors['msdyn_category']}>
          {(a) => (
            <select {...a} value={values.category} onChange={(e) => setValues({ ...values, category: e.currentTarget.value })}>
              <option value="">None</option>
              {props.categories.map((c) => (
                <option key={String(c['msdyn_iotdevicecategoryid'])} value={String(c['msdyn_iotdevicecategoryid'])}>
                  {String(c['msdyn_name'])}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Account" name="msdyn_account" error={errors['msdyn_account']}>
          {(a) => (
            <select {...a} value={values.account} onChange={(e) => setValues({ ...values, account: e.currentTarget.value })}>
              <option value="">None</option>
              {accounts.data?.value.map((acc) => (
                <option key={String(acc['accountid'])} value={String(acc['accountid'])}>
                  {String(acc['name'])}
                </option>
              ))}
            </select>
          )}
        </Field>
        <label class="inline">
          <input type="checkbox" checked={values.register} onChange={(e) => setValues({ ...values, register: e.currentTarget.checked })} /> Register with the hub now
        </label>
        <ErrorNote error={formError} />
        <div class="button-row">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create device'}
          </button>
          <button type="button" onClick={props.onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}
