/**
 * Usage-ledger benchmark on the local store, wired as devhost wires it (one process, the
 * processor on the writer's store object, so a write wakes it), with the real
 * `createUsageLedger` merge (markers + If-Match ledger per transactional batch) and
 * `startChangeFeedProcessor` defaults (batch 100, poll 50 ms).
 *
 * 1. Throughput: N events written one per `upsert` call (as chat writes them), then the
 *    ledger processor starts from the beginning; merged events/s = N / time to drain.
 * 2. Lag at a steady rate: events written open-loop (event i due at t0 + i/rate) while the
 *    processor runs; lag = time its merge committed − due time (a writer falling behind
 *    counts as lag too).
 *
 *   node dist/bench/ledger.js [--events 20000] [--rate 1000] [--seconds 20] [--tenants 10]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { startChangeFeedProcessor } from '../src/adapters/local/change-feed-processor';
import { SqliteDocumentStore } from '../src/adapters/local/sqlite-document-store';
import { createTenantDirectory } from '../src/app/auth';
import { createJsonLogger } from '../src/app/logging';
import { createUsageLedger, ledgerIdOf, type LedgerDocument } from '../src/app/usage-ledger';
import { loadCatalog } from '../src/config';
import type { Item } from '../src/ports/document-store';
import { peakRssKiB, summary } from './lib/stats';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

const N = arg('events', 20_000);
const RATE = arg('rate', 1000);
const SECONDS = arg('seconds', 20);
const TENANTS = arg('tenants', 10);
const clock = { now: () => Date.now() };

function event(phase: string, i: number): Item {
  return {
    id: `${phase}-inv${i}:0`,
    tenantId: `bench-tenant-${i % TENANTS}`,
    userId: 'u',
    requestId: `r${i}`,
    region: i % 2 ? 'eastus' : 'westus2',
    deployment: i % 3 ? 'gpt-4o-eastus' : 'o3-mini',
    source: 'chat',
    promptTokens: 100 + (i % 50),
    completionTokens: 20 + (i % 7),
    at: '2030-01-15T00:00:00.000Z',
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-ledger-'));
  try {
    const store = new SqliteDocumentStore({
      path: path.join(dir, 'documents.sqlite'),
      containers: loadCatalog().topology.containers,
      clock,
    });
    const ledger = createUsageLedger({
      documents: store,
      clock,
      logger: createJsonLogger({ clock, level: 'error', sink: (l) => process.stderr.write(`${l}\n`) }),
      directory: createTenantDirectory([], 'ops'),
      config: { boundary: 'us', region: 'eastus' },
    });

    // 1. throughput
    const w0 = performance.now();
    for (let i = 0; i < N; i++) await store.upsert('usage', event('t', i));
    const writeSeconds = (performance.now() - w0) / 1000;
    let merged = 0;
    let done: () => void = () => undefined;
    const drained = new Promise<void>((r) => (done = r));
    const m0 = performance.now();
    const p1 = await startChangeFeedProcessor({
      store,
      container: 'usage',
      leasePrefix: 'bench-throughput',
      startFromBeginning: true,
      handler: async (batch) => {
        merged += (await ledger.merge(batch)).applied;
        if (merged >= N) done();
      },
    });
    await drained;
    const mergeSeconds = (performance.now() - m0) / 1000;
    await p1.stop();
    let total = 0;
    for (let t = 0; t < TENANTS; t++)
      total += (await store.read<LedgerDocument>('usage', `bench-tenant-${t}`, ledgerIdOf('2030-01')))?.events ?? 0;
    if (total !== N) throw new Error(`ledger holds ${total} events, expected ${N}`);

    // 2. lag at a steady rate
    const due = new Map<string, number>();
    const lags: number[] = [];
    const count = Math.round(RATE * SECONDS);
    let finish: () => void = () => undefined;
    const all = new Promise<void>((r) => (finish = r));
    const p2 = await startChangeFeedProcessor({
      store,
      container: 'usage',
      leasePrefix: 'bench-lag',
      startFromBeginning: false,
      handler: async (batch) => {
        await ledger.merge(batch);
        const now = performance.now();
        for (const d of batch) {
          const t = due.get(d.id);
          if (t !== undefined) {
            lags.push(now - t);
            due.delete(d.id);
          }
        }
        if (lags.length >= count) finish();
      },
    });
    const t0 = performance.now() + 10;
    for (let i = 0; i < count; i++) {
      const dueAt = t0 + (i * 1000) / RATE;
      const wait = dueAt - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const e = event('l', i);
      due.set(e.id, dueAt);
      await store.upsert('usage', e);
    }
    await Promise.race([all, new Promise((r) => setTimeout(r, 60_000).unref())]);
    await p2.stop();
    await store.close();

    const result = {
      machine: { cores: cpus().length, node: process.version },
      throughput: {
        events: N,
        tenants: TENANTS,
        writesPerSecond: Math.round(N / writeSeconds),
        mergedPerSecond: Math.round(N / mergeSeconds),
        mergeSeconds: Number(mergeSeconds.toFixed(2)),
      },
      steady: { rate: RATE, seconds: SECONDS, delivered: lags.length, lagMs: summary(lags, 1) },
      peakRssKiB: peakRssKiB(),
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
