/**
 * What every list repeats: a data table with its caption and column heads, the states of a list being loaded
 * (error, loading, empty), server-side paging, and filter bars whose values live in the address (so a filtered list
 * is a link).
 */
import type { ComponentChildren, JSX } from 'preact';
import { query, type Page } from '../api';
import { useAsync, type Async } from '../hooks';
import { navigate } from '../router';
import { Empty, ErrorNote, Loading } from './ui';

/** Rows per server page. */
export const PAGE_SIZE = 50;

/** A column head: its text, or `{ label, hidden }` for a head read only by screen readers (an actions column). */
export type Column = string | { readonly label: string; readonly hidden: true } | false | undefined;

export function DataTable(props: { caption: string; columns: readonly Column[]; testId?: string; children: ComponentChildren; footer?: ComponentChildren }): JSX.Element {
  return (
    <div class="table-wrap">
      <table class="data" data-testid={props.testId}>
        <caption class="sr-only">{props.caption}</caption>
        <thead>
          <tr>
            {props.columns.map((c) =>
              !c ? null : typeof c === 'string' ? (
                <th scope="col" key={c}>
                  {c}
                </th>
              ) : (
                <th scope="col" key={c.label}>
                  <span class="sr-only">{c.label}</span>
                </th>
              ),
            )}
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
      {props.footer}
    </div>
  );
}

function isEmptyData(data: unknown): boolean {
  if (Array.isArray(data)) return data.length === 0;
  const value = (data as { value?: unknown } | undefined)?.value;
  return Array.isArray(value) && value.length === 0;
}

/**
 * A loaded list's states: the error (the last answer stays shown under it), "Loading…" until the first answer, the
 * `empty` text when there is nothing (an array, or a collection page, without rows), otherwise `children(data)`.
 */
export function Loaded<T>(props: { state: Async<T>; what?: string; empty?: ComponentChildren; children: (data: T) => ComponentChildren }): JSX.Element {
  const { data, error } = props.state;
  return (
    <>
      <ErrorNote error={error} />
      {data === undefined ? !error && <Loading what={props.what} /> : props.empty !== undefined && isEmptyData(data) ? <Empty>{props.empty}</Empty> : props.children(data)}
    </>
  );
}

/** The page number in the address (`?page=2`), from 0. */
export function pageOf(params: URLSearchParams): number {
  return Math.max(0, Number(params.get('page') ?? 0) || 0);
}

/** `path` (with its `$select`, `$filter`, `$orderby`) as page `page`: `$count` for the total, `$skip` to the page. */
export function pageUrl(path: string, page: number): string {
  return `${path}${path.includes('?') ? '&' : '?'}$count=true${page > 0 ? `&$skip=${page * PAGE_SIZE}` : ''}`;
}

/** One server page of a collection; the server pages (`Prefer: odata.maxpagesize`), so only a page travels. */
export function usePage(path: string, page: number): Async<Page> {
  return useAsync((signal) => query(pageUrl(path, page), { pageSize: PAGE_SIZE, signal }), [path, page]);
}

/**
 * Changes the address parameters of the list page at `path`: the others are kept, the page goes back to the first
 * (a new filter has other pages), and the history entry is replaced so Back leaves the list.
 */
export function setListParams(path: string, params: URLSearchParams, change: Record<string, string | undefined>): void {
  const next: Record<string, string | undefined> = {};
  for (const [k, v] of params) next[k] = v;
  navigate(path, { ...next, page: undefined, ...change }, { replace: true });
}

export function Pager(props: { page: number; data: Page<unknown>; onPage: (page: number) => void }): JSX.Element {
  const { page } = props;
  const total = props.data.count;
  const from = total === 0 ? 0 : page * PAGE_SIZE + 1;
  const to = page * PAGE_SIZE + PAGE_SIZE;
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" disabled={page === 0} onClick={() => props.onPage(page - 1)}>
        Previous
      </button>
      <span aria-live="polite">
        {from.toLocaleString()}–{(total !== undefined ? Math.min(to, total) : to).toLocaleString()}
        {total !== undefined ? ` of ${total.toLocaleString()}` : ''}
      </span>
      <button type="button" disabled={!props.data.nextLink} onClick={() => props.onPage(page + 1)}>
        Next
      </button>
    </nav>
  );
}

/** A labelled select of a filter bar. */
export function FilterSelect(props: { label: string; value: string; onChange: (value: string) => void; children: ComponentChildren; class?: string }): JSX.Element {
  return (
    <label class={props.class}>
      {props.label}{' '}
      <select value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
        {props.children}
      </select>
    </label>
  );
}

/** A labelled date and time of a filter bar, as an ISO instant. */
export function FilterTime(props: { label: string; value: string | undefined; onChange: (iso: string | undefined) => void }): JSX.Element {
  return (
    <label>
      {props.label}
      <input type="datetime-local" value={toLocalInput(props.value)} onChange={(e) => props.onChange(fromLocalInput(e.currentTarget.value))} />
    </label>
  );
}

/** `<input type="datetime-local">` value ↔ ISO instant. */
export function toLocalInput(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
export function fromLocalInput(value: string): string | undefined {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}
