/**
 * The commands Microsoft's thermostat simulator understands (reference/ms-connected-service.md §1.3, CCS-INSTALL,
 * CFS-COMMANDS), as an agent sends them in `msdyn_iotdevicecommand.msdyn_message`:
 *
 *   {"CommandName":"Reset Thermostat","Parameters":{}}
 *   {"CommandName":"Notification","Parameters":{"Message":"Technician has been dispatched"}}
 *   {"CommandName":"Set Values","Parameters":{"Reading":{"Temperature":"30","Humidity":"30"}}}
 *
 * The same three are also offered as direct methods named after the command, whose payload is the `Parameters`
 * object (or the whole command document, which is accepted too).
 */

export const COMMAND_NAMES = ['Reset Thermostat', 'Notification', 'Set Values'] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

export type ThermostatCommand =
  | { readonly name: 'Reset Thermostat' }
  | { readonly name: 'Notification'; readonly message: string }
  | { readonly name: 'Set Values'; readonly temperature?: number; readonly humidity?: number };

export class CommandError extends Error {
  override readonly name = 'CommandError';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Property lookup ignoring case: the docs show `Parameters`/`Reading`, hand-typed messages vary. */
function field(obj: Record<string, unknown>, name: string): unknown {
  if (name in obj) return obj[name];
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

/** The sample sends readings as strings ("30"); numbers are accepted as well. */
function reading(value: unknown, what: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value.trim()) : NaN;
  if (!Number.isFinite(n)) throw new CommandError(`Set Values: ${what} must be a number, got ${JSON.stringify(value)}.`);
  return n;
}

/** Matches a command name without regard to case or stray spaces (the docs warn that those creep into messages). */
export function commandName(text: string): CommandName | undefined {
  const wanted = text.replace(/\s+/g, '').toLowerCase();
  return COMMAND_NAMES.find((n) => n.replace(/\s+/g, '').toLowerCase() === wanted);
}

/** Builds a command from its name and `Parameters` object. */
export function commandFrom(name: string, parameters: unknown): ThermostatCommand {
  const known = commandName(name);
  if (!known) throw new CommandError(`Unknown command '${name}'. Known: ${COMMAND_NAMES.join(', ')}.`);
  const params = isRecord(parameters) ? parameters : {};
  switch (known) {
    case 'Reset Thermostat':
      return { name: known };
    case 'Notification': {
      const message = field(params, 'Message');
      if (typeof message !== 'string') throw new CommandError('Notification: Parameters.Message must be a string.');
      return { name: known, message };
    }
    case 'Set Values': {
      const r = field(params, 'Reading');
      const values = isRecord(r) ? r : params;
      const temperature = reading(field(values, 'Temperature'), 'Temperature');
      const humidity = reading(field(values, 'Humidity'), 'Humidity');
      if (temperature === undefined && humidity === undefined) {
        throw new CommandError('Set Values: Parameters.Reading needs Temperature or Humidity.');
      }
      return { name: known, ...(temperature !== undefined ? { temperature } : {}), ...(humidity !== undefined ? { humidity } : {}) };
    }
  }
}

/** Parses a cloud-to-device message body: `{"CommandName": …, "Parameters": {…}}`. */
export function parseCommandMessage(body: string): ThermostatCommand {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    throw new CommandError(`The command is not JSON: ${JSON.stringify(body.slice(0, 80))}.`);
  }
  if (!isRecord(doc)) throw new CommandError('The command must be a JSON object with CommandName and Parameters.');
  const name = field(doc, 'CommandName');
  if (typeof name !== 'string') throw new CommandError('The command has no CommandName.');
  return commandFrom(name, field(doc, 'Parameters'));
}

/** A direct method call: the method name is the command; the payload its `Parameters` (or the whole document). */
export function parseMethodCall(methodName: string, payload: unknown): ThermostatCommand {
  if (isRecord(payload) && typeof field(payload, 'CommandName') === 'string') {
    return commandFrom(methodName, field(payload, 'Parameters'));
  }
  return commandFrom(methodName, payload);
}
