/**
 * Change-feed delivery lag of the local store at a steady write rate.
 *
 * The writer (this process) upserts into `usage` on an open-loop schedule: write i is due at
 * t0 + i / rate, whatever happened before, and carries that due time. The consumer — by
 * default a SECOND process (`--same-process` runs it in this one on the writer's store
 * object, as devhost wires it, where a write wakes the processor) — runs
 * startChangeFeedProcessor with its defaults (poll interval, batch size) over its own
 * connection to the same database file (so it sees writes only by polling), and records for every item
 * `delivered - due` (so a writer falling behind counts as lag too).
 * Same SQLite pragmas as `npm start` (SqliteDocumentStore defaults).
 *
 *   node dist/bench/change-feed.js [--rate 1000] [--seconds 20] [--same-process]
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadCatalog } from '../src/config';
import {
  DEFAULT_MAX_BATCH_SIZE,
  DEFAULT_POLL_INTERVAL_MS,
  startChangeFeedProcessor,
} from '../src/adapters/local/change-feed-processor';
import { SqliteDocumentStore, SQLITE_PRAGMAS } from '../src/adapters/local/sqlite-document-store';
import { peakRssKiB, summary } from './lib/stats';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

interface ConsumerResult {
  delivered: number;
  distinct: number;
  batches: number;
  lagMs: ReturnType<typeof summary>;
  peakRssKiB: number;
}

const openStore = (file: string): SqliteDocumentStore =>
  new SqliteDocumentStore({ path: file, containers: loadCatalog().topology.containers });

/** Consumes until `expected` distinct items arrived (expected is learnt when the writer ends). */
async function consume(store: SqliteDocumentStore, ready: () => void, expectedTotal: Promise<number>): Promise<ConsumerResult> {
  const lags: number[] = [];
  const seen = new Set<string>();
  let batches = 0;
  let expected = Infinity;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const processor = await startChangeFeedProcessor({
    store,
    container: 'usage',
    leasePrefix: 'bench',
    startFromBeginning: true,
    handler: (batch) => {
      const now = Date.now();
      batches++;
      for (const item of batch) {
        lags.push(now - (item['dueAt'] as number));
        seen.add(item.id);
      }
      if (seen.size >= expected) finish();
    },
  });
  ready();
  expected = await expectedTotal;
  if (seen.size >= expected) finish();
  await done;
  await processor.stop();
  return { delivered: lags.length, distinct: seen.size, batches, lagMs: summary(lags, 1), peakRssKiB: peakRssKiB() };
}

async function write(
  store: SqliteDocumentStore,
  rate: number,
  seconds: number,
): Promise<{ written: number; lateWritesMs: ReturnType<typeof summary> }> {
  const total = Math.round(rate * seconds);
  const late: number[] = [];
  const t0 = Date.now() + 50;
  let i = 0;
  while (i < total) {
    const now = Date.now();
    const due = Math.min(total, Math.floor(((now - t0) * rate) / 1000) + 1);
    while (i < due) {
      const dueAt = t0 + (i * 1000) / rate;
      // One upsert per call and transaction; ids are unique so each write is one feed entry.
      await store.upsert('usage', { id: `evt-${i}`, tenantId: `tenant-${i % 50}`, dueAt, promptTokens: i % 1000 });
      late.push(Date.now() - dueAt);
      i++;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  return { written: total, lateWritesMs: summary(late, 1) };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--consumer') {
    const file = process.argv[3] as string;
    let resolveTotal: (n: number) => void = () => undefined;
    const total = new Promise<number>((resolve) => (resolveTotal = resolve));
    process.on('message', (m: { total?: number }) => {
      if (typeof m.total === 'number') resolveTotal(m.total);
    });
    const store = openStore(file);
    const result = await consume(store, () => process.send?.({ ready: true }), total);
    await store.close();
    process.send?.({ result });
    process.disconnect?.();
    return;
  }

  const rate = arg('rate', 1000);
  const seconds = arg('seconds', 20);
  const sameProcess = process.argv.includes('--same-process');
  const dir = mkdtempSync(path.join(tmpdir(), 'meridian-bench-feed-'));
  const file = path.join(dir, 'us', 'documents.sqlite');
  // Created before the consumer starts, so two processes never race to create the schema.
  const writerStore = openStore(file);
  const guard = setTimeout(
    () => {
      console.error('change-feed bench: timed out');
      process.exit(2);
    },
    (seconds + 60) * 1000,
  );
  try {
    let consumer: Promise<ConsumerResult>;
    let sendTotal: (n: number) => void;
    if (sameProcess) {
      let resolveTotal: (n: number) => void = () => undefined;
      const total = new Promise<number>((resolve) => (resolveTotal = resolve));
      let ready: () => void = () => undefined;
      const isReady = new Promise<void>((resolve) => (ready = resolve));
      // Shares the writer's store object, as devhost does: writes wake the processor at once.
      consumer = consume(writerStore, ready, total);
      sendTotal = resolveTotal;
      await isReady;
    } else {
      const child = fork(__filename, ['--consumer', file], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      consumer = new Promise<ConsumerResult>((resolve, reject) => {
        child.on('message', (m: { result?: ConsumerResult }) => m.result && resolve(m.result));
        child.on('exit', (code) => reject(new Error(`consumer exited with ${code}`)));
      });
      await new Promise<void>((resolve) => child.on('message', (m: { ready?: boolean }) => m.ready && resolve()));
      sendTotal = (n) => child.send({ total: n });
    }
    const writer = await write(writerStore, rate, seconds);
    sendTotal(writer.written);
    const result = await consumer;
    console.log(
      JSON.stringify({
        bench: 'change-feed.lag',
        consumer: sameProcess
          ? 'same process, same store object (wake on write)'
          : 'second process (own SQLite connection, polling)',
        ratePerSecond: rate,
        seconds,
        written: writer.written,
        delivered: result.delivered,
        distinctDelivered: result.distinct,
        batches: result.batches,
        lagMs: result.lagMs,
        writerLateMs: writer.lateWritesMs,
        pollIntervalMs: DEFAULT_POLL_INTERVAL_MS,
        maxBatchSize: DEFAULT_MAX_BATCH_SIZE,
        pragmas: SQLITE_PRAGMAS,
        peakRssKiB: { writer: peakRssKiB(), consumer: result.peakRssKiB },
        node: process.version,
      }),
    );
  } finally {
    clearTimeout(guard);
    await writerStore.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
