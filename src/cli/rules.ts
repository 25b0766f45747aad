import { readFileSync } from 'node:fs';
import { createApp } from '../app.js';
import { ConfigError, loadConfig, parseFlags } from '../config/index.js';
import { CcsError } from '../errors/index.js';
import { IMPORT_DEVICE_RULES, importDeviceRulesFile, type DeviceRulesImport } from '../pipeline/index.js';

export const RULES_USAGE = `  rules import <devicerules.json> [--server <url> --token <admin token>]
                                 Create IoT rules from Microsoft's devicerules.json (each threshold a rule;
                                 DeviceType names a device category, DeviceId a device); importing it again
                                 skips the rules that exist. On the data directory (or --store) directly, or
                                 with --server through a running server's Web API (ccs_ImportDeviceRules)
`;

/** `ccs rules import <file>`. */
export async function rulesCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const [sub, file, ...rest] = argv;
  if (sub !== 'import') throw new ConfigError(`Unknown rules command '${sub ?? ''}'. Use: ccs rules import <devicerules.json>`);
  if (!file || file.startsWith('--')) throw new ConfigError('rules import: give the file, e.g. ccs rules import devicerules.json');
  const flags = parseFlags(rest, ['server', 'token']);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`rules import: cannot read ${file}: ${(e as Error).message}`);
  }
  let outcome: DeviceRulesImport;
  const server = flags.get('server');
  if (server !== undefined) {
    const token = flags.get('token') ?? env['CCS_TOKEN'];
    if (!token) throw new ConfigError('rules import: --server needs an admin token: --token <token> or CCS_TOKEN');
    const url = `${server.replace(/\/+$/, '')}/api/data/v9.2/${IMPORT_DEVICE_RULES}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', 'content-type': 'application/json' },
        body: JSON.stringify({ DeviceRules: text }),
      });
    } catch (e) {
      throw new ConfigError(`rules import: cannot reach ${new URL(url).origin}: ${String((e as { cause?: unknown }).cause ?? e)}`);
    }
    const body = (await res.json().catch(() => ({}))) as { RuleIds?: string[]; Skipped?: string[]; error?: { message?: string } };
    if (!res.ok) throw new ConfigError(`rules import: HTTP ${res.status}${body.error?.message ? `: ${body.error.message}` : ''}`);
    outcome = { created: body.RuleIds ?? [], skipped: body.Skipped ?? [] };
  } else {
    const config = loadConfig(flags, env);
    const app = await createApp({ ...config, logLevel: 'silent' });
    try {
      outcome = await importDeviceRulesFile({ store: app.store, records: app.records }, app.system, text);
    } catch (e) {
      if (e instanceof CcsError) throw new ConfigError(`rules import: ${file}: ${e.message}`);
      throw e;
    } finally {
      await app.stop();
    }
  }
  process.stdout.write(`Imported ${file}: ${outcome.created.length} rule${outcome.created.length === 1 ? '' : 's'} created, ${outcome.skipped.length} already there\n`);
  for (const id of outcome.created) process.stdout.write(`  created ${id}\n`);
  for (const name of outcome.skipped) process.stdout.write(`  exists  ${name}\n`);
}
