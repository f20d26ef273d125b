/**
 * Search indexes for the retrieval benchmarks, built the same way by every benchmark that
 * needs one so their figures describe the same data.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { toIndexedChunk } from '../../src/app/indexer';
import { LocalSearchIndex } from '../../src/adapters/local/search-index';
import { LocalTextExtractor } from '../../src/adapters/local/text-extractor';
import { countTokens } from '../../src/adapters/local/token-counter';
import { chunkDocument } from '../../src/domain/chunking';
import { SHARED_TENANT, type IndexedChunk, type SearchIndex } from '../../src/ports/search-index';
import { corpusFiles, unitVector } from './corpus';

/**
 * A LocalSearchIndex named `meridian-eastus` in a new temporary folder, in the file devhost
 * would use for it; `remove()` closes it and deletes the folder.
 */
export function openTempSearchIndex(prefix: string, dimensions: number): { index: LocalSearchIndex; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const index = new LocalSearchIndex({
    file: LocalSearchIndex.pathFor(dir, 'us', 'meridian-eastus'),
    name: 'meridian-eastus',
    dimensions,
  });
  return {
    index,
    remove() {
      index.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The querying tenant of both layouts. */
export const QUERY_TENANT = 'tenant-query';

/**
 * The 50k layout of bench/search.ts: documents of 10 chunks of 6–12 corpus sentences; 20% of
 * documents to QUERY_TENANT, the rest round-robin over 20 other tenants; synthetic unit
 * vectors. Upserts in batches of 1,000 and draws from `rand` in a fixed order, so a seed gives
 * the same index every run.
 */
export async function buildSyntheticIndex(
  index: SearchIndex,
  total: number,
  rand: () => number,
  pick: () => string,
): Promise<{ tenants: string[] }> {
  const tenants = [QUERY_TENANT, ...Array.from({ length: 20 }, (_, i) => `tenant-other-${i}`)];
  let batch: IndexedChunk[] = [];
  for (let i = 0; i < total; i++) {
    const doc = Math.floor(i / 10);
    const tenantId = doc % 5 === 0 ? (tenants[0] as string) : (tenants[1 + (doc % 20)] as string);
    const n = 6 + Math.floor(rand() * 7);
    const content = Array.from({ length: n }, pick).join(' ');
    batch.push({
      id: `doc-${doc}:1:${i % 10}`,
      tenantId,
      documentId: `doc-${doc}`,
      documentName: `document-${doc}.md`,
      version: 1,
      tier: 'kb',
      etag: '0x8DC',
      ordinal: i % 10,
      headingPath: pick().split(' ').slice(0, 5).join(' '),
      content,
      tokenCount: Math.round(content.length / 4),
      vector: unitVector(rand, index.dimensions),
    });
    if (batch.length === 1000) {
      await index.upsertChunks(batch);
      batch = [];
    }
  }
  await index.upsertChunks(batch);
  return { tenants };
}

/**
 * The chat benchmark's index: every corpus file extracted and chunked as the indexer does
 * (~260 chunks) for QUERY_TENANT, plus the first `sharedChunks` chunks of the first file again
 * as a `_shared` document, each document one upsert like the indexer's. Vectors are synthetic
 * unit vectors from `rand`.
 */
export async function buildCorpusIndex(index: SearchIndex, rand: () => number, sharedChunks = 8): Promise<number> {
  const extractor = new LocalTextExtractor();
  let count = 0;
  const files = corpusFiles();
  for (const [n, f] of files.entries()) {
    const { text, format } = await extractor.extract(f.bytes, 'text/markdown');
    const tenants = n === 0 ? [QUERY_TENANT, SHARED_TENANT] : [QUERY_TENANT];
    for (const tenantId of tenants) {
      const documentId = tenantId === SHARED_TENANT ? `shared-${f.name}` : f.name;
      const chunks = chunkDocument({ documentId, version: 1, text }, countTokens, { format });
      const indexed = (tenantId === SHARED_TENANT ? chunks.slice(0, sharedChunks) : chunks).map((c) =>
        toIndexedChunk(c, { tenantId, documentName: f.name, tier: 'kb', etag: '0x8DC' }, unitVector(rand, index.dimensions)),
      );
      // One upsert per document, as the indexer writes them.
      await index.upsertChunks(indexed);
      count += indexed.length;
    }
  }
  return count;
}
