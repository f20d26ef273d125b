/**
 * Chunking + indexing throughput, embedding excluded: the corpus is extracted
 * (LocalTextExtractor, markdown), chunked (400/60 tokens, o200k_base) and upserted into a
 * LocalSearchIndex with precomputed synthetic 512-dim unit vectors, ROUNDS times (each round
 * a new document version of every file, so the index grows). Reports MB/s of source text
 * for chunking alone and for extract + chunk + upsert.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/chunking.js [rounds]
 */
import { toIndexedChunk } from '../src/app/indexer';
import { performance } from 'node:perf_hooks';
import { LocalTextExtractor } from '../src/adapters/local/text-extractor';
import { countTokens } from '../src/adapters/local/token-counter';
import { chunkDocument } from '../src/domain/chunking';
import { corpusFiles, unitVector } from './lib/corpus';
import { prng } from './lib/prng';
import { openTempSearchIndex } from './lib/search-fixture';
import { machine } from './lib/stats';

const DIMS = 512;

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 10);
  const files = corpusFiles();
  const bytesPerRound = files.reduce((s, f) => s + f.bytes.length, 0);
  const rand = prng(7);
  const vectors = Array.from({ length: 1024 }, () => unitVector(rand, DIMS));
  const extractor = new LocalTextExtractor();
  const { index, remove } = openTempSearchIndex('meridian-bench-chunking-', DIMS);
  try {
    // Chunking alone (extract + chunk).
    let chunks = 0;
    let t0 = performance.now();
    for (let r = 0; r < rounds; r++) {
      for (const f of files) {
        const { text, format } = await extractor.extract(f.bytes, 'text/markdown');
        chunks += chunkDocument({ documentId: f.name, version: r + 1, text }, countTokens, { format }).length;
      }
    }
    const chunkSeconds = (performance.now() - t0) / 1000;

    // Extract + chunk + upsert (+ delete the previous version, as the indexer does).
    let indexed = 0;
    t0 = performance.now();
    for (let r = 0; r < rounds; r++) {
      for (const f of files) {
        const { text, format } = await extractor.extract(f.bytes, 'text/markdown');
        const cs = chunkDocument({ documentId: `doc-${r}-${f.name}`, version: 1, text }, countTokens, { format });
        await index.upsertChunks(
          cs.map((c, i) =>
            toIndexedChunk(
              c,
              { tenantId: r % 2 ? 'tenant-acme-corp' : 'tenant-globex-intl', documentName: f.name, tier: 'kb', etag: '0x8DC' },
              vectors[i % vectors.length] as Float32Array,
            ),
          ),
        );
        indexed += cs.length;
      }
    }
    const indexSeconds = (performance.now() - t0) / 1000;
    const mb = (bytesPerRound * rounds) / 1e6;
    console.log(
      JSON.stringify({
        bench: 'chunking',
        machine: machine(),
        rounds,
        sourceMB: Math.round(mb * 100) / 100,
        chunks: chunks,
        chunkingMBps: Math.round((mb / chunkSeconds) * 100) / 100,
        chunkingChunksPerSecond: Math.round(chunks / chunkSeconds),
        chunkAndIndexMBps: Math.round((mb / indexSeconds) * 100) / 100,
        chunkAndIndexChunksPerSecond: Math.round(indexed / indexSeconds),
        peakRssKiB: process.resourceUsage().maxRSS,
      }),
    );
  } finally {
    remove();
  }
}

void main();
