import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

export interface SqlitePragmas {
  journal_mode: 'WAL';
  synchronous: 'NORMAL' | 'FULL';
  busy_timeout: number;
}

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Opens a SQLite file shared by several processes: busy timeout first, then WAL. Switching a
 * new file to WAL can fail with SQLITE_BUSY without consulting the busy handler when two
 * processes initialise it at the same moment, so that step is retried for up to the timeout.
 */
export function openSqlite(file: string, pragmas: SqlitePragmas): Database.Database {
  if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const db = new Database(file);
  db.pragma(`busy_timeout = ${pragmas.busy_timeout}`);
  const until = Date.now() + pragmas.busy_timeout;
  for (;;) {
    try {
      db.pragma(`journal_mode = ${pragmas.journal_mode}`);
      break;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > until) {
        db.close();
        throw err;
      }
      sleep(10 + Math.floor(Math.random() * 20));
    }
  }
  db.pragma(`synchronous = ${pragmas.synchronous}`);
  return db;
}

/**
 * One instance per file per process (keyed by absolute path): the app and devhost's triggers
 * share a connection, and in-process change notifications reach every reader at once.
 */
export function perFile<O extends { path: string }, T>(create: (options: O) => T): (options: O) => T {
  const open = new Map<string, T>();
  return (options) => {
    const key = options.path === ':memory:' ? ':memory:' : path.resolve(options.path);
    let instance = open.get(key);
    if (instance === undefined || key === ':memory:') {
      instance = create(options);
      open.set(key, instance);
    }
    return instance;
  };
}

/** Worker body: its own connection to `file`, a PASSIVE checkpoint every `intervalMs`. */
const CHECKPOINT_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 0');
const checkpoint = () => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch { /* busy: next tick */ } };
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', () => { clearInterval(timer); checkpoint(); db.close(); parentPort.close(); });
`;

/**
 * Moves WAL checkpoints off the calling thread: turns the connection's automatic checkpoints
 * off and runs a PASSIVE checkpoint every `intervalMs` from a worker thread with its own
 * connection. SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL
 * pages, so that one write waits for the copy and its fsync (~10–15 ms here; it doubled the
 * mean cost of a small write transaction); a PASSIVE checkpoint never blocks writers or readers.
 * Returns the stop function (final checkpoint, worker closed); call it before closing `db`.
 */
export function startBackgroundCheckpoints(db: Database.Database, file: string, intervalMs: number): () => Promise<void> {
  const worker = new Worker(CHECKPOINT_WORKER, {
    eval: true,
    workerData: { module: require.resolve('better-sqlite3'), file: path.resolve(file), intervalMs },
  });
  worker.unref();
  let failed = false;
  worker.on('error', () => {
    // Could not run: SQLite's own checkpoints again, so the WAL cannot grow without bound.
    failed = true;
    db.pragma('wal_autocheckpoint = 1000');
  });
  db.pragma('wal_autocheckpoint = 0');
  let stopped: Promise<void> | undefined;
  return () =>
    (stopped ??= failed
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          worker.once('exit', () => resolve());
          worker.postMessage('stop');
        }));
}
