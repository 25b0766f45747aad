import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { request } from '../api';
import { useSession } from '../app';
// The wire shape of /api/tokens is the token service's own (a type only: nothing of the server is bundled).
import type { TokenInfo } from '../../../security/tokens.js';
import { Options, SaveBar, SelectField, TextField, useForm } from '../components/form';
import { DataTable, Loaded } from '../components/list';
import { Badge, ErrorNote, PageHead, Section, formatTime } from '../components/ui';
import { useAsync, usePageTitle } from '../hooks';

/** API tokens (admins only): the routes at /api/tokens, the console's counterpart of `ccs token`. */
export function TokensPage(): JSX.Element {
  usePageTitle('Tokens');
  const hello = useSession();
  const list = useAsync(async (signal) => (await (await request('/api/tokens', { signal })).json()) as { value: TokenInfo[]; roles: string[] }, []);
  const [name, setName] = useState('');
  const [role, setRole] = useState('agent');
  const [created, setCreated] = useState<{ token: string; name: string } | undefined>();
  const [error, setError] = useState<string | undefined>();
  // The routes' messages quote the field they refuse ('role'); anything else is about the name.
  const form = useForm((message) => (/'role'/.test(message) ? 'role' : 'name'));

  const submit = form.submit(async () => {
    setCreated(undefined);
    const res = await request('/api/tokens', { method: 'POST', body: { name, role } });
    const body = (await res.json()) as { token: string; info: TokenInfo };
    setCreated({ token: body.token, name: body.info.name });
    setName('');
    list.reload();
  });
  const revoke = async (t: TokenInfo) => {
    if (!confirm(`Revoke the token "${t.name}"? Clients using it stop working at once.`)) return;
    setError(undefined);
    try {
      await request(`/api/tokens/${t.id}`, { method: 'DELETE' });
      list.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <div class="page">
      <PageHead title="Tokens" />
      <Section title="New token">
        <form class="editor" onSubmit={submit} noValidate>
          <TextField label="Name" name="name" value={name} onInput={setName} error={form.errors['name']} help="Who or what uses the token: a person, an integration." />
          <SelectField label="Role" name="role" value={role} onChange={setRole} error={form.errors['role']}>
            <Options items={(list.data?.roles ?? ['admin', 'agent', 'readonly', 'integration']).map((r) => ({ value: r, label: r }))} />
          </SelectField>
          <SaveBar label="Create token" busy={form.busy} />
        </form>
        {created && (
          <div role="status">
            <p>
              Token for <strong>{created.name}</strong>. Copy it now: it is not shown again.
            </p>
            <p class="token-secret">
              <code data-testid="new-token">{created.token}</code>
            </p>
          </div>
        )}
      </Section>
      <ErrorNote error={error} />
      <Loaded state={list} what="tokens">
        {(data) => (
          <DataTable caption="Tokens" columns={['Name', 'Role', 'Created', 'State', { label: 'Actions', hidden: true }]}>
            {data.value.map((t) => (
              <tr key={t.id}>
                <td>{t.name}</td>
                <td>{t.role}</td>
                <td>{formatTime(new Date(t.createdOn).toISOString())}</td>
                <td>{t.revoked ? <Badge tone="bad">Revoked</Badge> : <Badge tone="ok">Active</Badge>}</td>
                <td>
                  {!t.revoked && t.userId !== hello.userId && (
                    <button type="button" class="danger" onClick={() => revoke(t)} aria-label={`Revoke ${t.name}`}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </DataTable>
        )}
      </Loaded>
    </div>
  );
}
