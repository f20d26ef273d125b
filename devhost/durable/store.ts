/**
 * SQLite persistence of one task hub: instances, their histories, each instance's inbox of
 * not-yet-applied messages, pending activity work and durable timers. Every orchestrator
 * episode commits in one transaction, so a crash leaves either all of an episode or none of it:
 * its inbox messages are still there and the episode runs again at the next start.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { HistoryEvent } from './protocol';

export type RuntimeStatus = 'Pending' | 'Running' | 'Completed' | 'ContinuedAsNew' | 'Failed' | 'Terminated' | 'Suspended';

export const TERMINAL: ReadonlySet<RuntimeStatus> = new Set(['Completed', 'Failed', 'Terminated']);

export interface InstanceRow {
  id: string;
  name: string;
  status: RuntimeStatus;
  /** JSON text of the input (null when none). */
  input: string | null;
  /** JSON text of the output (null when none). */
  output: string | null;
  customStatus: string | null;
  createdAt: number;
  updatedAt: number;
  parentId: string | null;
  parentTaskId: number | null;
  parentGeneration: number | null;
  generation: number;
  /** JSON of the engine's per-instance bookkeeping (see engine.ts EngineState). */
  engineState: string;
}

/** A message waiting for the instance's next episode. */
export type InboxMessage =
  { kind: 'start' } | { kind: 'event'; generation: number; event: HistoryEvent } | { kind: 'terminate'; reason: string };

export interface WorkItem {
  id: number;
  instanceId: string;
  generation: number;
  taskId: number;
  name: string;
  /** JSON text of the activity input, or null. */
  input: string | null;
}

export interface TimerRow {
  id: number;
  instanceId: string;
  generation: number;
  timerId: number;
  fireAt: number;
}

export interface InstanceQuery {
  createdFrom?: number;
  createdTo?: number;
  statuses?: RuntimeStatus[];
  /** Resume after this (createdAt, id) pair. */
  after?: { createdAt: number; id: string };
  limit: number;
}

interface DbInstance {
  id: string;
  name: string;
  status: RuntimeStatus;
  input: string | null;
  output: string | null;
  custom_status: string | null;
  created_at: number;
  updated_at: number;
  parent_id: string | null;
  parent_task_id: number | null;
  parent_generation: number | null;
  generation: number;
  engine_state: string;
}

const toRow = (r: DbInstance): InstanceRow => ({
  id: r.id,
  name: r.name,
  status: r.status,
  input: r.input,
  output: r.output,
  customStatus: r.custom_status,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  parentId: r.parent_id,
  parentTaskId: r.parent_task_id,
  parentGeneration: r.parent_generation,
  generation: r.generation,
  engineState: r.engine_state,
});

export class DurableStore {
  readonly db: Database.Database;
  readonly #s;

  constructor(file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS instances (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,
        input TEXT, output TEXT, custom_status TEXT,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
        parent_id TEXT, parent_task_id INTEGER, parent_generation INTEGER,
        generation INTEGER NOT NULL DEFAULT 0, engine_state TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS instances_by_created ON instances(created_at, id);
      CREATE TABLE IF NOT EXISTS history (
        instance_id TEXT NOT NULL, idx INTEGER NOT NULL, event TEXT NOT NULL,
        PRIMARY KEY (instance_id, idx)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS inbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, message TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS inbox_by_instance ON inbox(instance_id, id);
      CREATE TABLE IF NOT EXISTS work (
        id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, generation INTEGER NOT NULL,
        task_id INTEGER NOT NULL, name TEXT NOT NULL, input TEXT
      );
      CREATE TABLE IF NOT EXISTS timers (
        id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, generation INTEGER NOT NULL,
        timer_id INTEGER NOT NULL, fire_at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS timers_by_instance ON timers(instance_id, timer_id);
      CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      INSERT OR IGNORE INTO counters (name, value)
        SELECT 'generation', COALESCE(MAX(generation), -1) + 1 FROM instances;
    `);
    const p = (sql: string) => this.db.prepare(sql);
    this.#s = {
      getInstance: p('SELECT * FROM instances WHERE id = ?'),
      insertInstance: p(`INSERT INTO instances (id, name, status, input, output, custom_status, created_at, updated_at,
        parent_id, parent_task_id, parent_generation, generation, engine_state)
        VALUES (@id, @name, @status, @input, @output, @customStatus, @createdAt, @updatedAt,
        @parentId, @parentTaskId, @parentGeneration, @generation, @engineState)`),
      updateInstance: p(`UPDATE instances SET name=@name, status=@status, input=@input, output=@output,
        custom_status=@customStatus, created_at=@createdAt, updated_at=@updatedAt, parent_id=@parentId,
        parent_task_id=@parentTaskId, parent_generation=@parentGeneration, generation=@generation,
        engine_state=@engineState WHERE id=@id`),
      deleteInstance: p('DELETE FROM instances WHERE id = ?'),
      history: p('SELECT event FROM history WHERE instance_id = ? ORDER BY idx'),
      appendHistory: p('INSERT INTO history (instance_id, idx, event) VALUES (?, ?, ?)'),
      clearHistory: p('DELETE FROM history WHERE instance_id = ?'),
      inbox: p('SELECT id, message FROM inbox WHERE instance_id = ? ORDER BY id'),
      enqueue: p('INSERT INTO inbox (instance_id, message) VALUES (?, ?)'),
      dequeue: p('DELETE FROM inbox WHERE id = ?'),
      clearInbox: p('DELETE FROM inbox WHERE instance_id = ?'),
      instancesWithInbox: p('SELECT DISTINCT instance_id AS id FROM inbox'),
      insertWork: p('INSERT INTO work (instance_id, generation, task_id, name, input) VALUES (?, ?, ?, ?, ?)'),
      deleteWork: p('DELETE FROM work WHERE id = ?'),
      clearWork: p('DELETE FROM work WHERE instance_id = ?'),
      allWork: p('SELECT id, instance_id AS instanceId, generation, task_id AS taskId, name, input FROM work ORDER BY id'),
      insertTimer: p('INSERT INTO timers (instance_id, generation, timer_id, fire_at) VALUES (?, ?, ?, ?)'),
      deleteTimer: p('DELETE FROM timers WHERE id = ?'),
      deleteTimerByTask: p('DELETE FROM timers WHERE instance_id = ? AND timer_id = ? RETURNING id'),
      clearTimers: p('DELETE FROM timers WHERE instance_id = ? RETURNING id'),
      allTimers: p('SELECT id, instance_id AS instanceId, generation, timer_id AS timerId, fire_at AS fireAt FROM timers'),
      nextGeneration: p(`UPDATE counters SET value = value + 1 WHERE name = 'generation' RETURNING value - 1 AS value`),
    };
  }

  close(): void {
    this.db.close();
  }

  /** Runs `fn` in one transaction (nested calls join the outer one). */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  getInstance(id: string): InstanceRow | undefined {
    const r = this.#s.getInstance.get(id) as DbInstance | undefined;
    return r && toRow(r);
  }

  /**
   * A generation number never given out before in this store (an execution's identity). Kept
   * store-wide rather than per instance: a purge forgets the instance, and a re-created one
   * must still not match a late result of the purged execution.
   */
  nextGeneration(): number {
    return (this.#s.nextGeneration.get() as { value: number }).value;
  }

  insertInstance(row: InstanceRow): void {
    this.#s.insertInstance.run(row);
  }

  updateInstance(row: InstanceRow): void {
    this.#s.updateInstance.run(row);
  }

  history(id: string): HistoryEvent[] {
    return (this.#s.history.all(id) as { event: string }[]).map((r) => JSON.parse(r.event) as HistoryEvent);
  }

  appendHistory(id: string, fromIndex: number, events: readonly HistoryEvent[]): void {
    events.forEach((e, i) => this.#s.appendHistory.run(id, fromIndex + i, JSON.stringify(e)));
  }

  clearHistory(id: string): void {
    this.#s.clearHistory.run(id);
  }

  inbox(id: string): { id: number; message: InboxMessage }[] {
    return (this.#s.inbox.all(id) as { id: number; message: string }[]).map((r) => ({
      id: r.id,
      message: JSON.parse(r.message) as InboxMessage,
    }));
  }

  enqueue(instanceId: string, message: InboxMessage): void {
    this.#s.enqueue.run(instanceId, JSON.stringify(message));
  }

  dequeue(messageId: number): void {
    this.#s.dequeue.run(messageId);
  }

  instancesWithInbox(): string[] {
    return (this.#s.instancesWithInbox.all() as { id: string }[]).map((r) => r.id);
  }

  insertWork(w: Omit<WorkItem, 'id'>): WorkItem {
    const info = this.#s.insertWork.run(w.instanceId, w.generation, w.taskId, w.name, w.input);
    return { ...w, id: Number(info.lastInsertRowid) };
  }

  deleteWork(id: number): void {
    this.#s.deleteWork.run(id);
  }

  allWork(): WorkItem[] {
    return this.#s.allWork.all() as WorkItem[];
  }

  insertTimer(t: Omit<TimerRow, 'id'>): TimerRow {
    const info = this.#s.insertTimer.run(t.instanceId, t.generation, t.timerId, t.fireAt);
    return { ...t, id: Number(info.lastInsertRowid) };
  }

  deleteTimer(id: number): void {
    this.#s.deleteTimer.run(id);
  }

  /** Deletes the instance's pending timer with that sequence number; returns the deleted row ids. */
  deleteTimerByTask(instanceId: string, timerId: number): number[] {
    return (this.#s.deleteTimerByTask.all(instanceId, timerId) as { id: number }[]).map((r) => r.id);
  }

  allTimers(): TimerRow[] {
    return this.#s.allTimers.all() as TimerRow[];
  }

  /** Drops everything pending for an instance (timers, work, inbox); returns the deleted timer ids. */
  clearPending(instanceId: string, { inbox }: { inbox: boolean }): number[] {
    this.#s.clearWork.run(instanceId);
    if (inbox) this.#s.clearInbox.run(instanceId);
    return (this.#s.clearTimers.all(instanceId) as { id: number }[]).map((r) => r.id);
  }

  /** Deletes an instance and all its state; returns the deleted timer ids. */
  purge(instanceId: string): number[] {
    const timers = this.clearPending(instanceId, { inbox: true });
    this.#s.clearHistory.run(instanceId);
    this.#s.deleteInstance.run(instanceId);
    return timers;
  }

  queryInstances(q: InstanceQuery): InstanceRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.createdFrom !== undefined) {
      where.push('created_at >= ?');
      args.push(q.createdFrom);
    }
    if (q.createdTo !== undefined) {
      where.push('created_at <= ?');
      args.push(q.createdTo);
    }
    if (q.statuses && q.statuses.length > 0) {
      where.push(`status IN (${q.statuses.map(() => '?').join(',')})`);
      args.push(...q.statuses);
    }
    if (q.after) {
      where.push('(created_at > ? OR (created_at = ? AND id > ?))');
      args.push(q.after.createdAt, q.after.createdAt, q.after.id);
    }
    const sql = `SELECT * FROM instances ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at, id LIMIT ?`;
    return (this.db.prepare(sql).all(...args, q.limit) as DbInstance[]).map(toRow);
  }

  countByStatus(): Record<string, number> {
    const rows = this.db.prepare('SELECT status, COUNT(*) AS n FROM instances GROUP BY status').all() as {
      status: string;
      n: number;
    }[];
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }
}
