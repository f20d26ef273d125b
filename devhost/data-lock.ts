/**
 * One owner per local data directory. Two devhost processes on one `<data>/<boundary>` would
 * both run its durable task hub (every activity twice), both pump its subscriptions and both
 * sweep it; the SQLite files would take it without complaint. So a process claims the
 * directory with an `owner.lock` file created exclusively, and a second one fails at start-up
 * naming the owner. A lock whose process is gone (killed, crashed) is taken over: the PID is
 * checked, and on Linux also the process's start time, so a recycled PID is not mistaken for
 * the owner.
 */
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface DataLock {
  readonly file: string;
  release(): void;
}

interface Owner {
  pid: number;
  /** Kernel start time of the process (jiffies since boot; Linux), when known. */
  start?: string;
  since: string;
  what: string;
}

const LOCK_FILE = 'owner.lock';
/** Locks this process holds: a second claim from the same process is refused as well. */
const held = new Set<string>();

/** Start time of a process from /proc (field 22 of stat), or undefined where unavailable. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count from its end.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

function alive(owner: Owner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: a process of another user holds that PID; treat it as alive.
  }
  const start = startTimeOf(owner.pid);
  return owner.start === undefined || start === undefined || start === owner.start;
}

function readOwner(file: string): Owner | undefined {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<Owner>;
    return typeof parsed.pid === 'number' && Number.isInteger(parsed.pid) ? (parsed as Owner) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Claims `dir` for this process (`what` names it in the other process's error), or throws if
 * a live process owns it.
 */
export function acquireDataLock(dir: string, what: string): DataLock {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  if (held.has(file)) throw new Error(`${dir} is already in use by this process`);
  const start = startTimeOf(process.pid);
  const me: Owner = { pid: process.pid, ...(start ? { start } : {}), since: new Date().toISOString(), what };
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, JSON.stringify(me), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = readOwner(file);
    if (owner && owner.pid !== process.pid && alive(owner)) {
      throw new Error(
        `${dir} is in use by ${owner.what} (pid ${owner.pid}, since ${owner.since}). ` +
          'Stop that process, or give this one its own MERIDIAN_DATA_DIR.',
      );
    }
    // Ours from before, stale, or unreadable (a claim being written, or a torn file): take it
    // over; two processes taking over at once both retry the exclusive create, one wins.
    if (attempt >= 3) throw new Error(`${file}: could not be claimed (it keeps coming back); remove it if no devhost runs`);
    if (!owner && attempt === 0) {
      // Maybe another process is between its create and its write: give it a moment.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      continue;
    }
    try {
      unlinkSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  held.add(file);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    held.delete(file);
    process.off('exit', release);
    if (readOwner(file)?.pid !== process.pid) return; // taken over meanwhile: not ours to remove
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  };
  process.on('exit', release);
  return { file, release };
}
