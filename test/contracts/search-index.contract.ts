/**
 * The SearchIndex contract: LocalSearchIndex (always) and AzureSearchIndex (against a
 * stateful local fake of the Azure AI Search REST API) run these same cases.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isAppError } from '../../src/domain/errors';
import { MAX_EXCLUDED_DOCUMENTS, SHARED_TENANT, type IndexedChunk, type SearchIndex } from '../../src/ports/search-index';

export const CONTRACT_DIMENSIONS = 64;

export interface SearchIndexHarness {
  index: SearchIndex;
  cleanup(): Promise<void>;
}

/** A deterministic bag-of-words embedding: words hash into buckets, normalised. Similar texts → similar vectors. */
export function wordVector(text: string, dims = CONTRACT_DIMENSIONS): Float32Array {
  const v = new Float32Array(dims);
  for (const w of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
    let h = 2166136261;
    for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w.charCodeAt(i), 16777619);
    v[(h >>> 0) % dims] = (v[(h >>> 0) % dims] as number) + 1;
  }
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => x / norm);
}

export function chunk(
  tenantId: string,
  documentId: string,
  version: number,
  ordinal: number,
  content: string,
  extra: Partial<IndexedChunk> = {},
): IndexedChunk {
  return {
    id: `${documentId}:${version}:${ordinal}`,
    tenantId,
    documentId,
    documentName: `${documentId}.md`,
    version,
    tier: 'kb',
    etag: `0x8DC${version}`,
    ordinal,
    headingPath: 'Runbook > Failover',
    content,
    tokenCount: content.split(' ').length,
    vector: wordVector(content),
    ...extra,
  };
}

const A = 'tenant-acme-corp';
const B = 'tenant-globex-intl';

export function runSearchIndexContract(name: string, createHarness: () => Promise<SearchIndexHarness>): void {
  describe(`SearchIndex contract: ${name}`, () => {
    let h: SearchIndexHarness;
    let index: SearchIndex;
    beforeEach(async () => {
      h = await createHarness();
      index = h.index;
    });
    afterEach(async () => {
      await h.cleanup();
    });

    const ids = async (
      tenantIds: string[],
      text: string,
      vector?: Float32Array,
      extra: { excludeDocumentIds?: string[]; top?: number } = {},
    ): Promise<string[]> =>
      (
        await index.search({
          tenantIds,
          text,
          ...(vector ? { vector } : {}),
          top: extra.top ?? 10,
          ...(extra.excludeDocumentIds ? { excludeDocumentIds: extra.excludeDocumentIds } : {}),
        })
      ).map((x) => x.chunkId);

    it('finds an upserted chunk by keyword and returns its fields', async () => {
      await index.upsertChunks([
        chunk(A, 'doc-1', 1, 0, 'Cosmos DB fails over inside the residency boundary'),
        chunk(A, 'doc-1', 1, 1, 'Quarterly budget review'),
      ]);
      const hits = await index.search({ tenantIds: [A, SHARED_TENANT], text: 'cosmos failover', top: 5 });
      expect(hits[0]).toMatchObject({
        chunkId: 'doc-1:1:0',
        documentId: 'doc-1',
        documentName: 'doc-1.md',
        content: 'Cosmos DB fails over inside the residency boundary',
        headingPath: 'Runbook > Failover',
        tokenCount: 8,
      });
      expect(hits[0]?.score).toBeGreaterThan(0);
    });

    it('never shows a tenant another tenant’s chunk: keyword, vector and hybrid paths', async () => {
      const secret = 'zanzibar merger plan codename';
      await index.upsertChunks([chunk(A, 'doc-a', 1, 0, secret), chunk(B, 'doc-b', 1, 0, 'ordinary text about regions')]);
      const v = wordVector(secret);
      expect(await ids([B, SHARED_TENANT], 'zanzibar merger')).toEqual([]);
      expect(await ids([B, SHARED_TENANT], '', v)).toEqual(['doc-b:1:0']);
      expect(await ids([B], 'zanzibar merger', v)).toEqual(['doc-b:1:0']);
      expect(await ids([A], 'zanzibar merger', v)).toEqual(['doc-a:1:0']);
      expect(await ids([], 'zanzibar', v)).toEqual([]);
    });

    it('keeps tenants apart even when one tenant id is a prefix of another', async () => {
      await index.upsertChunks([
        chunk('acme', 'doc-1', 1, 0, 'prefix isolation check'),
        chunk('acme-corp', 'doc-2', 1, 0, 'prefix isolation check'),
      ]);
      expect(await ids(['acme'], 'prefix isolation', wordVector('prefix isolation check'))).toEqual(['doc-1:1:0']);
      expect(await ids(['acme-corp'], 'prefix isolation', wordVector('prefix isolation check'))).toEqual(['doc-2:1:0']);
    });

    it('shows shared chunks to every tenant that asks for them, and only then', async () => {
      await index.upsertChunks([chunk(SHARED_TENANT, 'policy', 1, 0, 'platform retention policy ninety days')]);
      expect(await ids([A, SHARED_TENANT], 'retention policy')).toEqual(['policy:1:0']);
      expect(await ids([B, SHARED_TENANT], '', wordVector('retention policy'))).toEqual(['policy:1:0']);
      expect(await ids([A], 'retention policy')).toEqual([]);
    });

    it('upsert is idempotent by id and replaces the content', async () => {
      await index.upsertChunks([chunk(A, 'doc-1', 1, 0, 'first wording of alpha')]);
      await index.upsertChunks([chunk(A, 'doc-1', 1, 0, 'second wording of alpha')]);
      await index.upsertChunks([]);
      expect(await index.stats()).toEqual({ documents: 1, chunks: 1 });
      const [hit] = await index.search({ tenantIds: [A], text: 'alpha', top: 5 });
      expect(hit?.content).toBe('second wording of alpha');
      expect(await ids([A], 'first')).toEqual([]);
    });

    it('replacing a version leaves no chunk of the old one after deleteOlderVersions', async () => {
      await index.upsertChunks([0, 1, 2].map((i) => chunk(A, 'doc-1', 1, i, `old version paragraph ${i} obsoleteword`)));
      await index.upsertChunks([0, 1].map((i) => chunk(A, 'doc-1', 2, i, `new version paragraph ${i} freshword`)));
      await index.upsertChunks([chunk(A, 'doc-2', 1, 0, 'another document obsoleteword')]);
      expect(await index.documentVersions(A)).toEqual([
        { tenantId: A, documentId: 'doc-1', version: 2, chunks: 2, olderVersionChunks: 3 },
        { tenantId: A, documentId: 'doc-2', version: 1, chunks: 1, olderVersionChunks: 0 },
      ]);
      expect(await index.deleteOlderVersions(A, 'doc-1', 2)).toBe(3);
      expect(await ids([A], 'obsoleteword')).toEqual(['doc-2:1:0']);
      expect((await ids([A], 'freshword')).sort()).toEqual(['doc-1:2:0', 'doc-1:2:1']);
      expect(await index.documentVersions(A)).toEqual([
        { tenantId: A, documentId: 'doc-1', version: 2, chunks: 2, olderVersionChunks: 0 },
        { tenantId: A, documentId: 'doc-2', version: 1, chunks: 1, olderVersionChunks: 0 },
      ]);
      expect(await index.deleteOlderVersions(A, 'doc-1', 2)).toBe(0);
    });

    it('deleteDocument removes every chunk of that document of that tenant only', async () => {
      await index.upsertChunks([
        ...[0, 1, 2].map((i) => chunk(A, 'doc-1', 1, i, `removable chunk ${i}`)),
        chunk(A, 'doc-1', 2, 0, 'removable newer chunk'),
        chunk(B, 'doc-1b', 1, 0, 'removable chunk of tenant b'),
      ]);
      expect(await index.deleteDocument(A, 'doc-1')).toBe(4);
      expect(await ids([A], 'removable', wordVector('removable chunk'))).toEqual([]);
      expect(await ids([B], 'removable')).toEqual(['doc-1b:1:0']);
      expect(await index.deleteDocument(A, 'doc-1')).toBe(0);
      expect(await index.stats()).toEqual({ documents: 1, chunks: 1 });
      expect(await index.documentVersions()).toEqual([
        { tenantId: B, documentId: 'doc-1b', version: 1, chunks: 1, olderVersionChunks: 0 },
      ]);
    });

    it('ranks an exact keyword match first in a hybrid query (RRF)', async () => {
      const texts = [
        'Regional failover for the database keeps the replicas in sync across zones',
        'The failover runbook lists every region and its database replicas',
        'Throttling of the embeddings deployment returns HTTP 429 with Retry-After',
        'Cost review of the regional database replicas and failover drills',
      ];
      await index.upsertChunks(texts.map((t, i) => chunk(A, `doc-${i}`, 1, 0, t)));
      const query = 'HTTP 429 Retry-After throttling';
      const hits = await index.search({ tenantIds: [A], text: query, vector: wordVector(query), top: 4 });
      expect(hits[0]?.chunkId).toBe('doc-2:1:0');
      for (let i = 1; i < hits.length; i++) expect(hits[i - 1]?.score ?? 0).toBeGreaterThanOrEqual(hits[i]?.score ?? 0);
    });

    it('orders a vector-only query by similarity', async () => {
      await index.upsertChunks([
        chunk(A, 'far', 1, 0, 'marketing budget trade shows print advertising'),
        chunk(A, 'near', 1, 0, 'search index replicas failover region'),
        chunk(A, 'mid', 1, 0, 'search index pricing tiers'),
      ]);
      expect(await ids([A], '', wordVector('search index replicas failover region'))).toEqual(['near:1:0', 'mid:1:0', 'far:1:0']);
    });

    it('excludeDocumentIds leaves those documents out of keyword, vector and hybrid results', async () => {
      await index.upsertChunks([
        chunk(A, 'keep', 1, 0, 'deletion pending example'),
        chunk(A, 'gone', 1, 0, 'deletion pending example'),
        chunk(SHARED_TENANT, 'shared-gone', 1, 0, 'deletion pending example'),
      ]);
      const v = wordVector('deletion pending example');
      for (const [text, vector] of [
        ['deletion pending', undefined],
        ['', v],
        ['deletion pending', v],
      ] as const) {
        expect(await ids([A, SHARED_TENANT], text, vector, { excludeDocumentIds: ['gone', 'shared-gone'] })).toEqual([
          'keep:1:0',
        ]);
      }
      expect((await ids([A, SHARED_TENANT], 'deletion pending', v)).sort()).toEqual(['gone:1:0', 'keep:1:0', 'shared-gone:1:0']);
    });

    it('returns at most top hits', async () => {
      await index.upsertChunks(Array.from({ length: 12 }, (_, i) => chunk(A, `d${i}`, 1, 0, `repeated topic number ${i}`)));
      expect(await ids([A], 'repeated topic', wordVector('repeated topic'), { top: 3 })).toHaveLength(3);
    });

    it('refuses vectors of the wrong length and top outside 1–50', async () => {
      const bad = chunk(A, 'x', 1, 0, 'x', { vector: new Float32Array(3) });
      await expect(index.upsertChunks([bad])).rejects.toSatisfy((e: unknown) => isAppError(e, 'validation_failed'));
      await expect(index.search({ tenantIds: [A], text: 'x', vector: new Float32Array(3), top: 5 })).rejects.toSatisfy(
        (e: unknown) => isAppError(e, 'validation_failed'),
      );
      await expect(index.search({ tenantIds: [A], text: 'x', top: 0 })).rejects.toSatisfy((e: unknown) =>
        isAppError(e, 'validation_failed'),
      );
      const tooMany = Array.from({ length: MAX_EXCLUDED_DOCUMENTS + 1 }, (_, i) => `doc-${i}`);
      await expect(index.search({ tenantIds: [A], text: 'x', top: 5, excludeDocumentIds: tooMany })).rejects.toSatisfy(
        (e: unknown) => isAppError(e, 'validation_failed'),
      );
      expect(await index.stats()).toEqual({ documents: 0, chunks: 0 });
    });

    it('answers check and reports an empty index', async () => {
      await index.check();
      expect(await index.documentVersions()).toEqual([]);
      expect(await index.search({ tenantIds: [A], text: 'anything', top: 5 })).toEqual([]);
      expect(index.dimensions).toBe(CONTRACT_DIMENSIONS);
    });
  });
}
