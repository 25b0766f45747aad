import { CcsError } from '../errors/index.js';

export type Privilege = 'Read' | 'Create' | 'Write' | 'Delete';
export type Access = Readonly<Partial<Record<Privilege, boolean>>>;

/** Per-role access: table logical name (or `*` for every table) → privileges. */
export type RoleDefinition = Readonly<Record<string, Access>>;

/** Who is making a request: resolved from the bearer token, or the platform itself. */
export interface Principal {
  /** The systemuser record that stands for this caller (createdby, ownerid, WhoAmI). */
  readonly userId: string;
  readonly name: string;
  readonly role: string;
  readonly tokenId: string | undefined;
  can(privilege: Privilege, table: string): boolean;
}

export function createPrincipal(opts: { userId: string; name: string; role: string; tokenId?: string; access: RoleDefinition }): Principal {
  const { access } = opts;
  return {
    userId: opts.userId,
    name: opts.name,
    role: opts.role,
    tokenId: opts.tokenId,
    can: (privilege, table) => (access[table]?.[privilege] ?? access['*']?.[privilege]) === true,
  };
}

/** Throws Dataverse's missing-privilege error, naming the privilege as `prv<Privilege><table>`. */
export function demand(principal: Principal, privilege: Privilege, table: string): void {
  if (!principal.can(privilege, table)) {
    throw new CcsError(
      'MissingPrivilege',
      `Principal user (Id=${principal.userId}, type=8, roleCount=1) is missing prv${privilege}${table} privilege (Name='prv${privilege}${table}', role '${principal.role}').`,
    );
  }
}

const ALL: Access = { Read: true, Create: true, Write: true, Delete: true };
const READ: Access = { Read: true };

/** Built-in roles. `--roles-file` replaces them with the user's own definitions. */
export const DEFAULT_ROLES: Readonly<Record<string, RoleDefinition>> = {
  admin: { '*': ALL },
  agent: {
    '*': READ,
    msdyn_iotalert: { Read: true, Create: true, Write: true },
    msdyn_iotdevicecommand: { Read: true, Create: true, Write: true },
    incident: { Read: true, Create: true, Write: true },
    connection: { Read: true, Create: true, Write: true },
    account: { Read: true, Create: true, Write: true },
    contact: { Read: true, Create: true, Write: true },
    msdyn_iotdevice: { Read: true, Write: true },
    systemuser: READ,
  },
  readonly: { '*': READ },
  integration: { '*': ALL, systemuser: READ, connectionrole: READ, msdyn_iotsettings: { Read: true, Write: true } },
};
