/**
 * bench/upload-to-searchable — time from `POST /api/documents` to the first `/api/search` hit
 * on the primary index, through the whole `npm start` system (front door, devhost, Azurite
 * blob trigger, local Service Bus, indexers with the local embedder, SQLite indexes).
 * 100 documents of ~5 KB (corpus sentences plus one unique word each), tier `upload`, uploaded
 * at a steady rate that stays under half the local embedder's measured throughput.
 * Goal: p95 ≤ 2 s.
 *
 *   npm run build && node dist/bench/upload-to-searchable.js [--docs 100] [--rate 1]
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { mintDevToken } from '../devhost/token';
import { machine, peakRssMiB, peakRssOfPid, summarize } from './lib/stats';
import { processesMentioning, ROOT, startSystem } from './lib/system';

const { values } = parseArgs({
  options: {
    docs: { type: 'string', default: '100' },
    rate: { type: 'string', default: '1' },
    size: { type: 'string', default: '5000' },
  },
});
const DOCS = Number(values.docs);
const RATE = Number(values.rate);
const SIZE = Number(values.size);

function corpusSentences(): string[] {
  const dir = path.resolve(ROOT, '../shared/corpus');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.md') && f !== 'README.md')
    .flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split(/(?<=[.!?])\s+/))
    .map((s) => s.replace(/\s+/g, ' ').trim())
    .filter((s) => s.length > 40 && s.length < 300 && !/[|`#]/.test(s));
}

function makeDocument(i: number, sentences: string[]): { marker: string; text: string } {
  const marker = `zq${i.toString(36)}x${(i * 7919).toString(36)}`;
  const parts = [`# Capacity note ${i}`, `The ${marker} runbook covers this note.`];
  let k = i * 13;
  while (parts.join(' ').length < SIZE) parts.push(sentences[k++ % sentences.length] as string);
  return { marker, text: parts.join('\n\n') };
}

async function main(): Promise<void> {
  const system = await startSystem({ MERIDIAN_SERVED_REGIONS: 'eastus,westus2' });
  const url = system.url;
  const token = `Bearer ${await mintDevToken({ tenant: 'tenant-acme-corp', user: 'bench' })}`;
  const sentences = corpusSentences();
  const latencies: number[] = [];
  let errors = 0;
  let chunks = 0;
  const started = performance.now();

  const one = async (i: number, scheduledAt: number) => {
    const { marker, text } = makeDocument(i, sentences);
    const res = await fetch(`${url}/api/documents?name=note-${i}.md&tier=upload`, {
      method: 'POST',
      headers: { authorization: token, 'content-type': 'text/markdown' },
      body: text,
    });
    if (res.status !== 202) {
      errors++;
      return;
    }
    const { documentId } = (await res.json()) as { documentId: string };
    const deadline = scheduledAt + 60_000;
    while (performance.now() < deadline) {
      const s = await fetch(`${url}/api/search?q=${marker}&top=3`, { headers: { authorization: token } });
      const body = (await s.json()) as { results?: { documentId: string }[] };
      if (body.results?.some((r) => r.documentId === documentId)) {
        latencies.push(performance.now() - scheduledAt);
        const d = (await (await fetch(`${url}/api/documents/${documentId}`, { headers: { authorization: token } })).json()) as {
          chunks: number;
        };
        chunks += d.chunks;
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    errors++;
  };

  const pending: Promise<void>[] = [];
  for (let i = 0; i < DOCS; i++) {
    const at = started + (i * 1000) / RATE;
    const wait = at - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(one(i, at));
  }
  await Promise.all(pending);
  const elapsedS = (performance.now() - started) / 1000;
  const rss = processesMentioning(system.dataDir, 'boundary.js').map((pid) => peakRssOfPid(pid) ?? 0);
  await system.stop();
  const s = summarize(latencies);
  process.stdout.write(
    `${JSON.stringify({
      bench: 'upload-to-searchable',
      documents: DOCS,
      docBytes: SIZE,
      uploadRatePerSecond: RATE,
      chunksIndexed: chunks,
      chunksPerSecondOffered: Math.round((chunks / elapsedS) * 100) / 100,
      latencyMs: s,
      errors,
      goal: 'p95 <= 2000 ms',
      met: s.p95 <= 2000 && errors === 0,
      boundaryProcessPeakRssMiB: rss,
      loadGeneratorPeakRssMiB: peakRssMiB(),
      machine: machine(),
    })}\n`,
  );
}

void main();
