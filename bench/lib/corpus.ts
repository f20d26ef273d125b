/** The sample corpus for retrieval benchmarks, and a seeded PRNG so runs are comparable. */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const CORPUS_DIR = process.env['MERIDIAN_CORPUS_DIR'] ?? '/work/shared/corpus';

export function corpusFiles(): { name: string; bytes: Buffer }[] {
  return readdirSync(CORPUS_DIR)
    .filter((f) => f.endsWith('.md') && f !== 'README.md')
    .sort()
    .map((name) => ({ name, bytes: readFileSync(path.join(CORPUS_DIR, name)) }));
}

/** Prose sentences of the corpus (no table rows, code or diagrams), 5–60 words each. */
export function corpusSentences(): string[] {
  const out: string[] = [];
  for (const f of corpusFiles()) {
    for (const line of f.bytes.toString('utf8').split('\n')) {
      if (/^\s*(\||```|#|[│┌└├─])/.test(line)) continue;
      for (const s of line.split(/(?<=[.!?])\s+/)) {
        const words = s
          .replace(/[*_`#>-]+/g, ' ')
          .trim()
          .split(/\s+/);
        if (words.length >= 5 && words.length <= 60) out.push(words.join(' '));
      }
    }
  }
  return out;
}

/** A random unit vector (synthetic: KNN cost does not depend on the values). */
export function unitVector(rand: () => number, dims: number): Float32Array {
  const v = new Float32Array(dims);
  let n = 0;
  for (let i = 0; i < dims; i++) {
    const x = rand() * 2 - 1;
    v[i] = x;
    n += x * x;
  }
  const s = 1 / Math.sqrt(n);
  for (let i = 0; i < dims; i++) v[i] = (v[i] as number) * s;
  return v;
}

/** The questions the chat benchmark asks (about the corpus), also the queries of the search CPU benchmark. */
export const CHAT_QUESTIONS = [
  'How many stores does the retail client want to roll out to',
  'What is the monthly cost estimate of the medium scale architecture',
  'How does failover work between regions',
  'What rate limiting does API Management apply per user',
  'How long is the response cache TTL',
  'Which Cosmos DB consistency level is recommended',
  'What causes vector search latency at scale',
  'How is capacity planned for peak traffic',
  'What are the top scaling risks',
  'How are tokens per minute quotas handled',
  'What does the POC architecture include',
  'How is the ERP system made cloud native',
];
