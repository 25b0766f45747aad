/**
 * `msdyn_IoTSendTestAlert` ("IoT – Send Test Alert", ms-connected-service.md §3.4), bound to `msdyn_iotdevice`.
 * Microsoft lists it as "reserved for future use" with no parameters; the meaning here is ours: check a device's
 * path end to end without the device.
 *
 * 1. A test reading `{"<Measure>": <Reading>}` is accepted for the device as if it had sent it (transport `api`,
 *    application property `ccs-test-alert: true`): it is durable in the telemetry log, shows in the device's
 *    readings, and goes through the rules pipeline like any reading, so rules that match it fire as they would.
 * 2. An alert of type Test (192350003) is written for the device through the pipeline's alert writer, with the
 *    fields a rule's alert has (description, `msdyn_alertdata`, time, token, device, Device ID, the connected customer
 *    asset): alert workflows (parenting, case creation) see it as any other alert.
 *
 * Parameters: `Measure` (Edm.String, default `Test`, at most 100 characters — `msdyn_alertdata.readingtype`),
 * `Reading` (Edm.Double, default 0). Returns `{ IoTAlertId }`. The alert is created with the caller's privileges.
 * A device without a Device ID, without a hub identity, or disabled in the hub is a 400; an unknown device a 404.
 * Inside a `$batch` change set the action is refused (400): the reading is written by the hub, outside the change set,
 * and could not be rolled back with it.
 */
import { randomUUID } from 'node:crypto';
import { CcsError } from '../../errors/index.js';
import { alertToken, createAlertWriter, createDeviceDirectory } from '../../pipeline/index.js';
import { notFound } from '../../records/index.js';
import type { Firing } from '../../rules/index.js';
import type { Queryable, Transaction } from '../../store/index.js';
import { eq } from '../../store/index.js';
import type { Operation } from '../../webapi/index.js';
import type { ConnectorDeps } from '../deps.js';
import { DEVICE, HUB_ID } from '../devices.js';

export const SEND_TEST_ALERT = 'msdyn_IoTSendTestAlert';
/** `msdyn_iotalert.msdyn_alerttype` Test. */
export const TEST_ALERT_TYPE = 192350003;
const ALERT = 'msdyn_iotalert';
const DEFAULT_MEASURE = 'Test';
const MEASURE_MAX = 100;
const DESCRIPTION_MAX = 100;

function inTransaction(db: Queryable): db is Transaction {
  return typeof (db as Partial<Transaction>).lock === 'function';
}

export function createSendTestAlert(deps: ConnectorDeps): Operation {
  return {
    def: {
      name: SEND_TEST_ALERT,
      kind: 'action',
      boundTo: DEVICE,
      parameters: [
        { name: 'Measure', type: 'Edm.String' },
        { name: 'Reading', type: 'Edm.Double' },
      ],
      returns: { properties: [{ name: 'IoTAlertId', type: 'Edm.Guid', nullable: false }] },
    },
    invoke: async (ctx, params) => {
      const bad = (message: string) => new CcsError('InvalidValue', `${SEND_TEST_ALERT}: ${message}`);
      const id = ctx.bound?.id;
      if (!id) throw new CcsError('BadRequest', `'${SEND_TEST_ALERT}' must be called on one msdyn_iotdevice.`);
      if (inTransaction(ctx.record.db)) throw new CcsError('BadRequest', `'${SEND_TEST_ALERT}' cannot run inside a $batch change set: the test reading is written outside it.`);
      const measure = typeof params['Measure'] === 'string' ? params['Measure'].trim() : DEFAULT_MEASURE;
      if (measure === '' || measure.length > MEASURE_MAX) throw bad(`Parameter 'Measure' must be 1 to ${MEASURE_MAX} characters.`);
      const reading = typeof params['Reading'] === 'number' ? params['Reading'] : 0;
      if (!Number.isFinite(reading)) throw bad(`Parameter 'Reading' must be a finite number.`);

      const device = await ctx.records.retrieve(ctx.record, DEVICE, id, ['msdyn_name', HUB_ID]);
      if (!device) throw notFound(ctx.records.table(DEVICE), id);
      const name = typeof device['msdyn_name'] === 'string' && device['msdyn_name'] !== '' ? device['msdyn_name'] : id;
      const hubId = typeof device[HUB_ID] === 'string' && device[HUB_ID] !== '' ? device[HUB_ID] : undefined;
      if (!hubId) throw bad(`The IoT device '${name}' is not registered: it has no Device ID (msdyn_deviceid). Register it with msdyn_RegisterIoTDevice first.`);
      const identity = await deps.hub.registry.get(hubId);
      if (!identity) throw bad(`The IoT device '${name}' is not registered: device '${hubId}' has no identity in the hub. Register it with msdyn_RegisterIoTDevice first.`);
      if (identity.status === 'disabled') throw bad(`Device '${hubId}' is disabled in the hub, so it cannot send readings.`);

      const messageId = randomUUID();
      const record = await deps.hub.ingest(
        hubId,
        {
          body: Buffer.from(JSON.stringify({ [measure]: reading }), 'utf8'),
          properties: { 'ccs-test-alert': 'true' },
          messageId,
          contentType: 'application/json',
          contentEncoding: 'utf-8',
        },
        'api',
      );

      const condition = { kind: 'comparison', measure, source: { kind: 'value' }, test: { op: 'eq', value: { kind: 'constant', value: reading } }, forMs: 0 } as const;
      const firing: Firing = {
        ruleId: SEND_TEST_ALERT,
        ruleName: 'Test alert',
        deviceId: hubId,
        deviceRecordId: id,
        time: record.enqueuedTime,
        trigger: 'reading',
        messageId,
        eventToken: messageId,
        ruleOutput: 'Test alert',
        alertType: TEST_ALERT_TYPE,
        description: `Test alert: ${measure} reading of ${reading} from ${name}`.slice(0, DESCRIPTION_MAX),
        readingType: measure,
        reading,
        threshold: reading,
        condition,
        readings: [{ readingType: measure, reading, threshold: reading, condition }],
      };
      const directory = createDeviceDirectory({ records: ctx.records, system: ctx.record });
      try {
        const info = await directory.get(hubId);
        await createAlertWriter({ store: deps.store, records: ctx.records, system: ctx.record }).write(firing, info);
      } finally {
        directory.close();
      }
      const [alert] = await ctx.records.query(ctx.record, ALERT, { columns: ['msdyn_iotalertid'], where: eq('msdyn_alerttoken', alertToken(firing)), limit: 1 });
      if (!alert) throw new CcsError('Internal', `The test alert for device '${hubId}' was not found after it was written.`);
      return { IoTAlertId: alert['msdyn_iotalertid'] };
    },
  };
}
