/**
 * A fake OpenAI-compatible server on loopback, for the gateway's tests and the chat
 * benchmark. It speaks both URL shapes the `openai` SDK sends:
 *   Azure:  POST [/{account}]/openai/deployments/{deployment}/chat/completions?api-version=…  (and
 *           /embeddings); with the account segment (endpoint `<url>/<account>`) one fake plays
 *           several Azure OpenAI accounts and names the deployment `<account>/<deployment>`
 *   OpenAI: POST /v1/chat/completions, /chat/completions  (deployment = body.model)
 *
 * It keeps state like a real service would, so tests assert on it rather than on mocks:
 * every request is recorded (method, path, query, headers, parsed body, deployment), and each
 * deployment has a queue of scripted responses (429 with retry-after / retry-after-ms, 500,
 * slow answers, streams that break after n deltas, dropped connections) consumed one per
 * request, then a sticky default, then a normal answer after `chatDelayMs`.
 *
 * Standalone (the chat benchmark):
 *   node dist/bench/lib/fake-openai.js --port 0 --chat-delay-ms 200 --embedding-delay-ms 20
 * prints `READY <port>` and serves until SIGINT/SIGTERM.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One scripted response. Everything is optional: `{}` is a normal answer. */
export interface FakeResponse {
  /** Non-200 status: answered with an OpenAI-style error body. */
  status?: number;
  /** Extra response headers, e.g. `{'retry-after': '3'}` or `{'retry-after-ms': '1500'}`. */
  headers?: Record<string, string>;
  /** Error `code` in the error body (e.g. `content_filter`). */
  errorCode?: string;
  /** Waits before answering (replaces the server's default delay). */
  delayMs?: number;
  /** The answer's text (default: `replyText` of the server options). */
  text?: string;
  /** Reported usage (default: estimated from the text lengths). */
  usage?: { promptTokens: number; completionTokens: number };
  finishReason?: string;
  /** Streams only: drop the connection after this many deltas. */
  failAfterDeltas?: number;
  /** Streams only: wait this long between deltas (default: none, just a turn of the event loop). */
  deltaDelayMs?: number;
  /** Drop the connection without answering. */
  destroy?: boolean;
}

export interface FakeRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body: unknown;
  /**
   * From the Azure path (`<account>/<deployment>` when the endpoint was `<url>/<account>`), or
   * the body's `model` for OpenAI-style paths.
   */
  deployment: string | undefined;
  kind: 'chat' | 'embeddings' | 'other';
  stream: boolean;
  /** Date.now() when the request arrived. */
  at: number;
}

export interface FakeOpenAiOptions {
  /** Default 0: a free port. */
  port?: number;
  host?: string;
  /** Delay of a normal chat answer (the benchmark uses 200 ms). */
  chatDelayMs?: number;
  /** Delay of an embeddings answer (the benchmark uses 20 ms). */
  embeddingDelayMs?: number;
  /** Vector size when the request names no `dimensions` (default 1536, text-embedding-3-small). */
  embeddingDimensions?: number;
  /** Record requests (default true; a long benchmark turns it off). */
  record?: boolean;
  /** The text of a normal answer. */
  replyText?: (deployment: string | undefined, body: ChatBody) => string;
  /** Words per streamed delta (default 2). */
  wordsPerDelta?: number;
}

export interface ChatBody {
  model?: string;
  messages?: Array<{ role: string; content: unknown }>;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  [key: string]: unknown;
}

export interface FakeOpenAi {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Every request so far, oldest first (when recording). */
  readonly requests: FakeRequest[];
  /** Queues responses for a deployment (`*`: any deployment), consumed one per request. */
  enqueue(deployment: string, ...responses: FakeResponse[]): void;
  /** The response a deployment gives whenever its queue is empty (undefined: normal answers). */
  setDefault(deployment: string, response: FakeResponse | undefined): void;
  /** Requests of one deployment (and kind). */
  requestsFor(deployment: string, kind?: FakeRequest['kind']): FakeRequest[];
  /** Forgets requests, queues and defaults. */
  reset(): void;
  /** Requests being answered right now. */
  inFlight(): number;
  close(): Promise<void>;
}

function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (typeof (part as { text?: unknown }).text === 'string' ? (part as { text: string }).text : ''))
      .join('');
  }
  return '';
}

/** A deterministic unit vector for a text (xorshift seeded by FNV-1a). */
export function fakeEmbedding(text: string, dimensions: number): Float32Array {
  let seed = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) seed = Math.imul(seed ^ text.charCodeAt(i), 0x01000193) >>> 0;
  const v = new Float32Array(dimensions);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    seed >>>= 0;
    const x = seed / 0xffffffff - 0.5;
    v[i] = x;
    norm += x * x;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < dimensions; i++) v[i] = (v[i] as number) * scale;
  return v;
}

export async function startFakeOpenAi(options: FakeOpenAiOptions = {}): Promise<FakeOpenAi> {
  const host = options.host ?? '127.0.0.1';
  const record = options.record ?? true;
  const wordsPerDelta = options.wordsPerDelta ?? 2;
  const replyText = options.replyText ?? ((deployment) => `This is the fake answer from ${deployment ?? 'the model'}.`);
  const requests: FakeRequest[] = [];
  const queues = new Map<string, FakeResponse[]>();
  const defaults = new Map<string, FakeResponse>();
  const timers = new Set<NodeJS.Timeout>();
  let inFlight = 0;
  let sequence = 0;

  function nextResponse(deployment: string | undefined): FakeResponse {
    for (const key of [deployment ?? '', '*']) {
      const queue = queues.get(key);
      if (queue && queue.length > 0) return queue.shift() as FakeResponse;
    }
    return (deployment !== undefined ? defaults.get(deployment) : undefined) ?? defaults.get('*') ?? {};
  }

  function wait(ms: number, res: http.ServerResponse): Promise<boolean> {
    if (ms <= 0) return Promise.resolve(!res.destroyed);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve(!res.destroyed);
      }, ms);
      timers.add(t);
      res.once('close', () => {
        if (timers.delete(t)) {
          clearTimeout(t);
          resolve(false);
        }
      });
    });
  }

  function sendError(res: http.ServerResponse, r: FakeResponse, status: number): void {
    const body = JSON.stringify({
      error: {
        code: r.errorCode ?? (status === 429 ? '429' : String(status)),
        message: status === 429 ? 'Rate limit is exceeded. Try again later.' : `Fake failure ${status}.`,
        type: status === 429 ? 'rate_limit_exceeded' : 'server_error',
      },
    });
    res.writeHead(status, { 'content-type': 'application/json', ...r.headers }).end(body);
  }

  async function answerChat(req: FakeRequest, res: http.ServerResponse): Promise<void> {
    const r = nextResponse(req.deployment);
    if (!(await wait(r.delayMs ?? options.chatDelayMs ?? 0, res))) return;
    if (r.destroy) {
      res.destroy();
      return;
    }
    const status = r.status ?? 200;
    if (status !== 200) return sendError(res, r, status);
    const body = req.body as ChatBody;
    const text = r.text ?? replyText(req.deployment, body);
    const prompt = (body.messages ?? []).reduce((n, m) => n + 4 + estimateTokens(contentText(m.content)), 3);
    const usage = {
      prompt_tokens: r.usage?.promptTokens ?? prompt,
      completion_tokens: r.usage?.completionTokens ?? estimateTokens(text),
      total_tokens: 0,
    };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    const id = `chatcmpl-fake-${++sequence}`;
    const created = Math.floor(Date.now() / 1000);
    const model = body.model ?? req.deployment ?? 'fake';
    const finish = r.finishReason ?? 'stop';
    if (!req.stream) {
      res.writeHead(200, { 'content-type': 'application/json', ...r.headers }).end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: finish, logprobs: null }],
          usage,
        }),
      );
      return;
    }
    const includeUsage = body.stream_options?.include_usage === true;
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): string =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices, ...(includeUsage ? { usage: null } : {}), ...extra })}\n\n`;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...r.headers });
    res.write(chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]));
    const words = text.match(/\S+\s*/g) ?? [];
    let deltas = 0;
    for (let i = 0; i < words.length; i += wordsPerDelta) {
      if (r.failAfterDeltas !== undefined && deltas >= r.failAfterDeltas) {
        res.destroy();
        return;
      }
      res.write(chunk([{ index: 0, delta: { content: words.slice(i, i + wordsPerDelta).join('') }, finish_reason: null }]));
      deltas += 1;
      // Let the client see deltas as they come, as a real service does.
      await new Promise((resolve) => (r.deltaDelayMs ? setTimeout(resolve, r.deltaDelayMs) : setImmediate(resolve)));
      if (res.destroyed) return;
    }
    if (r.failAfterDeltas !== undefined && deltas >= r.failAfterDeltas) {
      res.destroy();
      return;
    }
    res.write(chunk([{ index: 0, delta: {}, finish_reason: finish }]));
    if (includeUsage) res.write(chunk([], { usage }));
    res.end('data: [DONE]\n\n');
  }

  async function answerEmbeddings(req: FakeRequest, res: http.ServerResponse): Promise<void> {
    const r = nextResponse(req.deployment);
    if (!(await wait(r.delayMs ?? options.embeddingDelayMs ?? 0, res))) return;
    if (r.destroy) {
      res.destroy();
      return;
    }
    const status = r.status ?? 200;
    if (status !== 200) return sendError(res, r, status);
    const body = req.body as { input?: unknown; dimensions?: number; encoding_format?: string; model?: string };
    const inputs = Array.isArray(body.input) ? body.input.map(String) : [String(body.input ?? '')];
    const dims = body.dimensions ?? options.embeddingDimensions ?? 1536;
    const data = inputs.map((text, index) => {
      const v = fakeEmbedding(text, dims);
      return {
        object: 'embedding',
        index,
        embedding:
          body.encoding_format === 'base64'
            ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')
            : Array.from(v),
      };
    });
    const tokens = inputs.reduce((n, t) => n + estimateTokens(t), 0);
    res.writeHead(200, { 'content-type': 'application/json', ...r.headers }).end(
      JSON.stringify({
        object: 'list',
        data,
        model: body.model ?? req.deployment,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      }),
    );
  }

  const server = http.createServer((incoming, res) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (c: Buffer) => chunks.push(c));
    incoming.on('end', () => {
      inFlight += 1;
      res.once('close', () => (inFlight -= 1));
      const url = new URL(incoming.url ?? '/', 'http://fake');
      let body: unknown;
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"invalid JSON"}}');
        return;
      }
      // An optional first segment stands for an Azure OpenAI account: endpoint `<url>/<account>`.
      const azure = /^(?:\/([^/]+))?\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)$/.exec(url.pathname);
      const plain = /^(?:\/v1)?\/(chat\/completions|embeddings)$/.exec(url.pathname);
      const operation = azure?.[3] ?? plain?.[1];
      const model = (body as { model?: unknown } | undefined)?.model;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(incoming.headers))
        if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const request: FakeRequest = {
        method: incoming.method ?? 'GET',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers,
        body,
        deployment: azure
          ? `${azure[1] ? `${azure[1]}/` : ''}${decodeURIComponent(azure[2] as string)}`
          : typeof model === 'string'
            ? model
            : undefined,
        kind: operation === 'chat/completions' ? 'chat' : operation === 'embeddings' ? 'embeddings' : 'other',
        stream: (body as { stream?: unknown } | undefined)?.stream === true,
        at: Date.now(),
      };
      if (record) requests.push(request);
      if (request.method !== 'POST' || request.kind === 'other') {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found","code":"404"}}');
        return;
      }
      const work = request.kind === 'chat' ? answerChat(request, res) : answerEmbeddings(request, res);
      work.catch(() => res.destroy());
    });
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: options.port ?? 0, host, backlog: 8192 }, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://${host}:${port}`,
    port,
    requests,
    enqueue(deployment, ...responses) {
      const queue = queues.get(deployment) ?? [];
      queue.push(...responses);
      queues.set(deployment, queue);
    },
    setDefault(deployment, response) {
      if (response === undefined) defaults.delete(deployment);
      else defaults.set(deployment, response);
    },
    requestsFor(deployment, kind) {
      return requests.filter((r) => r.deployment === deployment && (kind === undefined || r.kind === kind));
    },
    reset() {
      requests.length = 0;
      queues.clear();
      defaults.clear();
    },
    inFlight: () => inFlight,
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function argument(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

if (require.main === module) {
  const numberArg = (name: string): number | undefined => {
    const v = argument(name);
    return v === undefined ? undefined : Number(v);
  };
  void startFakeOpenAi({
    port: numberArg('port') ?? 0,
    host: argument('host') ?? '127.0.0.1',
    chatDelayMs: numberArg('chat-delay-ms') ?? 200,
    embeddingDelayMs: numberArg('embedding-delay-ms') ?? 20,
    record: false,
  }).then((fake) => {
    process.stdout.write(`READY ${fake.port}\n`);
    const stop = (): void => void fake.close().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
