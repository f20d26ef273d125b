import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

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
