import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createMemoryBus, createNatsBus, type Bus, type BusErrorHandler, type RedeliveryOptions } from '../../src/bus/index.js';

export type BusOptions = { onError?: BusErrorHandler } & RedeliveryOptions;

/** One isolated bus installation: buses connected to it see each other's messages (on a networked bus). */
export interface BusNamespace {
  connect(opts?: BusOptions): Promise<Bus>;
  /** Closes every bus it connected and removes what it stored. */
  cleanup(): Promise<void>;
}

/** A bus engine under test: in-process always, NATS JetStream when CCS_TEST_NATS_URL is set. */
export interface BusEngine {
  readonly name: 'memory' | 'nats';
  /** Whether buses from separate `connect()` calls share messages and messages outlive their subscribers. */
  readonly networked: boolean;
  /** A fresh namespace (NATS: its own stream and subject prefix, so runs and tests never see each other). */
  open(): BusNamespace;
}

export function buses(): BusEngine[] {
  const list: BusEngine[] = [
    {
      name: 'memory',
      networked: false,
      open() {
        const made: Bus[] = [];
        return {
          async connect(opts = {}) {
            const bus = createMemoryBus(opts);
            made.push(bus);
            return bus;
          },
          async cleanup() {
            await Promise.all(made.map((b) => b.close()));
          },
        };
      },
    },
  ];
  const url = process.env['CCS_TEST_NATS_URL'];
  if (url) {
    list.push({
      name: 'nats',
      networked: true,
      open() {
        const prefix = testBusPrefix();
        const made: Bus[] = [];
        return {
          async connect(opts = {}) {
            // Few partitions keep consumer set-up quick; the layout is the same at any count.
            const bus = await createNatsBus({ url, prefix, partitions: 4, ...opts });
            made.push(bus);
            return bus;
          },
          async cleanup() {
            await Promise.allSettled(made.map((b) => b.close()));
            await deleteTestStream(url, prefix);
          },
        };
      },
    });
  }
  return list;
}

/** A bus prefix (`--bus-prefix`) of its own, so that test runs share one NATS server without meeting. */
export function testBusPrefix(): string {
  return `ccs_test_${randomBytes(6).toString('hex')}`;
}

/** Deletes the JetStream stream a test's bus prefix created. */
export async function deleteTestStream(url: string, prefix: string): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(prefix.toUpperCase()).catch(() => false);
  } finally {
    await nc.close();
  }
}
