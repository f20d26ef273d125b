/**
 * An `Embedder` that embeds each distinct text once per model: vectors are cached under
 * sha256(model, dimensions, text), so a chunk taken by several indexes of a boundary (they
 * share one cache) or re-indexed unchanged in a new version is not embedded again.
 */
import { createHash } from 'node:crypto';
import type { Embedder, EmbeddingCache } from '../ports/embedder';

/** The cache key of a text under an embedder: hex sha256 of model, dimensions and text. */
export function embeddingCacheKey(model: string, dimensions: number, text: string): string {
  return createHash('sha256')
    .update(model)
    .update('\u0000')
    .update(String(dimensions))
    .update('\u0000')
    .update(text)
    .digest('hex');
}

export interface CachedEmbedderStats {
  /** Texts answered from the cache (or from an identical text earlier in the same call). */
  hits: number;
  /** Texts sent to the underlying embedder. */
  misses: number;
}

/**
 * Wraps `embedder` with `cache`. Cache read failures degrade to embedding everything; write
 * failures are swallowed (the vectors are still returned): the cache saves money and time,
 * it is never a reason to fail indexing.
 */
export function createCachedEmbedder(embedder: Embedder, cache: EmbeddingCache): Embedder & { stats(): CachedEmbedderStats } {
  const totals: CachedEmbedderStats = { hits: 0, misses: 0 };
  const inFlight = new Map<string, Promise<Float32Array>>();
  return {
    dimensions: embedder.dimensions,
    model: embedder.model,
    check: () => embedder.check(),
    stats: () => ({ ...totals }),
    async embed(texts) {
      if (texts.length === 0) return [];
      const keys = texts.map((t) => embeddingCacheKey(embedder.model, embedder.dimensions, t));
      let found: Map<string, Float32Array>;
      try {
        found = await cache.getMany([...new Set(keys)]);
      } catch {
        found = new Map();
      }
      // Keys another call is embedding right now are awaited, not embedded again: the indexes
      // of a boundary take the same message at the same moment.
      const missingKeys: string[] = [];
      const missingTexts: string[] = [];
      const waitFor = new Map<string, Promise<Float32Array>>();
      keys.forEach((k, i) => {
        if (found.has(k) || waitFor.has(k) || missingKeys.includes(k)) return;
        const pending = inFlight.get(k);
        if (pending) waitFor.set(k, pending);
        else {
          missingKeys.push(k);
          missingTexts.push(texts[i] as string);
        }
      });
      if (missingTexts.length) {
        const batch = embedder.embed(missingTexts);
        missingKeys.forEach((key, i) => {
          const one = batch.then((vectors) => vectors[i] as Float32Array);
          one.catch(() => undefined);
          inFlight.set(key, one);
        });
        try {
          const vectors = await batch;
          const entries = missingKeys.map((key, i) => ({ key, vector: vectors[i] as Float32Array }));
          for (const e of entries) found.set(e.key, e.vector);
          try {
            await cache.putMany(entries);
          } catch {
            // Not stored: the next call embeds these again, nothing else is lost.
          }
        } finally {
          for (const key of missingKeys) inFlight.delete(key);
        }
      }
      for (const [key, pending] of waitFor) found.set(key, await pending);
      totals.misses += missingTexts.length;
      totals.hits += texts.length - missingTexts.length;
      return keys.map((k) => found.get(k) as Float32Array);
    },
  };
}
