/**
 * `ccs start --demo`: a running instance with something happening in it. Deploys examples/thermostat.json (a
 * second start changes nothing), then simulates the template's thermostats in-process on the Azure IoT device SDK.
 * A few seconds in, one thermostat develops a fault and runs hot: the rule "Thermostat too hot" raises an alert, the
 * "IoT - Create case from alert" workflow opens a case, and the demo answers the alert the way an agent would, by
 * sending the device "Reset Thermostat" (an msdyn_iotdevicecommand record, as the Web API creates it), which the
 * simulated thermostat receives and applies. Every few minutes another thermostat develops a fault.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { App } from '../app.js';
import { COMMAND_STATUS_VALUE } from '../connector/index.js';
import { deployTemplate, parseTemplateText, type DeployReport } from '../connector/templates/index.js';
import type { RecordEvent } from '../records/index.js';
import { createStats, SimulatedDevice, Thermostat } from '../simulator/index.js';
import { isIn } from '../store/index.js';

/** The template the demo deploys: examples/ at the package root (from src/cli or dist/cli alike). */
export const DEMO_TEMPLATE = fileURLToPath(new URL('../../examples/thermostat.json', import.meta.url));

export interface DemoOptions {
  readonly app: App;
  /** Where the demo tells what it does, one line at a time. */
  readonly print: (line: string) => void;
  readonly templateFile?: string;
  /** Time between two readings of one thermostat. */
  readonly readingIntervalMs?: number;
  /** When the first thermostat develops a fault, and how often the next one does. */
  readonly firstFaultMs?: number;
  readonly faultEveryMs?: number;
}

export interface Demo {
  readonly deviceIds: readonly string[];
  stop(): Promise<void>;
}

const DEVICE = 'msdyn_iotdevice';
const COMMAND = 'msdyn_iotdevicecommand';
const RESET = 'Reset Thermostat';
/** How hot a faulty thermostat runs: above the template's 70 °F threshold. */
const FAULT_TEMPERATURE = 78;
const STATUS_LABELS: Record<number, string> = {
  [COMMAND_STATUS_VALUE.inProgress]: 'In Progress',
  [COMMAND_STATUS_VALUE.sent]: 'Sent',
  [COMMAND_STATUS_VALUE.error]: 'Error',
  [COMMAND_STATUS_VALUE.delivered]: 'Delivered',
  [COMMAND_STATUS_VALUE.expired]: 'Expired',
};
const FINAL_STATUSES: ReadonlySet<number> = new Set([COMMAND_STATUS_VALUE.error, COMMAND_STATUS_VALUE.delivered, COMMAND_STATUS_VALUE.expired]);

function summary(report: DeployReport): string {
  let created = 0;
  let updated = 0;
  let unchanged = 0;
  for (const c of Object.values(report.sections)) {
    created += c.created;
    updated += c.updated;
    unchanged += c.unchanged;
  }
  const registered = report.registrations.filter((r) => r.registered).length;
  return `${created} created, ${updated} updated, ${unchanged} unchanged${report.registrations.length ? `; ${registered} devices registered` : ''}`;
}

export async function startDemo(opts: DemoOptions): Promise<Demo> {
  const { app, print } = opts;
  const missing = ['api', 'hub', 'worker'].filter((r) => !(app.config.roles as readonly string[]).includes(r));
  if (missing.length > 0) throw new Error(`the demo runs the whole chain in one process: it needs the roles api, hub and worker (the default), not only ${app.config.roles.join(',')}`);
  const file = opts.templateFile ?? DEMO_TEMPLATE;
  const template = parseTemplateText(readFileSync(file, 'utf8'));
  const report = await deployTemplate({ store: app.store, records: app.records, metadata: app.metadata, operations: app.operations }, app.system, template);
  print(`demo: deployed ${file} (${summary(report)})`);

  const deviceIds = (Array.isArray(template['devices']) ? template['devices'] : [])
    .map((d) => (d as Record<string, unknown>)['msdyn_deviceid'])
    .filter((d): d is string => typeof d === 'string');
  if (deviceIds.length === 0) throw new Error(`${file} has no devices to simulate`);
  const rows = await app.records.query(app.system, DEVICE, { columns: ['msdyn_iotdeviceid', 'msdyn_deviceid', 'msdyn_name'], where: isIn('msdyn_deviceid', deviceIds) });
  /** Device record id → hub id and name; and back. */
  const byRecord = new Map(rows.map((r) => [String(r['msdyn_iotdeviceid']), { deviceId: String(r['msdyn_deviceid']), name: String(r['msdyn_name'] ?? '') }]));
  const recordOf = new Map([...byRecord].map(([id, d]) => [d.deviceId.toLowerCase(), id]));
  const [resetDefinition] = await app.records.query(app.system, 'msdyn_iotdevicecommanddefinition', {
    columns: ['msdyn_iotdevicecommanddefinitionid'],
    where: isIn('msdyn_name', [RESET]),
    limit: 1,
  });

  let stopped = false;
  const timers: NodeJS.Timeout[] = [];
  const stats = createStats();
  const devices: SimulatedDevice[] = [];
  const ca = app.tls().ca;
  const say = (line: string) => {
    if (!stopped) print(`demo: ${line}`);
  };
  for (const deviceId of deviceIds) {
    const connectionString = await app.hub.deviceConnectionString(deviceId, { create: true });
    devices.push(
      new SimulatedDevice({
        deviceId,
        connectionString,
        ca,
        stats,
        // Calm thermostats: the faults the demo injects are the only excursions, so every alert has a story.
        thermostat: new Thermostat({ excursionChance: 0 }),
        onEvent: (id, text) => say(`${id} ${text}`),
      }),
    );
  }

  /** Commands the demo sent and is waiting on, by device record id. */
  const pendingReset = new Set<string>();

  async function onAlert(id: string): Promise<void> {
    const alert = await app.records.retrieve(app.system, 'msdyn_iotalert', id, ['msdyn_description', 'msdyn_deviceid', 'msdyn_device']);
    if (!alert) return;
    const deviceRecord = typeof alert['msdyn_device'] === 'string' ? alert['msdyn_device'] : recordOf.get(String(alert['msdyn_deviceid'] ?? '').toLowerCase());
    say(`alert "${String(alert['msdyn_description'])}" from ${String(alert['msdyn_deviceid'])}`);
    if (!deviceRecord || !byRecord.has(deviceRecord) || pendingReset.has(deviceRecord)) return;
    pendingReset.add(deviceRecord);
    const device = byRecord.get(deviceRecord)!;
    say(`an agent answers the alert: sending "${RESET}" to ${device.deviceId}`);
    await app.records.create(app.system, COMMAND, {
      msdyn_name: RESET,
      msdyn_device: deviceRecord,
      msdyn_parentalert: id,
      msdyn_message: JSON.stringify({ CommandName: RESET, Parameters: {} }),
      ...(resetDefinition ? { msdyn_command: String(resetDefinition['msdyn_iotdevicecommanddefinitionid']) } : {}),
    });
  }

  async function onCase(id: string): Promise<void> {
    const incident = await app.records.retrieve(app.system, 'incident', id, ['title', 'ticketnumber', 'caseorigincode']);
    if (!incident) return;
    say(`case ${incident['ticketnumber'] ? `${String(incident['ticketnumber'])} ` : ''}"${String(incident['title'])}" opened`);
  }

  async function onCommand(id: string): Promise<void> {
    const command = await app.records.retrieve(app.system, COMMAND, id, ['msdyn_name', 'msdyn_deviceid', 'msdyn_device', 'msdyn_commandstatus', 'msdyn_commandstatusreason']);
    if (!command) return;
    const status = Number(command['msdyn_commandstatus']);
    const reason = command['msdyn_commandstatusreason'];
    say(`command "${String(command['msdyn_name'])}" to ${String(command['msdyn_deviceid'] ?? '')}: ${STATUS_LABELS[status] ?? status}${status === COMMAND_STATUS_VALUE.error && reason ? ` (${String(reason)})` : ''}`);
    if (FINAL_STATUSES.has(status) && typeof command['msdyn_device'] === 'string') pendingReset.delete(command['msdyn_device']);
  }

  function onEvent(e: RecordEvent): void {
    if (stopped) return;
    let work: Promise<void> | undefined;
    if (e.type === 'created' && e.table === 'msdyn_iotalert') work = onAlert(e.id);
    else if (e.type === 'created' && e.table === 'incident') work = onCase(e.id);
    else if (e.type === 'updated' && e.table === COMMAND && e.columns.includes('msdyn_commandstatus')) work = onCommand(e.id);
    work?.catch((err: unknown) => say(`${err instanceof Error ? err.message : String(err)}`));
  }
  const unsubscribe = app.records.onEvent(onEvent);

  let nextFault = 0;
  function fault(): void {
    if (stopped) return;
    const device = devices[nextFault++ % devices.length]!;
    device.thermostat.apply({ name: 'Set Values', temperature: FAULT_TEMPERATURE }, new Date());
    say(`${device.deviceId} develops a fault and runs hot (${FAULT_TEMPERATURE} °F): the rule "Thermostat too hot" will raise an alert`);
  }

  await Promise.all(
    devices.map((d) =>
      d.open().catch((e: unknown) => {
        say(`${d.deviceId} could not connect: ${e instanceof Error ? e.message : String(e)}`);
      }),
    ),
  );
  const interval = opts.readingIntervalMs ?? 2000;
  timers.push(setInterval(() => devices.forEach((d) => d.send()), interval));
  const firstFault = opts.firstFaultMs ?? 5000;
  timers.push(setTimeout(fault, firstFault));
  timers.push(setInterval(fault, opts.faultEveryMs ?? 180_000));
  say(
    `simulating ${devices.length} thermostats (${deviceIds.join(', ')}), a reading every ${interval / 1000} s each; ` +
      `${devices[0]!.deviceId} runs hot in ${Math.round(firstFault / 1000)} s`,
  );

  return {
    deviceIds,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers) clearTimeout(t);
      unsubscribe();
      await Promise.all(devices.map((d) => d.close()));
    },
  };
}
