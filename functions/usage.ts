import { app } from '@azure/functions';
import { z } from 'zod';
import { createUsageLedger } from '../src/app/usage-ledger';
import { AppError } from '../src/domain/errors';
import { isPlatformAdmin } from '../src/domain/tenancy';
import { isPeriod } from '../src/domain/usage-ledger';
import { authenticated, json, readQuery } from './lib/http';

const query = z
  .object({
    period: z.string().refine(isPeriod, 'must be YYYY-MM'),
    tenant: z.string().min(1).max(63).optional(),
  })
  .strict();

/** A tenant admin reads its own month; a platform-admin any tenant of this boundary (`tenant=`). */
export const getUsage = authenticated(
  { roles: ['admin', 'platform-admin'], crossBoundary: true },
  async ({ req, deps, principal }) => {
    const q = readQuery(req, query);
    let tenantId = principal.tenantId;
    if (q.tenant !== undefined && q.tenant !== principal.tenantId) {
      // Another tenant is "not found" for everyone but platform-admins (API.md: no 403 for it).
      const target = isPlatformAdmin(principal) ? deps.directory.byTenantId(q.tenant) : undefined;
      if (!target) throw new AppError('not_found', 'No such tenant.');
      if (target.boundary !== deps.config.boundary) {
        throw new AppError('misdirected_boundary', `Tenant ${q.tenant} lives in boundary ${target.boundary}.`, {
          extensions: { boundary: target.boundary },
        });
      }
      tenantId = target.tenantId;
    }
    return json(200, await createUsageLedger(deps).report(tenantId, q.period), { 'cache-control': 'no-store' });
  },
);

app.http('usage', { methods: ['GET'], route: 'usage', handler: getUsage });
