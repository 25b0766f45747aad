import type { Row, Store } from '../store/types.js';
import type { LiveConnection } from './registry.js';
import { DEVICE_TABLE } from './tables.js';
import { and, compare, eq, isNull, or } from '../store/index.js';
import type { ConnectionState, DeviceChannel, DeviceStatusUpdate } from './types.js';

interface Entry {
  /** Undefined for a device seen only through activity (HTTPS): the table's state stands. */
  state: ConnectionState | undefined;
  updatedTime: number | undefined;
  lastActivityTime: number | null;
  /** What the table holds, to know what needs writing. */
  storedState: ConnectionState | undefined;
  storedActivity: number | null;
}

export interface ConnectionTracker {
  /** The connection that holds `deviceId` on this node. */
  channel(deviceId: string): DeviceChannel | undefined;
  /** Makes `channel` the device's connection; returns the channel it replaced, if any. */
  attach(channel: DeviceChannel): DeviceChannel | undefined;
  /** Removes `channel` if it still holds its device; true when it did. */
  detach(channel: DeviceChannel): boolean;
  /**
   * Forgets `channel` without recording a disconnection: a connection on another node took the device over, so the
   * device is still connected (there). True when `channel` held its device.
   */
  release(channel: DeviceChannel): boolean;
  /** Records the held device as connected again (written with the next flush), e.g. after its presence was lost. */
  markConnected(deviceId: string): void;
  touch(deviceId: string): void;
  live(deviceId: string): LiveConnection | undefined;
  channels(): IterableIterator<DeviceChannel>;
  /**
   * Writes changed connection states (and activity older than the activity interval) to the identity table; resolves
   * to what it wrote.
   */
  flush(): Promise<DeviceStatusUpdate[]>;
}

/**
 * Live connections and their state. State changes are kept in memory and written to `ccs_hubdevice` in batches (one
 * transaction per flush) so that a burst of connects or a stream of telemetry does not turn into a write per event.
 * Last activity is written only when it moved by `activityWriteMs`; readers on this node see the in-memory value.
 */
export function createConnectionTracker(opts: {
  store: Store;
  clock: () => number;
  activityWriteMs?: number;
  /**
   * Scale-out: several nodes write connection states of the same devices (a device moves from one node to another),
   * so a state is written only over an older one: a late "Disconnected" from the node a device left never overwrites
   * the "Connected" of the node it moved to.
   */
  newerStateWins?: boolean;
}): ConnectionTracker {
  const { store, clock } = opts;
  const activityWriteMs = opts.activityWriteMs ?? 60_000;
  const holders = new Map<string, DeviceChannel>();
  const entries = new Map<string, Entry>();
  const dirty = new Set<string>();

  function entry(deviceId: string): Entry {
    let e = entries.get(deviceId);
    if (!e) {
      e = { state: undefined, updatedTime: undefined, lastActivityTime: null, storedState: undefined, storedActivity: null };
      entries.set(deviceId, e);
    }
    return e;
  }

  function setState(deviceId: string, state: ConnectionState): void {
    const e = entry(deviceId);
    const now = clock();
    e.state = state;
    e.updatedTime = now;
    e.lastActivityTime = now;
    dirty.add(deviceId);
  }

  return {
    channel: (deviceId) => holders.get(deviceId),
    attach(channel) {
      const old = holders.get(channel.deviceId);
      holders.set(channel.deviceId, channel);
      setState(channel.deviceId, 'Connected');
      return old === channel ? undefined : old;
    },
    detach(channel) {
      if (holders.get(channel.deviceId) !== channel) return false;
      holders.delete(channel.deviceId);
      setState(channel.deviceId, 'Disconnected');
      return true;
    },
    release(channel) {
      if (holders.get(channel.deviceId) !== channel) return false;
      holders.delete(channel.deviceId);
      entries.delete(channel.deviceId);
      dirty.delete(channel.deviceId);
      return true;
    },
    markConnected(deviceId) {
      if (holders.has(deviceId)) setState(deviceId, 'Connected');
    },
    touch(deviceId) {
      const e = entry(deviceId);
      const now = clock();
      e.lastActivityTime = now;
      if (e.storedActivity === null || now - e.storedActivity >= activityWriteMs) dirty.add(deviceId);
    },
    live(deviceId) {
      const e = entries.get(deviceId);
      return e ? { state: e.state, updatedTime: e.updatedTime, lastActivityTime: e.lastActivityTime } : undefined;
    },
    channels: () => holders.values(),
    async flush() {
      if (dirty.size === 0) return [];
      const ids = [...dirty];
      dirty.clear();
      const writes: { id: string; e: Entry; state: ConnectionState | undefined; activity: number | null }[] = [];
      for (const id of ids) {
        const e = entries.get(id);
        if (e) writes.push({ id, e, state: e.state, activity: e.lastActivityTime });
      }
      /** State writes that a newer state from another node kept out (or whose identity is gone). */
      const skipped = new Set<string>();
      try {
        await store.transaction(async (tx) => {
          for (const w of writes) {
            const values: Row =
              w.state === undefined
                ? { lastactivitytime: w.activity }
                : { connectionstate: w.state, connectionstateupdatedtime: w.e.updatedTime ?? null, lastactivitytime: w.activity };
            const updatedTime = w.e.updatedTime;
            const conditional = opts.newerStateWins === true && w.state !== undefined && updatedTime !== undefined;
            const where = conditional
              ? and(eq('deviceid', w.id), or(isNull('connectionstateupdatedtime'), compare('connectionstateupdatedtime', 'le', updatedTime)))
              : eq('deviceid', w.id);
            if ((await tx.update(DEVICE_TABLE.name, values, where)) === 0 && conditional) skipped.add(w.id);
          }
        });
      } catch (e) {
        for (const id of ids) dirty.add(id);
        throw e;
      }
      for (const w of writes) {
        w.e.storedState = w.state;
        w.e.storedActivity = w.activity;
        // A disconnected device that has been written needs no memory here any more.
        if (w.e.state !== 'Connected' && !holders.has(w.id) && !dirty.has(w.id)) entries.delete(w.id);
      }
      return writes.filter((w) => !skipped.has(w.id)).map((w) => ({ deviceId: w.id, connectionState: w.state, lastActivityTime: w.activity }));
    },
  };
}
