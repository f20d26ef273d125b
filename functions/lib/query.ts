import type { HttpRequest } from '@azure/functions';
import { AppError } from '../../src/domain/errors';

/** Refuses query parameters the route does not know (API.md: unknown fields → 400). */
export function strictQuery(req: HttpRequest, allowed: readonly string[]): URLSearchParams {
  const unknown = [...new Set([...req.query.keys()].filter((k) => !allowed.includes(k)))];
  if (unknown.length) throw new AppError('validation_failed', `Unknown query parameter(s): ${unknown.join(', ')}.`);
  return req.query;
}

/** `limit` (1–200, default 50) and `continuationToken` (API.md "Lists"). */
export function pageOptions(req: HttpRequest): { limit: number; continuationToken?: string } {
  const raw = req.query.get('limit');
  const limit = raw === null ? 50 : Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 200)
    throw new AppError('validation_failed', 'limit must be an integer from 1 to 200.');
  const token = req.query.get('continuationToken');
  return { limit, ...(token ? { continuationToken: token } : {}) };
}
