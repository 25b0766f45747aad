import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { batchGet, create, query, remove, update, type Row } from '../api';
import { useSession } from '../app';
import { Empty, ErrorNote, Field, Loading, Section } from '../components/ui';
import { useAsync, usePageTitle, useRecordChanges } from '../hooks';
import { href } from '../router';
import { can } from '../session';

interface CategoryRow {
  readonly row: Row;
  readonly devices: number | undefined;
  readonly commands: string[];
}

async function loadCategories(signal: AbortSignal): Promise<CategoryRow[]> {
  const list = await query('msdyn_iotdevicecategories?$select=msdyn_name&$orderby=msdyn_name&$top=500', { signal });
  const ids = list.value.map((c) => String(c['msdyn_iotdevicecategoryid']));
  const answers = await batchGet([
    ...ids.map((id) => `msdyn_iotdevices/$count?$filter=${encodeURIComponent(`_msdyn_category_value eq ${id}`)}`),
    ...ids.map((id) => `msdyn_iotdevicecategories(${id})/msdyn_iotdevicecategorycommands?$select=msdyn_name`),
  ]);
  return list.value.map((row, i) => {
    const n = answers[i];
    const cmds = answers[ids.length + i];
    return {
      row,
      devices: n instanceof Error ? undefined : Number(n),
      commands: cmds instanceof Error || !cmds ? [] : (cmds as { value: Row[] }).value.map((c) => String(c['msdyn_name'])),
    };
  });
}

export function CategoriesPage(): JSX.Element {
  usePageTitle('Categories');
  const hello = useSession();
  const list = useAsync(loadCategories, []);
  useRecordChanges(['msdyn_iotdevicecategory', 'msdyn_iotdevice'], () => list.reload(), 1000);
  const [name, setName] = useState('');
  const [error, setError] = useState<string | undefined>();
  const add = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      await create('msdyn_iotdevicecategories', { msdyn_name: name.trim() });
      setName('');
      list.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <div class="page">
      <h1>Categories</h1>
      <p class="help">Categories group devices: rules can apply to a category, and a category lists the commands its devices support.</p>
      {can(hello, 'C', 'msdyn_iotdevicecategory') && (
        <Section title="New category">
          <form class="editor" onSubmit={add} noValidate>
            <Field label="Name" name="msdyn_name" error={error}>
              {(a) => <input {...a} type="text" maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
            </Field>
            <button type="submit" class="primary">
              Add category
            </button>
          </form>
        </Section>
      )}
      <ErrorNote error={list.error} />
      {!list.data && !list.error && <Loading what="categories" />}
      {list.data &&
        (list.data.length === 0 ? (
          <Empty>No categories yet.</Empty>
        ) : (
          <div class="table-wrap">
            <table class="data">
              <caption class="sr-only">Device categories</caption>
              <thead>
                <tr>
                  <th scope="col">Category</th>
                  <th scope="col">Devices</th>
                  <th scope="col">Commands</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.data.map((c) => (
                  <CategoryRowView key={String(c.row['msdyn_iotdevicecategoryid'])} category={c} onChange={list.reload} />
                ))}
              </tbody>
            </table>
          </div>
        ))}
    </div>
  );
}

function CategoryRowView(props: { category: CategoryRow; onChange: () => void }): JSX.Element {
  const hello = useSession();
  const id = String(props.category.row['msdyn_iotdevicecategoryid']);
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(String(props.category.row['msdyn_name'] ?? ''));
  const [error, setError] = useState<string | undefined>();
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      await update('msdyn_iotdevicecategories', id, { msdyn_name: name.trim() });
      setEditing(false);
      setError(undefined);
      props.onChange();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const del = async () => {
    if (!confirm(`Delete the category "${name}"?`)) return;
    try {
      await remove('msdyn_iotdevicecategories', id);
      props.onChange();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <tr>
      <td>
        {editing ? (
          <form onSubmit={save} noValidate class="inline-edit">
            <Field label="Category name" name="msdyn_name" error={error}>
              {(a) => <input {...a} type="text" maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
            </Field>
            <div class="button-row">
              <button type="submit" class="primary">
                Save
              </button>
              <button type="button" onClick={() => setEditing(false)}>
                Cancel
              </button>
            </div>
          </form>
        ) : (
          <>
            {String(props.category.row['msdyn_name'])}
            {error && <ErrorNote error={error} />}
          </>
        )}
      </td>
      <td>{props.category.devices !== undefined ? <a href={href('devices', { category: id })}>{props.category.devices.toLocaleString()}</a> : '—'}</td>
      <td>{props.category.commands.length ? props.category.commands.join(', ') : <span class="muted">None</span>}</td>
      <td>
        <div class="button-row">
          {can(hello, 'W', 'msdyn_iotdevicecategory') && !editing && (
            <button type="button" onClick={() => setEditing(true)} aria-label={`Rename ${name}`}>
              Rename
            </button>
          )}
          {can(hello, 'D', 'msdyn_iotdevicecategory') && (
            <button type="button" class="danger" onClick={del} aria-label={`Delete ${name}`}>
              Delete
            </button>
          )}
        </div>
      </td>
    </tr>
  );
}
