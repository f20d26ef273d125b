/**
 * `SearchIndex` in one SQLite file per index (`<data>/<boundary>/search-<index>.sqlite`):
 * FTS5 (porter + unicode61) for BM25 keyword ranking, sqlite-vec `vec0` (cosine) for
 * vectors, fused with Reciprocal Rank Fusion like an Azure AI Search hybrid query.
 *
 * Tenant confinement is part of both queries, never a filter on their results:
 * - keyword: each row's FTS document holds an opaque tenant token in a column of its own
 *   (`tenant_tok`, weight 0 in bm25), and the MATCH expression is
 *   `tenant_tok:(<tokens of the asked tenants>) AND {content heading_path document_name}:(<terms>)`,
 *   so FTS5 itself intersects with the tenant's rows before ranking (the token is the hex of
 *   the tenant id, so it matches that tenant exactly: no second check on the `chunks` row);
 * - vector: `tenant_id` is the vec0 table's partition key and the KNN query constrains it
 *   (`tenant_id IN (...)`), so only those partitions are scanned. vec0 returns k rows per
 *   partition for an IN constraint; they are merged here.
 * Excluded documents are constraints of the same queries (`document_id != ?` on the vec0
 * metadata column; for FTS, `rowid NOT IN` the rows of those documents, found once per query
 * in the `chunks_by_document` index rather than by joining every match to its row).
 *
 * A search is a few cached statements (keyed by the number of tenants, exclusions and hits)
 * over a memory-mapped file; see the constants below for why each matters.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import * as sqliteVec from 'sqlite-vec';
import { AppError } from '../../domain/errors';
import { checkSearchQuery } from '../search-spec';
import { HYBRID_CANDIDATES, reciprocalRankFusion } from '../../domain/rank-fusion';
import type { IndexedChunk, IndexedDocument, SearchHit, SearchIndex, SearchQuery } from '../../ports/search-index';

/** BM25 column weights: content, heading path, document name, tenant token (never ranks). */
const BM25_WEIGHTS = '1.0, 2.0, 1.5, 0.0';
const MAX_TERMS = 32;

/**
 * Vectors per vec0 storage chunk in files created from now on (sqlite-vec's default is 1024).
 * A KNN query reads every chunk of its partitions whole and selects k from each in
 * O(k × chunk_size), so a small partition (a tenant's few hundred chunks, `_shared`) in a
 * 1024-slot chunk costs as much as a full one: 256 cuts a 260-chunk search's vector query
 * ~2× and costs a 10,000-chunk partition ~6% (bench/RESULTS-search.md). Files made with
 * another size keep theirs (vec0 records it), so they open and answer as before.
 */
const VEC_CHUNK_SIZE = 256;

/**
 * Bytes of the file SQLite reads through a memory map instead of read(2). vec0 vector chunks
 * are overflow pages, which SQLite reads straight from the file bypassing its page cache,
 * one pread per 4 KiB page per query (~1,000 for a 2-partition KNN of 1024-slot chunks); the
 * map turns those into memory copies. Only reads use it; writes still go through the WAL.
 */
const MMAP_BYTES = 1 << 30;

/**
 * FTS5 pages merged at the end of every write that changed rows ('merge' command, negative:
 * across levels). Each write adds an FTS5 segment, and a query seeks every term in every
 * segment (bm25 twice), so the corpus written one document at a time searched ~2× slower than
 * the same index in one segment. 64 pages merges an index of a few hundred chunks whole in one
 * write and bounds the work on a large one to a few ms per write. The price is write CPU
 * (~+0.13 ms per upserted chunk while an index grows to a few thousand chunks, next to
 * embedding's ~100 ms locally); merging never changes what a query returns.
 */
const FTS_MERGE_PAGES = 64;

/** Frequent English words that only slow an OR query down and add nothing to BM25. */
const STOPWORDS = new Set(
  'a an and are as at be been but by can do does for from had has have how i if in into is it its of on or our so than that the their them then there these they this to was we were what when where which who why will with you your'.split(
    ' ',
  ),
);

/** The query words of a natural-language text: lower-cased letters/digits runs, no stopwords, de-duplicated. */
export function keywordTerms(text: string): string[] {
  const seen = new Set<string>();
  for (const m of text.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    const w = m[0];
    if (!STOPWORDS.has(w)) seen.add(w);
    if (seen.size >= MAX_TERMS) break;
  }
  return [...seen];
}

/** An FTS token that stands for exactly one tenant: hex keeps it one token; the final digit keeps porter off it. */
function tenantToken(tenantId: string): string {
  return `t${Buffer.from(tenantId, 'utf8').toString('hex')}0`;
}

function placeholders(n: number): string {
  return Array.from({ length: n }, () => '?').join(',');
}

export interface LocalSearchIndexOptions {
  /** The SQLite file (created with its folder); `:memory:` for tests. */
  file: string;
  /** Index name (`meridian-<region>`). */
  name: string;
  /** Vector length; an existing file made for another length is refused. */
  dimensions: number;
}

/** The columns a hit is made of (`SELECT rowid, id, document_id, … FROM chunks`). */
export interface ChunkRow {
  rowid: number;
  id: string;
  document_id: string;
  document_name: string;
  heading_path: string;
  content: string;
  token_count: number;
}

export function hitOf(r: ChunkRow, score: number): SearchHit {
  return {
    chunkId: r.id,
    documentId: r.document_id,
    documentName: r.document_name,
    content: r.content,
    headingPath: r.heading_path,
    tokenCount: r.token_count,
    score,
  };
}

export class LocalSearchIndex implements SearchIndex {
  readonly name: string;
  readonly dimensions: number;
  private readonly db: Database.Database;
  /** Prepared statements by query shape (see statement()). */
  private readonly statements = new Map<string, Database.Statement>();
  private readonly mergeFts: Database.Statement;

  /** `<dataDir>/<boundary>/search-<index>.sqlite`. */
  static pathFor(dataDir: string, boundary: string, index: string): string {
    return path.join(dataDir, boundary, `search-${index}.sqlite`);
  }

  constructor(options: LocalSearchIndexOptions) {
    this.name = options.name;
    this.dimensions = options.dimensions;
    if (!Number.isInteger(options.dimensions) || options.dimensions < 1)
      throw new RangeError('dimensions must be a positive integer');
    if (options.file !== ':memory:') mkdirSync(path.dirname(options.file), { recursive: true });
    this.db = new Database(options.file);
    sqliteVec.load(this.db);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 10000');
    this.db.pragma(`mmap_size = ${MMAP_BYTES}`);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS chunks (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        tenant_id TEXT NOT NULL,
        tenant_tok TEXT NOT NULL,
        document_id TEXT NOT NULL,
        document_name TEXT NOT NULL,
        version INTEGER NOT NULL,
        tier TEXT NOT NULL,
        etag TEXT NOT NULL,
        ordinal INTEGER NOT NULL,
        heading_path TEXT NOT NULL,
        content TEXT NOT NULL,
        token_count INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks (tenant_id, document_id, version);
      CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
        content, heading_path, document_name, tenant_tok,
        content='chunks', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2'
      );
      CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts (rowid, content, heading_path, document_name, tenant_tok)
        VALUES (new.rowid, new.content, new.heading_path, new.document_name, new.tenant_tok);
      END;
      CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts (chunks_fts, rowid, content, heading_path, document_name, tenant_tok)
        VALUES ('delete', old.rowid, old.content, old.heading_path, old.document_name, old.tenant_tok);
      END;
      CREATE TRIGGER IF NOT EXISTS chunks_au AFTER UPDATE ON chunks BEGIN
        INSERT INTO chunks_fts (chunks_fts, rowid, content, heading_path, document_name, tenant_tok)
        VALUES ('delete', old.rowid, old.content, old.heading_path, old.document_name, old.tenant_tok);
        INSERT INTO chunks_fts (rowid, content, heading_path, document_name, tenant_tok)
        VALUES (new.rowid, new.content, new.heading_path, new.document_name, new.tenant_tok);
      END;
      CREATE VIRTUAL TABLE IF NOT EXISTS chunks_vec USING vec0(
        tenant_id TEXT PARTITION KEY,
        chunk_rowid INTEGER PRIMARY KEY,
        embedding FLOAT[${options.dimensions}] distance_metric=cosine,
        document_id TEXT,
        chunk_size=${VEC_CHUNK_SIZE}
      );
    `);
    this.db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run('dimensions', String(options.dimensions));
    const stored = (this.db.prepare("SELECT value FROM meta WHERE key = 'dimensions'").get() as { value: string }).value;
    if (Number(stored) !== options.dimensions) {
      this.db.close();
      throw new AppError(
        'internal',
        `search index ${options.file} holds ${stored}-dimensional vectors, not ${options.dimensions}: delete it to rebuild`,
      );
    }
    this.mergeFts = this.db.prepare(`INSERT INTO chunks_fts (chunks_fts, rank) VALUES ('merge', ${-FTS_MERGE_PAGES})`);
    // A file written before merging existed may hold many segments: start on them now.
    this.mergeFts.run();
  }

  async upsertChunks(chunks: readonly IndexedChunk[]): Promise<void> {
    for (const c of chunks) this.validate(c);
    const find = this.db.prepare('SELECT rowid FROM chunks WHERE id = ?');
    const insert = this.db
      .prepare(`INSERT INTO chunks (id, tenant_id, tenant_tok, document_id, document_name, version, tier, etag, ordinal, heading_path, content, token_count)
      VALUES (@id, @tenantId, @tenantTok, @documentId, @documentName, @version, @tier, @etag, @ordinal, @headingPath, @content, @tokenCount)`);
    const update = this.db
      .prepare(`UPDATE chunks SET tenant_id = @tenantId, tenant_tok = @tenantTok, document_id = @documentId, document_name = @documentName,
      version = @version, tier = @tier, etag = @etag, ordinal = @ordinal, heading_path = @headingPath, content = @content, token_count = @tokenCount WHERE rowid = @rowid`);
    const deleteVec = this.db.prepare('DELETE FROM chunks_vec WHERE chunk_rowid = ?');
    const insertVec = this.db.prepare(
      'INSERT INTO chunks_vec (chunk_rowid, tenant_id, embedding, document_id) VALUES (?, ?, ?, ?)',
    );
    this.write(() => {
      for (const c of chunks) {
        const row = {
          id: c.id,
          tenantId: c.tenantId,
          tenantTok: tenantToken(c.tenantId),
          documentId: c.documentId,
          documentName: c.documentName,
          version: c.version,
          tier: c.tier,
          etag: c.etag,
          ordinal: c.ordinal,
          headingPath: c.headingPath,
          content: c.content,
          tokenCount: c.tokenCount,
        };
        const existing = find.get(c.id) as { rowid: number } | undefined;
        let rowid: bigint;
        if (existing) {
          update.run({ ...row, rowid: existing.rowid });
          deleteVec.run(BigInt(existing.rowid));
          rowid = BigInt(existing.rowid);
        } else {
          rowid = BigInt(insert.run(row).lastInsertRowid);
        }
        insertVec.run(rowid, c.tenantId, c.vector, c.documentId);
      }
      if (chunks.length) this.mergeFts.run();
    });
  }

  async deleteDocument(tenantId: string, documentId: string): Promise<number> {
    return this.deleteWhere('tenant_id = ? AND document_id = ?', [tenantId, documentId]);
  }

  async deleteOlderVersions(tenantId: string, documentId: string, keepVersion: number): Promise<number> {
    return this.deleteWhere('tenant_id = ? AND document_id = ? AND version < ?', [tenantId, documentId, keepVersion]);
  }

  async search(query: SearchQuery): Promise<SearchHit[]> {
    const { tenants, excluded } = checkSearchQuery(query, this.dimensions);
    if (tenants.length === 0) return [];
    try {
      const lists: number[][] = [];
      const terms = keywordTerms(query.text);
      if (terms.length) lists.push(this.keywordCandidates(tenants, terms, excluded));
      if (query.vector) lists.push(this.vectorCandidates(tenants, query.vector, excluded));
      const fused = reciprocalRankFusion(lists).slice(0, query.top);
      if (fused.length === 0) return [];
      const rows = this.statement(
        `rows:${fused.length}`,
        () =>
          `SELECT rowid, id, document_id, document_name, heading_path, content, token_count FROM chunks WHERE rowid IN (${placeholders(fused.length)})`,
      ).all(...fused.map((f) => f.id)) as ChunkRow[];
      const byRowid = new Map(rows.map((r) => [r.rowid, r]));
      const hits: SearchHit[] = [];
      for (const f of fused) {
        const r = byRowid.get(f.id);
        if (r) hits.push(hitOf(r, f.score));
      }
      return hits;
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw new AppError('unavailable', `search index ${this.name} cannot be queried`, { cause: err });
    }
  }

  private keywordCandidates(tenants: string[], terms: string[], excluded: string[]): number[] {
    const match = `tenant_tok:(${tenants.map(tenantToken).join(' OR ')}) AND {content heading_path document_name}:(${terms.map((t) => `"${t}"`).join(' OR ')})`;
    if (excluded.length === 0) {
      return this.statement(
        'keyword',
        () => `SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?
          ORDER BY bm25(chunks_fts, ${BM25_WEIGHTS}), rowid LIMIT ${HYBRID_CANDIDATES}`,
        true,
      ).all(match) as number[];
    }
    return this.statement(
      `keyword:${tenants.length}:${excluded.length}`,
      () => `SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?
        AND rowid NOT IN (SELECT rowid FROM chunks WHERE tenant_id IN (${placeholders(tenants.length)}) AND document_id IN (${placeholders(excluded.length)}))
        ORDER BY bm25(chunks_fts, ${BM25_WEIGHTS}), rowid LIMIT ${HYBRID_CANDIDATES}`,
      true,
    ).all(match, ...tenants, ...excluded) as number[];
  }

  private vectorCandidates(tenants: string[], vector: Float32Array, excluded: string[]): number[] {
    const stmt = this.statement(
      `knn:${tenants.length}:${excluded.length}`,
      () => `SELECT chunk_rowid AS rid, distance FROM chunks_vec
          WHERE embedding MATCH ? AND k = ${HYBRID_CANDIDATES} AND tenant_id IN (${placeholders(tenants.length)})
          ${excluded.map(() => 'AND document_id != ?').join(' ')}`,
    );
    // vec0 answers k rows per partition for an IN constraint, grouped by partition; merged here
    // (it refuses any outer ORDER BY or LIMIT that SQLite would push down next to "k =").
    const rows = stmt.all(vector, ...tenants, ...excluded) as { rid: number | bigint; distance: number }[];
    const candidates = rows.map((r) => ({ rid: Number(r.rid), distance: r.distance }));
    candidates.sort((x, y) => x.distance - y.distance || x.rid - y.rid);
    if (candidates.length > HYBRID_CANDIDATES) candidates.length = HYBRID_CANDIDATES;
    return candidates.map((r) => r.rid);
  }

  /**
   * The prepared statement of one query shape, prepared on first use. Shapes differ only by
   * placeholder counts (tenants: two in practice; exclusions ≤ MAX_EXCLUDED_DOCUMENTS; hits
   * ≤ 50), so the cache stays small, and preparing one costs about as much as running it.
   */
  private statement(key: string, sql: () => string, pluck = false): Database.Statement {
    let stmt = this.statements.get(key);
    if (!stmt) {
      stmt = this.db.prepare(sql());
      if (pluck) stmt.pluck();
      this.statements.set(key, stmt);
    }
    return stmt;
  }

  async documentVersions(tenantId?: string): Promise<IndexedDocument[]> {
    const rows = this.read(
      () =>
        this.db
          .prepare(
            `SELECT tenant_id, document_id, version, count(*) AS n FROM chunks ${tenantId === undefined ? '' : 'WHERE tenant_id = ?'}
             GROUP BY tenant_id, document_id, version ORDER BY tenant_id, document_id, version DESC`,
          )
          .all(...(tenantId === undefined ? [] : [tenantId])) as {
          tenant_id: string;
          document_id: string;
          version: number;
          n: number;
        }[],
    );
    const out: IndexedDocument[] = [];
    for (const r of rows) {
      const last = out[out.length - 1];
      if (last && last.tenantId === r.tenant_id && last.documentId === r.document_id) last.olderVersionChunks += r.n;
      else out.push({ tenantId: r.tenant_id, documentId: r.document_id, version: r.version, chunks: r.n, olderVersionChunks: 0 });
    }
    return out;
  }

  async stats(): Promise<{ documents: number; chunks: number }> {
    return this.read(() => {
      const r = this.db
        .prepare('SELECT count(*) AS chunks, count(DISTINCT tenant_id || char(0) || document_id) AS documents FROM chunks')
        .get() as { chunks: number; documents: number };
      return { documents: r.documents, chunks: r.chunks };
    });
  }

  async check(): Promise<string> {
    return this.read(() => {
      const v = this.db.prepare('SELECT vec_version() AS v').get() as { v: string };
      return `sqlite-vec ${v.v}`;
    });
  }

  close(): void {
    this.db.close();
  }

  private validate(c: IndexedChunk): void {
    if (!(c.vector instanceof Float32Array) || c.vector.length !== this.dimensions) {
      throw new AppError('validation_failed', `chunk ${c.id}: vector must be a Float32Array of ${this.dimensions} dimensions`);
    }
    if (!c.id || !c.tenantId || !c.documentId || !Number.isInteger(c.version) || !Number.isInteger(c.ordinal)) {
      throw new AppError(
        'validation_failed',
        `chunk ${c.id || '(no id)'}: id, tenantId, documentId, integer version and ordinal are required`,
      );
    }
  }

  private deleteWhere(where: string, params: (string | number)[]): number {
    return this.write(() => {
      const rowids = (this.db.prepare(`SELECT rowid FROM chunks WHERE ${where}`).all(...params) as { rowid: number }[]).map(
        (r) => r.rowid,
      );
      const delVec = this.db.prepare('DELETE FROM chunks_vec WHERE chunk_rowid = ?');
      const delRow = this.db.prepare('DELETE FROM chunks WHERE rowid = ?');
      for (const id of rowids) {
        delVec.run(BigInt(id));
        delRow.run(id);
      }
      if (rowids.length) this.mergeFts.run();
      return rowids.length;
    });
  }

  private write<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw new AppError('unavailable', `search index ${this.name} cannot be written`, { cause: err });
    }
  }

  private read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new AppError('unavailable', `search index ${this.name} cannot be read`, { cause: err });
    }
  }
}
