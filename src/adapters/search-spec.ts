/**
 * The `SearchIndex` contract's input rules, checked the same way by every adapter (as
 * document-spec.ts does for the document store), so a query valid for one index is valid for all.
 */
import { AppError } from '../domain/errors';
import { MAX_EXCLUDED_DOCUMENTS, type SearchQuery } from '../ports/search-index';

/**
 * Validates a query and returns its de-duplicated tenant and excluded-document lists.
 * @throws AppError `validation_failed` for `top` outside 1–50, a vector of the wrong length,
 *   or more than MAX_EXCLUDED_DOCUMENTS exclusions.
 */
export function checkSearchQuery(query: SearchQuery, dimensions: number): { tenants: string[]; excluded: string[] } {
  if (!Number.isInteger(query.top) || query.top < 1 || query.top > 50) {
    throw new AppError('validation_failed', 'top must be an integer in 1–50');
  }
  if (query.vector && query.vector.length !== dimensions) {
    throw new AppError('validation_failed', `query vector has ${query.vector.length} dimensions, the index ${dimensions}`);
  }
  const excluded = [...new Set(query.excludeDocumentIds ?? [])];
  if (excluded.length > MAX_EXCLUDED_DOCUMENTS) {
    throw new AppError('validation_failed', `at most ${MAX_EXCLUDED_DOCUMENTS} excluded documents`);
  }
  return { tenants: [...new Set(query.tenantIds)], excluded };
}
