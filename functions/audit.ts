import { app, type InvocationContext } from '@azure/functions';
import { z } from 'zod';
import { afterSeqOfToken, createAuditLog, type AuditLog } from '../src/app/audit-log';
import { sha256Hex } from '../src/app/hashing';
import { getDeps, type Deps } from '../src/composition';
import { AUDITED_CONTAINERS } from '../src/domain/audit-events';
import { CHANGE_FEED_RETRY } from './lib/change-feed';
import { authenticated, json, readQuery } from './lib/http';

const auditLogs = new WeakMap<Deps, AuditLog>();
/** One audit log per composition, so concurrent verifications of a tenant share one run. */
function auditLogOf(deps: Deps): AuditLog {
  let log = auditLogs.get(deps);
  if (!log) auditLogs.set(deps, (log = createAuditLog({ ...deps, hash: sha256Hex })));
  return log;
}

/** Lease prefix of the audit trigger on a container (config/topology.json `leasePrefixes`). */
export const auditLeasePrefix = (container: string): string => `audit-${container}`;

const isoTime = z.iso.datetime({ offset: true }).transform((s) => new Date(s).toISOString());
const listQuery = z
  .object({
    from: isoTime.optional(),
    to: isoTime.optional(),
    afterSeq: z
      .string()
      .regex(/^(0|[1-9][0-9]{0,14})$/, 'must be a whole number ≥ 0')
      .transform(Number)
      .optional(),
    limit: z
      .string()
      .regex(/^[1-9][0-9]{0,2}$/, 'must be 1..200')
      .transform(Number)
      .refine((n) => n <= 200, 'must be 1..200')
      .optional(),
    continuationToken: z.string().min(1).max(32).optional(),
  })
  .strict();

/** The caller's tenant's audit entries in sequence order. */
export const listAudit = authenticated({ roles: ['admin', 'auditor'] }, async ({ req, deps, principal }) => {
  const q = readQuery(req, listQuery);
  const fromToken = q.continuationToken === undefined ? undefined : afterSeqOfToken(q.continuationToken);
  const afterSeq = Math.max(q.afterSeq ?? 0, fromToken ?? 0);
  const page = await auditLogOf(deps).list(principal.tenantId, {
    ...(q.from ? { from: q.from } : {}),
    ...(q.to ? { to: q.to } : {}),
    ...(afterSeq > 0 ? { afterSeq } : {}),
    limit: q.limit ?? 50,
  });
  return json(200, page, { 'cache-control': 'no-store' });
});

/** Recomputes the caller's tenant's chain: `{valid, count, head}` or the first broken link. */
export const verifyAudit = authenticated({ roles: ['admin', 'auditor'] }, async ({ req, deps, principal }) => {
  readQuery(req, z.object({}).strict());
  return json(200, await auditLogOf(deps).verify(principal.tenantId), { 'cache-control': 'no-store' });
});

/** One trigger per audited container, each with its own lease prefix. */
export function auditTrigger(container: string) {
  return async (documents: unknown[], _context: InvocationContext): Promise<void> => {
    await auditLogOf(getDeps()).appendChanges(container, documents);
  };
}

for (const container of AUDITED_CONTAINERS) {
  app.cosmosDB(`audit-${container}`, {
    connection: 'CosmosDBConnection',
    databaseName: 'meridian',
    containerName: container,
    leaseContainerName: 'leases',
    leaseContainerPrefix: auditLeasePrefix(container),
    createLeaseContainerIfNotExists: false,
    startFromBeginning: true,
    retry: CHANGE_FEED_RETRY,
    handler: auditTrigger(container),
  });
}

app.http('audit', { methods: ['GET'], route: 'audit', handler: listAudit });
app.http('auditVerify', { methods: ['GET'], route: 'audit/verify', handler: verifyAudit });
