/**
 * Point-upsert throughput of SqliteDocumentStore with the settings `npm start` uses
 * (WAL, synchronous=NORMAL, busy_timeout; config/topology.json containers).
 * One upsert per call, each its own transaction: no batching.
 *
 *   node dist/bench/document-store.js [--seconds 10] [--ids 20000]
 */
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { loadCatalog } from '../src/config';
import { SqliteDocumentStore, SQLITE_PRAGMAS } from '../src/adapters/local/sqlite-document-store';
import { peakRssKiB, summary } from './lib/stats';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

async function main(): Promise<void> {
  const seconds = arg('seconds', 10);
  const distinctIds = arg('ids', 20_000);
  const dir = mkdtempSync(path.join(tmpdir(), 'meridian-bench-docstore-'));
  const store = new SqliteDocumentStore({
    path: path.join(dir, 'us', 'documents.sqlite'),
    containers: loadCatalog().topology.containers,
  });
  try {
    const latencies: number[] = [];
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(seconds * 1e9);
    let n = 0;
    for (;;) {
      const t0 = process.hrtime.bigint();
      if (t0 >= deadline) break;
      const k = n % distinctIds;
      await store.upsert('usage', {
        id: `inv-${k}:0`,
        tenantId: `tenant-${k % 50}`,
        userId: `user-${k % 1000}`,
        requestId: `req-${n}`,
        region: 'eastus',
        deployment: 'gpt-4o-mini',
        source: 'chat',
        promptTokens: 100 + (n % 900),
        completionTokens: 50 + (n % 400),
        at: new Date().toISOString(),
      });
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      n++;
    }
    const elapsedS = Number(process.hrtime.bigint() - start) / 1e9;
    console.log(
      JSON.stringify({
        bench: 'document-store.upsert',
        mode: 'one upsert per call and per transaction, sequential',
        pragmas: SQLITE_PRAGMAS,
        seconds: Number(elapsedS.toFixed(2)),
        operations: n,
        distinctIds,
        upsertsPerSecond: Math.round(n / elapsedS),
        latencyMs: summary(latencies),
        peakRssKiB: peakRssKiB(),
        node: process.version,
      }),
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
