/**
 * Local embedder throughput (LocalUseEmbedder, Universal Sentence Encoder lite, 512 dims):
 * sentences/s over corpus sentences and chunks/s over the corpus's chunks (400/60 tokens,
 * embedded as heading path + content, like the indexer). Model load time reported apart.
 * Bounded: BENCH sentences (default 640) and all corpus chunks (~260).
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/embedder.js [sentences] [batchSize]
 */
import { performance } from 'node:perf_hooks';
import { countTokens } from '../src/adapters/local/token-counter';
import { LocalUseEmbedder } from '../src/adapters/local/use-embedder';
import { chunkDocument, embeddingText } from '../src/domain/chunking';
import { repairMojibake } from '../src/domain/text';
import { corpusFiles, corpusSentences } from './lib/corpus';
import { machine } from './lib/stats';

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 640);
  const batchSize = Number(process.argv[3] ?? 32);
  const embedder = new LocalUseEmbedder({ batchSize });
  let t0 = performance.now();
  await embedder.check();
  const loadMs = performance.now() - t0;
  await embedder.embed(['warm up the graph once']);

  const sentences = corpusSentences().slice(0, n);
  t0 = performance.now();
  await embedder.embed(sentences);
  const sentenceSeconds = (performance.now() - t0) / 1000;

  const chunks = corpusFiles().flatMap((f) =>
    chunkDocument({ documentId: f.name, version: 1, text: repairMojibake(f.bytes.toString('utf8')) }, countTokens),
  );
  const texts = chunks.map(embeddingText);
  t0 = performance.now();
  await embedder.embed(texts);
  const chunkSeconds = (performance.now() - t0) / 1000;

  console.log(
    JSON.stringify({
      bench: 'embedder',
      machine: machine(),
      model: embedder.model,
      batchSize,
      loadMs: Math.round(loadMs),
      sentences: sentences.length,
      sentencesPerSecond: Math.round((sentences.length / sentenceSeconds) * 10) / 10,
      chunks: chunks.length,
      meanChunkTokens: Math.round(chunks.reduce((s, c) => s + c.tokenCount, 0) / chunks.length),
      chunksPerSecond: Math.round((chunks.length / chunkSeconds) * 10) / 10,
      peakRssKiB: process.resourceUsage().maxRSS,
    }),
  );
}

void main();
