/**
 * A Service Bus topic/subscription broker on one SQLite file, shared by every local process
 * (`<data>/global/bus.sqlite`). WAL lets readers run beside the one writer; every state
 * change runs in a `BEGIN IMMEDIATE` transaction, so two processes never lock, complete or
 * dead-letter the same delivery at once, and `busy_timeout` makes them wait their turn.
 *
 * Semantics follow Service Bus: SQL filters evaluated at enqueue (one copy per matching
 * subscription), peek-lock with delivery counts, the dead-letter queue after
 * maxDeliveryCount, TTL expiry, duplicate detection by messageId. All time comes from the
 * injected Clock, so a virtual clock moves locks, TTLs and the duplicate window together.
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { openSqlite, perFile } from '../sqlite';
import { AppError, ensureError } from '../../../domain/errors';
import { compileSqlFilter, type SqlFilter, SqlFilterEvaluationError, SqlFilterSyntaxError } from '../../../domain/sqlfilter';
import type { Clock } from '../../../ports/clock';
import type { ApplicationPropertyValue, EventPublisher, OutgoingMessage } from '../../../ports/event-publisher';

export const DEAD_LETTER_QUEUE_SUFFIX = '/$DeadLetterQueue';
export const MAX_DELIVERY_COUNT_EXCEEDED = 'MaxDeliveryCountExceeded';
export const TTL_EXPIRED_EXCEPTION = 'TTLExpiredException';
export const FILTER_EVALUATION_EXCEPTION = 'FilterEvaluationException';

/** Pragmas every connection uses (the benchmark and `npm start` alike). */
export const LOCAL_BUS_PRAGMAS = {
  journal_mode: 'WAL',
  /** NORMAL in WAL mode: durable across process crashes; an OS crash may lose the last commits. */
  synchronous: 'NORMAL',
  busy_timeout: 10_000,
} as const;

export interface TopicOptions {
  duplicateDetectionWindowMs: number;
  defaultTtlMs: number;
}

export interface SubscriptionOptions {
  /** SQL filter expression; `1=1` (TrueFilter) when absent. */
  filter?: string;
  maxDeliveryCount: number;
  lockDurationMs: number;
  deadLetteringOnMessageExpiration: boolean;
  deadLetteringOnFilterEvaluationExceptions: boolean;
}

export interface ReceiveOptions {
  /** At most this many messages (default 1). */
  maxMessages?: number;
  /** Read the subscription's dead-letter queue (same as the name `<sub>/$DeadLetterQueue`). */
  deadLetter?: boolean;
}

/** A message delivered under a peek-lock. */
export interface ReceivedMessage {
  /** Settles this delivery only; stale once the lock expires and the message is re-locked. */
  lockToken: string;
  messageId: string;
  body: unknown;
  applicationProperties: Record<string, ApplicationPropertyValue>;
  subject: string | undefined;
  contentType: string | undefined;
  /** 1 on the first delivery. */
  deliveryCount: number;
  sequenceNumber: number;
  enqueuedTimeUtc: Date;
  expiresAtUtc: Date;
  lockedUntilUtc: Date;
  deadLetterReason?: string;
  deadLetterErrorDescription?: string;
}

export interface SubscriptionStats {
  /** Messages in the subscription (locked ones included), dead-lettered excluded. */
  active: number;
  deadLettered: number;
  /** Active messages currently under a lock. */
  locked: number;
}

/** What the subscription pump needs of a bus (the local one, or a fake in tests). */
export interface SubscriptionReceiver {
  receive(topic: string, subscription: string, options?: ReceiveOptions): Promise<ReceivedMessage[]>;
  complete(lockToken: string): Promise<void>;
  abandon(lockToken: string): Promise<void>;
  renewLock?(lockToken: string): Promise<Date>;
  /** Optional in-process wake-up on publish, so an idle pump needs not wait for its next poll. */
  onPublished?(topic: string, listener: () => void): () => void;
}

export interface LocalServiceBusOptions {
  /** SQLite file, e.g. `<data>/global/bus.sqlite` (folders are created), or ':memory:' for one process. */
  path: string;
  clock: Clock;
  /** Milliseconds a connection waits for another process's write lock (default 10 s). */
  busyTimeoutMs?: number;
}

interface SubscriptionRow {
  name: string;
  filter: string;
  max_delivery_count: number;
  lock_duration_ms: number;
  dl_on_expiration: number;
  dl_on_filter_error: number;
}

interface EntryRow {
  id: number;
  subscription: string;
  message_id: string;
  body: string;
  props: string;
  subject: string | null;
  content_type: string | null;
  enqueued_at: number;
  expires_at: number;
  delivery_count: number;
  locked_until: number;
  lock_token: string | null;
  dead_letter: number;
  dl_reason: string | null;
  dl_description: string | null;
}

interface LoadedSubscription {
  row: SubscriptionRow;
  filter: SqlFilter;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('topology_version', 0);
CREATE TABLE IF NOT EXISTS topics (
  name TEXT PRIMARY KEY,
  dup_window_ms INTEGER NOT NULL,
  default_ttl_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
  topic TEXT NOT NULL,
  name TEXT NOT NULL,
  filter TEXT NOT NULL,
  max_delivery_count INTEGER NOT NULL,
  lock_duration_ms INTEGER NOT NULL,
  dl_on_expiration INTEGER NOT NULL,
  dl_on_filter_error INTEGER NOT NULL,
  PRIMARY KEY (topic, name)
);
CREATE TABLE IF NOT EXISTS dedup (
  topic TEXT NOT NULL,
  message_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (topic, message_id)
);
CREATE INDEX IF NOT EXISTS dedup_expiry ON dedup (expires_at);
CREATE TABLE IF NOT EXISTS entries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  topic TEXT NOT NULL,
  subscription TEXT NOT NULL,
  message_id TEXT NOT NULL,
  body TEXT NOT NULL,
  props TEXT NOT NULL,
  subject TEXT,
  content_type TEXT,
  enqueued_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  delivery_count INTEGER NOT NULL DEFAULT 0,
  locked_until INTEGER NOT NULL DEFAULT 0,
  lock_token TEXT,
  dead_letter INTEGER NOT NULL DEFAULT 0,
  dl_reason TEXT,
  dl_description TEXT
);
CREATE INDEX IF NOT EXISTS entries_queue ON entries (topic, subscription, dead_letter, id);
CREATE UNIQUE INDEX IF NOT EXISTS entries_lock ON entries (lock_token) WHERE lock_token IS NOT NULL;
`;

/** Splits `<sub>/$DeadLetterQueue` into the subscription name and the DLQ flag. */
export function parseEntityName(subscription: string, deadLetter = false): { name: string; deadLetter: boolean } {
  if (subscription.toLowerCase().endsWith(DEAD_LETTER_QUEUE_SUFFIX.toLowerCase())) {
    return { name: subscription.slice(0, -DEAD_LETTER_QUEUE_SUFFIX.length), deadLetter: true };
  }
  return { name: subscription, deadLetter };
}

function validationError(message: string, cause?: unknown): AppError {
  return new AppError('validation_failed', message, cause === undefined ? {} : { cause });
}

/** Translates SQLite failures once: a lock held too long is `unavailable`, the rest `internal`. */
function translate(err: unknown, what: string): AppError {
  if (err instanceof AppError) return err;
  const e = ensureError(err);
  const code = (err as { code?: unknown }).code;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new AppError('unavailable', `local bus busy during ${what}`, { cause: e, retryAfterSeconds: 1 });
  }
  return new AppError('internal', `local bus failed during ${what}: ${e.message}`, { cause: e });
}

export class LocalServiceBus implements EventPublisher, SubscriptionReceiver {
  private readonly db: Database.Database;
  private readonly clock: Clock;
  private readonly stmts;
  private topologyVersion = -1;
  private readonly subscriptionsByTopic = new Map<string, LoadedSubscription[]>();
  private readonly topics = new Map<string, TopicOptions>();
  private readonly listeners = new Map<string, Set<() => void>>();
  private publishesSincePurge = 0;
  /** One wrapper reused for every write: `run.immediate(fn)` is BEGIN IMMEDIATE … COMMIT. */
  private readonly run: Database.Transaction<(fn: () => unknown) => unknown>;
  private closed = false;

  constructor(options: LocalServiceBusOptions) {
    this.clock = options.clock;
    this.db = openSqlite(options.path, {
      journal_mode: LOCAL_BUS_PRAGMAS.journal_mode,
      synchronous: LOCAL_BUS_PRAGMAS.synchronous,
      busy_timeout: options.busyTimeoutMs ?? LOCAL_BUS_PRAGMAS.busy_timeout,
    });
    this.run = this.db.transaction((fn: () => unknown) => fn());
    this.run.immediate(() => this.db.exec(SCHEMA));
    const db = this.db;
    this.stmts = {
      topologyVersion: db.prepare<[], { value: number }>(`SELECT value FROM meta WHERE key = 'topology_version'`),
      bumpTopology: db.prepare(`UPDATE meta SET value = value + 1 WHERE key = 'topology_version'`),
      allTopics: db.prepare<[], { name: string; dup_window_ms: number; default_ttl_ms: number }>(`SELECT * FROM topics`),
      getTopic: db.prepare<[string], { name: string; dup_window_ms: number; default_ttl_ms: number }>(
        `SELECT * FROM topics WHERE name = ?`,
      ),
      upsertTopic: db.prepare(
        `INSERT INTO topics (name, dup_window_ms, default_ttl_ms) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET dup_window_ms = excluded.dup_window_ms, default_ttl_ms = excluded.default_ttl_ms`,
      ),
      allSubscriptions: db.prepare<[], SubscriptionRow & { topic: string }>(`SELECT * FROM subscriptions ORDER BY topic, name`),
      getSubscription: db.prepare<[string, string], SubscriptionRow>(`SELECT * FROM subscriptions WHERE topic = ? AND name = ?`),
      upsertSubscription: db.prepare(
        `INSERT INTO subscriptions (topic, name, filter, max_delivery_count, lock_duration_ms, dl_on_expiration, dl_on_filter_error)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (topic, name) DO UPDATE SET filter = excluded.filter, max_delivery_count = excluded.max_delivery_count,
           lock_duration_ms = excluded.lock_duration_ms, dl_on_expiration = excluded.dl_on_expiration,
           dl_on_filter_error = excluded.dl_on_filter_error`,
      ),
      /** Changes one row when the id is new or its window has passed; none for a duplicate. */
      claimMessageId: db.prepare<[string, string, number, number]>(
        `INSERT INTO dedup (topic, message_id, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (topic, message_id) DO UPDATE SET expires_at = excluded.expires_at WHERE dedup.expires_at <= ?`,
      ),
      purgeDedup: db.prepare(`DELETE FROM dedup WHERE expires_at <= ?`),
      insertEntry: db.prepare(
        `INSERT INTO entries (topic, subscription, message_id, body, props, subject, content_type, enqueued_at, expires_at,
           dead_letter, dl_reason, dl_description)
         VALUES (@topic, @subscription, @messageId, @body, @props, @subject, @contentType, @enqueuedAt, @expiresAt,
           @deadLetter, @reason, @description)`,
      ),
      candidates: db.prepare<[string, string, number, number, number, number], EntryRow>(
        `SELECT * FROM entries WHERE topic = ? AND subscription = ? AND dead_letter = ? AND id > ? AND locked_until <= ?
         ORDER BY id LIMIT ?`,
      ),
      anyAvailable: db.prepare<[string, string, number, number], { id: number }>(
        `SELECT id FROM entries WHERE topic = ? AND subscription = ? AND dead_letter = ? AND locked_until <= ? LIMIT 1`,
      ),
      lockEntry: db.prepare(
        `UPDATE entries SET delivery_count = delivery_count + 1, locked_until = ?, lock_token = ? WHERE id = ?`,
      ),
      lockDeadLetter: db.prepare(`UPDATE entries SET locked_until = ?, lock_token = ? WHERE id = ?`),
      moveToDeadLetter: db.prepare(
        `UPDATE entries SET dead_letter = 1, dl_reason = ?, dl_description = ?, locked_until = 0, lock_token = NULL
         WHERE id = ?`,
      ),
      deleteEntry: db.prepare(`DELETE FROM entries WHERE id = ?`),
      deleteLocked: db.prepare<[string, number]>(`DELETE FROM entries WHERE lock_token = ? AND locked_until > ?`),
      byLockToken: db.prepare<[string], EntryRow & { topic: string }>(`SELECT * FROM entries WHERE lock_token = ?`),
      release: db.prepare(`UPDATE entries SET locked_until = 0, lock_token = NULL WHERE id = ?`),
      renew: db.prepare(`UPDATE entries SET locked_until = ? WHERE id = ?`),
      stats: db.prepare<[number, string, string], { active: number; dead: number; locked: number }>(
        `SELECT COALESCE(SUM(dead_letter = 0), 0) AS active, COALESCE(SUM(dead_letter = 1), 0) AS dead,
           COALESCE(SUM(dead_letter = 0 AND locked_until > ?), 0) AS locked
         FROM entries WHERE topic = ? AND subscription = ?`,
      ),
    };
  }

  // ---- admin ---------------------------------------------------------------------------

  /** Creates the topic or updates its settings. Idempotent. */
  async ensureTopic(name: string, options: TopicOptions): Promise<void> {
    if (!name) throw validationError('topic name is empty');
    if (!(options.duplicateDetectionWindowMs >= 0) || !(options.defaultTtlMs > 0)) {
      throw validationError(`topic ${name}: duplicateDetectionWindowMs must be >= 0 and defaultTtlMs > 0`);
    }
    this.write('ensureTopic', () => {
      const existing = this.stmts.getTopic.get(name);
      if (
        existing &&
        existing.dup_window_ms === options.duplicateDetectionWindowMs &&
        existing.default_ttl_ms === options.defaultTtlMs
      ) {
        return;
      }
      this.stmts.upsertTopic.run(name, options.duplicateDetectionWindowMs, options.defaultTtlMs);
      this.stmts.bumpTopology.run();
    });
  }

  /**
   * Creates the subscription or updates it (filter included). Idempotent.
   * @throws AppError `validation_failed` for a filter that does not parse (the message
   *   names the 1-based position) or bad numbers; `not_found` when the topic is missing.
   */
  async ensureSubscription(topic: string, name: string, options: SubscriptionOptions): Promise<void> {
    const expression = options.filter ?? '1=1';
    try {
      compileSqlFilter(expression);
    } catch (err) {
      if (err instanceof SqlFilterSyntaxError) {
        throw new AppError('validation_failed', `subscription ${topic}/${name}: invalid SQL filter: ${err.message}`, {
          cause: err,
          extensions: { position: err.position },
        });
      }
      throw err;
    }
    if (!name || name.includes('/')) throw validationError(`invalid subscription name '${name}'`);
    if (!Number.isInteger(options.maxDeliveryCount) || options.maxDeliveryCount < 1) {
      throw validationError(`subscription ${topic}/${name}: maxDeliveryCount must be a positive integer`);
    }
    if (!(options.lockDurationMs > 0)) throw validationError(`subscription ${topic}/${name}: lockDurationMs must be > 0`);
    const row: SubscriptionRow = {
      name,
      filter: expression,
      max_delivery_count: options.maxDeliveryCount,
      lock_duration_ms: options.lockDurationMs,
      dl_on_expiration: options.deadLetteringOnMessageExpiration ? 1 : 0,
      dl_on_filter_error: options.deadLetteringOnFilterEvaluationExceptions ? 1 : 0,
    };
    this.write('ensureSubscription', () => {
      if (!this.stmts.getTopic.get(topic)) throw new AppError('not_found', `topic ${topic} does not exist`);
      const existing = this.stmts.getSubscription.get(topic, name);
      if (existing && (Object.keys(row) as (keyof SubscriptionRow)[]).every((k) => existing[k] === row[k])) return;
      this.stmts.upsertSubscription.run(
        topic,
        name,
        row.filter,
        row.max_delivery_count,
        row.lock_duration_ms,
        row.dl_on_expiration,
        row.dl_on_filter_error,
      );
      this.stmts.bumpTopology.run();
    });
  }

  // ---- publishing ----------------------------------------------------------------------

  /** @inheritdoc */
  async publish(topic: string, message: OutgoingMessage): Promise<void> {
    await this.publishBatch(topic, [message]);
  }

  /** @inheritdoc */
  async publishBatch(topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const prepared = messages.map((m) => this.prepare(m));
    let accepted = 0;
    this.write('publish', () => {
      this.refreshTopology();
      const t = this.topics.get(topic);
      if (!t) throw new AppError('not_found', `topic ${topic} does not exist`);
      const now = this.clock.now();
      for (const m of prepared) {
        const claimed = this.stmts.claimMessageId.run(topic, m.messageId, now + t.duplicateDetectionWindowMs, now);
        if (claimed.changes === 0) continue; // accepted, dropped as a duplicate
        accepted++;
        this.enqueue(topic, t, m, now);
      }
      if (++this.publishesSincePurge >= 1000) {
        this.publishesSincePurge = 0;
        this.stmts.purgeDedup.run(now);
      }
    });
    if (accepted > 0) this.notify(topic);
  }

  private prepare(m: OutgoingMessage): OutgoingMessage & { json: string; propsJson: string } {
    if (typeof m.messageId !== 'string' || m.messageId.length === 0 || m.messageId.length > 128) {
      throw validationError('messageId must be a non-empty string of at most 128 characters');
    }
    let json: string | undefined;
    try {
      json = JSON.stringify(m.body);
    } catch (err) {
      throw validationError(`message ${m.messageId}: body is not JSON-serialisable`, err);
    }
    if (json === undefined) throw validationError(`message ${m.messageId}: body is not JSON-serialisable`);
    if (m.timeToLiveMs !== undefined && !(m.timeToLiveMs > 0)) {
      throw validationError(`message ${m.messageId}: timeToLiveMs must be > 0`);
    }
    return { ...m, json, propsJson: JSON.stringify(m.applicationProperties ?? {}) };
  }

  private enqueue(topic: string, t: TopicOptions, m: OutgoingMessage & { json: string; propsJson: string }, now: number): void {
    const ttl = Math.min(m.timeToLiveMs ?? t.defaultTtlMs, t.defaultTtlMs);
    const filterView = {
      applicationProperties: m.applicationProperties ?? {},
      systemProperties: {
        messageId: m.messageId,
        label: m.subject ?? null,
        contentType: m.contentType ?? null,
        timeToLive: ttl,
        enqueuedTimeUtc: new Date(now),
      },
    };
    for (const sub of this.subscriptionsByTopic.get(topic) ?? []) {
      let deadLetter = 0;
      let reason: string | null = null;
      let description: string | null = null;
      try {
        if (!sub.filter.matches(filterView)) continue;
      } catch (err) {
        if (!(err instanceof SqlFilterEvaluationError) || !sub.row.dl_on_filter_error) continue;
        deadLetter = 1;
        reason = FILTER_EVALUATION_EXCEPTION;
        description = err.message;
      }
      this.stmts.insertEntry.run({
        topic,
        subscription: sub.row.name,
        messageId: m.messageId,
        body: m.json,
        props: m.propsJson,
        subject: m.subject ?? null,
        contentType: m.contentType ?? null,
        enqueuedAt: now,
        expiresAt: now + ttl,
        deadLetter,
        reason,
        description,
      });
    }
  }

  /** Reloads topics and compiled filters when any process changed them (cheap version check). */
  private refreshTopology(): void {
    const version = this.stmts.topologyVersion.get()?.value ?? 0;
    if (version === this.topologyVersion) return;
    this.topics.clear();
    for (const t of this.stmts.allTopics.all()) {
      this.topics.set(t.name, { duplicateDetectionWindowMs: t.dup_window_ms, defaultTtlMs: t.default_ttl_ms });
    }
    this.subscriptionsByTopic.clear();
    for (const s of this.stmts.allSubscriptions.all()) {
      const list = this.subscriptionsByTopic.get(s.topic) ?? [];
      list.push({ row: s, filter: compileSqlFilter(s.filter) });
      this.subscriptionsByTopic.set(s.topic, list);
    }
    this.topologyVersion = version;
  }

  // ---- receiving -----------------------------------------------------------------------

  /**
   * Locks and returns up to `maxMessages` available messages, oldest first. Expired
   * messages met on the way are dead-lettered (or dropped); a message that has already
   * been delivered maxDeliveryCount times is dead-lettered with `MaxDeliveryCountExceeded`.
   * @throws AppError `not_found` when the subscription does not exist.
   */
  async receive(topic: string, subscription: string, options: ReceiveOptions = {}): Promise<ReceivedMessage[]> {
    const { name, deadLetter } = parseEntityName(subscription, options.deadLetter ?? false);
    const max = Math.max(1, Math.floor(options.maxMessages ?? 1));
    // An idle poll must not take the write lock: look first, outside any transaction (WAL
    // readers never block the writer), and lock only when something is there.
    const available = this.read('receive', () => this.stmts.anyAvailable.get(topic, name, deadLetter ? 1 : 0, this.clock.now()));
    if (!available) {
      if (!this.read('receive', () => this.stmts.getSubscription.get(topic, name))) {
        throw new AppError('not_found', `subscription ${topic}/${name} does not exist`);
      }
      return [];
    }
    return this.write('receive', () => {
      const sub = this.stmts.getSubscription.get(topic, name);
      if (!sub) throw new AppError('not_found', `subscription ${topic}/${name} does not exist`);
      const now = this.clock.now();
      const out: ReceivedMessage[] = [];
      let after = 0;
      while (out.length < max) {
        const rows = this.stmts.candidates.all(topic, name, deadLetter ? 1 : 0, after, now, max - out.length);
        if (rows.length === 0) break;
        for (const row of rows) {
          after = row.id;
          if (!deadLetter) {
            if (row.expires_at <= now) {
              this.expire(row, sub);
              continue;
            }
            if (row.delivery_count >= sub.max_delivery_count) {
              this.stmts.moveToDeadLetter.run(
                MAX_DELIVERY_COUNT_EXCEEDED,
                `delivered ${row.delivery_count} times (maxDeliveryCount ${sub.max_delivery_count})`,
                row.id,
              );
              continue;
            }
          }
          const token = randomUUID();
          const lockedUntil = now + sub.lock_duration_ms;
          if (deadLetter) this.stmts.lockDeadLetter.run(lockedUntil, token, row.id);
          else this.stmts.lockEntry.run(lockedUntil, token, row.id);
          out.push(this.toReceived(row, token, lockedUntil, deadLetter ? row.delivery_count : row.delivery_count + 1));
        }
      }
      return out;
    });
  }

  private expire(row: EntryRow, sub: SubscriptionRow): void {
    if (sub.dl_on_expiration) {
      this.stmts.moveToDeadLetter.run(TTL_EXPIRED_EXCEPTION, 'the message expired before it was completed', row.id);
    } else {
      this.stmts.deleteEntry.run(row.id);
    }
  }

  private toReceived(row: EntryRow, lockToken: string, lockedUntil: number, deliveryCount: number): ReceivedMessage {
    return {
      lockToken,
      messageId: row.message_id,
      body: JSON.parse(row.body) as unknown,
      // Service Bus stores a dead-lettered message's reason and description as application
      // properties of that message (the SDK's `deadLetterReason` reads them from there).
      applicationProperties: {
        ...(JSON.parse(row.props) as Record<string, ApplicationPropertyValue>),
        ...(row.dl_reason !== null ? { DeadLetterReason: row.dl_reason } : {}),
        ...(row.dl_description !== null ? { DeadLetterErrorDescription: row.dl_description } : {}),
      },
      subject: row.subject ?? undefined,
      contentType: row.content_type ?? undefined,
      deliveryCount,
      sequenceNumber: row.id,
      enqueuedTimeUtc: new Date(row.enqueued_at),
      expiresAtUtc: new Date(row.expires_at),
      lockedUntilUtc: new Date(lockedUntil),
      ...(row.dl_reason !== null ? { deadLetterReason: row.dl_reason } : {}),
      ...(row.dl_description !== null ? { deadLetterErrorDescription: row.dl_description } : {}),
    };
  }

  /** Finds the delivery a lock token belongs to, or throws the lock-lost conflict. */
  private locked(lockToken: string, now: number): EntryRow & { topic: string } {
    const row = this.stmts.byLockToken.get(lockToken);
    if (!row || row.locked_until <= now) {
      throw new AppError(
        'conflict',
        'message lock lost: the lock token is unknown or its lock expired (the message may have been redelivered)',
        { extensions: { reason: 'MessageLockLost' } },
      );
    }
    return row;
  }

  /**
   * Removes the message of this delivery.
   * @throws AppError `conflict` (MessageLockLost) when the token is unknown, already settled or its lock expired.
   */
  async complete(lockToken: string): Promise<void> {
    this.write('complete', () => {
      const now = this.clock.now();
      if (this.stmts.deleteLocked.run(lockToken, now).changes === 0) this.locked(lockToken, now); // throws lock lost
    });
  }

  /**
   * Releases the lock so the message is delivered again; one that has used up its
   * deliveries goes to the dead-letter queue at once.
   * @throws AppError `conflict` (MessageLockLost) like `complete`.
   */
  async abandon(lockToken: string): Promise<void> {
    this.write('abandon', () => {
      const row = this.locked(lockToken, this.clock.now());
      const sub = this.stmts.getSubscription.get(row.topic, row.subscription);
      if (!row.dead_letter && sub && row.delivery_count >= sub.max_delivery_count) {
        this.stmts.moveToDeadLetter.run(
          MAX_DELIVERY_COUNT_EXCEEDED,
          `delivered ${row.delivery_count} times (maxDeliveryCount ${sub.max_delivery_count})`,
          row.id,
        );
      } else {
        this.stmts.release.run(row.id);
      }
    });
  }

  /**
   * Moves the message of this delivery to the dead-letter queue with a reason.
   * @throws AppError `conflict` (MessageLockLost) like `complete`.
   */
  async deadLetter(lockToken: string, options: { reason: string; description?: string }): Promise<void> {
    this.write('deadLetter', () => {
      const row = this.locked(lockToken, this.clock.now());
      if (row.dead_letter) throw new AppError('conflict', 'the message is already in the dead-letter queue');
      this.stmts.moveToDeadLetter.run(options.reason, options.description ?? null, row.id);
    });
  }

  /**
   * Extends the lock by the subscription's lock duration from now.
   * @returns the new locked-until time.
   * @throws AppError `conflict` (MessageLockLost) like `complete`.
   */
  async renewLock(lockToken: string): Promise<Date> {
    return this.write('renewLock', () => {
      const now = this.clock.now();
      const row = this.locked(lockToken, now);
      const sub = this.stmts.getSubscription.get(row.topic, row.subscription);
      const until = now + (sub?.lock_duration_ms ?? 60_000);
      this.stmts.renew.run(until, row.id);
      return new Date(until);
    });
  }

  /** Counts for status pages and tests. */
  async stats(topic: string, subscription: string): Promise<SubscriptionStats> {
    const { name } = parseEntityName(subscription);
    const r = this.read('stats', () => this.stmts.stats.get(this.clock.now(), topic, name));
    return { active: r?.active ?? 0, deadLettered: r?.dead ?? 0, locked: r?.locked ?? 0 };
  }

  /**
   * In-process wake-up after a publish to `topic` commits (other processes find the
   * message by polling). Returns the unsubscribe function.
   */
  onPublished(topic: string, listener: () => void): () => void {
    const set = this.listeners.get(topic) ?? new Set();
    set.add(listener);
    this.listeners.set(topic, set);
    return () => set.delete(listener);
  }

  private notify(topic: string): void {
    for (const l of this.listeners.get(topic) ?? []) {
      try {
        l();
      } catch {
        // a listener's failure is its own business; publishing has succeeded
      }
    }
  }

  /**
   * Readiness: the file answers a query.
   * @throws AppError `unavailable` when it does not (or the bus is closed).
   */
  async check(): Promise<void> {
    if (this.closed) throw new AppError('unavailable', 'local bus is closed');
    this.read('check', () => this.stmts.topologyVersion.get());
  }

  /** Closes the connection; later calls fail with `unavailable`. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.db.close();
  }

  private write<T>(what: string, fn: () => T): T {
    if (this.closed) throw new AppError('unavailable', 'local bus is closed');
    try {
      return this.run.immediate(fn) as T;
    } catch (err) {
      throw translate(err, what);
    }
  }

  private read<T>(what: string, fn: () => T): T {
    if (this.closed) throw new AppError('unavailable', 'local bus is closed');
    try {
      return fn();
    } catch (err) {
      throw translate(err, what);
    }
  }
}

/** One LocalServiceBus per file per process (see `perFile`). */
export const openLocalServiceBus: (options: LocalServiceBusOptions) => LocalServiceBus = perFile(
  (options: LocalServiceBusOptions) => new LocalServiceBus(options),
);
