/**
 * `EmbeddingCache` in one SQLite file per boundary (e.g. `<data>/<boundary>/embeddings.sqlite`),
 * shared by the boundary's search indexes. Vectors are stored as little-endian float32 blobs.
 *
 * Bounded: past `maxEntries` the oldest-stored tenth is evicted (first in, first out — a hit
 * does not refresh its entry, which would turn every cached read into a write). An evicted
 * text is simply embedded again the next time it is indexed.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AppError } from '../../domain/errors';
import type { EmbeddingCache } from '../../ports/embedder';

const MAX_PARAMS = 500;

/** ~400 MiB of 512-dimensional vectors (2 KiB each); a few hundred thousand chunks. */
export const DEFAULT_MAX_EMBEDDING_ENTRIES = 200_000;

export class SqliteEmbeddingCache implements EmbeddingCache {
  readonly maxEntries: number;
  private readonly db: Database.Database;
  private readonly insert: Database.Statement<[string, number, Buffer, number]>;
  /** Entries as this object last knew them (another object on the same file may add more). */
  private entries: number;
  /** Insertion order: the eviction key (a counter, so entries stored in one call stay ordered). */
  private nextAdded: number;

  /** Opens (creating if needed) the cache at `file`; `:memory:` for a private in-memory cache. */
  constructor(
    readonly file: string,
    options: { maxEntries?: number } = {},
  ) {
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_EMBEDDING_ENTRIES;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) throw new RangeError('maxEntries must be a positive integer');
    if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 10000');
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, dims INTEGER NOT NULL, vector BLOB NOT NULL, added INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID',
    );
    // Files written before the cache was bounded lack `added`: their entries count as oldest.
    const columns = this.db.prepare('PRAGMA table_info(embeddings)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'added'))
      this.db.exec('ALTER TABLE embeddings ADD COLUMN added INTEGER NOT NULL DEFAULT 0');
    this.db.exec('CREATE INDEX IF NOT EXISTS embeddings_by_added ON embeddings (added)');
    this.insert = this.db.prepare('INSERT OR IGNORE INTO embeddings (key, dims, vector, added) VALUES (?, ?, ?, ?)');
    this.entries = this.size();
    const last = this.db.prepare('SELECT max(added) AS a FROM embeddings').get() as { a: number | null };
    this.nextAdded = (last.a ?? 0) + 1;
  }

  async getMany(keys: readonly string[]): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    try {
      for (let i = 0; i < keys.length; i += MAX_PARAMS) {
        const slice = keys.slice(i, i + MAX_PARAMS);
        const rows = this.db
          .prepare(`SELECT key, vector FROM embeddings WHERE key IN (${slice.map(() => '?').join(',')})`)
          .all(...slice) as { key: string; vector: Buffer }[];
        for (const r of rows) {
          // Copy out of SQLite's buffer into an aligned Float32Array.
          const copy = new Uint8Array(r.vector);
          out.set(r.key, new Float32Array(copy.buffer, 0, copy.byteLength / 4));
        }
      }
    } catch (err) {
      throw new AppError('unavailable', 'the embedding cache cannot be read', { cause: err });
    }
    return out;
  }

  async putMany(entries: readonly { key: string; vector: Float32Array }[]): Promise<void> {
    try {
      this.db.transaction(() => {
        for (const e of entries) {
          const vector = Buffer.from(e.vector.buffer, e.vector.byteOffset, e.vector.byteLength);
          this.entries += this.insert.run(e.key, e.vector.length, vector, this.nextAdded++).changes;
        }
        if (this.entries > this.maxEntries) this.evict();
      })();
    } catch (err) {
      throw new AppError('unavailable', 'the embedding cache cannot be written', { cause: err });
    }
  }

  /** Back to 90 % of the bound, oldest first (inside the caller's transaction). */
  private evict(): void {
    this.entries = this.size();
    const excess = this.entries - Math.floor(this.maxEntries * 0.9);
    if (excess <= 0 || this.entries <= this.maxEntries) return;
    this.entries -= this.db
      .prepare('DELETE FROM embeddings WHERE key IN (SELECT key FROM embeddings ORDER BY added LIMIT ?)')
      .run(excess).changes;
  }

  /** Number of cached vectors. */
  size(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM embeddings').get() as { n: number }).n;
  }

  close(): void {
    this.db.close();
  }
}
