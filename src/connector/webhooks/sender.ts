/**
 * Posts due deliveries. A delivery is due when it is Pending or Retrying and its `ccs_nextattempton` has come. Each
 * attempt first claims the delivery (a version-checked write that moves `ccs_nextattempton` past the attempt's
 * timeout), so two senders — two processes in scale-out — never post the same attempt, and a sender that dies
 * mid-attempt leaves the delivery due again once the claim runs out. A 2xx answer marks it Delivered; anything else
 * (another status, a network error, a timeout) counts an attempt and schedules the next after an exponential backoff,
 * until the webhook's max attempts are spent and the delivery is Failed.
 */
import type { Logger } from 'pino';
import { CcsError } from '../../errors/index.js';
import type { RecordContext, RecordsService } from '../../records/index.js';
import { and, compare, isIn, type Row } from '../../store/index.js';
import { backoff, DEFAULT_MAX_ATTEMPTS, DELIVERY, DELIVERY_ID, DELIVERY_STATUS, signature, WEBHOOK } from './definition.js';

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface SenderOptions {
  /** The HTTP client; global fetch by default. */
  readonly fetch?: typeof fetch;
  readonly timers?: Timers;
  /** First retry delay; doubles with each attempt up to `retryCapMs`. */
  readonly retryBaseMs?: number;
  readonly retryCapMs?: number;
  /** Longest wait between looks for due deliveries (other processes' deliveries, a clock that jumps). */
  readonly pollMs?: number;
  readonly timeoutMs?: number;
  /** Attempts in flight at once. */
  readonly concurrency?: number;
}

export interface SenderDeps {
  readonly records: RecordsService;
  readonly system: RecordContext;
  readonly clock: () => number;
  readonly log: Logger;
}

const BATCH = 50;
const DUE = [DELIVERY_STATUS.pending, DELIVERY_STATUS.retrying];
const MAX_ERROR = 2000;

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export class Sender {
  readonly #fetch: typeof fetch;
  readonly #timers: Timers;
  readonly #baseMs: number;
  readonly #capMs: number;
  readonly #pollMs: number;
  readonly #timeoutMs: number;
  readonly #concurrency: number;
  readonly #inFlight = new Set<AbortController>();
  #stopped = false;
  #kicked = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;

  constructor(private readonly deps: SenderDeps, opts: SenderOptions = {}) {
    this.#fetch = opts.fetch ?? fetch;
    this.#timers = opts.timers ?? defaultTimers;
    this.#baseMs = opts.retryBaseMs ?? 10_000;
    this.#capMs = opts.retryCapMs ?? 3_600_000;
    this.#pollMs = opts.pollMs ?? 1_000;
    this.#timeoutMs = opts.timeoutMs ?? 15_000;
    this.#concurrency = opts.concurrency ?? 4;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** New deliveries are waiting: look now. */
  kick(): void {
    this.#kicked = true;
    this.#wake?.();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const c of this.#inFlight) c.abort();
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      this.#kicked = false;
      let wait = this.#pollMs;
      try {
        wait = Math.min(wait, await this.#pass());
      } catch (err) {
        if (!this.#stopped) this.deps.log.error({ err }, 'webhook deliveries could not be read');
      }
      if (this.#stopped) break;
      if (this.#kicked) continue;
      await new Promise<void>((resolve) => {
        const handle = this.#timers.setTimeout(() => {
          this.#wake = undefined;
          resolve();
        }, Math.max(wait, 0));
        this.#wake = () => {
          this.#wake = undefined;
          this.#timers.clearTimeout(handle);
          resolve();
        };
      });
    }
  }

  /** Sends everything due now; resolves to the time until the next delivery falls due (or the poll interval). */
  async #pass(): Promise<number> {
    const { records, system, clock } = this.deps;
    for (;;) {
      const due = await records.query(system, DELIVERY, {
        where: and(isIn('ccs_status', DUE), compare('ccs_nextattempton', 'le', clock())),
        orderBy: [{ column: 'ccs_nextattempton' }],
        limit: BATCH,
      });
      await this.#all(due);
      if (this.#stopped || due.length < BATCH) break;
    }
    const [next] = await records.query(system, DELIVERY, {
      columns: ['ccs_nextattempton'],
      where: isIn('ccs_status', DUE),
      orderBy: [{ column: 'ccs_nextattempton' }],
      limit: 1,
    });
    return next ? Number(next['ccs_nextattempton']) - clock() : this.#pollMs;
  }

  async #all(rows: readonly Row[]): Promise<void> {
    let i = 0;
    const worker = async () => {
      while (i < rows.length && !this.#stopped) {
        const row = rows[i++]!;
        try {
          await this.#attempt(row);
        } catch (err) {
          if (!this.#stopped) this.deps.log.error({ err, delivery: row[DELIVERY_ID] }, 'a webhook delivery attempt failed to be recorded');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, rows.length) }, worker));
  }

  async #attempt(delivery: Row): Promise<void> {
    const { records, system, clock, log } = this.deps;
    const id = String(delivery[DELIVERY_ID]);
    const iso = (ms: number) => new Date(ms).toISOString();
    // The claim: whoever bumps the version first sends this attempt.
    try {
      await records.update(system, DELIVERY, id, { ccs_nextattempton: iso(clock() + this.#timeoutMs + 5_000) }, { ifVersion: Number(delivery['versionnumber']) });
    } catch (e) {
      if (e instanceof CcsError && (e.code === 'VersionMismatch' || e.code === 'RecordNotFound')) return;
      throw e;
    }
    const attempts = Number(delivery['ccs_attempts'] ?? 0) + 1;
    const webhookId = delivery['ccs_webhook'];
    const webhook = typeof webhookId === 'string' ? await records.retrieve(system, WEBHOOK, webhookId) : undefined;
    if (!webhook) {
      await this.#record(id, { ccs_status: DELIVERY_STATUS.failed, ccs_lasterror: 'The webhook no longer exists.', ccs_nextattempton: null });
      return;
    }
    if (Number(webhook['statecode']) !== 0) {
      // Deactivated: the delivery waits, uncounted, until the webhook is active again.
      await this.#record(id, { ccs_nextattempton: iso(clock() + this.#capMs) });
      return;
    }
    const body = String(delivery['ccs_payload'] ?? '');
    const controller = new AbortController();
    this.#inFlight.add(controller);
    const timer = this.#timers.setTimeout(() => controller.abort(), this.#timeoutMs);
    let status: number | undefined;
    let error: string | undefined;
    try {
      const res = await this.#fetch(String(webhook['ccs_url']), {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-ccs-signature': signature(body, String(webhook['ccs_secret'] ?? '')),
          'x-ccs-delivery': id,
          'x-ccs-event': `${String(delivery['ccs_table'])}.${String(delivery['ccs_message'])}`,
        },
        body,
        redirect: 'manual',
        signal: controller.signal,
      });
      status = res.status;
      const text = await res.text().catch(() => '');
      if (status < 200 || status > 299) error = `HTTP ${status}${text ? `: ${text.slice(0, 500)}` : ''}`;
    } catch (e) {
      error = this.#stopped ? undefined : describe(e, controller.signal.aborted, this.#timeoutMs);
      if (this.#stopped) {
        // Cut short by shutdown: not an attempt; due again on the next start.
        await this.#record(id, { ccs_nextattempton: iso(clock()) });
        return;
      }
    } finally {
      this.#timers.clearTimeout(timer);
      this.#inFlight.delete(controller);
    }
    const now = clock();
    if (error === undefined) {
      await this.#record(id, {
        ccs_status: DELIVERY_STATUS.delivered, ccs_attempts: attempts, ccs_laststatuscode: status ?? null,
        ccs_lasterror: null, ccs_deliveredon: iso(now), ccs_nextattempton: null,
      });
      return;
    }
    const max = Number(webhook['ccs_maxattempts'] ?? DEFAULT_MAX_ATTEMPTS) || DEFAULT_MAX_ATTEMPTS;
    const failed = attempts >= max;
    log.warn({ delivery: id, webhook: webhook['ccs_name'], attempts, error }, failed ? 'webhook delivery failed for good' : 'webhook delivery failed; will retry');
    await this.#record(id, {
      ccs_status: failed ? DELIVERY_STATUS.failed : DELIVERY_STATUS.retrying,
      ccs_attempts: attempts,
      ccs_laststatuscode: status ?? null,
      ccs_lasterror: error.slice(0, MAX_ERROR),
      ccs_nextattempton: failed ? null : iso(now + backoff(attempts, this.#baseMs, this.#capMs)),
    });
  }

  /** Writes an attempt's outcome; a client editing the delivery meanwhile only makes it try again. */
  async #record(id: string, values: Record<string, unknown>): Promise<void> {
    for (let i = 0; ; i++) {
      try {
        await this.deps.records.update(this.deps.system, DELIVERY, id, values);
        return;
      } catch (e) {
        if (!(e instanceof CcsError && e.code === 'VersionMismatch') || i >= 5) throw e;
      }
    }
  }
}

function describe(e: unknown, aborted: boolean, timeoutMs: number): string {
  if (aborted) return `No answer within ${timeoutMs} ms.`;
  const err = e as { message?: string; cause?: { code?: string; message?: string } };
  const cause = err.cause?.code ?? err.cause?.message;
  return `${err.message ?? String(e)}${cause ? ` (${cause})` : ''}`;
}
