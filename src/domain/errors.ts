/**
 * The one application error type. Every adapter translates its SDK's errors into an
 * `AppError` once, at the boundary; `toProblem` (src/app/problem.ts) maps codes to HTTP.
 */

/** Stable machine codes; they appear verbatim as `code` in problem responses (API.md). */
export type ErrorCode =
  | 'validation_failed' // 400: the request (body, query, message, blob) is malformed
  | 'unauthorized' // 401: missing, malformed, expired or wrongly signed token
  | 'forbidden' // 403: the token lacks the role
  | 'not_found' // 404: absent, or another user's or tenant's resource
  | 'method_not_allowed' // 405: route exists, method does not
  | 'conflict' // 409: state does not allow it (e.g. session not active)
  | 'precondition_failed' // 412: etag mismatch on If-Match
  | 'payload_too_large' // 413
  | 'unsupported_media_type' // 415
  | 'misdirected_boundary' // 421: the tenant's boundary is not served here
  | 'rate_limited' // 429 with Retry-After
  | 'budget_exceeded' // 429: hard monthly token budget spent
  | 'model_unavailable' // 503: no model deployment in the boundary can answer
  | 'unavailable' // 503: a dependency is down
  | 'internal'; // 500: anything else; never leaks internals

export const statusOf: Record<ErrorCode, number> = {
  validation_failed: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  precondition_failed: 412,
  payload_too_large: 413,
  unsupported_media_type: 415,
  misdirected_boundary: 421,
  rate_limited: 429,
  budget_exceeded: 429,
  model_unavailable: 503,
  unavailable: 503,
  internal: 500,
};

export interface AppErrorOptions {
  cause?: unknown;
  /** Seconds until a retry may succeed (429, 503). */
  retryAfterSeconds?: number;
  /** Extra members of the problem body (e.g. `boundary`, `baseUrl` for 421). Never internals. */
  extensions?: Record<string, unknown>;
}

export class AppError extends Error {
  override readonly name = 'AppError';
  readonly code: ErrorCode;
  readonly retryAfterSeconds: number | undefined;
  readonly extensions: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.extensions = options.extensions ?? {};
  }

  get status(): number {
    return statusOf[this.code];
  }
}

export function isAppError(err: unknown, code?: ErrorCode): err is AppError {
  return err instanceof AppError && (code === undefined || err.code === code);
}

/** Turns anything thrown into an Error without losing the original (as `cause`). */
export function ensureError(err: unknown): Error {
  if (err instanceof Error) return err;
  let text: string;
  try {
    text = typeof err === 'string' ? err : JSON.stringify(err);
  } catch {
    text = String(err);
  }
  return new Error(text, { cause: err });
}
