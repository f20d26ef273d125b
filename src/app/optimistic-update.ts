/**
 * Read-modify-write of one document that many requests change at once (a conversation's turns,
 * a coaching session's exchanges), under optimistic concurrency (If-Match).
 *
 * - In one process, the writers of one document take turns (a queue per document), so they
 *   never race each other: thirty concurrent turns of one conversation are thirty writes in a
 *   row, not thirty If-Match rounds in which one wins each time.
 * - Across processes (several app instances in Azure) If-Match still decides: the loser reads
 *   the new version and applies its change again, after a short randomized backoff.
 * - Bounded: when the document keeps changing under it for `MAX_ATTEMPTS` rounds, the write
 *   fails with `conflict` (409, "try again"), never with the store's own `precondition_failed`
 *   (a 412 the client did not ask for, naming the container and etag).
 *
 * The change must be pure over the document it is given (it runs once per attempt).
 */
import { AppError, isAppError } from '../domain/errors';

export const MAX_ATTEMPTS = 20;
/** Backoff before attempt n (n ≥ 2): a random wait in [0, min(n, 8) × BASE_BACKOFF_MS). */
export const BASE_BACKOFF_MS = 10;

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface OptimisticUpdater {
  /**
   * Runs `attempt` (read, change, replace with If-Match) until it returns without a
   * `precondition_failed`; one call at a time per `key` in this process.
   * @throws AppError `conflict` when it lost `MAX_ATTEMPTS` times; whatever `attempt` throws otherwise.
   */
  run<T>(key: string, attempt: () => Promise<T>, what: string): Promise<T>;
}

export function createOptimisticUpdater(
  options: { sleep?: (ms: number) => Promise<void>; random?: () => number } = {},
): OptimisticUpdater {
  const sleep = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  /** The last queued write per key; removed when it settles and nothing queued behind it. */
  const tails = new Map<string, Promise<void>>();

  async function retrying<T>(attempt: () => Promise<T>, what: string): Promise<T> {
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        if (!isAppError(err, 'precondition_failed')) throw err;
        if (n >= MAX_ATTEMPTS) {
          throw new AppError('conflict', `${what} is being changed by other requests; try again.`, { cause: err });
        }
      }
      await sleep(random() * Math.min(n + 1, 8) * BASE_BACKOFF_MS);
    }
  }

  return {
    run<T>(key: string, attempt: () => Promise<T>, what: string): Promise<T> {
      const previous = tails.get(key) ?? Promise.resolve();
      const result = previous.then(() => retrying(attempt, what));
      const tail = result.then(
        () => undefined,
        () => undefined,
      );
      tails.set(key, tail);
      void tail.then(() => {
        if (tails.get(key) === tail) tails.delete(key);
      });
      return result;
    },
  };
}

/** The process's queue: every use case appending to shared documents takes turns through it. */
export const documentWrites = createOptimisticUpdater();
