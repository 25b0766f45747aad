import { createMemoryBus } from '../../src/bus/index.js';
import type { Bus } from '../../src/bus/index.js';
import { createHub, type HubDeps, type HubRuntime } from '../../src/hub/index.js';
import type { C2dMessage, DeviceChannel } from '../../src/hub/index.js';
import { createStore, PostgresStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import type { Engine } from '../helpers/engines.js';

export interface TestClock {
  (): number;
  advance(ms: number): void;
}

/** A clock the test moves by hand; starts at a fixed, realistic time. */
export function testClock(start = Date.UTC(2026, 10, 26, 12, 0, 0)): TestClock {
  let now = start;
  const clock = (() => now) as TestClock;
  clock.advance = (ms) => {
    now += ms;
  };
  return clock;
}

export interface TestHub {
  readonly hub: HubRuntime;
  readonly store: Store;
  readonly bus: Bus;
  readonly clock: TestClock;
  /** Closes the hub and opens a new one on the same store (a server restart). */
  restart(): Promise<HubRuntime>;
  close(opts?: { drop?: boolean }): Promise<void>;
}

export async function openHub(engine: Engine, opts: Partial<Omit<HubDeps, 'store' | 'bus'>> & { clock?: TestClock } = {}): Promise<TestHub> {
  const url = engine.url();
  let store = createStore(url);
  const bus = createMemoryBus();
  const clock = opts.clock ?? testClock();
  const deps = { hostName: 'hub.test', flushIntervalMs: 20, ...opts, clock };
  let hub = await createHub({ ...deps, store, bus });
  const t: TestHub = {
    get hub() {
      return hub;
    },
    get store() {
      return store;
    },
    bus,
    clock,
    async restart() {
      await hub.close();
      await store.close();
      store = createStore(url);
      hub = await createHub({ ...deps, store, bus });
      return hub;
    },
    async close({ drop = true } = {}) {
      await hub.close();
      if (drop && store instanceof PostgresStore) await store.dropSchema();
      await store.close();
    },
  };
  return t;
}

/**
 * A DeviceChannel test double (the port a transport implements). Records what the hub pushes; C2D deliveries are
 * acknowledged at once unless `c2dBehaviour` says otherwise.
 */
export class FakeChannel implements DeviceChannel {
  readonly delivered: C2dMessage[] = [];
  readonly methodRequests: { rid: string; methodName: string; payload: Buffer }[] = [];
  readonly desiredPatches: { patch: Record<string, unknown>; version: number }[] = [];
  closedWith: string | undefined;
  acceptsMethods = true;
  /** 'ack' acknowledges, 'fail' rejects, 'hold' never settles (until `release()`). */
  c2dBehaviour: 'ack' | 'fail' | 'hold' = 'ack';
  #held: (() => void)[] = [];
  #onMethod: ((rid: string, methodName: string, payload: Buffer) => void) | undefined;

  constructor(
    readonly deviceId: string,
    readonly transport = 'fake',
  ) {}

  deliverC2d(message: C2dMessage): Promise<void> {
    this.delivered.push(message);
    if (this.c2dBehaviour === 'fail') return Promise.reject(new Error('device did not take it'));
    if (this.c2dBehaviour === 'hold') return new Promise((resolve) => this.#held.push(resolve));
    return Promise.resolve();
  }
  release(): void {
    for (const r of this.#held.splice(0)) r();
  }
  sendMethodRequest(rid: string, methodName: string, payload: Buffer): void {
    this.methodRequests.push({ rid, methodName, payload });
    this.#onMethod?.(rid, methodName, payload);
  }
  onMethod(fn: (rid: string, methodName: string, payload: Buffer) => void): void {
    this.#onMethod = fn;
  }
  sendDesiredPatch(patch: Record<string, unknown>, version: number): void {
    this.desiredPatches.push({ patch, version });
  }
  close(reason: string): void {
    this.closedWith = reason;
  }
}

/** Resolves once `predicate` holds (polling), or rejects after `ms`. */
export async function eventually(predicate: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function isCode(code: string) {
  return (e: unknown) => {
    if (!(e instanceof Error) || (e as { code?: string }).code !== code) {
      throw new Error(`expected CcsError ${code}, got ${e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e)}`);
    }
    return true;
  };
}
