/**
 * Search latency at the SearchIndex port: LocalSearchIndex with ≥ 50,000 chunks, hybrid
 * queries (BM25 over corpus sentences + KNN over 512-dim vectors, RRF), top 5.
 * The querying tenant owns 20% of the chunks, 20 other tenants the rest; queries ask for
 * [tenant, '_shared'] like /api/search. Chunk texts are 6–12 sentences sampled from the
 * corpus; vectors are synthetic unit vectors and query vectors precomputed (KNN cost does not
 * depend on their values). Bounded: BENCH_CHUNKS (50,000) and BENCH_QUERIES (300).
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/search.js [chunks] [queries]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { LocalSearchIndex } from '../src/adapters/local/search-index';
import { SHARED_TENANT } from '../src/ports/search-index';
import { corpusSentences, unitVector } from './lib/corpus';
import { prng } from './lib/prng';
import { buildSyntheticIndex } from './lib/search-fixture';
import { machine, summarize } from './lib/stats';

const DIMS = 512;

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 50_000);
  const queries = Number(process.argv[3] ?? 300);
  const rand = prng(42);
  const sentences = corpusSentences();
  const pick = (): string => sentences[Math.floor(rand() * sentences.length)] as string;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meridian-bench-search-'));
  const file = LocalSearchIndex.pathFor(dir, 'us', 'meridian-eastus');
  const index = new LocalSearchIndex({ file, name: 'meridian-eastus', dimensions: DIMS });
  try {
    const buildStart = performance.now();
    const { tenants } = await buildSyntheticIndex(index, total, rand, pick);
    const buildSeconds = (performance.now() - buildStart) / 1000;
    const stats = await index.stats();

    const qs = Array.from({ length: queries + 20 }, () => ({
      text: pick().split(' ').slice(0, 8).join(' '),
      vector: unitVector(rand, DIMS),
    }));
    const latencies: number[] = [];
    const hitCounts: number[] = [];
    for (let i = 0; i < qs.length; i++) {
      const q = qs[i] as { text: string; vector: Float32Array };
      const t0 = performance.now();
      const hits = await index.search({
        tenantIds: [tenants[0] as string, SHARED_TENANT],
        text: q.text,
        vector: q.vector,
        top: 5,
      });
      const ms = performance.now() - t0;
      if (i >= 20) {
        latencies.push(ms);
        hitCounts.push(hits.length);
      }
    }
    const keywordOnly: number[] = [];
    const vectorOnly: number[] = [];
    for (const q of qs.slice(20, 120)) {
      let t0 = performance.now();
      await index.search({ tenantIds: [tenants[0] as string, SHARED_TENANT], text: q.text, top: 5 });
      keywordOnly.push(performance.now() - t0);
      t0 = performance.now();
      await index.search({ tenantIds: [tenants[0] as string, SHARED_TENANT], text: '', vector: q.vector, top: 5 });
      vectorOnly.push(performance.now() - t0);
    }
    const hybrid = summarize(latencies);
    console.log(
      JSON.stringify({
        bench: 'search',
        machine: machine(),
        chunks: stats.chunks,
        documents: stats.documents,
        tenants: tenants.length,
        queryingTenantShare: 0.2,
        dimensions: DIMS,
        buildSeconds: Math.round(buildSeconds * 10) / 10,
        buildChunksPerSecond: Math.round(total / buildSeconds),
        fileMiB: Math.round(statSync(file).size / 2 ** 20),
        queries,
        hybridMs: hybrid,
        keywordOnlyMs: summarize(keywordOnly),
        vectorOnlyMs: summarize(vectorOnly),
        meanHits: hitCounts.reduce((a, b) => a + b, 0) / hitCounts.length,
        goalP95Ms: 50,
        pass: hybrid.p95 <= 50,
        peakRssKiB: process.resourceUsage().maxRSS,
      }),
    );
  } finally {
    index.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
