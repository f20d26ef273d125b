/** Text → vectors (Azure OpenAI embeddings in Azure, Universal Sentence Encoder lite locally). */
export interface Embedder {
  /** Length of every vector `embed` returns. */
  readonly dimensions: number;
  /** What produces the vectors (deployment/model name); part of the embedding cache key. */
  readonly model: string;
  /**
   * Embeds texts, batching as the backend needs. Returns one vector per text, in input order,
   * each of `dimensions` floats, unit length (cosine = dot product). An empty input returns
   * an empty array without calling the backend; an empty string is embedded like a space.
   * @throws AppError `rate_limited` (with `retryAfterSeconds`) when the backend throttles,
   *   `unavailable` (with `retryAfterSeconds` when known) when it is down, times out or is
   *   unreachable — both safe to retry; `validation_failed` when the backend refuses the input
   *   itself (e.g. a text over its token limit) — not worth retrying.
   */
  embed(texts: readonly string[]): Promise<Float32Array[]>;
  /**
   * Readiness for /api/health: resolves (optionally with a detail such as the model) when
   * `embed` can work. @throws AppError `unavailable` when it cannot.
   */
  check(): Promise<string | void>;
}

/** Stored vectors by cache key (see `src/app/embedding-cache.ts` for the key). */
export interface EmbeddingCache {
  /**
   * The vectors stored under the keys given; keys never stored are absent from the map.
   * @throws AppError `unavailable` when the store cannot be read (callers may embed anyway).
   */
  getMany(keys: readonly string[]): Promise<Map<string, Float32Array>>;
  /**
   * Stores vectors; a key already present keeps its first vector (same key = same model and text).
   * @throws AppError `unavailable` when the store cannot be written.
   */
  putMany(entries: readonly { key: string; vector: Float32Array }[]): Promise<void>;
}
