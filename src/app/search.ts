/**
 * Tenant-scoped retrieval: the tenant's documents plus shared ones, never another tenant's
 * (the filter is inside the index query), excluding documents being deleted. Searches the
 * serving region's index and falls back to another index of the same boundary when it fails.
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

export function createRetrieval(deps: RetrievalDeps) {
  async function deletingIds(partition: string): Promise<string[]> {
    const page = await deps.documents.query<Stored<DocumentRecord>>(
      CATALOG,
      partition,
      {
        where: [
          { path: '/kind', op: '=', value: 'document' },
          { path: '/status', op: '=', value: 'deleting' },
        ],
        select: ['id'],
      },
      { limit: 200 },
    );
    return page.items.map((i) => i.id);
  }

  /** @throws AppError `unavailable` when no index of the boundary answers. */
  async function search(tenantId: string, text: string, top: number): Promise<(SearchHit & { region: string })[]> {
    const [vector] = await deps.embedder.embed([text]);
    // Deletions in flight are few; past the port's cap the oldest extras may show until their
    // chunks are removed (moments later, by the delete message).
    const exclude = [...(await deletingIds(tenantId)), ...(await deletingIds(SHARED_TENANT))].slice(0, MAX_EXCLUDED_DOCUMENTS);
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

  return { search };
}

export type Retrieval = ReturnType<typeof createRetrieval>;
