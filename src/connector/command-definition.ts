/**
 * Checks a command's message against its command definition (`msdyn_iotdevicecommanddefinition`) before it is sent
 * (issue 5 §2: "command and property definitions validate the message"). Microsoft's console builds the message
 * from the definition's parameters (`msdyn_iotpropertydefinition` rows, ms-connected-service.md §1.3 item 6, §2.5,
 * §2.6) as `{"CommandName": …, "Parameters": {…}}` (§1.3 item 5), the property names configurable in IoT Settings
 * (`msdyn_commandnameproperty`, `msdyn_commandparametersproperty`).
 *
 * Rules (ours; Microsoft validates only in its form): with a definition, the message must be a JSON object; its
 * command name, when present, must be the definition's name; its parameters, when present, an object whose keys are
 * the definition's top-level parameters, each value of the parameter's `msdyn_type`. Parameters are optional (the
 * definition has no "required" flag); values nested under an Object parameter are not checked.
 */
import { IOT_SETTINGS_ID, parseDateTime } from '../metadata/index.js';
import type { RecordContext, RecordsService } from '../records/index.js';
import type { Row } from '../store/index.js';
import { isPlainObject } from './devices.js';

const DEFINITION = 'msdyn_iotdevicecommanddefinition';
const PARAMETERS_NAV = 'msdyn_iotdevicecommandparameters';

/** `msdyn_iotpropertydefinition.msdyn_type` → a check of a JSON value and its description. */
const TYPES: Record<number, readonly [string, (v: unknown) => boolean]> = {
  192350000: ['a string', (v) => typeof v === 'string'],
  192350001: ['an object', isPlainObject],
  192350002: ['a date and time', (v) => typeof v === 'string' && parseDateTime(v) !== undefined],
  192350003: ['true or false', (v) => typeof v === 'boolean'],
  192350004: ['a whole number', (v) => typeof v === 'number' && Number.isInteger(v)],
  192350005: ['a number', (v) => typeof v === 'number'],
};

/** The problem with `message` for the definition `definitionId`, or undefined when it may be sent. */
export async function checkAgainstDefinition(records: RecordsService, ctx: RecordContext, definitionId: string, message: string): Promise<string | undefined> {
  const table = records.table(DEFINITION);
  const definition = await records.retrieve(ctx, DEFINITION, definitionId, ['msdyn_name']);
  if (!definition) return `The command definition ${definitionId} does not exist.`;
  const defName = String(definition['msdyn_name'] ?? '');
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch (e) {
    return `The message is not valid JSON, which the command definition '${defName}' requires: ${(e as Error).message}`;
  }
  if (!isPlainObject(parsed)) return `The message must be a JSON object for the command definition '${defName}'.`;

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

  const nav = table.navigation(PARAMETERS_NAV);
  const [tree] = nav ? await records.expand(ctx, [definition], [{ navigation: nav, query: { columns: ['msdyn_name', 'msdyn_type', 'msdyn_parentproperty'] } }]) : [];
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
