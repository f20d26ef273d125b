/** Use cases more than one function file needs, built once per deps. */
import { createRetrieval, type Retrieval } from '../../src/app/search';
import type { Deps } from '../../src/composition';

const retrievals = new WeakMap<Deps, Retrieval>();

/** Tenant-scoped hybrid retrieval (GET /api/search and chat share it). */
export function retrievalOf(deps: Deps): Retrieval {
  let retrieval = retrievals.get(deps);
  if (!retrieval) {
    retrieval = createRetrieval({
      documents: deps.documents,
      // Its own indexes first, then the boundary's other regions' (read-only failover).
      searchIndexes: [...deps.searchIndexes, ...deps.failoverSearchIndexes.map((f) => ({ ...f, primary: false }))],
      embedder: deps.queryEmbedder,
      logger: deps.logger,
    });
    retrievals.set(deps, retrieval);
  }
  return retrieval;
}
