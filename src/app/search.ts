/**
 * Tenant-scoped retrieval: the tenant's documents plus shared ones, never another tenant's
 * (the filter is inside the index query), excluding documents being deleted. Searches the
 * serving region's index and falls back to another index of the same boundary when it fails.
 *
 * Documents being deleted are found from the hits (their catalog rows are point reads), not
 * by listing the tenant's catalog before every query: that listing grew with the catalog and
 * cost more than the search itself. A deletion marks the row at once, so it is excluded from
 * the next answer even though its chunks leave the index a moment later.
 */
import { SHARED_TENANT, type DocumentRecord } from '../domain/documents';
import { AppError, isAppError } from '../domain/errors';
import type { DocumentStore, Stored } from '../ports/document-store';
import type { Embedder } from '../ports/embedder';
import type { Logger } from '../ports/logger';
import { MAX_EXCLUDED_DOCUMENTS, type SearchHit, type SearchIndex } from '../ports/search-index';
import { CATALOG } from './documents';

export interface RetrievalDeps {
  documents: DocumentStore;
  searchIndexes: { region: string; primary: boolean; index: SearchIndex }[];
  embedder: Embedder;
  logger: Logger;
}

/**
 * A document's catalog row: the tenant's own, else the shared one (document ids are unique
 * across both). Undefined when neither exists.
 */
export async function catalogRowOf(
  documents: DocumentStore,
  tenantId: string,
  documentId: string,
): Promise<Stored<DocumentRecord> | undefined> {
  return (
    (await documents.read<DocumentRecord>(CATALOG, tenantId, documentId)) ??
    (await documents.read<DocumentRecord>(CATALOG, SHARED_TENANT, documentId))
  );
}

/** Rounds of re-querying when hits belong to documents being deleted (each round excludes them). */
const MAX_EXCLUSION_ROUNDS = 4;

export function createRetrieval(deps: RetrievalDeps) {
  async function deleting(tenantId: string, documentIds: readonly string[]): Promise<string[]> {
    const rows = await Promise.all(documentIds.map((id) => catalogRowOf(deps.documents, tenantId, id)));
    return documentIds.filter((_, i) => rows[i]?.kind === 'document' && rows[i]?.status === 'deleting');
  }

  /** One query, trying the boundary's indexes in order. @throws AppError `unavailable` when none answers. */
  async function query(
    tenantId: string,
    text: string,
    top: number,
    vector: Float32Array | undefined,
    exclude: readonly string[],
  ): Promise<(SearchHit & { region: string })[]> {
    let lastError: unknown;
    for (const target of deps.searchIndexes) {
      try {
        const hits = await target.index.search({
          tenantIds: [tenantId, SHARED_TENANT],
          text,
          top,
          ...(vector ? { vector } : {}),
          ...(exclude.length ? { excludeDocumentIds: exclude } : {}),
        });
        return hits.map((h) => ({ ...h, region: target.region }));
      } catch (err) {
        if (isAppError(err, 'validation_failed')) throw err;
        lastError = err;
        deps.logger.warn('search index failed; trying the next index of the boundary', { index: target.index.name, err });
      }
    }
    throw new AppError('unavailable', 'No search index of this boundary answered.', { cause: lastError, retryAfterSeconds: 5 });
  }

  /**
   * The top hits of documents not being deleted. Only the documents the hits come from are
   * checked (point reads, not a scan of the catalog); when some are being deleted, the query
   * runs again without them, so the caller still gets `top` hits of live documents.
   * @throws AppError `unavailable` when no index of the boundary answers.
   */
  async function search(tenantId: string, text: string, top: number): Promise<(SearchHit & { region: string })[]> {
    const [vector] = await deps.embedder.embed([text]);
    const exclude: string[] = [];
    for (let round = 1; ; round++) {
      const hits = await query(tenantId, text, top, vector, exclude);
      const found = [...new Set(hits.map((h) => h.documentId))];
      const gone = await deleting(tenantId, found);
      if (gone.length === 0) return hits;
      // Past the rounds or the port's cap: drop them afterwards (fewer hits, never a deleted one).
      if (round >= MAX_EXCLUSION_ROUNDS || exclude.length + gone.length > MAX_EXCLUDED_DOCUMENTS) {
        return hits.filter((h) => !gone.includes(h.documentId));
      }
      exclude.push(...gone);
    }
  }

  return { search };
}

export type Retrieval = ReturnType<typeof createRetrieval>;
