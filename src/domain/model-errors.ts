/**
 * How a model call failed, in the terms the gateway's policy needs. Adapters translate their
 * SDK's errors into these AppErrors once; the gateway reads them with `modelFailureOf`.
 *
 * - throttled (`rate_limited`, 429): the deployment is over its quota until `retryAfterMs`;
 *   another deployment of the boundary may answer.
 * - transient (`model_unavailable` with `extensions.transient`): 5xx, timeout, connection
 *   error; counts towards the deployment's circuit breaker, another deployment may answer.
 * - permanent: anything else (400 content filter, 401/404 misconfiguration): no failover,
 *   the same request would fail the same way elsewhere.
 */
import { AppError, isAppError } from './errors';

export type ModelFailure =
  { kind: 'throttled'; retryAfterMs: number | undefined } | { kind: 'transient' } | { kind: 'permanent' };

/** A 429 from a deployment. `retryAfterMs` undefined when the response named no time. */
export function modelThrottled(message: string, retryAfterMs: number | undefined, cause?: unknown): AppError {
  return new AppError('rate_limited', message, {
    cause,
    retryAfterSeconds: retryAfterMs === undefined ? undefined : Math.max(1, Math.ceil(retryAfterMs / 1000)),
    extensions: retryAfterMs === undefined ? {} : { retryAfterMs },
  });
}

/** A 5xx, timeout or connection failure of one deployment. */
export function modelTransientFailure(message: string, cause?: unknown): AppError {
  return new AppError('model_unavailable', message, { cause, extensions: { transient: true } });
}

/** Classifies an error thrown by a ChatModel. Errors that are not AppErrors are permanent (bugs). */
export function modelFailureOf(err: unknown): ModelFailure {
  if (isAppError(err, 'rate_limited')) {
    const ms = err.extensions['retryAfterMs'];
    return {
      kind: 'throttled',
      retryAfterMs:
        typeof ms === 'number' && Number.isFinite(ms) && ms >= 0
          ? ms
          : err.retryAfterSeconds !== undefined
            ? err.retryAfterSeconds * 1000
            : undefined,
    };
  }
  if (isAppError(err) && err.extensions['transient'] === true) return { kind: 'transient' };
  return { kind: 'permanent' };
}

/**
 * Reads `retry-after-ms` (milliseconds, Azure OpenAI) or else `retry-after` (seconds or an
 * HTTP date) from response headers.
 * @returns milliseconds from `nowMs`, or undefined when neither header is usable.
 */
export function parseRetryAfter(header: (name: string) => string | null | undefined, nowMs: number): number | undefined {
  const ms = header('retry-after-ms');
  if (ms != null && ms.trim() !== '') {
    const n = Number(ms);
    if (Number.isFinite(n) && n >= 0) return n;
  }
  const value = header('retry-after');
  if (value == null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}
