/**
 * `cosmosDBTrigger` functions on the local change feed: one processor per function with its
 * own lease (`<leaseContainerPrefix>:<container>` in `leases`), batches of changed documents
 * (latest version, no deletes). A batch whose invocation throws is delivered again as the
 * function's retry policy says (`retry` of `app.cosmosDB`: count, fixed or exponential delay),
 * and without a policy it is NOT delivered again — Azure's trigger checkpoints past a failed
 * batch unless the function has a retry policy, so devhost does the same (and says so at
 * start) rather than hide a missing policy that would lose changes in production.
 * Two functions on one container with the same lease prefix would steal each other's
 * progress: refused at start, as their shared lease would be in Azure.
 */
import { startChangeFeedProcessor } from '../../src/adapters/local/change-feed-processor';
import type { SqliteDocumentStore } from '../../src/adapters/local/sqlite-document-store';
import type { Clock } from '../../src/ports/clock';
import type { FunctionMetadata } from '../functions-core';
import type { FunctionHost, FunctionInfo } from '../host';

/** How the processor retries a failed batch, from the function's registered retry policy. */
export interface BatchRetry {
  /** -1: for ever; 0: never (no policy). */
  maxRetries: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

/** The wire form of a duration (`toRpcDuration`: `{seconds}`; protobuf JSON may say `"5s"`). */
function durationMs(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^\d+(\.\d+)?s$/.test(value)) return Number(value.slice(0, -1)) * 1000;
  if (value && typeof value === 'object') {
    const { seconds, nanos } = value as { seconds?: unknown; nanos?: unknown };
    return Number(seconds ?? 0) * 1000 + Number(nanos ?? 0) / 1e6;
  }
  return undefined;
}

/** A zero delay would spin on a failing batch: retries wait at least this long. */
const MIN_RETRY_DELAY_MS = 100;

export function batchRetryOf(options: FunctionMetadata['retryOptions']): BatchRetry | undefined {
  if (!options) return undefined;
  const strategy = options.retryStrategy ?? options.strategy;
  const count = Number(options.maxRetryCount ?? 0);
  const maxRetries = Number.isInteger(count) && count >= -1 ? count : 0;
  const record = options as Record<string, unknown>;
  const fixed = durationMs(options.delayInterval);
  const min = strategy === 'fixedDelay' ? fixed : durationMs(record['minimumInterval']);
  const max = strategy === 'fixedDelay' ? fixed : durationMs(record['maximumInterval']);
  const initialDelayMs = Math.max(MIN_RETRY_DELAY_MS, min ?? MIN_RETRY_DELAY_MS);
  return { maxRetries, initialDelayMs, maxDelayMs: Math.max(initialDelayMs, max ?? initialDelayMs) };
}

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
        retry: batchRetryOf(fn.metadata.retryOptions),
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
      if (!p.retry) {
        options.log(
          `cosmosDBTrigger ${p.fn.name} has no retry policy: a batch whose invocation throws is skipped, here as in Azure (give app.cosmosDB a retry option)`,
        );
      }
      const maxRetryCount = p.retry?.maxRetries ?? 0;
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
          maxRetries: maxRetryCount,
          ...(p.retry ? { retry: { initialDelayMs: p.retry.initialDelayMs, maxDelayMs: p.retry.maxDelayMs } } : {}),
          handler: async (batch, delivery) => {
            await options.host.invoke(p.fn.name, {
              inputData: [{ name: p.fn.triggerName, data: { json: JSON.stringify(batch) } }],
              triggerMetadata: {},
              retryContext: { retryCount: delivery.retryCount, maxRetryCount },
            });
          },
          onError: (err, ctx) =>
            options.log(
              ctx.phase === 'skipped'
                ? `cosmosDBTrigger ${p.fn.name}: batch skipped after ${ctx.attempt} failed attempt(s) (retry policy spent)`
                : `cosmosDBTrigger ${p.fn.name}: ${ctx.phase} failed`,
              { error: err.message, attempt: ctx.attempt },
            ),
        }),
      );
    }
  } catch (err) {
    await Promise.all(processors.map((x) => x.stop()));
    throw err;
  }
  return { stop: async () => void (await Promise.all(processors.map((x) => x.stop()))) };
}
