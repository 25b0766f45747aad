import type { Operation } from './operations.js';

/** `WhoAmI()`: the caller's user id and the organisation's ids. */
export function createWhoAmI(ids: { readonly organizationId: string; readonly businessUnitId: string }): Operation {
  return {
    def: {
      name: 'WhoAmI',
      kind: 'function',
      parameters: [],
      returns: {
        properties: [
          { name: 'BusinessUnitId', type: 'Edm.Guid' },
          { name: 'UserId', type: 'Edm.Guid' },
          { name: 'OrganizationId', type: 'Edm.Guid' },
        ],
      },
    },
    invoke: async (ctx) => ({
      BusinessUnitId: ids.businessUnitId,
      UserId: ctx.record.principal.userId,
      OrganizationId: ids.organizationId,
    }),
  };
}
