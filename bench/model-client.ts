/**
 * bench/model-client — CPU per model call through the OpenAI-style adapters, with the `openai`
 * SDK's default transport (`undici`: Node's built-in fetch) against src/adapters/openai/
 * node-http-fetch.ts (`node-http`: node:http keep-alive agents), beside the floor (`bare`: the
 * same calls with http.request and JSON.parse, no SDK).
 *
 * One "request" is what a chat request costs in model calls: `OpenAiCompatibleEmbedder.embed`
 * of the question (512 dimensions) and then `OpenAiCompatibleChatModel.complete` (or `.stream`,
 * drained) of a two-message prompt. The fake OpenAI server answers at once (no model delay)
 * from a child process pinned to core 1, so this process's CPU (process.cpuUsage: user +
 * system, GC included) is the client's alone; run it pinned to core 0. Each mode runs
 * sequentially (one request at a time) and concurrently (CONCURRENCY requests in flight);
 * the variants alternate over ROUNDS rounds, because the machine is shared, and the medians
 * are reported. Prints one JSON line per round and one summary line.
 *
 *   npx tsc -p tsconfig.build.json
 *   taskset -c 0 node dist/bench/model-client.js --requests 2000 --concurrency 32 --rounds 5
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { createNodeHttpFetch } from '../src/adapters/openai/node-http-fetch';
import { OpenAiCompatibleChatModel } from '../src/adapters/openai/openai-chat-model';
import { OpenAiCompatibleEmbedder } from '../src/adapters/openai/openai-embedder';
import type { ChatRequest } from '../src/domain/chat';
import { startFakeOpenAiProcess } from './lib/fake-openai-process';
import { machine } from './lib/stats';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '300' },
  },
});
const REQUESTS = Number(values.requests);
const CONCURRENCY = Number(values.concurrency);
const ROUNDS = Number(values.rounds);
const WARMUP = Number(values.warmup);

type Variant = 'undici' | 'node-http' | 'bare';
type Mode = 'sequential' | 'concurrent' | 'sequential-stream';

const startFake = () => startFakeOpenAiProcess({ core: 1, chatDelayMs: 0, embeddingDelayMs: 0 });

/** One chat request's model calls: the question's embedding, then the answer. */
type Client = (question: string, request: ChatRequest, stream: boolean) => Promise<void>;

function adapterClient(variant: 'undici' | 'node-http', baseURL: string): Client {
  // undici: exactly what the SDK uses when given no fetch (its getDefaultFetch is the global).
  const fetch = variant === 'undici' ? globalThis.fetch : createNodeHttpFetch();
  const embedder = new OpenAiCompatibleEmbedder({ baseURL, model: 'text-embedding-3-small', dimensions: 512, fetch });
  const chat = new OpenAiCompatibleChatModel({ region: 'bench', deployment: 'chat', model: 'gpt-4o-mini', baseURL, fetch });
  return async (question, request, stream) => {
    await embedder.embed([question]);
    if (!stream) {
      await chat.complete(request);
      return;
    }
    let done = false;
    for await (const event of chat.stream(request)) if (event.type === 'done') done = true;
    if (!done) throw new Error('the stream ended without its done event');
  };
}

/**
 * The floor, as bench/chat-bare-server.ts does it: the same two calls with `http.request` on a
 * keep-alive agent and `JSON.parse` (streams: split into `data:` lines, each parsed) — no SDK.
 */
function bareClient(baseURL: string): Client {
  const base = new URL(baseURL);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const post = (path: string, body: unknown, onData: (text: string) => void): Promise<void> =>
    new Promise((resolve, reject) => {
      const data = JSON.stringify(body);
      const req = http.request(
        {
          host: base.hostname,
          port: base.port,
          path: `${base.pathname}${path}`,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
        },
        (res) => {
          res.setEncoding('utf8');
          res.on('data', onData);
          res.on('end', resolve);
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  const json = async (path: string, body: unknown): Promise<unknown> => {
    let text = '';
    await post(path, body, (t) => (text += t));
    return JSON.parse(text) as unknown;
  };
  return async (question, request, stream) => {
    await json('/embeddings', { model: 'text-embedding-3-small', input: [question], dimensions: 512, encoding_format: 'float' });
    const body = { model: 'gpt-4o-mini', messages: request.messages, max_tokens: request.maxTokens, stream };
    if (!stream) {
      await json('/chat/completions', body);
      return;
    }
    let pending = '';
    await post('/chat/completions', { ...body, stream_options: { include_usage: true } }, (t) => {
      const lines = (pending + t).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.startsWith('data: {')) JSON.parse(line.slice(6));
    });
  };
}

function client(variant: Variant, baseURL: string): Client {
  return variant === 'bare' ? bareClient(baseURL) : adapterClient(variant, baseURL);
}

async function oneRequest(c: Client, i: number, stream: boolean): Promise<void> {
  const question = `What does the travel policy say about economy class on long flights? (case ${i})`;
  const request: ChatRequest = {
    messages: [
      { role: 'system', content: 'Answer from the passages only; cite them as [n].' },
      { role: 'user', content: question },
    ],
    maxTokens: 400,
  };
  await c(question, request, stream);
}

async function run(c: Client, mode: Mode, requests: number): Promise<{ cpuUs: number; wallMs: number }> {
  const stream = mode === 'sequential-stream';
  const workers = mode === 'concurrent' ? CONCURRENCY : 1;
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < requests) await oneRequest(c, next++, stream);
    }),
  );
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { cpuUs: cpu.user + cpu.system, wallMs };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

async function main(): Promise<void> {
  const fake = await startFake();
  try {
    const variants: Variant[] = ['undici', 'node-http', 'bare'];
    const modes: Mode[] = ['sequential', 'concurrent', 'sequential-stream'];
    const clients = new Map(variants.map((v) => [v, client(v, fake.url)] as const));
    for (const v of variants) {
      for (const mode of modes) await run(clients.get(v) as Client, mode, WARMUP);
    }
    const results = new Map<string, { cpuUsPerCall: number; callsPerSecond: number }[]>();
    for (let round = 1; round <= ROUNDS; round++) {
      for (const mode of modes) {
        // Alternate which variant goes first, so a burst of other work on the machine does not
        // always land on the same one.
        for (const v of round % 2 ? variants : [...variants].reverse()) {
          const r = await run(clients.get(v) as Client, mode, REQUESTS);
          const calls = REQUESTS * 2;
          const line = {
            bench: 'model-client',
            variant: v,
            mode,
            round,
            requests: REQUESTS,
            calls,
            cpuUsPerCall: Math.round(r.cpuUs / calls),
            cpuUsPerRequest: Math.round(r.cpuUs / REQUESTS),
            callsPerSecond: Math.round(calls / (r.wallMs / 1000)),
            loadavg: (require('node:os') as typeof import('node:os')).loadavg().map((x) => Math.round(x * 100) / 100),
          };
          console.log(JSON.stringify(line));
          const key = `${v} ${mode}`;
          results.set(key, [...(results.get(key) ?? []), line]);
        }
      }
    }
    const summary: Record<string, unknown> = {};
    for (const [key, lines] of results) {
      summary[key] = {
        cpuUsPerCall: median(lines.map((l) => l.cpuUsPerCall)),
        callsPerSecond: median(lines.map((l) => l.callsPerSecond)),
      };
    }
    console.log(
      JSON.stringify({
        bench: 'model-client',
        summary: 'medians',
        requests: REQUESTS,
        concurrency: CONCURRENCY,
        rounds: ROUNDS,
        machine: machine(),
        ...summary,
      }),
    );
  } finally {
    fake.child.kill('SIGTERM');
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
