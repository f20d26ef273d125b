/**
 * Local Service Bus benchmark: end-to-end throughput and delivery latency of `index-sync`
 * through the real topology filters and the subscription pump, with the defaults
 * `npm start` uses (same pragmas, same pump poll interval and concurrency).
 *
 * A worker thread (its own SQLite connection and event loop, like another devhost
 * process) publishes one message per `publish` call — one transaction each, no batching.
 * The main thread runs the pump on `meridian-eastus-indexer`. Every message matches it
 * (targetRegion alternates 'us' and 'all', so filters really run and fan out to 2 or 4
 * subscriptions). Bounded by BENCH_MESSAGES (20,000) and BENCH_SECONDS (30).
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/bus.js
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import {
  DEFAULT_PUMP_MAX_CONCURRENT,
  DEFAULT_PUMP_POLL_INTERVAL_MS,
  ensureTopology,
  LocalServiceBus,
  startSubscriptionPump,
} from '../src/adapters/local/service-bus';
import { findConfigDir, loadCatalog } from '../src/config';

const TOPIC = 'index-sync';
const SUBSCRIPTION = 'meridian-eastus-indexer';
const systemClock = { now: () => Date.now() };
/** Wall-clock milliseconds with sub-millisecond precision, comparable across threads. */
const nowMs = (): number => performance.timeOrigin + performance.now();

interface WorkerInput {
  dbPath: string;
  messages: number;
  deadline: number;
}

async function publisher(input: WorkerInput): Promise<void> {
  const bus = new LocalServiceBus({ path: input.dbPath, clock: systemClock });
  let sent = 0;
  const started = nowMs();
  for (let i = 0; i < input.messages && nowMs() < input.deadline; i++) {
    const targetRegion = i % 2 === 0 ? 'us' : 'all';
    await bus.publish(TOPIC, {
      messageId: `upsert:doc-${i}@1`,
      body: {
        schema: 1,
        op: 'upsert',
        documentId: `doc-${i}`,
        version: 1,
        targetRegion,
        blob: { account: 'devstoreaccount1', container: 'documents', name: `doc-${i}` },
        etag: '0x8DC0000000000',
        tier: 'upload',
        contentType: 'application/pdf',
        occurredAt: new Date().toISOString(),
        sentAt: nowMs(),
      },
      applicationProperties: { targetRegion, tier: 'upload' },
      subject: 'upsert',
      contentType: 'application/json',
    });
    sent++;
  }
  const seconds = (nowMs() - started) / 1000;
  await bus.close();
  parentPort?.postMessage({ sent, publishSeconds: seconds });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round((sorted[Math.max(0, idx)] as number) * 100) / 100;
}

async function main(): Promise<void> {
  const messages = Number(process.argv[2] ?? 20_000);
  const seconds = Number(process.argv[3] ?? 30);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meridian-bench-bus-'));
  const dbPath = path.join(dir, 'bus.sqlite');
  try {
    const bus = new LocalServiceBus({ path: dbPath, clock: systemClock });
    await ensureTopology(bus, loadCatalog(findConfigDir()).topology);

    const latencies: number[] = [];
    const seen = new Set<string>();
    let lastDelivery = 0;
    let resolveAll!: () => void;
    const allDelivered = new Promise<void>((r) => (resolveAll = r));
    let expected = messages;
    const pump = startSubscriptionPump({
      bus,
      topic: TOPIC,
      subscription: SUBSCRIPTION,
      handler: (m) => {
        const body = m.body as { sentAt: number };
        if (!seen.has(m.messageId)) {
          seen.add(m.messageId);
          latencies.push(nowMs() - body.sentAt);
        }
        lastDelivery = nowMs();
        if (seen.size >= expected) resolveAll();
      },
    });

    const started = nowMs();
    const deadline = started + seconds * 1000;
    const worker = new Worker(__filename, { workerData: { dbPath, messages, deadline } satisfies WorkerInput });
    const published = await new Promise<{ sent: number; publishSeconds: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expected = published.sent;
    if (seen.size >= expected) resolveAll();
    const timeout = new Promise<void>((r) => setTimeout(r, Math.max(0, deadline - nowMs()) + 5000).unref());
    await Promise.race([allDelivered, timeout]);
    await pump.stop();
    const stats = await bus.stats(TOPIC, SUBSCRIPTION);
    await bus.close();

    latencies.sort((a, b) => a - b);
    const e2eSeconds = (lastDelivery - started) / 1000;
    const result = {
      bench: 'local-service-bus',
      messages: published.sent,
      delivered: seen.size,
      publishMsgsPerSec: Math.round(published.sent / published.publishSeconds),
      endToEndMsgsPerSec: Math.round(seen.size / e2eSeconds),
      latencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99) },
      peakRssKiB: process.resourceUsage().maxRSS,
      leftInSubscription: stats.active,
      pump: { pollIntervalMs: DEFAULT_PUMP_POLL_INTERVAL_MS, maxConcurrent: DEFAULT_PUMP_MAX_CONCURRENT },
      node: process.version,
      cpus: os.cpus().length,
    };
    console.log(JSON.stringify(result));
    if (seen.size < published.sent) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMainThread) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
} else {
  publisher(workerData as WorkerInput).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
