import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { onRecordEvent, type RecordEventData } from './session';

export interface Async<T> {
  readonly data: T | undefined;
  readonly error: Error | undefined;
  readonly loading: boolean;
  reload(): void;
}

/**
 * Runs `load` when `deps` change and on `reload()`; the answer of a superseded call is dropped, so a slow reply
 * cannot overwrite a newer one. Keeps the previous data while reloading (no flicker on live updates).
 */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: readonly unknown[]): Async<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    load(controller.signal).then(
      (data) => {
        if (!controller.signal.aborted) setState({ data, loading: false });
      },
      (error: Error) => {
        if (!controller.signal.aborted) setState((s) => ({ data: s.data, error, loading: false }));
      },
    );
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

/**
 * Calls `onChange` (at most once per `ms`) when a record of one of `tables` changes, or after the stream reconnects.
 * `filter` narrows to the events that matter to the page.
 */
export function useRecordChanges(tables: readonly string[], onChange: (e: RecordEventData) => void, ms = 500, filter?: (e: RecordEventData) => boolean): void {
  const latest = useRef(onChange);
  latest.current = onChange;
  const filterRef = useRef(filter);
  filterRef.current = filter;
  const key = tables.join(',');
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let last: RecordEventData | undefined;
    const stop = onRecordEvent((e) => {
      if (e.table !== '*' && (!tables.includes(e.table) || (filterRef.current && !filterRef.current(e)))) return;
      last = e;
      if (timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        if (last) latest.current(last);
      }, ms);
    });
    return () => {
      stop();
      if (timer) clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, ms]);
}

/** Sets the document title and moves focus to the page heading, so screen readers announce the new page. */
export function usePageTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · ccs`;
  }, [title]);
}

export interface ActionState {
  /** The last failure's message (the Web API's), until the next run. */
  readonly error: string | undefined;
  /** The key of the run in progress. */
  readonly busy: string | undefined;
  /** Runs a write a button asked for; a failure is kept in `error` rather than thrown. */
  run(work: () => Promise<unknown>, key?: string): Promise<void>;
}

/** What a button that writes needs: its work run once at a time, its error kept for the page to show. */
export function useAction(): ActionState {
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState<string | undefined>();
  return {
    error,
    busy,
    run: async (work, key = 'run') => {
      setBusy(key);
      setError(undefined);
      try {
        await work();
      } catch (e) {
        setError((e as Error).message);
      } finally {
        setBusy(undefined);
      }
    },
  };
}
