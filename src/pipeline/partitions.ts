/**
 * How rules workers share the devices: each device falls in one of `RULE_PARTITIONS` partitions (a hash of its id),
 * and each partition is owned by one live worker, chosen by rendezvous (highest random weight) hashing. Rendezvous
 * hashing moves only the partitions a joining or leaving worker gains or gives up (about 1/n of them), and every
 * worker computes the same owners from the same list of live workers without talking to the others.
 */

/** Fixed for an installation: partition numbers are stored with checkpoints and watermarks. */
export const RULE_PARTITIONS = 64;

/** FNV-1a, 32 bits, over the UTF-8 bytes of `text`. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The partition of a device: FNV-1a 32 of its id, modulo `RULE_PARTITIONS`. */
export function partitionOfDevice(deviceId: string): number {
  return fnv1a(deviceId) % RULE_PARTITIONS;
}

/**
 * The weight of a worker for a partition: FNV-1a of `workerId:partition`, then MurmurHash3's finaliser. FNV-1a alone
 * mixes its last bytes poorly, so the weights of two workers moved together from one partition to the next and one
 * worker could end up with no partition at all (seen with ids `w-a1`…`w-d4`); the finaliser spreads every bit.
 */
function weight(workerId: string, partition: number): number {
  let h = fnv1a(`${workerId}:${partition}`);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The worker that owns `partition` among `liveWorkerIds`: the one with the highest weight for it (`weight`)
 * (ties, practically never seen, go to the lower id so every worker decides the same). Undefined with no worker.
 */
export function ownerOf(partition: number, liveWorkerIds: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const id of liveWorkerIds) {
    const w = weight(id, partition);
    if (w > bestWeight || (w === bestWeight && best !== undefined && id < best)) {
      best = id;
      bestWeight = w;
    }
  }
  return best;
}

/** The partitions `workerId` owns among `liveWorkerIds` (which should contain it), in ascending order. */
export function partitionsOf(workerId: string, liveWorkerIds: Iterable<string>): number[] {
  const live = [...new Set(liveWorkerIds)];
  const owned: number[] = [];
  for (let p = 0; p < RULE_PARTITIONS; p++) if (ownerOf(p, live) === workerId) owned.push(p);
  return owned;
}
