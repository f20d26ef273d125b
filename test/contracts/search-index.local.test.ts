import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { keywordTerms, LocalSearchIndex } from '../../src/adapters/local/search-index';
import { openTempSearchIndex } from '../../bench/lib/search-fixture';
import { chunk, CONTRACT_DIMENSIONS, runSearchIndexContract } from './search-index.contract';

runSearchIndexContract('LocalSearchIndex', async () => {
  const { index, remove } = openTempSearchIndex('meridian-search-', CONTRACT_DIMENSIONS);
  return { index, cleanup: async () => remove() };
});

describe('LocalSearchIndex specifics', () => {
  it('persists across reopen and refuses a file made for other dimensions', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'meridian-search-'));
    try {
      const file = LocalSearchIndex.pathFor(dir, 'eu', 'meridian-westeurope');
      expect(file).toBe(path.join(dir, 'eu', 'search-meridian-westeurope.sqlite'));
      const a = new LocalSearchIndex({ file, name: 'meridian-westeurope', dimensions: CONTRACT_DIMENSIONS });
      await a.upsertChunks([chunk('t1', 'd', 1, 0, 'persistent words')]);
      a.close();
      const b = new LocalSearchIndex({ file, name: 'meridian-westeurope', dimensions: CONTRACT_DIMENSIONS });
      expect((await b.search({ tenantIds: ['t1'], text: 'persistent', top: 1 }))[0]?.chunkId).toBe('d:1:0');
      b.close();
      expect(() => new LocalSearchIndex({ file, name: 'x', dimensions: 8 })).toThrow(/64-dimensional/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stems with porter and treats FTS syntax in queries as words', async () => {
    const index = new LocalSearchIndex({ file: ':memory:', name: 'm', dimensions: CONTRACT_DIMENSIONS });
    await index.upsertChunks([chunk('t', 'd', 1, 0, 'Replicas were failing over repeatedly')]);
    expect(await index.search({ tenantIds: ['t'], text: 'replica fails', top: 3 })).toHaveLength(1);
    expect(await index.search({ tenantIds: ['t'], text: 'NEAR( "failing" OR * AND -:^', top: 3 })).toHaveLength(1);
    index.close();
  });

  it('confines keyword hits by the FTS tenant token alone, even for ids that differ by case, accent or suffix', async () => {
    const index = new LocalSearchIndex({ file: ':memory:', name: 'm', dimensions: CONTRACT_DIMENSIONS });
    const tenants = ['acme', 'Acme', 'acmé', 'acme0', 'acme ', 'ac"me OR x'];
    await index.upsertChunks(tenants.map((t, i) => chunk(t, `d${i}`, 1, 0, 'identical secret words')));
    for (const [i, t] of tenants.entries()) {
      const hits = await index.search({ tenantIds: [t], text: 'secret words', top: 10 });
      expect(hits.map((h) => h.documentId)).toEqual([`d${i}`]);
    }
    index.close();
  });

  it('keywordTerms drops stopwords and punctuation', () => {
    expect(keywordTerms('How does the Cosmos DB fail-over work, in EU?')).toEqual(['cosmos', 'db', 'fail', 'over', 'work', 'eu']);
  });
});
