import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { batchGet, create, query, remove, update, type Row } from '../api';
import { useSession } from '../app';
import { SaveBar, TextField, useForm } from '../components/form';
import { DataTable, Loaded } from '../components/list';
import { ErrorNote, PageHead, Section } from '../components/ui';
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
  // The one field is the category's name: every message is about it.
  const form = useForm(() => 'msdyn_name');
  const add = form.submit(async () => {
    await create('msdyn_iotdevicecategories', { msdyn_name: name.trim() });
    setName('');
    list.reload();
  });
  return (
    <div class="page">
      <PageHead title="Categories" />
      <p class="help">Categories group devices: rules can apply to a category, and a category lists the commands its devices support.</p>
      {can(hello, 'C', 'msdyn_iotdevicecategory') && (
        <Section title="New category">
          <form class="editor" onSubmit={add} noValidate>
            <TextField label="Name" name="msdyn_name" value={name} onInput={setName} error={form.errors['msdyn_name']} />
            <SaveBar label="Add category" busy={form.busy} />
          </form>
        </Section>
      )}
      <Loaded state={list} what="categories" empty="No categories yet.">
        {(data) => (
          <DataTable caption="Device categories" columns={['Category', 'Devices', 'Commands', { label: 'Actions', hidden: true }]}>
            {data.map((c) => (
              <CategoryRowView key={String(c.row['msdyn_iotdevicecategoryid'])} category={c} onChange={list.reload} />
            ))}
          </DataTable>
        )}
      </Loaded>
    </div>
  );
}

function CategoryRowView(props: { category: CategoryRow; onChange: () => void }): JSX.Element {
  const hello = useSession();
  const id = String(props.category.row['msdyn_iotdevicecategoryid']);
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(String(props.category.row['msdyn_name'] ?? ''));
  const form = useForm();
  const save = form.submit(async () => {
    await update('msdyn_iotdevicecategories', id, { msdyn_name: name.trim() });
    setEditing(false);
    props.onChange();
  });
  const del = async () => {
    if (!confirm(`Delete the category "${name}"?`)) return;
    try {
      await remove('msdyn_iotdevicecategories', id);
      props.onChange();
    } catch (err) {
      form.fail(err);
    }
  };
  return (
    <tr>
      <td>
        {editing ? (
          <form onSubmit={save} noValidate class="inline-edit">
            <TextField label="Category name" name="msdyn_name" value={name} onInput={setName} error={form.formError} />
            <SaveBar label="Save" busy={form.busy} onCancel={() => setEditing(false)} />
          </form>
        ) : (
          <>
            {String(props.category.row['msdyn_name'])}
            <ErrorNote error={form.formError} />
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
