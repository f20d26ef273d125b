import { AppError, ensureError, statusOf, type ErrorCode } from '../domain/errors';

/** RFC 9457 problem details, as API.md defines them. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  [extension: string]: unknown;
}

export interface ProblemResponse {
  status: number;
  headers: Record<string, string>;
  body: Problem;
}

const TITLES: Record<ErrorCode, string> = {
  validation_failed: 'Validation failed',
  unauthorized: 'Unauthorized',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  method_not_allowed: 'Method not allowed',
  conflict: 'Conflict',
  precondition_failed: 'Precondition failed',
  payload_too_large: 'Payload too large',
  unsupported_media_type: 'Unsupported media type',
  misdirected_boundary: 'Misdirected request: wrong residency boundary',
  rate_limited: 'Too many requests',
  budget_exceeded: 'Token budget exceeded',
  model_unavailable: 'Model unavailable',
  unavailable: 'Service unavailable',
  internal: 'Internal server error',
};

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function problemType(code: ErrorCode): string {
  return `https://meridian.dev/problems/${code}`;
}

/**
 * Maps any error to a problem response. AppErrors keep their code, message and extensions;
 * anything else becomes 500 `internal` whose body says nothing of the cause (the caller logs
 * the cause with the request id).
 */
export function toProblem(err: unknown, requestId: string): ProblemResponse {
  const headers: Record<string, string> = { 'content-type': PROBLEM_CONTENT_TYPE };
  if (err instanceof AppError) {
    if (err.retryAfterSeconds !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(err.retryAfterSeconds)));
    else if (err.status === 429) headers['retry-after'] = '1';
    if (err.code === 'method_not_allowed' && Array.isArray(err.extensions['allow'])) {
      headers['allow'] = (err.extensions['allow'] as string[]).join(', ');
    }
    return {
      status: statusOf[err.code],
      headers,
      body: {
        ...err.extensions,
        type: problemType(err.code),
        title: TITLES[err.code],
        status: statusOf[err.code],
        detail: err.message,
        code: err.code,
      },
    };
  }
  ensureError(err);
  return {
    status: 500,
    headers,
    body: {
      type: problemType('internal'),
      title: TITLES.internal,
      status: 500,
      detail: `An internal error occurred. Quote request id ${requestId} when reporting it.`,
      code: 'internal',
    },
  };
}
