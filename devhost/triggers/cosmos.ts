/**
 * `cosmosDBTrigger` functions on the local change feed: one processor per function with its
 * own lease (`<leaseContainerPrefix>:<container>` in `leases`), batches of changed documents
 * (latest version, no deletes), the same batch retried when the function throws, never skipped.
 * Two functions on one container with the same lease prefix would steal each other's
 * progress: refused at start, as their shared lease would be in Azure.
 */
import { startChangeFeedProcessor } from '../../src/adapters/local/change-feed-processor';
import type { SqliteDocumentStore } from '../../src/adapters/local/sqlite-document-store';
import type { Clock } from '../../src/ports/clock';
import type { FunctionHost, FunctionInfo } from '../host';

export function cosmosTriggerPlan(functions: FunctionInfo[], database: string) {
  const plan = functions
    .filter((f) => f.trigger.type === 'cosmosDBTrigger')
    .map((fn) => {
      const t = fn.trigger;
      const container = t['containerName'] ?? t['collectionName'];
      if (typeof container !== 'string') throw new Error(`${fn.name}: cosmosDBTrigger needs containerName`);
      if (typeof t['databaseName'] === 'string' && t['databaseName'] !== database) {
        throw new Error(`${fn.name}: database ${t['databaseName']} is not ${database}`);
      }
      const leasePrefix = typeof t['leaseContainerPrefix'] === 'string' ? t['leaseContainerPrefix'] : '';
      return {
        fn,
        container,
        leasePrefix,
        leaseContainer: typeof t['leaseContainerName'] === 'string' ? t['leaseContainerName'] : 'leases',
        maxBatchSize: typeof t['maxItemsPerInvocation'] === 'number' ? t['maxItemsPerInvocation'] : undefined,
        pollIntervalMs: typeof t['feedPollDelay'] === 'number' ? t['feedPollDelay'] : undefined,
        startFromBeginning: t['startFromBeginning'] === true,
      };
    });
  const seen = new Map<string, string>();
  for (const p of plan) {
    const key = `${p.leaseContainer}/${p.leasePrefix}:${p.container}`;
    const other = seen.get(key);
    if (other) {
      throw new Error(
        `cosmosDBTrigger functions ${other} and ${p.fn.name} both watch ${p.container} with lease prefix "${p.leasePrefix}": give each its own leaseContainerPrefix`,
      );
    }
    seen.set(key, p.fn.name);
  }
  return plan;
}

export async function startCosmosTriggers(options: {
  host: FunctionHost;
  store: SqliteDocumentStore;
  database: string;
  clock: Clock;
  log: (message: string, fields?: Record<string, unknown>) => void;
}): Promise<{ stop(): Promise<void> }> {
  const processors: { stop(): Promise<void> }[] = [];
  try {
    for (const p of cosmosTriggerPlan(options.host.functions(), options.database)) {
      processors.push(
        await startChangeFeedProcessor({
          store: options.store,
          container: p.container,
          leaseContainer: p.leaseContainer,
          leasePrefix: p.leasePrefix || p.fn.name,
          clock: options.clock,
          startFromBeginning: p.startFromBeginning,
          // The handler serializes the batch at once: nothing can mutate it, so no copy.
          copyBatch: false,
          ...(p.maxBatchSize ? { maxBatchSize: p.maxBatchSize } : {}),
          ...(p.pollIntervalMs ? { pollIntervalMs: p.pollIntervalMs } : {}),
          handler: async (batch) => {
            await options.host.invoke(p.fn.name, {
              inputData: [{ name: p.fn.triggerName, data: { json: JSON.stringify(batch) } }],
              triggerMetadata: {},
            });
          },
          onError: (err, ctx) =>
            options.log(`cosmosDBTrigger ${p.fn.name}: ${ctx.phase} failed`, { error: err.message, attempt: ctx.attempt }),
        }),
      );
    }
  } catch (err) {
    await Promise.all(processors.map((x) => x.stop()));
    throw err;
  }
  return { stop: async () => void (await Promise.all(processors.map((x) => x.stop()))) };
}
