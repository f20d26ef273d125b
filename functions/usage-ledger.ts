import { app, type InvocationContext } from '@azure/functions';
import { replayUsageOutbox } from '../src/app/usage-events';
import { createUsageLedger } from '../src/app/usage-ledger';
import { getDeps } from '../src/composition';
import { CHANGE_FEED_RETRY } from './lib/change-feed';

/** The ledger's own lease prefix on `usage` (config/topology.json `leasePrefixes`). */
export const LEDGER_LEASE_PREFIX = 'ledger-usage';

/**
 * Merges usage events into the ledger, exactly once per event. Throwing makes the host
 * deliver the same batch again (the trigger's retry policy, CHANGE_FEED_RETRY: without one
 * Azure would skip the batch), which the merge tolerates (applied-markers).
 */
export async function usageLedger(documents: unknown[], context: InvocationContext): Promise<void> {
  const deps = getDeps();
  const stats = await createUsageLedger(deps).merge(documents);
  if (stats.applied || stats.duplicates || stats.retries) {
    deps.logger.debug('usage merged', { invocationId: context.invocationId, ...stats, thresholds: stats.thresholds.length });
  }
}

app.cosmosDB('usageLedger', {
  connection: 'CosmosDBConnection',
  databaseName: 'meridian',
  containerName: 'usage',
  leaseContainerName: 'leases',
  leaseContainerPrefix: LEDGER_LEASE_PREFIX,
  createLeaseContainerIfNotExists: false,
  // A new lease reads the whole container: events written before the first start count too.
  startFromBeginning: true,
  retry: CHANGE_FEED_RETRY,
  handler: usageLedger,
});

/**
 * Every minute: usage events that the `usage` container could not take when they happened
 * (parked in the boundary's `usage-outbox` blob container) are stored now (src/app/usage-events.ts).
 */
export async function usageOutbox(): Promise<void> {
  const deps = getDeps();
  if (!deps.blobs) return; // no blob account (a local run without Azurite): nothing can have been parked
  const stats = await replayUsageOutbox(
    { documents: deps.documents, blobs: deps.blobs, logger: deps.logger },
    (tenantId) => deps.directory.byTenantId(tenantId)?.boundary === deps.config.boundary,
  );
  if (stats.stored || stats.duplicates || stats.rejected || stats.remaining)
    deps.logger.info('usage outbox replayed', { ...stats });
}

app.timer('usageOutbox', { schedule: '0 * * * * *', handler: usageOutbox });
