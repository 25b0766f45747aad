/**
 * Commands to devices (ms-connected-service.md §1.3, §2.4). Creating an `msdyn_iotdevicecommand` sends its
 * `msdyn_message` to the device, as a cloud-to-device message (what Microsoft's `CRM-To-IoT-V2` branch
 * `SendMessageToAnIotHubDeviceScope` does with `IoTHub-ServiceApp/SendMessage`) or, when its command definition says
 * so, as a direct method call (ours). `msdyn_commandstatus`:
 *
 *   In Progress (192350000, the default) → Sent (192350001: queued to the hub, or the method call is under way)
 *     → Delivered (192350003, ours: the device completed the message — PUBACK over MQTT, DELETE over HTTPS — or
 *       answered the method, whatever its status code; the answer is in `ccs_responsestatus`/`ccs_responsepayload`)
 *     → Expired (192350004, ours: a message's time-to-live ran out before the device took it)
 *   → Error (192350002): no device, a device without a hub identity or disabled, a message its command definition
 *     refuses (../command-definition.ts), a hub refusal (queue of 50 full, message too large), a device not online
 *     for a method (IoT Hub's 404 DeviceNotOnline) or one that did not answer in time (504, "timed out"), or later
 *     the device rejected a message or never completed it in 100 deliveries.
 *
 * `msdyn_commandstatusreason` says why in every case. The device is `msdyn_device` when set (its `msdyn_deviceid`
 * is then copied onto the command, the column Microsoft's Logic App sends to), else `msdyn_deviceid`.
 *
 * Cloud-to-device messages: the message id is the command id, which is how the hub's `c2d` feedback finds the
 * command again. Time-to-live: `ccs_timetolive` (ours) when set, else IoT Hub's default of one hour. The hub reports
 * expiry when it purges its queue (once a minute, or when the device next polls); so that a command reads Expired at
 * its expiry time, this module also keeps a timer per Sent command and marks it Expired then, if it is still Sent. A
 * message the device had already locked may still be completed after that: completion wins (Expired → Delivered),
 * since the device did get it. After a restart the timers are gone and the hub's purge reports the expiry.
 *
 * Direct methods: the definition's `ccs_deliverymethod` is Direct method; the method is its `ccs_methodname` (else its
 * name), the payload the message parsed as JSON (`null` when empty), the response timeout `ccs_timetolive` within
 * IoT Hub's 5–300 s, else 30 s. A device that is not connected fails at once; a connected one gets a few seconds to
 * subscribe to methods (a device that has just connected may not have yet).
 *
 * Many devices (./fan-out.ts): `msdyn_sendtoallconnecteddevices`, `ccs_category`, or a command that names only a
 * customer asset, gets one child command per registered device (`ccs_parentcommand` = it), each sent as above. The
 * parent's status summarises its children's (./summary.ts) and is recomputed whenever one of theirs changes.
 *
 * On start (`resume()`, called once the app serves, not when a CLI command merely builds it): commands In Progress for
 * over 30 s are sent (younger ones when they reach that age: sending takes milliseconds, so an older one is not being
 * sent by any live process); a fan-out creates only the children it had not created yet; resumed method calls wait up
 * to their response timeout for the device to reconnect. Method calls left Sent for longer than their connect and
 * response timeouts (their answer was lost with the process) become Error. Sent fan-out parents are summarised again.
 *
 * Validation: a message that cannot be a definition's (not JSON, not a JSON object) is refused at create with a 400;
 * what needs the definition read (its name, its parameters, a C2D command with an empty message) makes the command
 * Error with the reason (a fan-out parent fails once, before creating children). A direct-method definition whose
 * method name the hub would refuse is refused at create and update (400).
 *
 * Not done, or weak:
 * - A crash between queueing a message and writing Sent sends it again on start: the device sees the same message
 *   id twice. Nothing dedupes it.
 * - In a scale-out installation each api/worker node sends the commands created through it; a node that restarts
 *   during another node's fan-out of more than 30 s can create duplicate children (no lock on the parent).
 * - Children are created one by one; a category of many thousand devices takes that many creates before the parent
 *   is summarised.
 * - A method's answer is Delivered whatever its status code; a 4xx/5xx answer is not an Error (read
 *   `ccs_responsestatus`).
 * - Commands cannot be cancelled; a C2D message queued for an offline device stays queued until it expires.
 */
import { CcsError } from '../../errors/index.js';
import type { Hub } from '../../hub/index.js';
import { formatDateTime, isGuid } from '../../metadata/index.js';
import type { RecordContext, RecordsService } from '../../records/index.js';
import type { DeviceIdentity } from '../../hub/index.js';
import type { Row } from '../../store/index.js';
import { and, chunks, eq, isIn } from '../../store/index.js';
import {
  checkAgainstDefinition,
  DEFINITION,
  DELIVERY_COLUMN,
  DELIVERY_METHOD,
  loadDefinition,
  messageShapeProblem,
  validateDefinitionRow,
  type CommandDefinition,
} from '../command-definition.js';
import { DEVICE, HUB_ID } from '../devices.js';
import { fanOutTargets, isFanOut } from './fan-out.js';
import {
  CATEGORY,
  COMMAND,
  COMMAND_ID,
  COMMAND_STATUS_VALUE,
  PARENT_COMMAND,
  REASON,
  REASON_MAX,
  RESPONSE_PAYLOAD,
  RESPONSE_PAYLOAD_MAX,
  RESPONSE_STATUS,
  SEND_TO_ALL,
  STATUS_COLUMN,
  TTL_COLUMN,
} from './status.js';
import { FAILURES_LISTED, summarise } from './summary.js';

/** IoT Hub's default C2D time-to-live (iot-hub-devguide-messages-c2d.md). */
export const DEFAULT_COMMAND_TTL_SECONDS = 3600;
/** IoT Hub's direct-method response timeout: default 30 s, 5–300 s (iot-hub-devguide-direct-methods.md). */
export const DEFAULT_METHOD_TIMEOUT_SECONDS = 30;
const MIN_METHOD_TIMEOUT_SECONDS = 5;
const MAX_METHOD_TIMEOUT_SECONDS = 300;
/** How long a connected device may take to subscribe to methods (the SDK subscribes after it connects). */
const SUBSCRIBE_GRACE_SECONDS = 5;
/** A command In Progress for longer than this is not being sent by any live process (sending takes milliseconds). */
const RESUME_GRACE_MS = 30_000;
/** Beyond a method call's connect and response timeouts: time to write its outcome. */
const METHOD_SLACK_SECONDS = 10;
/** The hub's expiry is inclusive of its clock reading; a little slack keeps the timer from firing before it. */
const EXPIRY_SLACK_MS = 100;

export interface CommandSyncDeps {
  readonly hub: Pick<Hub, 'on' | 'sendC2d' | 'invokeMethod' | 'registry'>;
  readonly records: RecordsService;
  /** The platform's own context: status updates are the connector's, not the user's who created the command. */
  readonly system: RecordContext;
  readonly log: { error(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void };
  readonly clock?: () => number;
  /** Time-to-live of a command without `ccs_timetolive`. */
  readonly defaultTtlSeconds?: number;
}

const COLUMNS = [
  'msdyn_name', STATUS_COLUMN, HUB_ID, 'msdyn_device', 'msdyn_message', 'msdyn_command', 'msdyn_parentalert', 'msdyn_customerasset',
  TTL_COLUMN, SEND_TO_ALL, CATEGORY, PARENT_COMMAND,
];

/**
 * The running command process: call it to stop (it waits for work in hand, including method calls waiting for their
 * answer); `resume()` takes up what a previous run left (see the header), once.
 */
export interface CommandSync {
  (): Promise<void>;
  /**
   * Call when the process starts serving, not when it is merely built: a one-off command of the CLI that builds the
   * app against the store of a running server must not send that server's commands or fail its method calls.
   */
  resume(): Promise<void>;
}

/** Starts sending new commands and following their delivery. */
export function startCommandSync(deps: CommandSyncDeps): CommandSync {
  const { records, system, log, hub } = deps;
  const clock = deps.clock ?? Date.now;
  const defaultTtl = deps.defaultTtlSeconds ?? DEFAULT_COMMAND_TTL_SECONDS;
  const hasOwner = records.table(COMMAND).column('ownerid') !== undefined;
  const columns = hasOwner ? [...COLUMNS, 'ownerid'] : COLUMNS;
  /** Work on one command runs in order: the hub's feedback can arrive before the Sent status is written. */
  const chains = new Map<string, Promise<void>>();
  const timers = new Map<string, NodeJS.Timeout>();
  /** Parents whose summary is queued and not yet started: a burst of child updates makes one recompute. */
  const summaryQueued = new Set<string>();
  /** Method calls under way in this process (not stale after a restart). */
  const calling = new Set<string>();
  /** Lookups of a child's parent, awaited on stop. */
  const side = new Set<Promise<void>>();
  let stopped = false;

  function run(id: string, fn: () => Promise<void>): Promise<void> {
    const next = (chains.get(id) ?? Promise.resolve())
      .then(fn)
      .catch((e: unknown) => log.error({ err: e, command: id }, 'processing an IoT device command failed'));
    chains.set(id, next);
    void next.then(() => {
      if (chains.get(id) === next) chains.delete(id);
    });
    return next;
  }

  function track(p: Promise<void>): void {
    const t = p.catch((e: unknown) => log.error({ err: e }, 'following IoT device commands failed'));
    side.add(t);
    void t.then(() => side.delete(t));
  }

  const load = (id: string) => records.retrieve(system, COMMAND, id, columns);
  const setStatus = (id: string, status: number, reason: string, extra: Record<string, unknown> = {}) =>
    records.update(system, COMMAND, id, { [STATUS_COLUMN]: status, [REASON]: clip(reason, REASON_MAX), ...extra });

  // A message that cannot be what its definition asks for is refused before the command exists.
  const removeCommandValidator = records.addValidator(COMMAND, (row, op) => {
    if (op !== 'create' || row[STATUS_COLUMN] !== COMMAND_STATUS_VALUE.inProgress) return;
    const problem = messageShapeProblem(row);
    if (problem) throw new CcsError('InvalidValue', `${problem} (msdyn_message)`);
  });
  const removeDefinitionValidator = records.addValidator(DEFINITION, (row) => {
    const problem = validateDefinitionRow(row);
    if (problem) throw new CcsError('InvalidValue', problem);
  });

  /** The hub identity the command targets, or the reason it has none. */
  async function target(row: Row): Promise<{ deviceId: string; identity: DeviceIdentity } | { problem: string }> {
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
    return { deviceId, identity };
  }

  /** Sends a new command (`resumed`: one a previous run left In Progress). */
  async function send(id: string, resumed = false): Promise<void> {
    const row = await load(id);
    // Only new commands: a client may create one with a final status (an import, a copy of history).
    if (!row || row[STATUS_COLUMN] !== COMMAND_STATUS_VALUE.inProgress) return;
    if (isFanOut(row)) return fanOut(id, row);
    const fail = (reason: string) => setStatus(id, COMMAND_STATUS_VALUE.error, reason);
    const t = await target(row);
    if ('problem' in t) return fail(t.problem);
    const message = typeof row['msdyn_message'] === 'string' ? row['msdyn_message'] : '';
    const checked = await definitionOf(row);
    if ('problem' in checked) return fail(checked.problem);
    const definition = checked.definition;
    const deviceIdColumn = row[HUB_ID] !== t.deviceId ? { [HUB_ID]: t.deviceId } : {};
    if (definition?.delivery === 'method') return callMethod(id, row, t.deviceId, t.identity, definition, message, deviceIdColumn, resumed);

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
    await setStatus(id, COMMAND_STATUS_VALUE.sent, `Queued for device '${t.deviceId}'; expires at ${formatDateTime(expiryTime)} unless the device receives it.`, deviceIdColumn);
    schedule(id, expiryTime);
    await markLastCommand(row, id, now);
  }

  async function callMethod(
    id: string,
    row: Row,
    deviceId: string,
    identity: DeviceIdentity,
    definition: CommandDefinition,
    message: string,
    deviceIdColumn: Record<string, unknown>,
    resumed: boolean,
  ): Promise<void> {
    const timeoutS = methodTimeout(row[TTL_COLUMN]);
    // After a restart devices are reconnecting: give them the response timeout to come back. Otherwise a device that
    // is not connected fails at once, as IoT Hub's invoke does; a connected one gets a moment to subscribe.
    const connectS = resumed ? timeoutS : identity.connectionState === 'Connected' ? Math.min(SUBSCRIBE_GRACE_SECONDS, timeoutS) : 0;
    const method = definition.methodName;
    const payload: unknown = message === '' ? null : (JSON.parse(message) as unknown); // checked against the definition
    await setStatus(id, COMMAND_STATUS_VALUE.sent, `Calling method '${method}' on device '${deviceId}'; waiting up to ${timeoutS} s for its answer.`, deviceIdColumn);
    await markLastCommand(row, id, formatDateTime(clock()));
    calling.add(id);
    try {
      const res = await hub.invokeMethod(deviceId, { methodName: method, payload, responseTimeoutInSeconds: timeoutS, connectTimeoutInSeconds: connectS });
      const text = res.payload === undefined ? '' : JSON.stringify(res.payload);
      const truncated = text.length > RESPONSE_PAYLOAD_MAX;
      await setStatus(
        id,
        COMMAND_STATUS_VALUE.delivered,
        `Device '${deviceId}' answered method '${method}' with status ${res.status} at ${formatDateTime(clock())}.${truncated ? ` Its answer (${text.length} characters) was cut to ${RESPONSE_PAYLOAD_MAX}.` : ''}`,
        { [RESPONSE_STATUS]: res.status, [RESPONSE_PAYLOAD]: truncated ? text.slice(0, RESPONSE_PAYLOAD_MAX) : text },
      );
    } catch (e) {
      if (!(e instanceof CcsError)) {
        await setStatus(id, COMMAND_STATUS_VALUE.error, 'Calling the method failed with an unexpected error; see the server log.');
        throw e;
      }
      const reason =
        e.code === 'DeviceNotOnline'
          ? `Device '${deviceId}' is not online (404 DeviceNotOnline): ${e.message}`
          : e.code === 'GatewayTimeout'
            ? `Device '${deviceId}' did not answer method '${method}' within ${timeoutS} s: timed out (504 GatewayTimeout).`
            : `The hub refused the method call (${e.code}): ${e.message}`;
      await setStatus(id, COMMAND_STATUS_VALUE.error, reason);
    } finally {
      calling.delete(id);
    }
  }

  /** The command's definition (undefined when it names none), or why its message cannot be sent. */
  async function definitionOf(row: Row): Promise<{ definition: CommandDefinition | undefined } | { problem: string }> {
    const definitionId = row['msdyn_command'];
    if (typeof definitionId !== 'string') return { definition: undefined };
    const definition = await loadDefinition(records, system, definitionId);
    if (!definition) return { problem: `The command definition ${definitionId} does not exist.` };
    const message = typeof row['msdyn_message'] === 'string' ? row['msdyn_message'] : '';
    // A method may take no payload; a message always has a body, which a definition wants to be its JSON.
    if (definition.delivery === 'method' && message === '') return { definition };
    const problem = await checkAgainstDefinition(records, system, definition, message);
    return problem ? { problem } : { definition };
  }

  async function definitionProblem(row: Row): Promise<string | undefined> {
    const checked = await definitionOf(row);
    return 'problem' in checked ? checked.problem : undefined;
  }

  /** Creates the children a fan-out command has not created yet, then summarises them. */
  async function fanOut(id: string, row: Row): Promise<void> {
    // A message its definition refuses would fail on every device: say so once, on the parent.
    const problem = await definitionProblem(row);
    if (problem) {
      await setStatus(id, COMMAND_STATUS_VALUE.error, problem);
      return;
    }
    const found = await fanOutTargets(records, system, row);
    if ('problem' in found) {
      await setStatus(id, COMMAND_STATUS_VALUE.error, found.problem);
      return;
    }
    const existing = await records.query(system, COMMAND, { columns: ['msdyn_device'], where: eq(PARENT_COMMAND, id) });
    const done = new Set(existing.map((r) => r['msdyn_device']));
    // Children belong to whoever owns the parent, so a user who may read only their own commands sees them.
    const owner = typeof row['ownerid'] === 'string' ? { ownerid: row['ownerid'] } : {};
    for (const d of found.devices) {
      if (stopped) return;
      if (done.has(d.recordId)) continue;
      await records.create(system, COMMAND, {
        msdyn_name: row['msdyn_name'] ?? 'Command',
        msdyn_message: row['msdyn_message'] ?? null,
        msdyn_command: row['msdyn_command'] ?? null,
        msdyn_device: d.recordId,
        [HUB_ID]: d.hubId,
        [TTL_COLUMN]: row[TTL_COLUMN] ?? null,
        [PARENT_COMMAND]: id,
        ...owner,
      });
    }
    // The children mark their devices; the parent marks the alert and the asset it was sent for.
    await markLastCommand({ ...row, msdyn_device: null }, id, formatDateTime(clock()));
    await summarize(id);
  }

  /** Writes the parent's status from its children's, when it differs. */
  async function summarize(parentId: string): Promise<void> {
    const parent = await records.retrieve(system, COMMAND, parentId, [STATUS_COLUMN, REASON]);
    if (!parent) return;
    const where = (status: number) => and(eq(PARENT_COMMAND, parentId), eq(STATUS_COLUMN, status));
    const count = (status: number) => records.count(system, COMMAND, where(status));
    const v = COMMAND_STATUS_VALUE;
    const counts = {
      inProgress: await count(v.inProgress),
      sent: await count(v.sent),
      delivered: await count(v.delivered),
      error: await count(v.error),
      expired: await count(v.expired),
    };
    if (counts.inProgress + counts.sent + counts.delivered + counts.error + counts.expired === 0) return;
    const failed = await records.query(system, COMMAND, {
      columns: [HUB_ID, STATUS_COLUMN, REASON],
      where: and(eq(PARENT_COMMAND, parentId), isIn(STATUS_COLUMN, [v.error, v.expired])),
      orderBy: [{ column: HUB_ID }],
      limit: FAILURES_LISTED,
    });
    const s = summarise(counts, failed.map((f) => ({ deviceId: String(f[HUB_ID] ?? ''), expired: f[STATUS_COLUMN] === v.expired, reason: String(f[REASON] ?? '') })));
    if (parent[STATUS_COLUMN] === s.status && parent[REASON] === s.reason) return;
    await setStatus(parentId, s.status, s.reason);
  }

  function queueSummary(parentId: string): void {
    if (stopped || summaryQueued.has(parentId)) return;
    summaryQueued.add(parentId);
    void run(parentId, () => {
      summaryQueued.delete(parentId);
      return summarize(parentId);
    });
  }

  /** `msdyn_lastcommandsent(time)` on the alert, asset and device the command is for (§1.3 item 4). */
  async function markLastCommand(row: Row, id: string, at: string): Promise<void> {
    const values = { msdyn_lastcommandsent: id, msdyn_lastcommandsenttime: at };
    for (const [column, related] of [['msdyn_parentalert', 'msdyn_iotalert'], ['msdyn_customerasset', 'msdyn_customerasset'], ['msdyn_device', DEVICE]] as const) {
      const value = row[column];
      if (typeof value !== 'string') continue;
      try {
        await records.update(system, related, value, values);
      } catch (e) {
        log.warn({ err: e, command: id, table: related }, 'could not record the last command sent');
      }
    }
  }

  function schedule(id: string, expiryTime: number): void {
    if (stopped) return;
    const timer = setTimeout(() => {
      timers.delete(id);
      void run(id, () => expire(id));
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

  /**
   * What a previous run left behind: commands not sent, method calls whose answer was lost, parents not summarised.
   * Another node of a scale-out installation may be working on the same commands right now, so a command is taken up
   * only once no live process can still be handling it: In Progress for longer than RESUME_GRACE_MS (sending takes
   * milliseconds), or a method call Sent for longer than its longest possible wait (connect plus response timeout).
   * Younger ones are looked at again when they reach that age.
   */
  async function resume(): Promise<void> {
    const v = COMMAND_STATUS_VALUE;
    const work: Promise<void>[] = [];
    const at = (id: string, when: number, fn: () => Promise<void>) => {
      if (stopped) return;
      const wait = when - clock();
      if (wait <= 0) {
        work.push(run(id, fn));
        return;
      }
      const key = `resume:${id}`;
      const timer = setTimeout(() => {
        timers.delete(key);
        void run(id, fn);
      }, wait);
      timer.unref();
      timers.set(key, timer);
    };
    const modified = (row: Row) => Number(row['modifiedon'] ?? 0);

    const methodDefinitions = await records.query(system, DEFINITION, { columns: [], where: eq(DELIVERY_COLUMN, DELIVERY_METHOD.method) });
    const definitionIds = methodDefinitions.map((d) => String(d['msdyn_iotdevicecommanddefinitionid']));
    for (const ids of chunks(definitionIds)) {
      const calls = await records.query(system, COMMAND, { columns: [TTL_COLUMN, 'modifiedon'], where: and(eq(STATUS_COLUMN, v.sent), isIn('msdyn_command', ids)) });
      for (const call of calls) {
        const id = String(call[COMMAND_ID]);
        const longest = (2 * methodTimeout(call[TTL_COLUMN]) + METHOD_SLACK_SECONDS) * 1000;
        at(id, modified(call) + longest, async () => {
          const row = await records.retrieve(system, COMMAND, id, [STATUS_COLUMN, HUB_ID, 'modifiedon']);
          if (row?.[STATUS_COLUMN] !== v.sent || calling.has(id) || modified(row) !== modified(call)) return;
          await setStatus(id, v.error, `The server stopped while waiting for device '${String(row[HUB_ID] ?? '')}' to answer the method; its answer, if any, was lost. Create the command again to call the method again.`);
        });
      }
    }
    const pending = await records.query(system, COMMAND, { columns: ['modifiedon'], where: eq(STATUS_COLUMN, v.inProgress), orderBy: [{ column: 'createdon' }] });
    for (const p of pending) {
      const id = String(p[COMMAND_ID]);
      at(id, modified(p) + RESUME_GRACE_MS, () => send(id, true));
    }
    // A child's change may have been written without its parent's summary (recomputing it is harmless anywhere).
    const parents = await records.query(system, COMMAND, {
      columns: [SEND_TO_ALL, CATEGORY, PARENT_COMMAND, 'msdyn_device', HUB_ID, 'msdyn_customerasset'],
      where: and(eq(STATUS_COLUMN, v.sent), eq(PARENT_COMMAND, null)),
    });
    for (const p of parents) if (isFanOut(p)) queueSummary(String(p[COMMAND_ID]));
    await Promise.all(work);
  }

  const offRecords = records.onEvent((e) => {
    if (e.table !== COMMAND) return;
    if (e.type === 'created') void run(e.id, () => send(e.id));
    else if (e.type === 'updated' && e.columns.includes(STATUS_COLUMN)) {
      track(
        (async () => {
          const row = await records.retrieve(system, COMMAND, e.id, [PARENT_COMMAND]);
          const parent = row?.[PARENT_COMMAND];
          if (typeof parent === 'string') queueSummary(parent);
        })(),
      );
    }
  });
  const offC2d = hub.on('c2d', (deviceId, messageId, outcome) => {
    if (isGuid(messageId)) void run(messageId.toLowerCase(), () => feedback(messageId.toLowerCase(), deviceId, outcome));
  });
  let resumed: Promise<void> | undefined;
  const stop = async () => {
    stopped = true;
    offRecords();
    offC2d();
    removeCommandValidator();
    removeDefinitionValidator();
    for (const t of timers.values()) clearTimeout(t);
    timers.clear();
    while (chains.size > 0 || side.size > 0) await Promise.all([...chains.values(), ...side]);
  };
  return Object.assign(stop, {
    resume(): Promise<void> {
      if (!resumed) {
        resumed = stopped ? Promise.resolve() : resume();
        track(resumed);
      }
      return resumed;
    },
  });
}

/** A method's response timeout: `ccs_timetolive` within IoT Hub's 5–300 s, else 30 s. */
function methodTimeout(ttl: unknown): number {
  const seconds = typeof ttl === 'number' ? ttl : Number(ttl ?? DEFAULT_METHOD_TIMEOUT_SECONDS) || DEFAULT_METHOD_TIMEOUT_SECONDS;
  return Math.min(MAX_METHOD_TIMEOUT_SECONDS, Math.max(MIN_METHOD_TIMEOUT_SECONDS, seconds));
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
