import { createHash } from 'node:crypto';
import type { RecordContext, RecordEvent, RecordsService } from '../records/index.js';
import { toAlertData, type Firing } from '../rules/index.js';
import type { Store } from '../store/index.js';
import { eq } from '../store/index.js';
import type { DeviceInfo } from './device-directory.js';

export const ALERT_TABLE = 'msdyn_iotalert';
/** msdyn_iotalert.msdyn_alerttoken is String(100). */
const TOKEN_MAX = 100;

/**
 * The alert's token: the event (message id, or the deterministic tick token) and the rule, so that one message
 * raising two rules makes two alerts, and the same message processed twice (redelivery, replay after a crash) makes
 * one. Tokens too long for the column are hashed: still unique, still the same on every replay.
 */
export function alertToken(f: Pick<Firing, 'eventToken' | 'ruleId'>): string {
  const token = `${f.eventToken}/${f.ruleId}`;
  return token.length <= TOKEN_MAX ? token : `sha256:${createHash('sha256').update(token).digest('hex')}`;
}

export interface AlertWriter {
  /** Creates the alert of a firing unless one with its token exists; resolves to whether it created one. */
  write(firing: Firing, device: DeviceInfo | null): Promise<boolean>;
}

/** Alerts written in one transaction at most. */
const MAX_GROUP = 64;
/**
 * Transactions writing at once: SQLite has one writer, so one, and the next group gathers meanwhile; on PostgreSQL
 * the round trips of several overlap.
 */
const WRITERS = { sqlite: 1, postgres: 8 } as const;

interface Queued {
  readonly token: string;
  readonly values: Record<string, unknown>;
  readonly resolve: (created: boolean) => void;
  readonly reject: (e: unknown) => void;
}

/**
 * Firings → `msdyn_iotalert` with Microsoft's mapping (ms-connected-service.md §1.2 step 3, and step 4's lookups
 * that Dataverse plug-ins fill in). The token check and the create run in one transaction holding a lock on the
 * token, so two workers (or a replay racing live delivery) cannot both create it. Records are created through the
 * records service: the alert raises the same record events as one posted through the Web API (workflows react).
 *
 * Group commit: alerts asked for while the writing transactions are busy go together in the next one (in token
 * order, so two writers never wait for each other's locks in opposite orders). Alone an alert is written at once;
 * under load a commit, the expensive part, is shared. When a group fails, its alerts are written one by one, so one
 * bad alert fails alone.
 */
export function createAlertWriter(deps: { readonly store: Store; readonly records: RecordsService; readonly system: RecordContext }): AlertWriter {
  const { store, records, system } = deps;
  const queue: Queued[] = [];
  const writers = WRITERS[store.engine];
  let writing = 0;

  async function writeGroup(group: readonly Queued[]): Promise<boolean[]> {
    const pending: RecordEvent[] = [];
    const created = await store.transaction(async (tx) => {
      const rc = { ...system, db: tx, pending };
      const out: boolean[] = [];
      for (const q of group) {
        await tx.lock(`msdyn_iotalert:${q.token}`);
        const existing = await tx.select({ table: ALERT_TABLE, columns: ['msdyn_iotalertid'], where: eq('msdyn_alerttoken', q.token), limit: 1 });
        if (existing.length === 0) await records.create(rc, ALERT_TABLE, q.values);
        out.push(existing.length === 0);
      }
      return out;
    });
    records.publish(pending);
    return created;
  }

  async function drain(): Promise<void> {
    writing++;
    try {
      while (queue.length > 0) {
        const group = queue.splice(0, MAX_GROUP).sort((a, b) => (a.token < b.token ? -1 : a.token > b.token ? 1 : 0));
        try {
          const created = await writeGroup(group);
          group.forEach((q, i) => q.resolve(created[i]!));
        } catch (e) {
          if (group.length === 1) group[0]!.reject(e);
          else {
            for (const q of group) {
              try {
                q.resolve((await writeGroup([q]))[0]!);
              } catch (err) {
                q.reject(err);
              }
            }
          }
        }
      }
    } finally {
      writing--;
    }
  }

  return {
    write(f, device) {
      const token = alertToken(f);
      const values: Record<string, unknown> = {
        msdyn_description: f.description,
        msdyn_alertdata: JSON.stringify(toAlertData(f)),
        msdyn_alerttime: new Date(f.time).toISOString(),
        msdyn_alerttoken: token,
        msdyn_alerttype: f.alertType,
        msdyn_deviceid: f.deviceId,
      };
      const recordId = device?.recordId ?? f.deviceRecordId;
      if (recordId) values['msdyn_device'] = recordId;
      if (device?.customerAssetId) values['msdyn_customerasset'] = device.customerAssetId;
      return new Promise<boolean>((resolve, reject) => {
        queue.push({ token, values, resolve, reject });
        if (writing < writers) void drain();
      });
    },
  };
}
