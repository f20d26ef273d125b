/**
 * The per-tenant response cache over the DocumentStore: container `cache`, partition
 * `/tenantId`, one item per key with a per-item `ttl` (the container has TTL on with no
 * default), so Cosmos (or the SQLite store) purges it. Reads also check `expiresAt` against
 * the app's clock, so an item past its time is a miss even before the purge runs.
 * A hit is served with `cached: true` and writes no usage event (the caller's rule).
 */
import type { Clock } from '../ports/clock';
import type { DocumentStore } from '../ports/document-store';
import { responseCacheKey, type ResponseCacheKeyInput } from '../domain/response-cache-key';
import { sha256Hex } from './hashing';

export const CACHE_CONTAINER = 'cache';

/** What chat stores: the answer as the client saw it, minus ids of the conversation. */
export interface CachedAnswer {
  answer: string;
  citations: Array<{ documentId: string; name: string; chunkId: string }>;
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
  model: { region: string; deployment: string; local?: boolean };
}

export interface CacheHit<T> {
  value: T;
  /** Epoch ms when it was stored. */
  storedAt: number;
}

export interface ResponseCache<T = CachedAnswer> {
  /** The key for these inputs (exposed so callers can log it). */
  key(input: ResponseCacheKeyInput): string;
  /**
   * @returns the stored answer, or undefined when absent or expired.
   * @throws AppError from the store (`unavailable`, `rate_limited`…); callers may treat
   *   a failing cache as a miss.
   */
  get(input: ResponseCacheKeyInput): Promise<CacheHit<T> | undefined>;
  /** Stores (or replaces) the answer for `ttlSeconds`. */
  put(input: ResponseCacheKeyInput, value: T): Promise<void>;
}

interface CacheItem {
  id: string;
  tenantId: string;
  storedAt: number;
  expiresAt: number;
  ttl: number;
  [property: string]: unknown;
}

export function createResponseCache<T = CachedAnswer>(deps: {
  documents: DocumentStore;
  clock: Clock;
  ttlSeconds: number;
}): ResponseCache<T> {
  const { documents, clock, ttlSeconds } = deps;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new RangeError('ttlSeconds must be a positive integer');
  const key = (input: ResponseCacheKeyInput): string => responseCacheKey(input, sha256Hex);
  return {
    key,
    async get(input) {
      const item = await documents.read<CacheItem>(CACHE_CONTAINER, input.tenantId, key(input));
      if (!item || item.expiresAt <= clock.now()) return undefined;
      return { value: item['value'] as T, storedAt: item.storedAt };
    },
    async put(input, value) {
      const now = clock.now();
      await documents.upsert<CacheItem>(CACHE_CONTAINER, {
        id: key(input),
        tenantId: input.tenantId,
        storedAt: now,
        expiresAt: now + ttlSeconds * 1000,
        ttl: ttlSeconds,
        value,
      });
    },
  };
}
