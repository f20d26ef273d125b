/**
 * createNodeHttpFetch: the fetch behaviour the `openai` SDK relies on (requests, buffered and
 * streamed answers, aborts, network failures, keep-alive), first against small servers of
 * each test's own, then through the SDK against the fake OpenAI server, where what counts is
 * the SDK error each failure becomes.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIUserAbortError, RateLimitError } from 'openai';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createNodeHttpFetch } from '../../../src/adapters/openai/node-http-fetch';
import { OpenAiCompatibleChatModel } from '../../../src/adapters/openai/openai-chat-model';
import { OpenAiCompatibleEmbedder } from '../../../src/adapters/openai/openai-embedder';
import { AzureOpenAiChatModel } from '../../../src/adapters/azure/azure-openai-chat-model';
import { AzureOpenAiEmbedder } from '../../../src/adapters/azure/azure-openai-embedder';
import { appErrorOf } from '../../helpers/errors';
import { useFakeOpenAi } from '../../helpers/fake-openai';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface TestServer {
  url: string;
  seen: Seen[];
  connections: () => number;
  close: () => Promise<void>;
}

const servers: TestServer[] = [];

/** A loopback server answering with `handler`, recording requests and counting TCP connections. */
async function serve(handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void): Promise<TestServer> {
  const seen: Seen[] = [];
  let connections = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  server.on('connection', () => (connections += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const s: TestServer = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  servers.push(s);
  return s;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/** Resolves with `p`, or rejects after `ms` (so a buffering bug fails the test instead of hanging it). */
function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} did not arrive within ${ms} ms`)), ms)),
  ]);
}

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('createNodeHttpFetch', () => {
  it('sends method, headers and body as given, with a content-length and no accept-encoding of its own', async () => {
    const server = await serve((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    const fetch = createNodeHttpFetch();
    await fetch(`${server.url}/v1/chat/completions?api-version=x`, {
      method: 'post',
      headers: new Headers({ 'Content-Type': 'application/json', 'X-Stainless-Retry-Count': '0' }),
      body: '{"a":"é"}',
    });
    await fetch(`${server.url}/bytes`, { method: 'PUT', headers: { 'x-one': '1' }, body: new Uint8Array([1, 2, 3]) });
    await fetch(new URL(`${server.url}/get`));
    const [post, put, get] = server.seen;
    expect(post).toMatchObject({ method: 'POST', url: '/v1/chat/completions?api-version=x', body: '{"a":"é"}' });
    expect(post?.headers).toMatchObject({
      'content-type': 'application/json',
      'x-stainless-retry-count': '0',
      'content-length': String(Buffer.byteLength('{"a":"é"}')),
    });
    expect(post?.headers['accept-encoding']).toBeUndefined();
    expect(put).toMatchObject({ method: 'PUT', body: '\u0001\u0002\u0003' });
    expect(put?.headers).toMatchObject({ 'x-one': '1', 'content-length': '3' });
    expect(get?.method).toBe('GET');
    expect(get?.headers['content-length']).toBeUndefined();
  });

  it('a JSON answer: a real Response with status, headers, url, and a body readable once', async () => {
    const server = await serve((_req, res) =>
      res.writeHead(201, 'Created', { 'content-type': 'application/json', 'x-request-id': 'r1' }).end('{"ok":true,"n":[1,2]}'),
    );
    const url = `${server.url}/thing`;
    const response = await createNodeHttpFetch()(url, { method: 'POST', body: '{}' });
    expect(response).toBeInstanceOf(Response);
    expect(response).toMatchObject({ status: 201, statusText: 'Created', ok: true, url, bodyUsed: false });
    expect(response.headers.get('x-request-id')).toBe('r1');
    const copy = response.clone();
    expect(await response.json()).toEqual({ ok: true, n: [1, 2] });
    expect(response.bodyUsed).toBe(true);
    await expect(response.text()).rejects.toThrow(TypeError);
    expect(await copy.text()).toBe('{"ok":true,"n":[1,2]}');
  });

  it('a buffered body can still be read as a web stream, once', async () => {
    const server = await serve((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('hello'));
    const response = await createNodeHttpFetch()(server.url);
    const chunks: Uint8Array[] = [];
    for await (const chunk of response.body as ReadableStream<Uint8Array>) chunks.push(chunk);
    expect(Buffer.concat(chunks).toString()).toBe('hello');
    expect(response.bodyUsed).toBe(true);
    await expect(response.arrayBuffer()).rejects.toThrow(/unusable/);
  });

  it('no body for 204 and HEAD; repeated set-cookie headers stay separate', async () => {
    const server = await serve((req, res) => {
      if (req.url === '/empty') return void res.writeHead(204).end();
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res
        .writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' })
        .end(req.method === 'HEAD' ? undefined : 'hello');
    });
    const fetch = createNodeHttpFetch();
    const empty = await fetch(`${server.url}/empty`, { method: 'DELETE' });
    expect(empty.status).toBe(204);
    expect(empty.body).toBeNull();
    const head = await fetch(`${server.url}/x`, { method: 'HEAD' });
    expect(head.body).toBeNull();
    expect(head.headers.get('content-length')).toBe('5');
    const cookies = await fetch(`${server.url}/x`);
    expect(cookies.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await cookies.text()).toBe('hello');
  });

  it('decodes a gzip answer when the caller asked for one, leaving Content-Encoding in place', async () => {
    const server = await serve((req, res) => {
      if (!String(req.headers['accept-encoding']).includes('gzip')) return void res.writeHead(200).end('plain');
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(zlib.gzipSync('{"z":1}'));
    });
    const response = await createNodeHttpFetch()(server.url, { headers: { 'accept-encoding': 'gzip' } });
    expect(response.headers.get('content-encoding')).toBe('gzip');
    expect(await response.json()).toEqual({ z: 1 });
  });

  it('streams text/event-stream: the first event arrives while the server is still answering', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
      void released.then(() => res.end('data: two\n\n'));
    });
    const response = await within(2_000, createNodeHttpFetch()(server.url, { method: 'POST', body: '{}' }), 'the headers');
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = await within(2_000, reader.read(), 'the first event');
    expect(Buffer.from(first.value as Uint8Array).toString()).toBe('data: one\n\n');
    release();
    let rest = '';
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      rest += Buffer.from(next.value).toString();
    }
    expect(rest).toBe('data: two\n\n');
  });

  it('reuses one kept-alive connection for sequential calls', async () => {
    const server = await serve((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":1}'));
    const fetch = createNodeHttpFetch();
    for (let i = 0; i < 5; i++) {
      const response = await fetch(`${server.url}/${i}`, { method: 'POST', body: '{}' });
      await response.json();
    }
    expect(server.seen).toHaveLength(5);
    expect(server.connections()).toBe(1);
  });

  it('takes the agent it is given', async () => {
    const server = await serve((_req, res) => res.writeHead(200).end('ok'));
    const agent = new http.Agent({ keepAlive: true });
    const spy = vi.spyOn(agent, 'createConnection');
    await (await createNodeHttpFetch({ httpAgent: agent })(server.url)).text();
    expect(spy).toHaveBeenCalledTimes(1);
    agent.destroy();
  });

  it('an abort before or during the call rejects with the AbortError DOMException fetch uses', async () => {
    const server = await serve(() => undefined); // never answers
    const fetch = createNodeHttpFetch();
    const early = await rejectionOf(fetch(server.url, { signal: AbortSignal.abort() }));
    expect(early).toBeInstanceOf(DOMException);
    expect((early as DOMException).name).toBe('AbortError');
    const controller = new AbortController();
    const pending = fetch(server.url, { method: 'POST', body: '{}', signal: controller.signal });
    await vi.waitFor(() => expect(server.seen).toHaveLength(1));
    controller.abort();
    const late = await rejectionOf(pending);
    expect((late as DOMException).name).toBe('AbortError');
  });

  it('an abort mid-stream errors the body with the abort reason', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
    });
    const controller = new AbortController();
    const response = await within(2_000, createNodeHttpFetch()(server.url, { signal: controller.signal }), 'the headers');
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    controller.abort();
    expect(((await rejectionOf(reader.read())) as DOMException).name).toBe('AbortError');
  });

  it('network failures reject as undici does: `fetch failed` before the answer, `terminated` mid-stream', async () => {
    const refused = await rejectionOf(createNodeHttpFetch()(`http://127.0.0.1:${await closedPort()}/`));
    expect(refused).toBeInstanceOf(TypeError);
    expect(refused).toMatchObject({ message: 'fetch failed', cause: { code: 'ECONNREFUSED' } });

    const cut = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"partial":');
      setTimeout(() => res.destroy(), 10);
    });
    expect(await rejectionOf(createNodeHttpFetch()(cut.url))).toMatchObject({ name: 'TypeError', message: 'fetch failed' });

    const broken = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
      setTimeout(() => res.destroy(), 10);
    });
    const response = await createNodeHttpFetch()(broken.url);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    expect(await rejectionOf(reader.read())).toMatchObject({ name: 'TypeError', message: 'terminated' });
  });

  it('hands what it does not implement to the fallback: streamed or form bodies, redirects to follow', async () => {
    const server = await serve((req, res) => {
      if (req.url === '/moved') return void res.writeHead(307, { location: '/there' }).end();
      res.writeHead(200).end('ok');
    });
    const fallback = vi.fn<typeof fetch>(async () => new Response('from fallback'));
    const fetch = createNodeHttpFetch({ fallback });
    const form = new FormData();
    form.set('file', new Blob(['x']), 'x.txt');
    await fetch(server.url, { method: 'POST', body: form });
    await fetch(server.url, { method: 'POST', body: new Blob(['x']) });
    expect(fallback).toHaveBeenCalledTimes(2);
    expect(await (await fetch(`${server.url}/moved`, { method: 'POST', body: '{}' })).text()).toBe('from fallback');
    expect(fallback).toHaveBeenCalledTimes(3);
    const manual = await fetch(`${server.url}/moved`, { redirect: 'manual' });
    expect(manual.status).toBe(307);
    expect(manual.headers.get('location')).toBe('/there');
    expect(fallback).toHaveBeenCalledTimes(3);
    expect(server.seen.map((s) => s.url)).toEqual(['/moved', '/moved']);
  });
});

describe('createNodeHttpFetch under the openai SDK', () => {
  const fake = useFakeOpenAi();
  const client = (options: { timeout?: number; baseURL?: string } = {}): OpenAI =>
    new OpenAI({
      baseURL: options.baseURL ?? `${fake().url}/v1`,
      apiKey: 'k',
      maxRetries: 0,
      timeout: options.timeout ?? 5_000,
      fetch: createNodeHttpFetch(),
    });
  const ask = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }] };

  it('the SDK timeout becomes APIConnectionTimeoutError; the caller abort APIUserAbortError', async () => {
    fake().enqueue('gpt-4o-mini', { delayMs: 2_000 });
    expect(await rejectionOf(client({ timeout: 100 }).chat.completions.create(ask))).toBeInstanceOf(APIConnectionTimeoutError);
    fake().enqueue('gpt-4o-mini', { delayMs: 2_000 });
    expect(await rejectionOf(client().chat.completions.create(ask, { signal: AbortSignal.timeout(100) }))).toBeInstanceOf(
      APIUserAbortError,
    );
  });

  it('connection refused is APIConnectionError, not a timeout', async () => {
    const err = await rejectionOf(client({ baseURL: `http://127.0.0.1:${await closedPort()}/v1` }).chat.completions.create(ask));
    expect(err).toBeInstanceOf(APIConnectionError);
    expect(err).not.toBeInstanceOf(APIConnectionTimeoutError);
  });

  it('a 429 is a RateLimitError whose retry-after headers are readable', async () => {
    fake().enqueue('gpt-4o-mini', { status: 429, headers: { 'retry-after-ms': '1500', 'retry-after': '2' } });
    const err = await rejectionOf(client().chat.completions.create(ask));
    expect(err).toBeInstanceOf(RateLimitError);
    expect((err as RateLimitError).headers?.get('retry-after-ms')).toBe('1500');
    expect((err as RateLimitError).headers?.get('retry-after')).toBe('2');
    expect(fake().requests).toHaveLength(1);
  });

  it('a streamed completion yields its first chunk before the server has finished', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const chunk = (content: string): string =>
      `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk('first'));
      void released.then(() => res.end(`${chunk(' second')}data: [DONE]\n\n`));
    });
    const stream = await client({ baseURL: server.url }).chat.completions.create({ ...ask, stream: true });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await within(2_000, iterator.next(), 'the first chunk');
    expect(first.value?.choices[0]?.delta.content).toBe('first');
    release();
    const rest: string[] = [];
    for (;;) {
      const next = await iterator.next();
      if (next.done) break;
      rest.push(next.value.choices[0]?.delta.content ?? '');
    }
    expect(rest).toEqual([' second']);
  });

  it('is what the chat models and embedders use when given no fetch; a given fetch still wins', async () => {
    const global = vi.spyOn(globalThis, 'fetch');
    const chat = new OpenAiCompatibleChatModel({
      region: 'r',
      deployment: 'd',
      model: 'gpt-4o-mini',
      baseURL: `${fake().url}/v1`,
    });
    const azureChat = new AzureOpenAiChatModel({
      region: 'r',
      endpoint: fake().url,
      deployment: 'chat',
      model: 'm',
      apiKey: 'k',
    });
    const embedder = new OpenAiCompatibleEmbedder({
      baseURL: `${fake().url}/v1`,
      model: 'text-embedding-3-small',
      dimensions: 8,
    });
    const azureEmbedder = new AzureOpenAiEmbedder({
      endpoint: fake().url,
      deployment: 'emb',
      model: 'text-embedding-3-small',
      dimensions: 1536,
      auth: { apiKey: 'k' },
    });
    await chat.complete({ messages: [{ role: 'user', content: 'hi' }] });
    await azureChat.complete({ messages: [{ role: 'user', content: 'hi' }] });
    expect((await embedder.embed(['a', 'b'])).map((v) => v.length)).toEqual([8, 8]);
    expect((await azureEmbedder.embed(['a']))[0]?.length).toBe(1536);
    expect(global).not.toHaveBeenCalled();
    expect(fake().requests.map((r) => r.kind)).toEqual(['chat', 'chat', 'embeddings', 'embeddings']);

    const given = vi.fn<typeof fetch>((input, init) => createNodeHttpFetch()(input, init));
    await new OpenAiCompatibleEmbedder({
      baseURL: `${fake().url}/v1`,
      model: 'text-embedding-3-small',
      dimensions: 8,
      fetch: given,
    }).embed(['a']);
    expect(given).toHaveBeenCalledTimes(1);
  });

  it('through the adapter: a timeout is a transient model failure caused by the SDK timeout error', async () => {
    fake().enqueue('gpt-4o-mini', { delayMs: 2_000 });
    const model = new OpenAiCompatibleChatModel({
      region: 'r',
      deployment: 'd',
      model: 'gpt-4o-mini',
      baseURL: `${fake().url}/v1`,
      timeoutMs: 100,
    });
    const err = await appErrorOf(model.complete({ messages: [{ role: 'user', content: 'hi' }] }));
    expect(err).toMatchObject({ code: 'model_unavailable', extensions: { transient: true } });
    expect(err.cause).toBeInstanceOf(APIConnectionTimeoutError);
  });
});
