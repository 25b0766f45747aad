import { readFileSync, writeFileSync } from 'node:fs';
import { createApp } from '../app.js';
import { ConfigError, loadConfig, parseFlags } from '../config/index.js';
import {
  deployTemplate,
  DEPLOY_TEMPLATE,
  exportTemplate,
  EXPORT_TEMPLATE,
  formatDeployReport,
  parseTemplateText,
  type DeployReport,
} from '../connector/templates/index.js';
import { CcsError } from '../errors/index.js';

export const TEMPLATE_USAGE = `  deploy <template.json> [--server <url> --token <admin token>]
                                 Create or update what the template describes (tables, categories, command
                                 definitions, devices, connections, rules, workflows, webhooks, settings) and
                                 register its devices; deploying it again changes nothing. Works on the data
                                 directory (or --store) directly, or with --server through a running server's
                                 Web API (do that when the template adds tables while the server runs)
  export [--out <file>] [--include-secrets] [--server <url> --token <admin token>]
                                 Write the configuration as a template (to stdout unless --out); write-only
                                 values (webhook secrets) only with --include-secrets
`;

const FLAGS = ['server', 'token', 'out', 'include-secrets'];

/** Splits `<positional> --flag value …`. */
function positional(argv: string[]): { arg: string | undefined; rest: string[] } {
  return argv[0] !== undefined && !argv[0].startsWith('--') ? { arg: argv[0], rest: argv.slice(1) } : { arg: undefined, rest: argv };
}

function remote(flags: ReadonlyMap<string, string>, env: NodeJS.ProcessEnv, command: string): { base: string; token: string } | undefined {
  const server = flags.get('server');
  if (server === undefined) return undefined;
  const token = flags.get('token') ?? env['CCS_TOKEN'];
  if (!token) throw new ConfigError(`${command}: --server needs an admin token: --token <token> or CCS_TOKEN`);
  return { base: `${server.replace(/\/+$/, '')}/api/data/v9.2`, token };
}

/** Calls the server; a Dataverse error body becomes a ConfigError with its message. */
async function call(url: string, token: string, command: string, init: RequestInit = {}): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, headers: { authorization: `Bearer ${token}`, accept: 'application/json', 'content-type': 'application/json' } });
  } catch (e) {
    throw new ConfigError(`${command}: cannot reach ${new URL(url).origin}: ${String((e as { cause?: unknown }).cause ?? e)}`);
  }
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON: reported below with the status
  }
  if (!res.ok) {
    const message = (body['error'] as { message?: string } | undefined)?.message;
    throw new ConfigError(`${command}: HTTP ${res.status}${message ? `: ${message}` : ''}`);
  }
  return body;
}

function readTemplate(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`deploy: cannot read ${file}: ${(e as Error).message}`);
  }
}

/** `ccs deploy <template.json>`. */
export async function deploy(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const { arg: file, rest } = positional(argv);
  if (!file) throw new ConfigError('deploy: give the template file, e.g. ccs deploy examples/thermostat.json');
  const flags = parseFlags(rest, FLAGS);
  const text = readTemplate(file);
  const server = remote(flags, env, 'deploy');
  let report: DeployReport;
  if (server) {
    const body = await call(`${server.base}/${DEPLOY_TEMPLATE}`, server.token, 'deploy', { method: 'POST', body: JSON.stringify({ Template: text }) });
    report = JSON.parse(String(body['Report'])) as DeployReport;
  } else {
    const config = loadConfig(flags, env);
    const app = await createApp({ ...config, logLevel: 'silent' });
    try {
      const template = parseTemplateText(text);
      report = await deployTemplate({ store: app.store, records: app.records, metadata: app.metadata, operations: app.operations }, app.system, template);
    } catch (e) {
      if (e instanceof CcsError) throw new ConfigError(`deploy: ${file}: ${e.message}`);
      throw e;
    } finally {
      await app.stop();
    }
  }
  process.stdout.write(`Deployed ${file}:\n${formatDeployReport(report)}`);
}

/** `ccs export`. */
export async function exportCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const flags = parseFlags(argv, FLAGS);
  const server = remote(flags, env, 'export');
  const secrets = flags.get('include-secrets');
  if (secrets !== undefined && secrets !== 'true' && secrets !== 'false') throw new ConfigError(`export: --include-secrets takes no value, got '${secrets}'`);
  const includeSecrets = secrets === 'true';
  let text: string;
  let warnings: readonly string[];
  if (server) {
    const body = await call(`${server.base}/${EXPORT_TEMPLATE}(IncludeSecrets=${includeSecrets})`, server.token, 'export');
    text = String(body['Template']);
    warnings = Array.isArray(body['Warnings']) ? body['Warnings'].map(String) : [];
  } else {
    const config = loadConfig(flags, env);
    const app = await createApp({ ...config, logLevel: 'silent' });
    try {
      const result = await exportTemplate(app.records, app.system, { includeSecrets });
      text = JSON.stringify(result.template, null, 2);
      warnings = result.warnings;
    } finally {
      await app.stop();
    }
  }
  const out = flags.get('out');
  if (out) {
    try {
      writeFileSync(out, `${text}\n`);
    } catch (e) {
      throw new ConfigError(`export: cannot write ${out}: ${(e as Error).message}`);
    }
    process.stderr.write(`Wrote ${out}\n`);
  } else {
    process.stdout.write(`${text}\n`);
  }
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
}
