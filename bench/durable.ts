/**
 * Durable engine benchmark: 1,000 concurrent instances, each 5 no-op activities and one 1 s
 * timer, on the system clock. Prints one JSON line.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/durable.js [instances]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDurableEngine } from '../devhost/durable';
import { FunctionHost } from '../devhost/host';
import { SystemClock } from '../devhost/virtual-clock';

const ROOT = path.resolve(__dirname, '../..');
const INSTANCES = Number(process.argv[2] ?? 1000);
const LIMIT_MS = 30_000;

interface Run {
  completed: number;
  failed: number;
  totalMs: number;
  stats: ReturnType<Awaited<ReturnType<typeof startDurableEngine>>['stats']>;
}

async function run(host: FunctionHost, instances: number, maxConcurrency: number): Promise<Run> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'durable-bench-'));
  const durable = await startDurableEngine({
    host,
    dbFile: path.join(dir, 'durable.sqlite'),
    clock: new SystemClock(),
    region: 'eastus',
    taskHubName: 'bench',
    baseUrl: () => 'http://127.0.0.1:7071',
    maxConcurrency,
  });
  const started = performance.now();
  for (let i = 0; i < instances; i++) durable.engine.startNew('bench', `eastus-bench-${i}`, i);
  let completed = 0;
  let failed = 0;
  while (performance.now() - started < LIMIT_MS * 2) {
    const s = durable.stats();
    completed = s.instances['Completed'] ?? 0;
    failed = s.instances['Failed'] ?? 0;
    if (completed + failed >= instances) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const totalMs = performance.now() - started;
  const stats = durable.stats();
  await durable.stop();
  rmSync(dir, { recursive: true, force: true });
  return { completed, failed, totalMs, stats };
}

const ms = (n: number) => Number(n.toFixed(3));

async function main(): Promise<void> {
  const entry = path.join(ROOT, 'bench/durable-app.js');
  const host = new FunctionHost({ appDir: path.dirname(entry) });
  await host.load([entry]);
  // The load test: every instance at once, default concurrency (32 invocations in flight).
  const load = await run(host, INSTANCES, 32);
  // Engine overhead per episode without queueing behind other invocations: one at a time.
  const isolated = await run(host, 100, 1);
  const result = {
    bench: 'durable',
    instances: INSTANCES,
    completed: load.completed,
    failed: load.failed,
    totalMs: Math.round(load.totalMs),
    withinLimit: load.completed === INSTANCES && load.totalMs <= LIMIT_MS,
    episodes: load.stats.episodes,
    activities: load.stats.activities,
    timersFired: load.stats.timersFired,
    /** One replay + applying its actions + its commit, measured with one invocation at a time. */
    episodeOverheadMs: {
      p50: ms(isolated.stats.episodeMs.p50),
      p99: ms(isolated.stats.episodeMs.p99),
      samples: isolated.stats.episodeMs.count,
    },
    /** The same, measured under the load test (includes waiting behind the other 31 invocations). */
    episodeLatencyUnderLoadMs: { p50: ms(load.stats.episodeMs.p50), p99: ms(load.stats.episodeMs.p99) },
    maxRssKiB: process.resourceUsage().maxRSS,
    node: process.version,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(result.withinLimit ? 0 : 1);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
