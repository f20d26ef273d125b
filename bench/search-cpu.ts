/**
 * CPU per LocalSearchIndex.search() call (process.cpuUsage, user + system, µs), the cost a
 * chat request pays in the local hybrid search. Two layouts (bench/lib/search-fixture.ts):
 * - `corpus` (default): the chat benchmark's index, the corpus chunked as the indexer does
 *   (~260 chunks) for one tenant plus 8 `_shared` chunks; queries are the chat benchmark's
 *   questions, tenantIds [tenant, '_shared'], top 5, a synthetic query vector each;
 * - a number (e.g. 50000): bench/search.ts's synthetic index of that many chunks.
 * Modes: hybrid, keyword only, vector only, and hybrid with 3 excluded documents. Each mode
 * runs `rounds` times over the query set after a warm-up; the median and best round are
 * reported. `resultsSha256` hashes every hit (ids, order, scores) of one pass over all modes,
 * so two builds that return the same results print the same hash.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/search-cpu.js [corpus|<chunks>] [rounds]
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import { SHARED_TENANT, type SearchQuery } from '../src/ports/search-index';
import { CHAT_QUESTIONS, corpusSentences, unitVector } from './lib/corpus';
import { prng } from './lib/prng';
import { buildCorpusIndex, buildSyntheticIndex, openTempSearchIndex, QUERY_TENANT } from './lib/search-fixture';
import { machine } from './lib/stats';

const DIMS = 512;

async function main(): Promise<void> {
  const layout = process.argv[2] ?? 'corpus';
  const rounds = Number(process.argv[3] ?? 7);
  const rand = prng(42);
  const { index, remove } = openTempSearchIndex('meridian-bench-search-cpu-', DIMS);
  try {
    let texts: string[];
    let callsPerRound: number;
    if (layout === 'corpus') {
      await buildCorpusIndex(index, rand);
      texts = CHAT_QUESTIONS;
      callsPerRound = 3000;
    } else {
      const sentences = corpusSentences();
      const pick = (): string => sentences[Math.floor(rand() * sentences.length)] as string;
      await buildSyntheticIndex(index, Number(layout), rand, pick);
      texts = Array.from({ length: 100 }, () => pick().split(' ').slice(0, 8).join(' '));
      callsPerRound = 100;
    }
    const vectors = texts.map(() => unitVector(rand, DIMS));
    const tenantIds = [QUERY_TENANT, SHARED_TENANT];
    const excludeDocumentIds = ['no-such-document', 'doc-3', 'medium-scale-architecture.md'];
    const modes: Record<string, (i: number) => SearchQuery> = {
      hybrid: (i) => ({ tenantIds, text: texts[i] as string, vector: vectors[i] as Float32Array, top: 5 }),
      keywordOnly: (i) => ({ tenantIds, text: texts[i] as string, top: 5 }),
      vectorOnly: (i) => ({ tenantIds, text: '', vector: vectors[i] as Float32Array, top: 5 }),
      hybridExcluding3: (i) => ({
        tenantIds,
        text: texts[i] as string,
        vector: vectors[i] as Float32Array,
        top: 5,
        excludeDocumentIds,
      }),
    };

    const hash = createHash('sha256');
    for (const make of Object.values(modes)) {
      for (let i = 0; i < texts.length; i++) hash.update(JSON.stringify(await index.search(make(i))));
    }

    const cpuMicrosPerCall: Record<string, { median: number; best: number }> = {};
    for (const [mode, make] of Object.entries(modes)) {
      const queries = texts.map((_, i) => make(i));
      for (let i = 0; i < Math.min(callsPerRound, 200); i++) await index.search(queries[i % queries.length] as SearchQuery);
      const perRound: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const start = process.cpuUsage();
        for (let i = 0; i < callsPerRound; i++) await index.search(queries[i % queries.length] as SearchQuery);
        const used = process.cpuUsage(start);
        perRound.push((used.user + used.system) / callsPerRound);
      }
      perRound.sort((a, b) => a - b);
      cpuMicrosPerCall[mode] = {
        median: Math.round(perRound[Math.floor(perRound.length / 2)] as number),
        best: Math.round(perRound[0] as number),
      };
    }
    const stats = await index.stats();
    console.log(
      JSON.stringify({
        bench: 'search-cpu',
        machine: machine(),
        loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
        layout,
        chunks: stats.chunks,
        rounds,
        callsPerRound,
        cpuMicrosPerCall,
        resultsSha256: hash.digest('hex').slice(0, 16),
      }),
    );
  } finally {
    remove();
  }
}

void main();
