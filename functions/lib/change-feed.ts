import type { ExponentialBackoffRetryOptions } from '@azure/functions';

/**
 * The retry policy of every Cosmos DB change-feed trigger. Azure's trigger does not deliver a
 * batch again when the function throws — it checkpoints past it — unless the function has a
 * retry policy (Azure Functions error handling and retries: Cosmos DB retries come from a
 * function-level retry policy). The usage ledger and the audit log throw to get a batch again
 * (the store throttled or down, lost races) and are idempotent per change, so they retry for
 * ever with backoff: a change is late, never lost. A document they cannot use at all is
 * skipped and logged by the handlers themselves, so it cannot stall the feed.
 */
export const CHANGE_FEED_RETRY: ExponentialBackoffRetryOptions = {
  strategy: 'exponentialBackoff',
  maxRetryCount: -1,
  minimumInterval: { seconds: 1 },
  maximumInterval: { minutes: 1 },
};
