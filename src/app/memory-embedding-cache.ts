/**
 * A bounded in-process `EmbeddingCache` (least recently used out first). Retrieval embeds
 * questions through it: a question asked again within a process skips the model call, and
 * questions never reach the persistent chunk cache, which has no eviction and would otherwise
 * grow by one vector per question asked (a row per chat request, in Cosmos DB an item and its
 * RUs).
 */
import type { EmbeddingCache } from '../ports/embedder';

export const DEFAULT_QUERY_EMBEDDING_ENTRIES = 2000;

export class MemoryEmbeddingCache implements EmbeddingCache {
  private readonly entries = new Map<string, Float32Array>();

  constructor(private readonly maxEntries = DEFAULT_QUERY_EMBEDDING_ENTRIES) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be a positive integer');
  }

  async getMany(keys: readonly string[]): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const key of keys) {
      const vector = this.entries.get(key);
      if (vector === undefined) continue;
      // Most recently used last.
      this.entries.delete(key);
      this.entries.set(key, vector);
      out.set(key, vector);
    }
    return out;
  }

  async putMany(entries: readonly { key: string; vector: Float32Array }[]): Promise<void> {
    for (const { key, vector } of entries) {
      if (this.entries.has(key)) continue; // a key keeps its first vector
      this.entries.set(key, vector);
      if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
