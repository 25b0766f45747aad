/** Commands to devices: sending, delivery tracking, direct methods and fan-out (./command-sync.ts). */
export { startCommandSync, DEFAULT_COMMAND_TTL_SECONDS, DEFAULT_METHOD_TIMEOUT_SECONDS, type CommandSync, type CommandSyncDeps } from './command-sync.js';
export { COMMAND_STATUS_VALUE } from './status.js';
