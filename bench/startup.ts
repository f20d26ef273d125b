/**
 * bench/startup — time from `npm start` (dist/devhost/main.js) to the first 200 from
 * `GET /api/healthz` through the front door: global Azurite, one devhost per boundary (each with
 * its own Azurite), the front door. Goal: ≤ 10 s after `npm ci`. Runs N cold starts, each on
 * a fresh data dir, and reports them all.
 *
 *   npm run build && node dist/bench/startup.js [--runs 5]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { machine, summarize } from './lib/stats';

const ROOT = path.resolve(__dirname, '../..');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });

async function once(): Promise<number> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'meridian-bench-start-'));
  const t0 = performance.now();
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/devhost/main.js')], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', MERIDIAN_DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /front door listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
  for (;;) {
    const ok = await fetch(`${url}/api/healthz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const ms = performance.now() - t0;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
  return ms;
}

async function main(): Promise<void> {
  const runs: number[] = [];
  for (let i = 0; i < Number(values.runs); i++) runs.push(Math.round(await once()));
  const s = summarize(runs);
  process.stdout.write(
    `${JSON.stringify({ bench: 'startup', runsMs: runs, ...s, goal: 'healthz 200 within 10,000 ms', met: s.max <= 10_000, machine: machine() })}\n`,
  );
}

void main();
