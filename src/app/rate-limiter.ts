/**
 * The per-user request limit of model-calling routes (chat, session messages, evaluate):
 * at most `limit` requests in any sliding window of `windowMs` (default 500 per minute,
 * `http.rateLimitPerMinute`). Exact sliding-window log: each key keeps the times of its last
 * `limit` admitted requests in a ring, so a request is admitted when fewer than `limit` fall
 * in the window, and Retry-After is when the oldest of them leaves it.
 *
 * Per process: each app instance counts on its own, so with N instances a user may get up to
 * N × limit. A global limit in Azure needs a shared store (e.g. Redis) or API Management's
 * `rate-limit-by-key` in front of the function app; this limiter still caps each instance.
 * Memory: 8 bytes × limit per active key; keys idle for a whole window are dropped.
 */
import { AppError } from '../domain/errors';
import type { Clock } from '../ports/clock';

export interface RateDecision {
  allowed: boolean;
  /** Requests left in the current window after this one. */
  remaining: number;
  /** Whole seconds until a request would be admitted (0 when allowed). */
  retryAfterSeconds: number;
}

export interface RateLimiter {
  /** Counts a request for `key` when admitted; a refused one is not counted. */
  take(key: string): RateDecision;
  /**
   * Like `take`, for use cases.
   * @throws AppError `rate_limited` (429) with `retryAfterSeconds` when over the limit.
   */
  enforce(key: string): void;
  /** Keys being tracked (for tests and metrics). */
  size(): number;
}

interface Ring {
  times: Float64Array;
  /** Index of the oldest entry. */
  start: number;
  count: number;
  last: number;
}

export function createRateLimiter(options: { clock: Clock; limit: number; windowMs?: number }): RateLimiter {
  const { clock, limit } = options;
  const windowMs = options.windowMs ?? 60_000;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError('limit must be a positive integer');
  const rings = new Map<string, Ring>();
  let sinceSweep = 0;

  function sweep(now: number): void {
    for (const [key, ring] of rings) if (ring.last <= now - windowMs) rings.delete(key);
  }

  function take(key: string): RateDecision {
    const now = clock.now();
    if (++sinceSweep >= 10_000) {
      sinceSweep = 0;
      sweep(now);
    }
    let ring = rings.get(key);
    if (!ring) {
      ring = { times: new Float64Array(limit), start: 0, count: 0, last: now };
      rings.set(key, ring);
    }
    // Drop what has left the window.
    while (ring.count > 0 && (ring.times[ring.start] as number) <= now - windowMs) {
      ring.start = (ring.start + 1) % limit;
      ring.count -= 1;
    }
    if (ring.count >= limit) {
      const oldest = ring.times[ring.start] as number;
      return { allowed: false, remaining: 0, retryAfterSeconds: Math.max(1, Math.ceil((oldest + windowMs - now) / 1000)) };
    }
    ring.times[(ring.start + ring.count) % limit] = now;
    ring.count += 1;
    ring.last = now;
    return { allowed: true, remaining: limit - ring.count, retryAfterSeconds: 0 };
  }

  return {
    take,
    enforce(key) {
      const decision = take(key);
      if (!decision.allowed) {
        throw new AppError('rate_limited', `More than ${limit} requests in ${windowMs / 1000} s; slow down.`, {
          retryAfterSeconds: decision.retryAfterSeconds,
        });
      }
    },
    size: () => rings.size,
  };
}
