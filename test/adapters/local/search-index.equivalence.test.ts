/**
 * LocalSearchIndex's query path against the one it replaced (commit 33a3c58): the keyword
 * query joined every FTS match to its `chunks` row to re-check the tenant and the exclusions,
 * and every statement was prepared per call. The reference below is that path, kept
 * verbatim in its SQL, run over its own read-only connection to the same file. On randomized
 * indexes (tenants that differ only by case or prefix, shared documents, duplicated texts
 * and vectors so that BM25 scores and distances tie, replaced and deleted chunks) both must
 * return the same hits in the same order with the same scores.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import * as sqliteVec from 'sqlite-vec';
import { afterAll, describe, expect, it } from 'vitest';
import { checkSearchQuery } from '../../../src/adapters/search-spec';
import { hitOf, keywordTerms, LocalSearchIndex, type ChunkRow } from '../../../src/adapters/local/search-index';
import { HYBRID_CANDIDATES, reciprocalRankFusion } from '../../../src/domain/rank-fusion';
import { SHARED_TENANT, type IndexedChunk, type SearchHit, type SearchQuery } from '../../../src/ports/search-index';
import { prng } from '../../../bench/lib/prng';
import { tempDir } from '../../support/temp-dir';

const DIMS = 8;

/** The previous query path of LocalSearchIndex.search, over its own connection. */
function referenceSearch(db: Database.Database, query: SearchQuery): SearchHit[] {
  const tenantToken = (tenantId: string) => `t${Buffer.from(tenantId, 'utf8').toString('hex')}0`;
  const { tenants, excluded } = checkSearchQuery(query, DIMS);
  if (tenants.length === 0) return [];
  const lists: number[][] = [];
  const terms = keywordTerms(query.text);
  if (terms.length) {
    const match = `tenant_tok:(${tenants.map(tenantToken).join(' OR ')}) AND {content heading_path document_name}:(${terms.map((t) => `"${t}"`).join(' OR ')})`;
    const sql = `SELECT c.rowid AS rid FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid
      WHERE chunks_fts MATCH ? AND c.tenant_id IN (${tenants.map(() => '?').join(',')})
      ${excluded.length ? `AND c.document_id NOT IN (${excluded.map(() => '?').join(',')})` : ''}
      ORDER BY bm25(chunks_fts, 1.0, 2.0, 1.5, 0.0), c.rowid LIMIT ${HYBRID_CANDIDATES}`;
    lists.push((db.prepare(sql).all(match, ...tenants, ...excluded) as { rid: number }[]).map((r) => r.rid));
  }
  if (query.vector) {
    const rows = (
      db
        .prepare(
          `SELECT chunk_rowid AS rid, distance FROM chunks_vec
          WHERE embedding MATCH ? AND k = ${HYBRID_CANDIDATES} AND tenant_id IN (${tenants.map(() => '?').join(',')})
          ${excluded.map(() => 'AND document_id != ?').join(' ')}`,
        )
        .all(query.vector, ...tenants, ...excluded) as { rid: number; distance: number }[]
    ).map((r) => ({ rid: Number(r.rid), distance: r.distance }));
    rows.sort((x, y) => x.distance - y.distance || x.rid - y.rid);
    lists.push(rows.slice(0, HYBRID_CANDIDATES).map((r) => r.rid));
  }
  const fused = reciprocalRankFusion(lists).slice(0, query.top);
  if (fused.length === 0) return [];
  const rows = db
    .prepare(
      `SELECT rowid, id, document_id, document_name, heading_path, content, token_count FROM chunks WHERE rowid IN (${fused.map(() => '?').join(',')})`,
    )
    .all(...fused.map((f) => f.id)) as ChunkRow[];
  const byRowid = new Map(rows.map((r) => [r.rowid, r]));
  return fused.flatMap((f) => {
    const r = byRowid.get(f.id);
    return r ? [hitOf(r, f.score)] : [];
  });
}

const TENANTS = ['acme', 'Acme', 'acme-corp', 'é-tenant', SHARED_TENANT];
const WORDS = (
  'failover replica replicas failing region regions cosmos search index latency quota tokens budget ' +
  'retention policy throttling cache ttl partition drill zanzibar merger capacity peak the of and is'
).split(' ');

interface Fixture {
  chunks: IndexedChunk[];
  documents: { tenantId: string; documentId: string }[];
}

/**
 * Chunks over TENANTS ('acme' owns about half, so its vec0 partition is well past the 50
 * candidates), in documents whose ids repeat across tenants. With `vectorTies`, vector
 * components come from {-1, 0, 1} so many vectors are equal; a fifth of the chunks copy an
 * earlier chunk's texts, so their BM25 scores tie.
 */
function fixture(rand: () => number, size: number, vectorTies: boolean): Fixture {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const words = (min: number, max: number) =>
    Array.from({ length: min + Math.floor(rand() * (max - min + 1)) }, () => pick(WORDS)).join(' ');
  const chunks: IndexedChunk[] = [];
  const ordinals = new Map<string, number>();
  for (let i = 0; i < size; i++) {
    const tenantId = rand() < 0.5 ? 'acme' : pick(TENANTS);
    const documentId = `doc-${Math.floor(rand() * 12)}`;
    const key = `${tenantId}\u0000${documentId}`;
    const ordinal = ordinals.get(key) ?? 0;
    ordinals.set(key, ordinal + 1);
    const copy = chunks.length > 0 && rand() < 0.2 ? pick(chunks) : undefined;
    const content = copy?.content ?? words(1, 25);
    chunks.push({
      // Ids stay unique across tenants, as the indexer's are.
      id: `${tenantId}/${documentId}:1:${ordinal}`,
      tenantId,
      documentId,
      documentName: copy?.documentName ?? `${words(1, 2)}.md`,
      version: 1,
      tier: 'kb',
      etag: '0x8DC',
      ordinal,
      headingPath: copy?.headingPath ?? words(0, 4),
      content,
      tokenCount: content.split(' ').length,
      vector: randomVector(rand, vectorTies),
    });
  }
  const documents = [...ordinals.keys()].map((k) => {
    const [tenantId, documentId] = k.split('\u0000') as [string, string];
    return { tenantId, documentId };
  });
  return { chunks, documents };
}

function randomVector(rand: () => number, ties: boolean): Float32Array {
  const v = Float32Array.from({ length: DIMS }, () => (ties ? Math.floor(rand() * 3) - 1 : rand() * 2 - 1));
  if (v.every((x) => x === 0)) v[0] = 1;
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

function randomQuery(rand: () => number, f: Fixture, vectorTies: boolean): SearchQuery {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const tenantIds = Array.from({ length: Math.floor(rand() * 4) }, () => pick([...TENANTS, 'nobody']));
  const text = rand() < 0.15 ? '' : Array.from({ length: 1 + Math.floor(rand() * 5) }, () => pick(WORDS)).join(' ');
  const vector = rand() < 0.2 ? undefined : rand() < 0.3 ? pick(f.chunks).vector : randomVector(rand, vectorTies);
  const excludeDocumentIds =
    rand() < 0.5
      ? []
      : Array.from({ length: 1 + Math.floor(rand() * 4) }, () => (rand() < 0.1 ? 'missing' : pick(f.documents).documentId));
  return {
    tenantIds,
    text,
    ...(vector ? { vector } : {}),
    top: 1 + Math.floor(rand() * 50),
    ...(excludeDocumentIds.length ? { excludeDocumentIds } : {}),
  };
}

/** Upserts the fixture in batches, then replaces and deletes some of it (holes in vec0 chunks, rowid gaps). */
async function load(index: LocalSearchIndex, f: Fixture, rand: () => number): Promise<void> {
  for (let i = 0; i < f.chunks.length; i += 97) await index.upsertChunks(f.chunks.slice(i, i + 97));
  const replaced = f.chunks.filter(() => rand() < 0.1).map((c) => ({ ...c, content: `${c.content} replica`, vector: c.vector }));
  await index.upsertChunks(replaced);
  for (const d of f.documents.filter(() => rand() < 0.08)) await index.deleteDocument(d.tenantId, d.documentId);
}

describe('LocalSearchIndex query path equals the previous one', () => {
  const tmp = tempDir('meridian-search-equiv-');
  afterAll(() => tmp.remove());

  it.each([1, 2, 3])('randomized index and queries, seed %i', async (seed) => {
    const rand = prng(seed);
    const file = path.join(tmp.dir, `equiv-${seed}.sqlite`);
    const index = new LocalSearchIndex({ file, name: 'equiv', dimensions: DIMS });
    const reference = new Database(file, { readonly: true });
    sqliteVec.load(reference);
    try {
      const f = fixture(rand, 600, true);
      await load(index, f, rand);
      let nonEmpty = 0;
      for (let q = 0; q < 400; q++) {
        const query = randomQuery(rand, f, true);
        const expected = referenceSearch(reference, query);
        if (expected.length) nonEmpty++;
        expect(
          await index.search(query),
          JSON.stringify({ seed, q, query: { ...query, vector: [...(query.vector ?? [])] } }),
        ).toEqual(expected);
      }
      // The comparison means something only if most queries found hits.
      expect(nonEmpty).toBeGreaterThan(250);
    } finally {
      reference.close();
      index.close();
    }
  });

  it('a file whose vec0 table predates chunk_size opens and answers as a new file does', async () => {
    // vec0 breaks exact distance ties at the candidate cut by its storage layout, so the two
    // layouts are compared on vectors that do not tie (texts still do).
    const rand = prng(9);
    const f = fixture(rand, 500, false);
    const oldFile = path.join(tmp.dir, 'old-layout.sqlite');
    const pre = new Database(oldFile);
    sqliteVec.load(pre);
    pre.exec(`CREATE VIRTUAL TABLE chunks_vec USING vec0(
        tenant_id TEXT PARTITION KEY,
        chunk_rowid INTEGER PRIMARY KEY,
        embedding FLOAT[${DIMS}] distance_metric=cosine,
        document_id TEXT
      )`);
    pre.close();
    const freshFile = path.join(tmp.dir, 'new-layout.sqlite');
    const old = new LocalSearchIndex({ file: oldFile, name: 'old', dimensions: DIMS });
    const fresh = new LocalSearchIndex({ file: freshFile, name: 'new', dimensions: DIMS });
    try {
      const declaration = (file: string) => {
        const db = new Database(file, { readonly: true });
        try {
          return (db.prepare("SELECT sql FROM sqlite_master WHERE name = 'chunks_vec'").pluck().get() as string).replace(
            /\s+/g,
            ' ',
          );
        } finally {
          db.close();
        }
      };
      expect(declaration(oldFile)).not.toMatch(/chunk_size/);
      expect(declaration(freshFile)).toMatch(/chunk_size=\d+/);
      await load(old, f, prng(10));
      await load(fresh, f, prng(10));
      for (let q = 0; q < 300; q++) {
        const query = randomQuery(rand, f, false);
        expect(await fresh.search(query)).toEqual(await old.search(query));
      }
    } finally {
      old.close();
      fresh.close();
    }
  });
});
