/**
 * One search index (one per region: `meridian-<region>`): chunks of tenant and shared
 * documents with their vectors, searched by hybrid keyword + vector queries that are always
 * confined to the tenants asked for. Azure AI Search in Azure; SQLite FTS5 + sqlite-vec locally.
 */

/** The tenant id under which shared (platform) documents are indexed. */
export { SHARED_TENANT } from '../domain/documents';

/** Documents one query may exclude: bounded so filters stay small. */
export const MAX_EXCLUDED_DOCUMENTS = 200;

export interface IndexedChunk {
  /** The chunk id (`<documentId>:<version>:<ordinal>`); unique in the index. */
  id: string;
  /** Owner; `_shared` for shared documents. */
  tenantId: string;
  documentId: string;
  documentName: string;
  version: number;
  /** Staleness tier (`upload`, `policy`, `kb`, `training`, `archive`). */
  tier: string;
  /** The blob's etag (unquoted) the chunk was made from. */
  etag: string;
  ordinal: number;
  headingPath: string;
  content: string;
  tokenCount: number;
  /** Unit vector of the index's `dimensions`. */
  vector: Float32Array;
}

export interface SearchQuery {
  /** Tenants whose chunks may match: the caller's tenant and, normally, `_shared`. Empty → no hits. */
  tenantIds: readonly string[];
  /** Keyword query (natural language; any word may match). Empty → vector only. */
  text: string;
  /** Query vector of the index's dimensions. Absent → keyword only. */
  vector?: Float32Array;
  /** Hits to return (1–50). */
  top: number;
  /**
   * Documents to leave out (e.g. being deleted); filtered inside the query, not afterwards.
   * At most MAX_EXCLUDED_DOCUMENTS.
   */
  excludeDocumentIds?: readonly string[];
}

export interface SearchHit {
  chunkId: string;
  documentId: string;
  documentName: string;
  content: string;
  headingPath: string;
  tokenCount: number;
  /** Relevance, higher is better; for hybrid queries the Reciprocal Rank Fusion score. Comparable only within one response. */
  score: number;
}

export interface IndexedDocument {
  tenantId: string;
  documentId: string;
  /** Highest version with chunks in the index. */
  version: number;
  /** Chunks of that version. */
  chunks: number;
  /** Chunks of lower versions still present (a replacement not yet finished); 0 normally. */
  olderVersionChunks: number;
}

export interface SearchIndex {
  /** The index name (`meridian-<region>`). */
  readonly name: string;
  /** Vector length the index stores. */
  readonly dimensions: number;
  /**
   * Inserts or replaces chunks by id (idempotent: a redelivered message writes the same
   * ids). An empty array is a no-op.
   * @throws AppError `validation_failed` for a vector of the wrong length or a malformed
   *   chunk; `unavailable` (retryable) when the index cannot be written.
   */
  upsertChunks(chunks: readonly IndexedChunk[]): Promise<void>;
  /**
   * Removes every chunk of one document of one tenant, whatever its version.
   * @returns the number of chunks removed (0 when there were none — not an error).
   * @throws AppError `unavailable` when the index cannot be written.
   */
  deleteDocument(tenantId: string, documentId: string): Promise<number>;
  /**
   * Removes the chunks of versions lower than `keepVersion` of one document (after the new
   * version is upserted, so the document never disappears from search mid-replacement).
   * @returns the number of chunks removed.
   * @throws AppError `unavailable` when the index cannot be written.
   */
  deleteOlderVersions(tenantId: string, documentId: string, keepVersion: number): Promise<number>;
  /**
   * Hybrid search confined to `tenantIds` (the filter is part of the query for both the
   * keyword and the vector path, never applied to results afterwards): the top keyword
   * (BM25) and vector (cosine) candidates, fused with Reciprocal Rank Fusion (k = 60).
   * @returns at most `top` hits, best first; [] when nothing matches.
   * @throws AppError `validation_failed` for a vector of the wrong length or `top` outside
   *   1–50; `unavailable` (retryable, failover to another index of the boundary) when the
   *   index cannot be queried.
   */
  search(query: SearchQuery): Promise<SearchHit[]>;
  /**
   * What the index holds per document (for sweeps), optionally for one tenant only.
   * @returns one entry per (tenant, document) with chunks; [] for an empty index.
   * @throws AppError `unavailable` when the index cannot be read.
   */
  documentVersions(tenantId?: string): Promise<IndexedDocument[]>;
  /** Counts for /api/index/status. @throws AppError `unavailable` when the index cannot be read. */
  stats(): Promise<{ documents: number; chunks: number }>;
  /** Readiness for /api/health. @throws AppError `unavailable` when the index does not answer. */
  check(): Promise<string | void>;
}
