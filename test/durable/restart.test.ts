/**
 * Durable state survives a devhost restart: two child processes (one FunctionHost per process)
 * run the compiled standalone runner on the same SQLite file, one after the other.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_DIR } from './harness';

const ROOT = path.resolve(__dirname, '../..');
const RUNNER = path.join(ROOT, 'dist/devhost/durable/standalone.js');
let dir: string;
const children: ChildProcess[] = [];

beforeAll(() => {
  const build = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (build.status !== 0) throw new Error(`tsc build failed: ${build.stdout}${build.stderr}`);
  dir = mkdtempSync(path.join(os.tmpdir(), 'durable-restart-'));
}, 130_000);

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function startDevhost(db: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [RUNNER, '--app', path.join(FIXTURE_DIR, 'app.js'), '--db', db], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`devhost did not start: ${stderr}`)), 20_000);
    createInterface({ input: child.stdout! }).once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`devhost exited with ${code}: ${stderr}`)));
  });
  return { url: (JSON.parse(line) as { url: string }).url, child };
}

async function stopDevhost(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

async function statusOf(url: string, id: string): Promise<{ runtimeStatus: string; output: unknown; customStatus: unknown }> {
  const res = await fetch(`${url}/runtime/webhooks/durabletask/instances/${id}`);
  return (await res.json()) as { runtimeStatus: string; output: unknown; customStatus: unknown };
}

async function waitForStatus(url: string, id: string, accept: (s: { runtimeStatus: string; customStatus: unknown }) => boolean) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const s = await statusOf(url, id);
    if (accept(s)) return s;
    if (Date.now() > deadline) throw new Error(`Timed out; last status ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('durable engine across a devhost restart', () => {
  it('continues an orchestration waiting on an event after restarting on the same database', async () => {
    const db = path.join(dir, 'us', 'durable.sqlite');
    const first = await startDevhost(db);
    const started = await fetch(`${first.url}/api/orchestrators/approval`, { method: 'POST', body: '{"order":42}' });
    expect(started.status).toBe(202);
    const { id } = (await started.json()) as { id: string };
    await waitForStatus(first.url, id, (s) => (s.customStatus as { stage?: string } | null)?.stage === 'waiting');
    expect(await stopDevhost(first.child)).toBe(0);

    const second = await startDevhost(db);
    expect(second.url).not.toBe(first.url);
    expect((await statusOf(second.url, id)).runtimeStatus).toBe('Running');
    const raised = await fetch(`${second.url}/runtime/webhooks/durabletask/instances/${id}/raiseEvent/approve`, {
      method: 'POST',
      body: '"after restart"',
    });
    expect(raised.status).toBe(202);
    const done = await waitForStatus(second.url, id, (s) => s.runtimeStatus !== 'Running');
    expect(done).toMatchObject({ runtimeStatus: 'Completed', output: { decision: 'after restart' } });
    expect(await stopDevhost(second.child)).toBe(0);
  }, 60_000);
});
