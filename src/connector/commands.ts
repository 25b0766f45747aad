/**
 * Commands to devices (ms-connected-service.md §1.3, §2.4). Creating an `msdyn_iotdevicecommand` sends its
 * `msdyn_message` to the device as a cloud-to-device message, what Microsoft's `CRM-To-IoT-V2` branch
 * `SendMessageToAnIotHubDeviceScope` does with `IoTHub-ServiceApp/SendMessage`. `msdyn_commandstatus`:
 *
 *   In Progress (192350000, the default) → Sent (192350001: queued to the hub)
 *     → Delivered (192350003, ours: the device completed the message — PUBACK over MQTT, DELETE over HTTPS)
 *     → Expired (192350004, ours: its time-to-live ran out before the device took it)
 *   → Error (192350002): no device, a device without a hub identity or disabled, a message its command definition
 *     refuses (./command-definition.ts), a hub refusal (queue of 50 full, message too large), or later the device
 *     rejected it or never completed it in 100 deliveries.
 *
 * `msdyn_commandstatusreason` says why in every case. The device is `msdyn_device` when set (its `msdyn_deviceid`
 * is then copied onto the command, the column Microsoft's Logic App sends to), else `msdyn_deviceid`. The C2D message id is the command id, which is how the hub's
 * `c2d` feedback finds the command again. Time-to-live: `ccs_timetolive` (ours) when set, else IoT Hub's default of
 * one hour.
 *
 * The hub reports expiry when it purges its queue (once a minute, or when the device next polls); so that a command
 * reads Expired at its expiry time, this module also keeps a timer per Sent command and marks it Expired then, if
 * it is still Sent. A message the device had already locked may still be completed after that: completion wins
 * (Expired → Delivered), since the device did get it. After a restart the timers are gone and the hub's purge
 * reports the expiry.
 *
 * Not done (issue 5 §2): direct methods — `msdyn_iotdevicecommanddefinition` has no column saying a command is a
 * method; `msdyn_sendtoallconnecteddevices` fan-out and commands to a category; commands still In Progress when the
 * process stopped are not resent on start.
 */
import { CcsError } from '../errors/index.js';
import type { Hub } from '../hub/index.js';
import { formatDateTime, isGuid } from '../metadata/index.js';
import type { RecordContext, RecordsService } from '../records/index.js';
import type { Row } from '../store/index.js';
import { checkAgainstDefinition } from './command-definition.js';
import { DEVICE, HUB_ID } from './devices.js';

const COMMAND = 'msdyn_iotdevicecommand';
const STATUS_COLUMN = 'msdyn_commandstatus';
const REASON = 'msdyn_commandstatusreason';
const TTL_COLUMN = 'ccs_timetolive';
/** `msdyn_commandstatus` (COMMAND_STATUS in metadata/standard/iot.ts). */
export const COMMAND_STATUS_VALUE = {
  inProgress: 192350000,
  sent: 192350001,
  error: 192350002,
  delivered: 192350003,
  expired: 192350004,
} as const;
/** IoT Hub's default C2D time-to-live (iot-hub-devguide-messages-c2d.md). */
export const DEFAULT_COMMAND_TTL_SECONDS = 3600;
/** The hub's expiry is inclusive of its clock reading; a little slack keeps the timer from firing before it. */
const EXPIRY_SLACK_MS = 100;

export interface CommandSyncDeps {
  readonly hub: Pick<Hub, 'on' | 'sendC2d' | 'registry'>;
  readonly records: RecordsService;
  /** The platform's own context: status updates are the connector's, not the user's who created the command. */
  readonly system: RecordContext;
  readonly log: { error(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void };
  readonly clock?: () => number;
  /** Time-to-live of a command without `ccs_timetolive`. */
  readonly defaultTtlSeconds?: number;
}

/** Starts sending commands and following their delivery; returns the stop function (waits for work in hand). */
export function startCommandSync(deps: CommandSyncDeps): () => Promise<void> {
  const { records, system, log, hub } = deps;
  const clock = deps.clock ?? Date.now;
  const defaultTtl = deps.defaultTtlSeconds ?? DEFAULT_COMMAND_TTL_SECONDS;
  /** Work on one command runs in order: the hub's feedback can arrive before the Sent status is written. */
  const chains = new Map<string, Promise<void>>();
  const timers = new Map<string, NodeJS.Timeout>();
  let stopped = false;

  function run(id: string, fn: () => Promise<void>): void {
    const next = (chains.get(id) ?? Promise.resolve())
      .then(fn)
      .catch((e: unknown) => log.error({ err: e, command: id }, 'processing an IoT device command failed'));
    chains.set(id, next);
    void next.then(() => {
      if (chains.get(id) === next) chains.delete(id);
    });
  }

  const load = (id: string) => records.retrieve(system, COMMAND, id, [STATUS_COLUMN, HUB_ID, 'msdyn_device', 'msdyn_message', 'msdyn_command', 'msdyn_parentalert', 'msdyn_customerasset', ...(records.table(COMMAND).column(TTL_COLUMN) ? [TTL_COLUMN] : [])]);
  const setStatus = (id: string, status: number, reason: string, extra: Record<string, unknown> = {}) =>
    records.update(system, COMMAND, id, { [STATUS_COLUMN]: status, [REASON]: reason.slice(0, 2000), ...extra });

  /** The hub identity the command targets, or the reason it has none. */
  async function target(row: Row): Promise<{ deviceId: string } | { problem: string }> {
    const device = row['msdyn_device'];
    let deviceId: string | undefined;
    if (typeof device === 'string') {
      const d = await records.retrieve(system, DEVICE, device, [HUB_ID]);
      deviceId = typeof d?.[HUB_ID] === 'string' && d[HUB_ID] !== '' ? d[HUB_ID] : undefined;
      if (!deviceId) return { problem: `The IoT device ${device} has no Device ID (msdyn_deviceid): register it with msdyn_RegisterIoTDevice first.` };
    } else if (typeof row[HUB_ID] === 'string' && row[HUB_ID] !== '') {
      deviceId = row[HUB_ID];
    } else {
      return { problem: 'The command names no device: set msdyn_device (msdyn_Device@odata.bind) or msdyn_deviceid.' };
    }
    const identity = await hub.registry.get(deviceId);
    if (!identity) return { problem: `Device '${deviceId}' is not registered with the hub: register it with msdyn_RegisterIoTDevice first.` };
    if (identity.status === 'disabled') return { problem: `Device '${deviceId}' is disabled in the hub.` };
    return { deviceId };
  }

  async function send(id: string): Promise<void> {
    const row = await load(id);
    // Only new commands: a client may create one with a final status (an import, a copy of history).
    if (!row || row[STATUS_COLUMN] !== COMMAND_STATUS_VALUE.inProgress) return;
    const fail = (reason: string) => setStatus(id, COMMAND_STATUS_VALUE.error, reason);
    const t = await target(row);
    if ('problem' in t) return fail(t.problem);
    const message = typeof row['msdyn_message'] === 'string' ? row['msdyn_message'] : '';
    if (typeof row['msdyn_command'] === 'string') {
      const problem = await checkAgainstDefinition(records, system, row['msdyn_command'], message);
      if (problem) return fail(problem);
    }
    const ttlSeconds = typeof row[TTL_COLUMN] === 'number' ? row[TTL_COLUMN] : defaultTtl;
    let expiryTime: number;
    try {
      const queued = await hub.sendC2d(t.deviceId, {
        body: Buffer.from(message, 'utf8'),
        properties: {},
        messageId: id,
        ...(isJson(message) ? { contentType: 'application/json', contentEncoding: 'utf-8' } : {}),
        ttlSeconds,
      });
      expiryTime = queued.expiryTime ?? clock() + ttlSeconds * 1000;
    } catch (e) {
      if (e instanceof CcsError) return fail(`The hub refused the message: ${e.message}`);
      await fail('Sending failed with an unexpected error; see the server log.');
      throw e;
    }
    const now = formatDateTime(clock());
    await setStatus(id, COMMAND_STATUS_VALUE.sent, `Queued for device '${t.deviceId}'; expires at ${formatDateTime(expiryTime)} unless the device receives it.`, {
      ...(row[HUB_ID] !== t.deviceId ? { [HUB_ID]: t.deviceId } : {}),
    });
    schedule(id, expiryTime);
    await markLastCommand(row, id, now);
  }

  /** `msdyn_lastcommandsent(time)` on the alert, asset and device the command is for (§1.3 item 4). */
  async function markLastCommand(row: Row, id: string, at: string): Promise<void> {
    const values = { msdyn_lastcommandsent: id, msdyn_lastcommandsenttime: at };
    for (const [column, table] of [['msdyn_parentalert', 'msdyn_iotalert'], ['msdyn_customerasset', 'msdyn_customerasset'], ['msdyn_device', DEVICE]] as const) {
      const related = row[column];
      if (typeof related !== 'string') continue;
      try {
        await records.update(system, table, related, values);
      } catch (e) {
        log.warn({ err: e, command: id, table }, 'could not record the last command sent');
      }
    }
  }

  function schedule(id: string, expiryTime: number): void {
    if (stopped) return;
    const timer = setTimeout(() => {
      timers.delete(id);
      run(id, () => expire(id));
    }, Math.max(0, expiryTime - clock()) + EXPIRY_SLACK_MS);
    timer.unref();
    timers.set(id, timer);
  }

  async function expire(id: string): Promise<void> {
    const row = await load(id);
    if (row?.[STATUS_COLUMN] !== COMMAND_STATUS_VALUE.sent) return;
    await setStatus(id, COMMAND_STATUS_VALUE.expired, `The device did not receive the message within its time-to-live.`);
  }

  async function feedback(id: string, deviceId: string, outcome: 'completed' | 'expired' | 'rejected' | 'deliveryCountExceeded'): Promise<void> {
    const row = await load(id);
    // Not a command, or a message of the same id to another device (sent through the service REST).
    if (!row || row[HUB_ID] !== deviceId) return;
    const status = row[STATUS_COLUMN];
    const at = formatDateTime(clock());
    if (outcome === 'completed') {
      if (status === COMMAND_STATUS_VALUE.sent || status === COMMAND_STATUS_VALUE.expired) {
        await setStatus(id, COMMAND_STATUS_VALUE.delivered, `The device received the message at ${at}.`);
      }
    } else if (status === COMMAND_STATUS_VALUE.sent) {
      if (outcome === 'expired') await setStatus(id, COMMAND_STATUS_VALUE.expired, 'The device did not receive the message within its time-to-live.');
      else if (outcome === 'rejected') await setStatus(id, COMMAND_STATUS_VALUE.error, `The device rejected the message at ${at}.`);
      else await setStatus(id, COMMAND_STATUS_VALUE.error, 'The device did not complete the message in 100 deliveries; the hub dropped it.');
    }
    const timer = timers.get(id);
    if (timer) {
      clearTimeout(timer);
      timers.delete(id);
    }
  }

  const offRecords = records.onEvent((e) => {
    if (e.type === 'created' && e.table === COMMAND) run(e.id, () => send(e.id));
  });
  const offC2d = hub.on('c2d', (deviceId, messageId, outcome) => {
    if (isGuid(messageId)) run(messageId.toLowerCase(), () => feedback(messageId.toLowerCase(), deviceId, outcome));
  });
  return async () => {
    stopped = true;
    offRecords();
    offC2d();
    for (const t of timers.values()) clearTimeout(t);
    timers.clear();
    while (chains.size > 0) await Promise.all([...chains.values()]);
  };
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
