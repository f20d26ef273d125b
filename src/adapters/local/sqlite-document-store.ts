/**
 * The local Cosmos DB: a DocumentStore on better-sqlite3 with TTL and a change feed.
 *
 * One database file per boundary (e.g. `<data>/us/documents.sqlite`) holds every container.
 * WAL mode lets the change-feed processor (or another process) read while a writer writes;
 * `synchronous=NORMAL` is the durability of WAL mode that survives a process crash (it can
 * lose the last transactions on power loss, acceptable for a local stand-in).
 *
 * Change feed: one sequence per database file. Every write (create, upsert, replace, patch,
 * batch operation) takes the next number and stores it on the item's row, so a container's
 * feed is "rows of this container with seq > continuation, in seq order" — each item appears
 * once, at its latest version, and deletes disappear with their row (Cosmos latest-version
 * mode). SQLite serializes writers, so numbers become visible in order, without gaps that a
 * reader could skip. A container's `_lsn`s increase but are not contiguous.
 *
 * Group commit: writes are queued and committed together at the end of the event-loop turn,
 * one transaction for all of them, each op inside its own savepoint (a failing op is rolled
 * back alone and rejects alone; the others commit). A write's promise settles only after the
 * commit, so an awaited write is durable and visible as before; under load the writes of
 * concurrent requests share one commit instead of one commit each.
 *
 * TTL (as Cosmos): a container with `ttl` off ignores item `ttl`; with `ttl: -1` only items
 * with their own `ttl` expire; with `ttl: n` items expire n seconds after their last write
 * unless they carry their own `ttl` (-1 = never). Expired rows are invisible at once and
 * deleted by a background purge; neither shows in the change feed.
 */
import type Database from 'better-sqlite3';
// The real one, captured at load: tests that fake the global timers must not stall writes.
import { setImmediate as realSetImmediate } from 'node:timers';
import { openSqlite, perFile, startBackgroundCheckpoints } from './sqlite';
import type { ContainerConfig } from '../../config';
import { AppError, isAppError } from '../../domain/errors';
import type { Clock } from '../../ports/clock';
import type {
  BatchOperation,
  BatchResult,
  Condition,
  DocumentStore,
  Item,
  PartitionKey,
  PatchOperation,
  QueryOptions,
  QueryPage,
  QuerySpec,
  Stored,
  WriteOptions,
} from '../../ports/document-store';
import {
  applyPatch,
  checkBatch,
  checkItem,
  checkPatch,
  checkQuery,
  parsePath,
  partitionKeyProperty,
  project,
  queryFingerprint,
  unwrapToken,
  wrapToken,
} from '../document-spec';

/** Default SQLite settings; `npm start` and the benchmarks use exactly these. */
export const SQLITE_PRAGMAS = { journal_mode: 'WAL', synchronous: 'NORMAL', busy_timeout: 5000 } as const;
/** How often expired items are deleted in the background. */
export const DEFAULT_PURGE_INTERVAL_MS = 60_000;
const PURGE_BATCH = 500;

export interface SqliteDocumentStoreOptions {
  /** The database file; its folder is created. */
  path: string;
  /** Every container of the topology; they are created (or checked) at open. */
  containers: readonly ContainerConfig[];
  /** All time (TTL, `_ts`) comes from here. Default: the system clock. */
  clock?: Clock;
  /** Background purge of expired items; 0 turns it off (call `purgeExpired()`). */
  purgeIntervalMs?: number;
  /** How long a write waits for another process's lock. Default 5000 ms. */
  busyTimeoutMs?: number;
  /**
   * Checkpoint the WAL from a worker thread every this many ms instead of inside the write
   * that crosses SQLite's threshold (see `startBackgroundCheckpoints`). 0/absent: SQLite's own.
   * `npm start` uses {@link BACKGROUND_CHECKPOINT_MS}.
   */
  backgroundCheckpointMs?: number;
}

/** The checkpoint interval devhost and the app use for the boundary's document store. */
export const BACKGROUND_CHECKPOINT_MS = 200;

/** An item as the change feed delivers it: the latest version, with its sequence number. */
export type ChangeFeedItem = Stored & { _lsn: number };

export interface ReadChangeFeedOptions {
  /** Where the previous read ended; absent = from the beginning. Opaque. */
  continuation?: string;
  /** At most this many items (1..10000); default 100. */
  maxItems?: number;
  /** Only this partition's changes. */
  partitionKey?: PartitionKey;
}

export interface ChangeFeedPage {
  /** Latest versions in `_lsn` order; empty when nothing changed. */
  items: ChangeFeedItem[];
  /** Pass to the next read; equals the input when nothing changed. Opaque. */
  continuation: string;
}

interface ContainerInfo {
  name: string;
  pkProperty: string;
  /** undefined = TTL off; -1 = on, no default; n = seconds. */
  defaultTtl: number | undefined;
}

interface Row {
  rowid: number;
  body: string;
  seq: number;
  ts_ms: number;
  expires_at: number | null;
}

const systemClock: Clock = { now: () => Date.now() };

function etagOf(seq: number): string {
  return `"${seq.toString(16).padStart(12, '0')}"`;
}

function jsonPath(p: string): string {
  return (
    '$' +
    parsePath(p)
      .map((s) => (s.kind === 'property' ? `."${s.name}"` : s.kind === 'index' ? `[${s.index}]` : ''))
      .join('')
  );
}

/**
 * Query paging is keyset-based: the token holds the sort key of the last item returned, so
 * writes between pages neither repeat nor skip items that existed throughout (as Cosmos).
 * The fingerprint ties a token to its query and partition.
 */
interface PageCursor {
  /** Type rank of the orderBy value (see RANK_SQL); 0 without orderBy. */
  r: number;
  /** The orderBy value (booleans as 0/1, objects and arrays as JSON text, undefined/null as 0). */
  v: number | string;
  /** The id: the tie-breaker, unique within a partition. */
  i: string;
}

function decodeCursor(token: string, fingerprint: string): PageCursor {
  const c = unwrapToken(token, fingerprint) as Partial<PageCursor>;
  if (Number.isInteger(c.r) && (typeof c.v === 'number' || typeof c.v === 'string') && typeof c.i === 'string') {
    return c as PageCursor;
  }
  throw new AppError('validation_failed', 'continuation token does not belong to this query');
}

/** Cosmos orders across types: undefined, null, booleans, numbers, strings (then objects/arrays). */
const RANK_SQL = `CASE json_type(body, ?) WHEN 'null' THEN 1 WHEN 'false' THEN 2 WHEN 'true' THEN 2
  WHEN 'integer' THEN 3 WHEN 'real' THEN 3 WHEN 'text' THEN 4 WHEN 'object' THEN 5 WHEN 'array' THEN 5 ELSE 0 END`;
const VALUE_SQL = 'coalesce(json_extract(body, ?), 0)';

export class SqliteDocumentStore implements DocumentStore {
  private readonly db: Database.Database;
  private readonly clock: Clock;
  private readonly containers = new Map<string, ContainerInfo>();
  private readonly statements = new Map<string, Database.Statement>();
  private readonly listeners = new Map<string, Set<() => void>>();
  /** Containers written by the running transaction, for the in-process listeners. */
  private readonly changed = new Set<string>();
  private readonly runImmediate: (fn: () => unknown) => unknown;
  /** Inside runImmediate: runs fn in a savepoint, rolled back alone when fn throws. */
  private readonly runSavepoint: (fn: () => unknown) => unknown;
  /** Writes waiting for the group commit at the end of this event-loop turn. */
  private pending: { run: () => unknown; resolve: (value: unknown) => void; reject: (err: unknown) => void }[] = [];
  private flushScheduled = false;
  private purgeTimer: NodeJS.Timeout | undefined;
  private stopCheckpoints: (() => Promise<void>) | undefined;
  private closed = false;

  /**
   * Opens (creating if needed) the database and its containers.
   * @throws AppError validation_failed for a bad container config; better-sqlite3 errors if
   *   the file cannot be opened.
   */
  constructor(options: SqliteDocumentStoreOptions) {
    this.clock = options.clock ?? systemClock;
    this.db = openSqlite(options.path, {
      journal_mode: SQLITE_PRAGMAS.journal_mode,
      synchronous: SQLITE_PRAGMAS.synchronous,
      busy_timeout: options.busyTimeoutMs ?? SQLITE_PRAGMAS.busy_timeout,
    });
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      INSERT OR IGNORE INTO meta (key, value) VALUES ('seq', 0);
      CREATE TABLE IF NOT EXISTS containers (name TEXT PRIMARY KEY, partition_key TEXT NOT NULL, default_ttl INTEGER);
      CREATE TABLE IF NOT EXISTS items (
        container TEXT NOT NULL, pk TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
        seq INTEGER NOT NULL, ts_ms INTEGER NOT NULL, item_ttl INTEGER, expires_at INTEGER
      );
      CREATE UNIQUE INDEX IF NOT EXISTS items_key ON items (container, pk, id);
      CREATE UNIQUE INDEX IF NOT EXISTS items_feed ON items (container, seq);
      CREATE INDEX IF NOT EXISTS items_expiry ON items (expires_at) WHERE expires_at IS NOT NULL;
    `);
    const txn = this.db.transaction((fn: () => unknown) => fn());
    this.runImmediate = (fn) => txn.immediate(fn);
    this.runSavepoint = (fn) => txn(fn);
    this.runImmediate(() => {
      for (const c of options.containers) this.openContainer(c);
    });
    if (options.backgroundCheckpointMs && options.path !== ':memory:') {
      this.stopCheckpoints = startBackgroundCheckpoints(this.db, options.path, options.backgroundCheckpointMs);
    }
    const interval = options.purgeIntervalMs ?? DEFAULT_PURGE_INTERVAL_MS;
    if (interval > 0) {
      this.purgeTimer = setInterval(() => {
        try {
          this.purgeExpired();
        } catch {
          // a busy or closed database: the next tick tries again; reads already hide expired items
        }
      }, interval);
      this.purgeTimer.unref();
    }
  }

  private openContainer(c: ContainerConfig): void {
    const info: ContainerInfo = { name: c.name, pkProperty: partitionKeyProperty(c.partitionKey), defaultTtl: c.ttl };
    const existing = this.stmt('SELECT partition_key, default_ttl FROM containers WHERE name = ?').get(c.name) as
      { partition_key: string; default_ttl: number | null } | undefined;
    if (existing && existing.partition_key !== c.partitionKey) {
      // Cosmos cannot change a container's partition key either; say so instead of corrupting data.
      throw new AppError(
        'validation_failed',
        `container ${c.name} was created with partition key ${existing.partition_key}, config says ${c.partitionKey}`,
      );
    }
    if (!existing) {
      this.stmt('INSERT INTO containers (name, partition_key, default_ttl) VALUES (?, ?, ?)').run(
        c.name,
        c.partitionKey,
        c.ttl ?? null,
      );
    } else if ((existing.default_ttl ?? undefined) !== c.ttl) {
      // A changed default TTL applies to existing items too, as in Cosmos.
      this.stmt('UPDATE containers SET default_ttl = ? WHERE name = ?').run(c.ttl ?? null, c.name);
      this.stmt(
        `UPDATE items SET expires_at = CASE
           WHEN :def IS NULL OR item_ttl = -1 THEN NULL
           WHEN item_ttl IS NOT NULL THEN ts_ms + item_ttl * 1000
           WHEN :def = -1 THEN NULL
           ELSE ts_ms + :def * 1000 END
         WHERE container = :c`,
      ).run({ def: c.ttl ?? null, c: c.name });
    }
    this.containers.set(c.name, info);
  }

  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  private info(container: string): ContainerInfo {
    if (this.closed) throw new AppError('unavailable', 'the document store is closed');
    const c = this.containers.get(container);
    if (!c) {
      throw new AppError('not_found', `container ${container} does not exist (known: ${[...this.containers.keys()].join(', ')})`);
    }
    return c;
  }

  private getRow(c: ContainerInfo, pk: string, id: string): Row | undefined {
    return this.stmt('SELECT rowid, body, seq, ts_ms, expires_at FROM items WHERE container = ? AND pk = ? AND id = ?').get(
      c.name,
      pk,
      id,
    ) as Row | undefined;
  }

  private static live(row: Row | undefined, now: number): row is Row {
    return row !== undefined && (row.expires_at === null || row.expires_at > now);
  }

  private expiresAt(
    c: ContainerInfo,
    body: Record<string, unknown>,
    nowMs: number,
  ): { itemTtl: number | null; expiresAt: number | null } {
    const itemTtl = typeof body['ttl'] === 'number' ? body['ttl'] : null;
    if (c.defaultTtl === undefined) return { itemTtl, expiresAt: null };
    const effective = itemTtl ?? c.defaultTtl;
    return { itemTtl, expiresAt: effective === -1 ? null : nowMs + effective * 1000 };
  }

  /** Writes a body under the next sequence number; the caller holds the write transaction. */
  private writeRow(
    c: ContainerInfo,
    pk: string,
    id: string,
    body: Record<string, unknown>,
    json: string,
    existing: Row | undefined,
  ): Stored {
    const now = this.clock.now();
    const seq = (this.stmt("UPDATE meta SET value = value + 1 WHERE key = 'seq' RETURNING value").get() as { value: number })
      .value;
    const { itemTtl, expiresAt } = this.expiresAt(c, body, now);
    if (existing) {
      this.stmt('UPDATE items SET body = ?, seq = ?, ts_ms = ?, item_ttl = ?, expires_at = ? WHERE rowid = ?').run(
        json,
        seq,
        now,
        itemTtl,
        expiresAt,
        existing.rowid,
      );
    } else {
      this.stmt(
        'INSERT INTO items (container, pk, id, body, seq, ts_ms, item_ttl, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ).run(c.name, pk, id, json, seq, now, itemTtl, expiresAt);
    }
    this.changed.add(c.name);
    return { ...body, id, _etag: etagOf(seq), _ts: Math.floor(now / 1000) };
  }

  private toStored(row: Row): Stored {
    return { ...(JSON.parse(row.body) as Item), _etag: etagOf(row.seq), _ts: Math.floor(row.ts_ms / 1000) };
  }

  /** Queues a write for the group commit; settles after its transaction committed. */
  private write<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run: fn, resolve: resolve as (value: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        realSetImmediate(() => this.flush());
      }
    });
  }

  /** Commits every queued write in one transaction, then tells in-process change listeners. */
  private flush(): void {
    this.flushScheduled = false;
    const ops = this.pending;
    this.pending = [];
    if (ops.length === 0) return;
    if (this.closed) {
      for (const op of ops) op.reject(new AppError('unavailable', 'the document store is closed'));
      return;
    }
    const outcomes: { ok: boolean; value: unknown }[] = [];
    this.changed.clear();
    try {
      this.runImmediate(() => {
        outcomes.length = 0;
        // One op: no savepoint needed, its failure rolls the transaction back.
        if (ops.length === 1) {
          outcomes.push({ ok: true, value: (ops[0] as (typeof ops)[0]).run() });
          return;
        }
        for (const op of ops) {
          try {
            outcomes.push({ ok: true, value: this.runSavepoint(op.run) });
          } catch (err) {
            outcomes.push({ ok: false, value: err });
          }
        }
      });
    } catch (err) {
      this.changed.clear();
      const error = translateSqlite(err);
      for (const op of ops) op.reject(error);
      return;
    }
    for (const name of this.changed) for (const l of this.listeners.get(name) ?? []) l();
    this.changed.clear();
    ops.forEach((op, i) => {
      const o = outcomes[i] as { ok: boolean; value: unknown };
      if (o.ok) op.resolve(o.value);
      else op.reject(translateSqlite(o.value));
    });
  }

  // ---- single-item operations (synchronous cores, shared with batch) ----

  private createSync(c: ContainerInfo, item: Item, expectPk?: string): Stored {
    const { id, pk, body, json } = checkItem(item, c.pkProperty);
    if (expectPk !== undefined && pk !== expectPk) throw wrongPartition(id, pk, expectPk);
    const now = this.clock.now();
    const row = this.getRow(c, pk, id);
    if (SqliteDocumentStore.live(row, now)) {
      throw new AppError('conflict', `item ${id} already exists in ${c.name}`);
    }
    return this.writeRow(c, pk, id, body, json, row);
  }

  private upsertSync(c: ContainerInfo, item: Item, ifMatch: string | undefined, mustExist: boolean, expectPk?: string): Stored {
    const { id, pk, body, json } = checkItem(item, c.pkProperty);
    if (expectPk !== undefined && pk !== expectPk) throw wrongPartition(id, pk, expectPk);
    const now = this.clock.now();
    const row = this.getRow(c, pk, id);
    const live = SqliteDocumentStore.live(row, now);
    if (!live && mustExist) throw new AppError('not_found', `item ${id} does not exist in ${c.name}`);
    if (ifMatch !== undefined && (!live || etagOf(row.seq) !== ifMatch)) {
      throw new AppError('precondition_failed', `item ${id} in ${c.name} does not match etag ${ifMatch}`);
    }
    return this.writeRow(c, pk, id, body, json, row);
  }

  private patchSync(
    c: ContainerInfo,
    pk: string,
    id: string,
    operations: readonly PatchOperation[],
    ifMatch: string | undefined,
  ): Stored {
    checkPatch(operations, c.pkProperty);
    const now = this.clock.now();
    const row = this.getRow(c, pk, id);
    if (!SqliteDocumentStore.live(row, now)) throw new AppError('not_found', `item ${id} does not exist in ${c.name}`);
    if (ifMatch !== undefined && etagOf(row.seq) !== ifMatch) {
      throw new AppError('precondition_failed', `item ${id} in ${c.name} does not match etag ${ifMatch}`);
    }
    const patched = applyPatch(JSON.parse(row.body) as Record<string, unknown>, operations);
    const checked = checkItem(patched, c.pkProperty);
    return this.writeRow(c, pk, id, checked.body, checked.json, row);
  }

  private deleteSync(c: ContainerInfo, pk: string, id: string, ifMatch: string | undefined): void {
    const now = this.clock.now();
    const row = this.getRow(c, pk, id);
    if (!SqliteDocumentStore.live(row, now)) throw new AppError('not_found', `item ${id} does not exist in ${c.name}`);
    if (ifMatch !== undefined && etagOf(row.seq) !== ifMatch) {
      throw new AppError('precondition_failed', `item ${id} in ${c.name} does not match etag ${ifMatch}`);
    }
    this.stmt('DELETE FROM items WHERE rowid = ?').run(row.rowid);
  }

  private readSync(c: ContainerInfo, pk: string, id: string): Stored | undefined {
    const now = this.clock.now();
    const row = this.getRow(c, pk, id);
    return SqliteDocumentStore.live(row, now) ? this.toStored(row) : undefined;
  }

  // ---- DocumentStore ----

  async create<T extends Item>(container: string, item: T): Promise<Stored<T>> {
    const c = this.info(container);
    return this.write(() => this.createSync(c, item)) as Promise<Stored<T>>;
  }

  async read<T extends Item = Item>(container: string, pk: PartitionKey, id: string): Promise<Stored<T> | undefined> {
    const c = this.info(container);
    return this.readSync(c, pk, id) as Stored<T> | undefined;
  }

  async upsert<T extends Item>(container: string, item: T, options: WriteOptions = {}): Promise<Stored<T>> {
    const c = this.info(container);
    return this.write(() => this.upsertSync(c, item, options.ifMatch, false)) as Promise<Stored<T>>;
  }

  async replace<T extends Item>(container: string, item: T, options: WriteOptions = {}): Promise<Stored<T>> {
    const c = this.info(container);
    return this.write(() => this.upsertSync(c, item, options.ifMatch, true)) as Promise<Stored<T>>;
  }

  async patch<T extends Item = Item>(
    container: string,
    pk: PartitionKey,
    id: string,
    operations: readonly PatchOperation[],
    options: WriteOptions = {},
  ): Promise<Stored<T>> {
    const c = this.info(container);
    return this.write(() => this.patchSync(c, pk, id, operations, options.ifMatch)) as Promise<Stored<T>>;
  }

  async delete(container: string, pk: PartitionKey, id: string, options: WriteOptions = {}): Promise<void> {
    const c = this.info(container);
    await this.write(() => this.deleteSync(c, pk, id, options.ifMatch));
  }

  async query<T = Stored>(
    container: string,
    pk: PartitionKey,
    spec: QuerySpec,
    options: QueryOptions = {},
  ): Promise<QueryPage<T>> {
    const c = this.info(container);
    const { limit } = checkQuery(spec, options);
    const fingerprint = queryFingerprint(container, pk, spec);
    const cursor = options.continuationToken === undefined ? undefined : decodeCursor(options.continuationToken, fingerprint);
    const params: unknown[] = [c.name, pk, this.clock.now()];
    const where = (spec.where ?? []).map((cond) => conditionSql(cond, params));
    const orderPath = spec.orderBy ? jsonPath(spec.orderBy.path) : undefined;
    const dir = spec.orderBy?.direction === 'desc' ? 'DESC' : 'ASC';
    // Rank and value are selected so the next page's cursor can be built from the last row.
    const rank = orderPath === undefined ? '0' : RANK_SQL;
    const value = orderPath === undefined ? '0' : VALUE_SQL;
    const selectParams = orderPath === undefined ? [] : [orderPath, orderPath];
    const outer: unknown[] = [];
    let after = '';
    if (cursor) {
      after = `WHERE (sort_rank, sort_value, id) ${dir === 'ASC' ? '>' : '<'} (?, ?, ?)`;
      outer.push(cursor.r, cursor.v, cursor.i);
    }
    const sql = `SELECT * FROM (SELECT rowid, body, seq, ts_ms, expires_at, id, ${rank} AS sort_rank, ${value} AS sort_value FROM items
      WHERE container = ? AND pk = ? AND (expires_at IS NULL OR expires_at > ?)
      ${where.map((w) => `AND ${w}`).join(' ')}) ${after}
      ORDER BY sort_rank ${dir}, sort_value ${dir}, id ${dir} LIMIT ?`;
    const rows = this.stmt(sql).all(...selectParams, ...params, ...outer, limit + 1) as Array<
      Row & { id: string; sort_rank: number; sort_value: number | string }
    >;
    const page = rows.slice(0, limit);
    const items = page.map((r) => project(this.toStored(r), spec.select) as T);
    const last = page[page.length - 1];
    return rows.length > limit && last
      ? { items, continuationToken: wrapToken({ r: last.sort_rank, v: last.sort_value, i: last.id }, fingerprint) }
      : { items };
  }

  async batch(container: string, pk: PartitionKey, operations: readonly BatchOperation[]): Promise<BatchResult[]> {
    const c = this.info(container);
    checkBatch(operations);
    return this.write(() =>
      operations.map((o, index): BatchResult => {
        try {
          switch (o.type) {
            case 'create':
              return { status: 201, item: this.createSync(c, o.item, pk) };
            case 'upsert':
              return { status: 200, item: this.upsertSync(c, o.item, o.ifMatch, false, pk) };
            case 'replace':
              return { status: 200, item: this.upsertSync(c, o.item, o.ifMatch, true, pk) };
            case 'patch':
              return { status: 200, item: this.patchSync(c, pk, o.id, o.operations, o.ifMatch) };
            case 'delete':
              this.deleteSync(c, pk, o.id, o.ifMatch);
              return { status: 204 };
            case 'read': {
              const item = this.readSync(c, pk, o.id);
              if (!item) throw new AppError('not_found', `item ${o.id} does not exist in ${c.name}`);
              return { status: 200, item };
            }
            default:
              throw new AppError('validation_failed', `unknown batch operation ${JSON.stringify((o as { type: unknown }).type)}`);
          }
        } catch (err) {
          throw batchFailure(err, index);
        }
      }),
    );
  }

  async check(): Promise<void> {
    try {
      if (this.closed) throw new Error('closed');
      this.stmt('SELECT 1').get();
    } catch (err) {
      throw new AppError('unavailable', 'the local document store cannot be read', { cause: err });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush(); // queued writes commit before the connection closes
    this.closed = true;
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    this.listeners.clear();
    await this.stopCheckpoints?.();
    this.db.close();
  }

  // ---- local extras: change feed, purge ----

  /**
   * Reads the change feed of one container (Cosmos latest-version mode): each item changed
   * after `continuation`, once, at its latest version, in `_lsn` order; deletes and expiries
   * are not reported.
   * @throws AppError not_found for an unknown container; validation_failed for a bad
   *   continuation or maxItems.
   */
  async readChangeFeed(container: string, options: ReadChangeFeedOptions = {}): Promise<ChangeFeedPage> {
    return this.readChangeFeedSync(container, options);
  }

  /** Synchronous form of {@link readChangeFeed} (the benchmarks and tests use it). */
  readChangeFeedSync(container: string, options: ReadChangeFeedOptions = {}): ChangeFeedPage {
    const c = this.info(container);
    const after = parseContinuation(options.continuation);
    const maxItems = options.maxItems ?? 100;
    if (!Number.isInteger(maxItems) || maxItems < 1 || maxItems > 10_000) {
      throw new AppError('validation_failed', 'maxItems must be a whole number from 1 to 10000');
    }
    const now = this.clock.now();
    const rows = (
      options.partitionKey === undefined
        ? this.stmt(
            `SELECT rowid, body, seq, ts_ms, expires_at FROM items WHERE container = ? AND seq > ?
             AND (expires_at IS NULL OR expires_at > ?) ORDER BY seq LIMIT ?`,
          ).all(c.name, after, now, maxItems)
        : this.stmt(
            `SELECT rowid, body, seq, ts_ms, expires_at FROM items WHERE container = ? AND seq > ? AND pk = ?
             AND (expires_at IS NULL OR expires_at > ?) ORDER BY seq LIMIT ?`,
          ).all(c.name, after, options.partitionKey, now, maxItems)
    ) as Row[];
    const items = rows.map((r) => ({ ...this.toStored(r), _lsn: r.seq }));
    const last = rows[rows.length - 1];
    return { items, continuation: String(last ? last.seq : after) };
  }

  /** A continuation that starts after every change made so far ("start from now"). */
  currentContinuation(container: string): string {
    this.info(container);
    return String((this.stmt("SELECT value FROM meta WHERE key = 'seq'").get() as { value: number }).value);
  }

  /**
   * Calls `listener` after each committed write to `container` made through THIS store object
   * (other processes are seen only by polling). Returns the unsubscribe function.
   */
  onChange(container: string, listener: () => void): () => void {
    this.info(container);
    let set = this.listeners.get(container);
    if (!set) {
      set = new Set();
      this.listeners.set(container, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /** Deletes expired items now; returns how many. The background timer calls it too. */
  purgeExpired(): number {
    if (this.closed) return 0;
    const now = this.clock.now();
    let total = 0;
    for (;;) {
      const n = this.stmt(
        'DELETE FROM items WHERE rowid IN (SELECT rowid FROM items WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)',
      ).run(now, PURGE_BATCH).changes;
      total += n;
      if (n < PURGE_BATCH) return total;
    }
  }
}

function parseContinuation(token: string | undefined): number {
  if (token === undefined) return 0;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(token))
    throw new AppError('validation_failed', `bad change feed continuation ${JSON.stringify(token)}`);
  return Number(token);
}

function wrongPartition(id: string, pk: string, expected: string): AppError {
  return new AppError('validation_failed', `item ${id} has partition key ${pk}, the batch is for ${expected}`);
}

function batchFailure(err: unknown, index: number): AppError {
  const e = isAppError(err) ? err : translateSqlite(err);
  return new AppError(e.code, `batch operation ${index} failed: ${e.message}`, {
    cause: e,
    extensions: { ...e.extensions, failedOperationIndex: index },
    ...(e.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: e.retryAfterSeconds }),
  });
}

function translateSqlite(err: unknown): AppError {
  if (isAppError(err)) return err;
  const code = (err as { code?: unknown }).code;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new AppError('unavailable', 'the local document store is busy', { cause: err, retryAfterSeconds: 1 });
  }
  return new AppError('internal', 'the local document store failed', { cause: err });
}

/** SQL for one condition; values are bound, paths were validated (and are bound too). */
function conditionSql(c: Condition, params: unknown[]): string {
  const p = jsonPath(c.path);
  const T = 'json_type(body, ?)';
  const V = 'json_extract(body, ?)';
  const typed = (value: string | number | boolean | null, op: string): string => {
    if (value === null) {
      params.push(p);
      return `${T} = 'null'`;
    }
    const types =
      typeof value === 'number' ? `IN ('integer', 'real')` : typeof value === 'string' ? `= 'text'` : `IN ('true', 'false')`;
    params.push(p, p, typeof value === 'boolean' ? (value ? 1 : 0) : value);
    return `(${T} ${types} AND ${V} ${op} ?)`;
  };
  switch (c.op) {
    case '=':
    case '<':
    case '<=':
    case '>':
    case '>=':
      return typed(c.value, c.op);
    case '!=': {
      params.push(p);
      return `(${T} IS NOT NULL AND NOT ${typed(c.value, '=')})`;
    }
    case 'in':
      return `(${c.value.map((v) => typed(v, '=')).join(' OR ')})`;
    case 'startsWith':
      params.push(p, p, c.value, c.value);
      return `(${T} = 'text' AND substr(${V}, 1, length(?)) = ?)`;
    case 'isDefined':
      params.push(p);
      return `${T} IS NOT NULL`;
    case 'notDefined':
      params.push(p);
      return `${T} IS NULL`;
  }
}

/** One SqliteDocumentStore per file per process (see `perFile`). */
export const openSqliteDocumentStore: (options: SqliteDocumentStoreOptions) => SqliteDocumentStore = perFile(
  (options: SqliteDocumentStoreOptions) => new SqliteDocumentStore(options),
);
