import { createEvaluator, ruleFromRecord, validateRuleRecord, type Evaluator, type RuleDefinition } from '../rules/index.js';
import type { RecordContext, RecordsService } from '../records/index.js';

export const RULE_TABLE = 'ccs_iotrule';

export interface RuleLoader {
  /** The evaluator for the rules as they are now: waits for a reload that a rule change asked for. */
  current(): Promise<Evaluator>;
  /** Stops following rule changes. */
  close(): void;
}

/**
 * Refuses a `ccs_iotrule` whose condition or other columns the evaluator could not use, with the column's name in
 * the message (a 400 through the Web API). Checked on the whole row, so an update that changes the scope without the
 * lookup it needs is refused too.
 */
export function registerRuleValidation(records: RecordsService): () => void {
  return records.addValidator(RULE_TABLE, (row) => validateRuleRecord(row));
}

/**
 * Keeps an evaluator built from every `ccs_iotrule` record (inactive ones are left out by the evaluator). A record
 * event on the table marks it stale; the next `current()` reloads, so a reading processed after a rule change was
 * committed is evaluated against it. Record events are raised only in the process that wrote the record, so rules
 * changed elsewhere (an `api` node, `ccs rules import` on the data directory) are noticed by a light check every
 * `refreshMs` (the table's row count and latest `modifiedon`). Rows that no longer parse (written before validation
 * existed, or a lookup target changed) are skipped with a warning rather than stopping every other rule.
 */
export function createRuleLoader(deps: {
  readonly records: RecordsService;
  readonly system: RecordContext;
  readonly log: { warn(obj: unknown, msg?: string): void };
  readonly onLoad?: (rules: readonly RuleDefinition[]) => void;
  /** How often rule changes made by other processes are looked for; default 5000 ms, 0 never. */
  readonly refreshMs?: number;
}): RuleLoader {
  const { records, system, log } = deps;
  let evaluator = createEvaluator([]);
  let stale = true;
  let loading: Promise<void> | undefined;
  /** What the table looked like at the last load. */
  let loadedSignature = '';

  async function signature(): Promise<string> {
    const [latest] = await records.query(system, RULE_TABLE, { columns: ['modifiedon'], orderBy: [{ column: 'modifiedon', descending: true }], limit: 1 });
    return `${await records.count(system, RULE_TABLE)}:${latest?.['modifiedon'] ?? ''}`;
  }

  async function load(): Promise<void> {
    loadedSignature = await signature();
    const rows = await records.query(system, RULE_TABLE, {});
    const defs: RuleDefinition[] = [];
    for (const row of rows) {
      try {
        defs.push(ruleFromRecord(row));
      } catch (e) {
        log.warn({ err: e, rule: row['ccs_iotruleid'] }, 'skipping an IoT rule that is not valid');
      }
    }
    evaluator = createEvaluator(defs);
    deps.onLoad?.(evaluator.rules);
  }

  const off = records.onEvent((e) => {
    if (e.table === RULE_TABLE) stale = true;
  });
  let checking = false;
  const refresh = (deps.refreshMs ?? 5000) > 0 ? setInterval(() => {
    if (checking || stale || loading) return;
    checking = true;
    signature().then(
      (now) => {
        if (now !== loadedSignature) stale = true;
      },
      (e: unknown) => log.warn({ err: e }, 'looking for IoT rule changes failed'),
    ).finally(() => {
      checking = false;
    });
  }, deps.refreshMs ?? 5000) : undefined;
  refresh?.unref();

  return {
    async current() {
      while (stale || loading) {
        if (!loading) {
          stale = false;
          loading = load()
            .catch((e: unknown) => {
              stale = true;
              throw e;
            })
            .finally(() => {
              loading = undefined;
            });
        }
        await loading;
      }
      return evaluator;
    },
    close() {
      off();
      if (refresh) clearInterval(refresh);
    },
  };
}
