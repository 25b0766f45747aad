import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { request } from '../api';
import { useSession } from '../app';
import { Badge, ErrorNote, Field, Loading, Section, formatTime } from '../components/ui';
import { useAsync, usePageTitle } from '../hooks';

interface TokenInfo {
  readonly id: string;
  readonly name: string;
  readonly role: string;
  readonly userId: string;
  readonly createdOn: number;
  readonly revoked: boolean;
}

/** API tokens (admins only): the routes at /api/tokens, the console's counterpart of `ccs token`. */
export function TokensPage(): JSX.Element {
  usePageTitle('Tokens');
  const hello = useSession();
  const list = useAsync(async (signal) => (await (await request('/api/tokens', { signal })).json()) as { value: TokenInfo[]; roles: string[] }, []);
  const [name, setName] = useState('');
  const [role, setRole] = useState('agent');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [created, setCreated] = useState<{ token: string; name: string } | undefined>();
  const [error, setError] = useState<string | undefined>();

  const submit = async (e: Event) => {
    e.preventDefault();
    setErrors({});
    setCreated(undefined);
    try {
      const res = await request('/api/tokens', { method: 'POST', body: { name, role } });
      const body = (await res.json()) as { token: string; info: TokenInfo };
      setCreated({ token: body.token, name: body.info.name });
      setName('');
      list.reload();
    } catch (err) {
      const msg = (err as Error).message;
      setErrors(/'role'/.test(msg) ? { role: msg } : { name: msg });
    }
  };
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
      <h1>Tokens</h1>
      <Section title="New token">
        <form class="editor" onSubmit={submit} noValidate>
          <Field label="Name" name="name" error={errors['name']} help="Who or what uses the token: a person, an integration.">
            {(a) => <input {...a} type="text" maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
          </Field>
          <Field label="Role" name="role" error={errors['role']}>
            {(a) => (
              <select {...a} value={role} onChange={(e) => setRole(e.currentTarget.value)}>
                {(list.data?.roles ?? ['admin', 'agent', 'readonly', 'integration']).map((r) => (
                  <option key={r} value={r}>
                    {r}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <button type="submit" class="primary">
            Create token
          </button>
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
      <ErrorNote error={list.error ?? error} />
      {!list.data && !list.error && <Loading what="tokens" />}
      {list.data && (
        <div class="table-wrap">
          <table class="data">
            <caption class="sr-only">Tokens</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Role</th>
                <th scope="col">Created</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.value.map((t) => (
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
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
