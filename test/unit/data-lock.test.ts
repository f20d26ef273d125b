import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireDataLock } from '../../devhost/data-lock';

const root = mkdtempSync(path.join(os.tmpdir(), 'data-lock-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => path.join(root, `d${n++}`);
const startOf = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
};

describe('devhost data directory lock', () => {
  it('claims a directory once: a second claim fails naming the owner, a release frees it', () => {
    const dir = freshDir();
    const lock = acquireDataLock(dir, 'devhost [us]');
    expect(JSON.parse(readFileSync(lock.file, 'utf8'))).toMatchObject({ pid: process.pid, what: 'devhost [us]' });
    expect(() => acquireDataLock(dir, 'devhost [us]')).toThrow(/already in use by this process/);
    lock.release();
    expect(existsSync(lock.file)).toBe(false);
    acquireDataLock(dir, 'again').release();
  });

  it('refuses a directory a live process owns, with its pid and how to proceed', async () => {
    const dir = freshDir();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      await new Promise((r) => child.once('spawn', r));
      const pid = child.pid as number;
      acquireDataLock(dir, 'x').release();
      writeFileSync(path.join(dir, 'owner.lock'), JSON.stringify({ pid, start: startOf(pid), since: 'then', what: 'npm start' }));
      expect(() => acquireDataLock(dir, 'devhost [us]')).toThrow(
        new RegExp(
          `in use by npm start \\(pid ${pid}, since then\\)\\. Stop that process, or give this one its own MERIDIAN_DATA_DIR`,
        ),
      );
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('takes over the lock of a process that is gone, and of a recycled pid', async () => {
    const dir = freshDir();
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    const pid = child.pid as number;
    await new Promise((r) => child.once('exit', r));
    acquireDataLock(dir, 'x').release();
    writeFileSync(path.join(dir, 'owner.lock'), JSON.stringify({ pid, since: 'then', what: 'crashed' }));
    const a = acquireDataLock(dir, 'after a crash');
    a.release();
    // A live process with that pid, but not the one that wrote the lock (another start time).
    writeFileSync(
      path.join(dir, 'owner.lock'),
      JSON.stringify({ pid: process.ppid, start: '1', since: 'then', what: 'long gone' }),
    );
    const b = acquireDataLock(dir, 'after a pid was reused');
    expect(JSON.parse(readFileSync(b.file, 'utf8'))).toMatchObject({ pid: process.pid });
    b.release();
  });

  it('a release never removes a lock someone else took over meanwhile', () => {
    const dir = freshDir();
    const lock = acquireDataLock(dir, 'first');
    const other = JSON.stringify({ pid: process.ppid, since: 'now', what: 'other' });
    writeFileSync(lock.file, other);
    lock.release();
    expect(readFileSync(lock.file, 'utf8')).toBe(other);
  });
});
