import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { action, create, formatted, lit, lookupOf, query, type Row } from '../api';
import { useSession } from '../app';
import { CheckField, FieldErrors, Options, RecordOptions, SaveBar, SelectField, TextField, fieldsNamed, useForm } from '../components/form';
import { DataTable, FilterSelect, Loaded, Pager, pageOf, setListParams, usePage } from '../components/list';
import { Badge, PageHead, relativeTime } from '../components/ui';
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
  const page = pageOf(p);
  const filter = deviceFilter(p);
  const [search, setSearch] = useState(p.get('q') ?? '');
  const [adding, setAdding] = useState(false);
  const list = usePage(`msdyn_iotdevices?$select=${COLUMNS}${filter ? `&$filter=${encodeURIComponent(filter)}` : ''}&$orderby=msdyn_name`, page);
  useRecordChanges(['msdyn_iotdevice'], () => list.reload(), 3000);
  const categories = useAsync((signal) => query('msdyn_iotdevicecategories?$select=msdyn_name&$orderby=msdyn_name&$top=500', { signal }), []);
  const set = (change: Record<string, string | undefined>) => setListParams('devices', p, change);

  return (
    <div class="page">
      <PageHead title="Devices">
        {list.data?.count !== undefined && <span class="muted">{list.data.count.toLocaleString()} devices</span>}
        {can(hello, 'C', 'msdyn_iotdevice') && (
          <button type="button" class="primary" aria-expanded={adding} onClick={() => setAdding(!adding)}>
            New device
          </button>
        )}
      </PageHead>
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
        <FilterSelect label="Registration" value={p.get('registration') ?? ''} onChange={(registration) => set({ registration })}>
          <option value="">Any</option>
          <Options items={REGISTRATION} />
        </FilterSelect>
        <FilterSelect label="Connection" value={p.get('connection') ?? ''} onChange={(connection) => set({ connection })}>
          <option value="">Any</option>
          <option value="true">Connected</option>
          <option value="false">Disconnected</option>
        </FilterSelect>
        <FilterSelect label="Category" value={p.get('category') ?? ''} onChange={(category) => set({ category })}>
          <option value="">Any</option>
          <RecordOptions rows={categories.data?.value} id="msdyn_iotdevicecategoryid" />
        </FilterSelect>
      </form>
      <Loaded state={list} what="devices" empty="No devices match.">
        {(data) => (
          <>
            <DataTable caption="Devices" testId="devices-table" columns={['Device', 'Device ID', 'Registration', 'Connection', 'Last activity', 'Category', 'Account']}>
              {data.value.map((d) => {
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
            </DataTable>
            <Pager page={page} data={data} onPage={(n) => set({ page: n ? String(n) : undefined })} />
          </>
        )}
      </Loaded>
    </div>
  );
}

const DEVICE_FIELDS = ['msdyn_name', 'msdyn_deviceid', 'msdyn_category', 'msdyn_account'];

function NewDevice(props: { categories: Row[]; onCancel: () => void }): JSX.Element {
  const [values, setValues] = useState({ name: '', deviceId: '', category: '', account: '', register: true });
  const form = useForm(fieldsNamed(DEVICE_FIELDS));
  const accounts = useAsync((signal) => query('accounts?$select=name&$orderby=name&$top=500', { signal }), []);
  const set = (change: Partial<typeof values>) => setValues({ ...values, ...change });
  const submit = form.submit(async () => {
    if (!values.name.trim()) throw new FieldErrors({ msdyn_name: 'A name is required.' });
    const row: Row = { msdyn_name: values.name.trim() };
    if (values.deviceId.trim()) row['msdyn_deviceid'] = values.deviceId.trim();
    if (values.category) row['msdyn_Category@odata.bind'] = `/msdyn_iotdevicecategories(${values.category})`;
    if (values.account) row['msdyn_Account@odata.bind'] = `/accounts(${values.account})`;
    const id = await create('msdyn_iotdevices', row);
    // Created: a failed registration shows on the device page, with the registration status and message.
    if (values.register) await action('msdyn_RegisterIoTDevice', { IoTDeviceIds: id }).catch(() => undefined);
    navigate(`devices/${id}`);
  });
  return (
    <section class="card" aria-labelledby="new-device-title">
      <h2 id="new-device-title">New device</h2>
      <form class="editor" onSubmit={submit} noValidate>
        <TextField label="Name" name="msdyn_name" value={values.name} onInput={(name) => set({ name })} error={form.errors['msdyn_name']} />
        <TextField
          label="Device ID"
          name="msdyn_deviceid"
          value={values.deviceId}
          onInput={(deviceId) => set({ deviceId })}
          error={form.errors['msdyn_deviceid']}
          help="The device's identity in the hub (what it connects as). Empty: the device record's id."
        />
        <SelectField label="Category" name="msdyn_category" value={values.category} onChange={(category) => set({ category })} error={form.errors['msdyn_category']}>
          <option value="">None</option>
          <RecordOptions rows={props.categories} id="msdyn_iotdevicecategoryid" />
        </SelectField>
        <SelectField label="Account" name="msdyn_account" value={values.account} onChange={(account) => set({ account })} error={form.errors['msdyn_account']}>
          <option value="">None</option>
          <RecordOptions rows={accounts.data?.value} id="accountid" name="name" />
        </SelectField>
        <CheckField label="Register with the hub now" checked={values.register} onChange={(register) => set({ register })} />
        <SaveBar label="Create device" busy={form.busy} busyLabel="Creating…" error={form.formError} onCancel={props.onCancel} />
      </form>
    </section>
  );
}
