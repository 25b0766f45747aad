/**
 * Command definitions (`msdyn_iotdevicecommanddefinition`): how a command reaches its device, and the check of its
 * message before it is sent (issue 5 §2: "command and property definitions validate the message"). Microsoft's
 * console builds the message from the definition's parameters (`msdyn_iotpropertydefinition` rows,
 * ms-connected-service.md §1.3 item 6, §2.5, §2.6) as `{"CommandName": …, "Parameters": {…}}` (§1.3 item 5), the
 * property names configurable in IoT Settings (`msdyn_commandnameproperty`, `msdyn_commandparametersproperty`).
 *
 * Delivery (ours; Microsoft only sends cloud-to-device messages): `ccs_deliverymethod` Cloud-to-device message
 * (192350000, the default) or Direct method (192350001), calling the method `ccs_methodname`, else the definition's
 * name. A direct method's payload is the message itself, parsed (IoT Hub method payloads are JSON); an empty message
 * calls the method with a `null` payload.
 *
 * Message rules (ours; Microsoft validates only in its form), the same for both deliveries: with a definition, the
 * message must be a JSON object; its command name, when present, must be the definition's name; its parameters, when
 * present, an object whose keys are the definition's top-level parameters, each value of the parameter's
 * `msdyn_type`. Parameters are optional (the definition has no "required" flag); values nested under an Object
 * parameter are not checked. What can be told from the command row alone (not JSON, not an object) is refused at
 * create (`messageShapeProblem`, a 400); the rest needs the definition and is reported on the command.
 */
import { IOT_SETTINGS_ID, parseDateTime } from '../metadata/index.js';
import type { RecordContext, RecordsService } from '../records/index.js';
import type { Row } from '../store/index.js';
import { isPlainObject } from './devices.js';

export const DEFINITION = 'msdyn_iotdevicecommanddefinition';
const PARAMETERS_NAV = 'msdyn_iotdevicecommandparameters';
export const DELIVERY_COLUMN = 'ccs_deliverymethod';
export const METHOD_NAME_COLUMN = 'ccs_methodname';
/** `ccs_deliverymethod` values. */
export const DELIVERY_METHOD = { c2d: 192350000, method: 192350001 } as const;

/** `msdyn_iotpropertydefinition.msdyn_type` → a check of a JSON value and its description. */
const TYPES: Record<number, readonly [string, (v: unknown) => boolean]> = {
  192350000: ['a string', (v) => typeof v === 'string'],
  192350001: ['an object', isPlainObject],
  192350002: ['a date and time', (v) => typeof v === 'string' && parseDateTime(v) !== undefined],
  192350003: ['true or false', (v) => typeof v === 'boolean'],
  192350004: ['a whole number', (v) => typeof v === 'number' && Number.isInteger(v)],
  192350005: ['a number', (v) => typeof v === 'number'],
};

export interface CommandDefinition {
  readonly id: string;
  readonly name: string;
  readonly delivery: 'c2d' | 'method';
  /** The direct method called for commands of this definition (when `delivery` is `method`). */
  readonly methodName: string;
  readonly row: Row;
}

/** The definition `definitionId`, or undefined when there is none. */
export async function loadDefinition(records: RecordsService, ctx: RecordContext, definitionId: string): Promise<CommandDefinition | undefined> {
  const row = await records.retrieve(ctx, DEFINITION, definitionId, ['msdyn_name', DELIVERY_COLUMN, METHOD_NAME_COLUMN]);
  if (!row) return undefined;
  const name = String(row['msdyn_name'] ?? '');
  return {
    id: definitionId,
    name,
    delivery: row[DELIVERY_COLUMN] === DELIVERY_METHOD.method ? 'method' : 'c2d',
    methodName: nonEmpty(row[METHOD_NAME_COLUMN]) ?? name,
    row,
  };
}

/**
 * Why `name` cannot be a direct method's name, or undefined. The name becomes a topic level
 * (`$iothub/methods/POST/{name}/`), so it may hold no level separator or wildcard (MQTT 3.1.1 §4.7), nor control
 * characters; the hub's own limit is 256 characters.
 */
export function methodNameProblem(name: string): string | undefined {
  if (name.trim() === '') return 'A direct method needs a name: set ccs_methodname or the definition name (msdyn_name).';
  if (name.length > 256) return `The method name is ${name.length} characters long; the limit is 256.`;
  if (/[/#+\u0000-\u001f]/.test(name)) return `'${name}' cannot be a method name: it may not contain '/', '#', '+' or control characters. Set ccs_methodname.`;
  return undefined;
}

/** Refuses a direct-method definition whose method name the hub would refuse (400 at create and update). */
export function validateDefinitionRow(row: Readonly<Row>): string | undefined {
  if (row[DELIVERY_COLUMN] !== DELIVERY_METHOD.method) return undefined;
  return methodNameProblem(nonEmpty(row[METHOD_NAME_COLUMN]) ?? String(row['msdyn_name'] ?? ''));
}

/** Parses a message that a definition governs: a JSON object, or the reason it is not one. */
export function parseMessage(message: string, definitionName?: string): { value: Record<string, unknown> } | { problem: string } {
  const forWhat = definitionName === undefined ? 'a command with a command definition (msdyn_command)' : `the command definition '${definitionName}'`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch (e) {
    return { problem: `The message is not valid JSON, which ${forWhat} requires: ${(e as Error).message}` };
  }
  if (!isPlainObject(parsed)) return { problem: `The message must be a JSON object for ${forWhat}.` };
  return { value: parsed };
}

/**
 * What can be told about a new command's message from its row alone: with a definition, a non-empty message must be
 * a JSON object. Empty messages pass (a direct method may take no payload; a cloud-to-device command with an empty
 * message is refused later, on the command, once its definition is read).
 */
export function messageShapeProblem(row: Readonly<Row>): string | undefined {
  if (typeof row['msdyn_command'] !== 'string') return undefined;
  const message = row['msdyn_message'];
  if (typeof message !== 'string' || message === '') return undefined;
  const parsed = parseMessage(message);
  return 'problem' in parsed ? parsed.problem : undefined;
}

/** The problem with `message` for `definition`, or undefined when it may be sent. */
export async function checkAgainstDefinition(records: RecordsService, ctx: RecordContext, definition: CommandDefinition, message: string): Promise<string | undefined> {
  const defName = definition.name;
  const parsedMessage = parseMessage(message, defName);
  if ('problem' in parsedMessage) return parsedMessage.problem;
  const parsed = parsedMessage.value;

  const settings = await records.retrieve(ctx, 'msdyn_iotsettings', IOT_SETTINGS_ID, ['msdyn_commandnameproperty', 'msdyn_commandparametersproperty']);
  const nameProperty = nonEmpty(settings?.['msdyn_commandnameproperty']) ?? 'CommandName';
  const paramsProperty = nonEmpty(settings?.['msdyn_commandparametersproperty']) ?? 'Parameters';
  const commandName = parsed[nameProperty];
  if (commandName !== undefined && commandName !== defName) {
    return `The message's '${nameProperty}' is ${JSON.stringify(commandName)}, but its command definition is '${defName}'.`;
  }
  const given = parsed[paramsProperty];
  if (given === undefined) return undefined;
  if (!isPlainObject(given)) return `The message's '${paramsProperty}' must be a JSON object.`;

  const nav = records.table(DEFINITION).navigation(PARAMETERS_NAV);
  const [tree] = nav ? await records.expand(ctx, [definition.row], [{ navigation: nav, query: { columns: ['msdyn_name', 'msdyn_type', 'msdyn_parentproperty'] } }]) : [];
  const related = tree?.expanded[PARAMETERS_NAV];
  const parameters = (Array.isArray(related) ? related.map((t) => t.row) : []).filter((p: Row) => p['msdyn_parentproperty'] == null);
  const byName = new Map(parameters.map((p) => [String(p['msdyn_name']), Number(p['msdyn_type'])]));
  for (const [key, value] of Object.entries(given)) {
    if (!byName.has(key)) {
      const known = [...byName.keys()];
      return `'${key}' is not a parameter of the command '${defName}'${known.length ? ` (parameters: ${known.join(', ')})` : ' (it has none)'}.`;
    }
    const check = TYPES[byName.get(key)!];
    if (check && !check[1](value)) return `Parameter '${key}' of the command '${defName}' must be ${check[0]}.`;
  }
  return undefined;
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}
