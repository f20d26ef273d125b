import type { DocumentStore } from '../ports/document-store';
import type { EmbeddingCache } from '../ports/embedder';

/** Partition of the `cache` container that holds embeddings (tenant-free: keys are content hashes). */
export const EMBEDDINGS_PARTITION = '_embeddings';

/**
 * The embedding cache on the boundary's document store (Azure: Cosmos `cache` container), so
 * every index and every instance of a boundary shares it. Vectors are stored as base64 of
 * their float32 bytes; entries expire after `ttlSeconds` (the container has per-item TTL).
 */
export function createDocumentEmbeddingCache(documents: DocumentStore, ttlSeconds = 30 * 86_400): EmbeddingCache {
  return {
    async getMany(keys) {
      const found = new Map<string, Float32Array>();
      await Promise.all(
        keys.map(async (key) => {
          const item = await documents.read<{ id: string; vector: string }>('cache', EMBEDDINGS_PARTITION, key);
          if (item) {
            const bytes = Buffer.from(item.vector, 'base64');
            found.set(key, new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice());
          }
        }),
      );
      return found;
    },
    async putMany(entries) {
      await Promise.all(
        entries.map((e) =>
          documents.upsert('cache', {
            id: e.key,
            tenantId: EMBEDDINGS_PARTITION,
            kind: 'embedding',
            vector: Buffer.from(e.vector.buffer, e.vector.byteOffset, e.vector.byteLength).toString('base64'),
            ttl: ttlSeconds,
          }),
        ),
      );
    },
  };
}
