/**
 * bench/startup — time from `npm start` (dist/devhost/main.js) to the first 200 from
 * `GET /api/healthz` through the front door: global Azurite, one devhost per boundary (each with
 * its own Azurite), the front door. Goal: ≤ 10 s after `npm ci`. Runs N cold starts, each on
 * a fresh data dir, and reports them all.
 *
 *   npm run build && node dist/bench/startup.js [--runs 5]
 */
import { parseArgs } from 'node:util';
import { machine, summarize } from './lib/stats';
import { startSystem } from './lib/system';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });

async function once(): Promise<number> {
  const t0 = performance.now();
  const system = await startSystem();
  for (;;) {
    const ok = await fetch(`${system.url}/api/healthz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const ms = performance.now() - t0;
  await system.stop();
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
