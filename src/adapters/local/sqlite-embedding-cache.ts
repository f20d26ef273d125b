/**
 * `EmbeddingCache` in one SQLite file per boundary (e.g. `<data>/<boundary>/embeddings.sqlite`),
 * shared by the boundary's search indexes. Vectors are stored as little-endian float32 blobs.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AppError } from '../../domain/errors';
import type { EmbeddingCache } from '../../ports/embedder';

const MAX_PARAMS = 500;

export class SqliteEmbeddingCache implements EmbeddingCache {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement<[string, number, Buffer]>;

  /** Opens (creating if needed) the cache at `file`; `:memory:` for a private in-memory cache. */
  constructor(readonly file: string) {
    if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 10000');
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, dims INTEGER NOT NULL, vector BLOB NOT NULL) WITHOUT ROWID',
    );
    this.insert = this.db.prepare('INSERT OR IGNORE INTO embeddings (key, dims, vector) VALUES (?, ?, ?)');
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
        for (const e of entries)
          this.insert.run(e.key, e.vector.length, Buffer.from(e.vector.buffer, e.vector.byteOffset, e.vector.byteLength));
      })();
    } catch (err) {
      throw new AppError('unavailable', 'the embedding cache cannot be written', { cause: err });
    }
  }

  /** Number of cached vectors. */
  size(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM embeddings').get() as { n: number }).n;
  }

  close(): void {
    this.db.close();
  }
}
