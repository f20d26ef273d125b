/**
 * Several OS processes on one bus file: nothing lost across a SIGKILL and restart, and two
 * consumers of one subscription never both complete a message.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalServiceBus } from '../../src/adapters/local/service-bus';
import { repoRoot, tempDir } from '../helpers/local-bus';

const TOPIC = 'index-sync';
const SUB = 'meridian-eastus-indexer';
const fixture = path.join(repoRoot, 'test/fixtures/bus-child.cjs');

let build: ReturnType<typeof tempDir>;
let distDir: string;

beforeAll(() => {
  // The child must run the real adapter: compile it once to a temp folder.
  build = tempDir('meridian-bus-build-');
  distDir = build.dir;
  execFileSync(
    process.execPath,
    [path.join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', distDir],
    {
      cwd: repoRoot,
      stdio: 'pipe',
    },
  );
});
afterAll(() => build.cleanup());

interface ChildOptions {
  dbPath: string;
  logPath: string;
  prefix: string;
  publish: number;
  /** Pause after each publish, so a kill really lands mid-way through publishing. */
  publishPauseMs?: number;
  consume: boolean;
  concurrency: number;
  workMs: number;
  lockMs: number;
  maxDeliveryCount: number;
}

function startChild(o: ChildOptions): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, [fixture, JSON.stringify({ ...o, distDir, subscription: SUB })], {
    // The compiled output sits outside the repo; let it resolve better-sqlite3 from here.
    env: { ...process.env, NODE_PATH: path.join(repoRoot, 'node_modules') },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, stderr: () => err };
}

function lines(logPath: string): string[][] {
  if (!existsSync(logPath)) return [];
  return readFileSync(logPath, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' '));
}

async function until(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the child process');
    await new Promise((r) => setTimeout(r, 10)); // waiting on a real OS process
  }
}

async function finalStats(dbPath: string) {
  const bus = new LocalServiceBus({ path: dbPath, clock: { now: () => Date.now() } });
  try {
    return await bus.stats(TOPIC, SUB);
  } finally {
    await bus.close();
  }
}

describe('LocalServiceBus across processes', () => {
  it('loses nothing when a publishing and consuming process is SIGKILLed and restarted', async () => {
    const tmp = tempDir();
    try {
      const N = 300;
      const base: ChildOptions = {
        dbPath: path.join(tmp.dir, 'bus.sqlite'),
        logPath: path.join(tmp.dir, 'run.log'),
        prefix: 'doc-',
        publish: N,
        publishPauseMs: 2,
        consume: true,
        concurrency: 8,
        workMs: 10,
        lockMs: 400,
        maxDeliveryCount: 10,
      };
      const first = startChild(base);
      await until(() => lines(base.logPath).filter((l) => l[0] === 'completed').length >= 40, 20_000);
      first.child.kill('SIGKILL');
      await first.exited;
      const log1 = lines(base.logPath);
      expect(log1.filter((l) => l[0] === 'published').length).toBeLessThan(N); // really killed mid-way
      expect(log1.some((l) => l[0] === 'done')).toBe(false);

      // The restart publishes everything again: duplicates of what was accepted are dropped.
      const second = startChild(base);
      const code = await second.exited;
      expect(second.stderr()).toBe('');
      expect(code).toBe(0);

      const log = lines(base.logPath);
      const all = Array.from({ length: N }, (_, i) => `doc-${i}`);
      const handled = new Set(log.filter((l) => l[0] === 'handled').map((l) => l[1]));
      const completed = log.filter((l) => l[0] === 'completed').map((l) => l[1] as string);
      expect([...handled].sort()).toEqual([...all].sort()); // none lost
      expect(completed.length).toBe(new Set(completed).size); // completed at most once each
      expect(await finalStats(base.dbPath)).toEqual({ active: 0, deadLettered: 0, locked: 0 });
    } finally {
      tmp.cleanup();
    }
  });

  it('two processes consuming one subscription never both complete a message', async () => {
    const tmp = tempDir();
    try {
      const N = 200;
      const dbPath = path.join(tmp.dir, 'bus.sqlite');
      const common = { dbPath, prefix: 'm-', concurrency: 8, maxDeliveryCount: 1000 };
      // Locks shorter than some handlers take: messages are redelivered to the other process
      // while the first still holds a stale lock token.
      // Publish first (from this process), so neither consumer finds an empty subscription and stops early.
      const pub = new LocalServiceBus({ path: dbPath, clock: { now: () => Date.now() } });
      try {
        await pub.ensureTopic(TOPIC, { duplicateDetectionWindowMs: 600_000, defaultTtlMs: 3_600_000 });
        await pub.ensureSubscription(TOPIC, SUB, {
          filter: "targetRegion = 'us' OR targetRegion = 'all'",
          maxDeliveryCount: common.maxDeliveryCount,
          lockDurationMs: 150,
          deadLetteringOnMessageExpiration: true,
          deadLetteringOnFilterEvaluationExceptions: true,
        });
        for (let i = 0; i < N; i++) {
          await pub.publish(TOPIC, { messageId: `m-${i}`, body: { i }, applicationProperties: { targetRegion: 'us' } });
        }
      } finally {
        await pub.close();
      }
      const a = startChild({
        ...common,
        logPath: path.join(tmp.dir, 'a.log'),
        publish: 0,
        consume: true,
        workMs: 200,
        lockMs: 150,
      });
      const b = startChild({
        ...common,
        logPath: path.join(tmp.dir, 'b.log'),
        publish: 0,
        consume: true,
        workMs: 200,
        lockMs: 150,
      });
      // Consumers stop when the subscription is empty; one may stop early while the other finishes.
      expect(await a.exited).toBe(0);
      expect(await b.exited).toBe(0);
      const logA = lines(path.join(tmp.dir, 'a.log'));
      const logB = lines(path.join(tmp.dir, 'b.log'));
      const completed = [...logA, ...logB].filter((l) => l[0] === 'completed').map((l) => l[1] as string);
      const lost = [...logA, ...logB].filter((l) => l[0] === 'lost').length;
      expect(completed.length).toBe(new Set(completed).size);
      expect(new Set(completed).size).toBe(N);
      // The delivery that completed is always the message's latest: a stale token never
      // settled a newer delivery held by the other process.
      const all = [...logA, ...logB];
      for (const [, id, count] of all.filter((l) => l[0] === 'completed')) {
        const latest = Math.max(...all.filter((l) => l[0] === 'handled' && l[1] === id).map((l) => Number(l[2])));
        expect(Number(count), `message ${id}`).toBe(latest);
      }
      expect(lost).toBeGreaterThan(0); // the race really happened...
      expect(logA.some((l) => l[0] === 'completed') && logB.some((l) => l[0] === 'completed')).toBe(true); // ...between both
      expect(await finalStats(dbPath)).toEqual({ active: 0, deadLettered: 0, locked: 0 });
    } finally {
      tmp.cleanup();
    }
  });
});
