/**
 * The retry policy of every activity and sub-orchestration call of the orchestrators. A
 * transient store error (Cosmos 429/503, an If-Match race that outlasted its own retries)
 * must not fail a whole evaluation or session: the host retries the call after a backoff
 * timer (failure → timer → new attempt, each a new history entry). Every activity called
 * with it is idempotent (see its TSDoc in src/app/evaluations.ts and src/app/sessions.ts).
 *
 * Five attempts, 2 s doubling to at most 30 s between them: about half a minute of waiting,
 * longer than a throttled or failing-over Cosmos partition usually needs, short enough that a
 * real failure reaches the orchestrator's failure path (status `failed`) within a minute.
 *
 * Versioning: retry changes the recorded action types (CallActivity → CallActivityWithRetry,
 * CallSubOrchestrator → CallSubOrchestratorWithRetry). devhost's engine compares action types
 * on replay, so a local instance recorded before retry existed, once it has recorded one of
 * those calls (an evaluation in flight, a session `evaluating` or past a skipped idle close),
 * fails its next replay with "Non-deterministic workflow detected" and stays where it was;
 * sessions still waiting for their first close replay fine. (Azure's host matches recorded
 * TaskScheduled events by id and name, so old histories there should replay; not verified.)
 * Changing the numbers is safe at any time: only the host reads them. Adding or removing a
 * retried call is not: version the orchestrator (a new name) while instances are in flight.
 */
import * as df from 'durable-functions';

export const RETRY_ATTEMPTS = 5;
export const FIRST_RETRY_MS = 2_000;

export const CALL_RETRY: df.RetryOptions = (() => {
  const options = new df.RetryOptions(FIRST_RETRY_MS, RETRY_ATTEMPTS);
  options.backoffCoefficient = 2;
  options.maxRetryIntervalInMilliseconds = 30_000;
  return options;
})();

/** What a failed task reports, for the `failed` status's reason (messages only, never a stack). */
export function failureReason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
