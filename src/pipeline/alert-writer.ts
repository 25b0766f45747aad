import { createHash } from 'node:crypto';
import type { RecordContext, RecordEvent, RecordsService } from '../records/index.js';
import { toAlertData, type Firing } from '../rules/index.js';
import type { Store } from '../store/index.js';
import { createGroupCommit, eq } from '../store/index.js';
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

/**
 * Firings → `msdyn_iotalert` with Microsoft's mapping (ms-connected-service.md §1.2 step 3, and step 4's lookups
 * that Dataverse plug-ins fill in). The token check and the create run in one transaction holding a lock on the
 * token, so two workers (or a replay racing live delivery) cannot both create it. Records are created through the
 * records service: the alert raises the same record events as one posted through the Web API (workflows react).
 * Alerts asked for at once share transactions (store group commit), taken in token order.
 */
export function createAlertWriter(deps: { readonly store: Store; readonly records: RecordsService; readonly system: RecordContext }): AlertWriter {
  const { store, records, system } = deps;
  const group = createGroupCommit(store);

  async function writeAlert(token: string, values: Record<string, unknown>): Promise<boolean> {
    const { created, pending } = await group.run(async (tx) => {
      const pending: RecordEvent[] = [];
      await tx.lock(`msdyn_iotalert:${token}`);
      const existing = await tx.select({ table: ALERT_TABLE, columns: ['msdyn_iotalertid'], where: eq('msdyn_alerttoken', token), limit: 1 });
      if (existing.length === 0) await records.create({ ...system, db: tx, pending }, ALERT_TABLE, values);
      return { created: existing.length === 0, pending };
    }, token);
    records.publish(pending);
    return created;
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
      return writeAlert(token, values);
    },
  };
}
