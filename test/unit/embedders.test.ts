import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AzureOpenAiEmbedder, retryAfterSeconds } from '../../src/adapters/azure/azure-openai-embedder';
import { SqliteEmbeddingCache } from '../../src/adapters/local/sqlite-embedding-cache';
import { LocalUseEmbedder } from '../../src/adapters/local/use-embedder';
import { createCachedEmbedder, embeddingCacheKey } from '../../src/app/embedding-cache';
import { MemoryEmbeddingCache } from '../../src/app/memory-embedding-cache';
import type { Embedder } from '../../src/ports/embedder';
import { retrievalOf } from '../../functions/lib/use-cases';
import { testDeps } from '../helpers/deps';
import { appErrorOf } from '../helpers/errors';

const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, i) => s + x * (b[i] as number), 0);

describe('LocalUseEmbedder', () => {
  const embedder = new LocalUseEmbedder({ batchSize: 4 });

  it('returns 512-dimensional unit vectors in input order, across batches', async () => {
    const texts = Array.from({ length: 10 }, (_, i) => `Document number ${i} about region failover.`);
    const vectors = await embedder.embed(texts);
    expect(vectors).toHaveLength(10);
    for (const v of vectors) {
      expect(v).toBeInstanceOf(Float32Array);
      expect(v).toHaveLength(512);
      expect(Math.sqrt(dot(v, v))).toBeCloseTo(1, 4);
    }
    const [again] = await embedder.embed([texts[7] as string]);
    expect(dot(again as Float32Array, vectors[7] as Float32Array)).toBeCloseTo(1, 4);
    expect(embedder.model).toBe('use-lite-512 (local)');
    expect(await embedder.check()).toBe('use-lite-512 (local)');
  });

  it('scores semantically close sentences above unrelated ones', async () => {
    const [a, b, c] = await embedder.embed([
      'The database fails over to the secondary region when the primary is down.',
      'When the main region has an outage, the data store switches to the backup region.',
      'Our quarterly marketing budget covers trade shows and print advertising.',
    ]);
    expect(dot(a as Float32Array, b as Float32Array)).toBeGreaterThan(dot(a as Float32Array, c as Float32Array) + 0.2);
  });

  it('embeds nothing for no texts and survives an empty string', async () => {
    expect(await embedder.embed([])).toEqual([]);
    const [v] = await embedder.embed(['']);
    expect(v).toHaveLength(512);
  });
});

/** A counting embedder for cache tests: deterministic vectors from the text. */
function countingEmbedder(): Embedder & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    dimensions: 3,
    model: 'counting',
    calls,
    check: async () => 'ok',
    async embed(texts) {
      calls.push([...texts]);
      return texts.map((t) => Float32Array.from([t.length, 1, 0]));
    },
  };
}

describe('createCachedEmbedder over SqliteEmbeddingCache', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'meridian-embcache-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('embeds each distinct text once; a second call embeds nothing; the cache file is shared', async () => {
    const file = path.join(dir, 'us', 'embeddings.sqlite');
    const inner = countingEmbedder();
    const cache = new SqliteEmbeddingCache(file);
    const cached = createCachedEmbedder(inner, cache);
    const first = await cached.embed(['alpha', 'beta', 'alpha']);
    expect(inner.calls).toEqual([['alpha', 'beta']]);
    expect(Array.from(first[2] as Float32Array)).toEqual([5, 1, 0]);
    const second = await cached.embed(['beta', 'alpha']);
    expect(inner.calls).toHaveLength(1);
    expect(Array.from(second[0] as Float32Array)).toEqual([4, 1, 0]);
    expect(cached.stats()).toEqual({ hits: 3, misses: 2 });
    cache.close();

    // Another index of the boundary opens the same file: still nothing to embed.
    const inner2 = countingEmbedder();
    const cache2 = new SqliteEmbeddingCache(file);
    await createCachedEmbedder(inner2, cache2).embed(['alpha', 'beta']);
    expect(inner2.calls).toEqual([]);
    expect(cache2.size()).toBe(2);
    cache2.close();
  });

  it('keys by model and dimensions as well as text', () => {
    expect(embeddingCacheKey('m1', 3, 'x')).not.toBe(embeddingCacheKey('m2', 3, 'x'));
    expect(embeddingCacheKey('m1', 3, 'x')).not.toBe(embeddingCacheKey('m1', 4, 'x'));
    expect(embeddingCacheKey('m1', 3, 'x')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('still embeds when the cache fails', async () => {
    const inner = countingEmbedder();
    const broken = { getMany: () => Promise.reject(new Error('down')), putMany: () => Promise.reject(new Error('down')) };
    const v = await createCachedEmbedder(inner, broken).embed(['x']);
    expect(v).toHaveLength(1);
  });
});

describe('SqliteEmbeddingCache is bounded', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'meridian-embcache-bound-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const vec = (n: number) => Float32Array.of(n, 0, 0);
  const put = (cache: SqliteEmbeddingCache, from: number, to: number) =>
    cache.putMany(Array.from({ length: to - from }, (_, i) => ({ key: `k${from + i}`, vector: vec(from + i) })));

  it('past maxEntries evicts the oldest-stored tenth; the newest stay, and a re-put key keeps its place', async () => {
    const cache = new SqliteEmbeddingCache(path.join(dir, 'a.sqlite'), { maxEntries: 50 });
    await put(cache, 0, 50);
    expect(cache.size()).toBe(50);
    await put(cache, 0, 10); // already there: nothing stored, nothing evicted
    expect(cache.size()).toBe(50);
    await put(cache, 50, 51);
    expect(cache.size()).toBe(45);
    const got = await cache.getMany(Array.from({ length: 51 }, (_, i) => `k${i}`));
    expect([...got.keys()].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)))).toEqual(
      Array.from({ length: 45 }, (_, i) => `k${i + 6}`),
    );
    expect(Array.from(got.get('k50') as Float32Array)).toEqual([50, 0, 0]);
    cache.close();

    // Reopened, it goes on from where it was: older entries still go first.
    const again = new SqliteEmbeddingCache(path.join(dir, 'a.sqlite'), { maxEntries: 50 });
    await put(again, 100, 106);
    expect(again.size()).toBe(45);
    expect([...(await again.getMany(['k6', 'k11', 'k12', 'k105'])).keys()].sort()).toEqual(['k105', 'k12']);
    again.close();
  });

  it('opens a file written before the bound existed (no insertion order): its entries are evicted first', async () => {
    const file = path.join(dir, 'old.sqlite');
    const legacy = new Database(file);
    legacy.exec('CREATE TABLE embeddings (key TEXT PRIMARY KEY, dims INTEGER NOT NULL, vector BLOB NOT NULL) WITHOUT ROWID');
    const ins = legacy.prepare('INSERT INTO embeddings (key, dims, vector) VALUES (?, 3, ?)');
    for (let i = 0; i < 10; i++) ins.run(`old${i}`, Buffer.from(vec(i).buffer));
    legacy.close();
    const cache = new SqliteEmbeddingCache(file, { maxEntries: 10 });
    expect(Array.from((await cache.getMany(['old3'])).get('old3') as Float32Array)).toEqual([3, 0, 0]);
    await put(cache, 0, 1);
    expect(cache.size()).toBe(9);
    expect((await cache.getMany(['k0'])).size).toBe(1);
    cache.close();
  });
});

/** A fake Azure OpenAI embeddings endpoint that records every request and answers from a script. */
interface Recorded {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: { input: string[]; model: string; encoding_format?: string };
}

describe('AzureOpenAiEmbedder against a local fake endpoint', () => {
  let server: Server;
  let base: string;
  const requests: Recorded[] = [];
  let script: ((r: Recorded) => { status: number; headers?: Record<string, string>; body: unknown }) | undefined;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        const rec: Recorded = {
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: JSON.parse(raw) as Recorded['body'],
        };
        requests.push(rec);
        const answer = script?.(rec) ?? {
          status: 200,
          body: {
            object: 'list',
            model: 'text-embedding-3-small',
            // Out of order on purpose: the adapter must sort by index.
            data: rec.body.input.map((t, i) => ({ object: 'embedding', index: i, embedding: [t.length, i, 0, 1] })).reverse(),
            usage: { prompt_tokens: 3, total_tokens: 3 },
          },
        };
        res.writeHead(answer.status, { 'content-type': 'application/json', ...(answer.headers ?? {}) });
        res.end(JSON.stringify(answer.body));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const make = (batchSize = 2): AzureOpenAiEmbedder =>
    new AzureOpenAiEmbedder({
      endpoint: base,
      deployment: 'embedding',
      model: 'text-embedding-3-small',
      dimensions: 4,
      auth: { apiKey: 'test-key' },
      apiVersion: '2024-10-21',
      batchSize,
      timeoutMs: 5000,
    });

  it('posts to the deployment path with api-version, api-key and encoding_format float, batching', async () => {
    requests.length = 0;
    script = undefined;
    const vectors = await make(2).embed(['a', 'bb', 'ccc']);
    expect(vectors.map((v) => Array.from(v))).toEqual([
      [1, 0, 0, 1],
      [2, 1, 0, 1],
      [3, 0, 0, 1],
    ]);
    expect(requests).toHaveLength(2);
    for (const r of requests) {
      expect(r.method).toBe('POST');
      expect(r.url).toBe('/openai/deployments/embedding/embeddings?api-version=2024-10-21');
      expect(r.headers['api-key']).toBe('test-key');
      expect(r.headers['authorization']).toBeUndefined();
      expect(r.body.encoding_format).toBe('float');
      expect(r.body.model).toBe('embedding');
    }
    expect(requests.map((r) => r.body.input)).toEqual([['a', 'bb'], ['ccc']]);
  });

  it('turns 429 into rate_limited with the server Retry-After, once (no SDK retries)', async () => {
    requests.length = 0;
    script = () => ({ status: 429, headers: { 'retry-after': '7' }, body: { error: { code: '429', message: 'slow down' } } });
    const err = await appErrorOf(make().embed(['x']));
    expect(err.code).toBe('rate_limited');
    expect(err.retryAfterSeconds).toBe(7);
    expect(requests).toHaveLength(1);
  });

  it('turns 5xx into unavailable and 400 into validation_failed', async () => {
    script = () => ({ status: 503, headers: { 'retry-after-ms': '2500' }, body: { error: { message: 'busy' } } });
    const down = await appErrorOf(make().embed(['x']));
    expect(down.code).toBe('unavailable');
    expect(down.retryAfterSeconds).toBe(3);
    script = () => ({ status: 400, body: { error: { code: 'context_length_exceeded', message: 'too long' } } });
    expect((await appErrorOf(make().embed(['x']))).code).toBe('validation_failed');
  });

  it('refuses vectors of the wrong size', async () => {
    script = (r) => ({
      status: 200,
      body: {
        object: 'list',
        data: r.body.input.map((_, i) => ({ object: 'embedding', index: i, embedding: [1, 2] })),
        usage: {},
      },
    });
    expect((await appErrorOf(make().embed(['x']))).code).toBe('unavailable');
    script = undefined;
  });

  it('says unavailable when nothing listens', async () => {
    const e = new AzureOpenAiEmbedder({
      endpoint: 'http://127.0.0.1:1',
      deployment: 'd',
      model: 'm',
      dimensions: 4,
      auth: { apiKey: 'k' },
      timeoutMs: 2000,
    });
    expect((await appErrorOf(e.embed(['x']))).code).toBe('unavailable');
  });

  it('reads Retry-After in its three forms', () => {
    expect(retryAfterSeconds(new Headers({ 'retry-after': '3' }))).toBe(3);
    expect(retryAfterSeconds(new Headers({ 'retry-after-ms': '10' }))).toBe(1);
    expect(retryAfterSeconds(new Headers({ 'retry-after': new Date(61_000).toUTCString() }), 1_000)).toBe(60);
    expect(retryAfterSeconds(new Headers())).toBeUndefined();
  });
});

describe('cached embedder under concurrency', () => {
  it('embeds a text once when two indexes ask for it at the same moment', async () => {
    const calls: string[][] = [];
    const slow: Embedder = {
      dimensions: 2,
      model: 'counting',
      check: async () => undefined,
      embed: async (texts) => {
        calls.push([...texts]);
        await new Promise((r) => setTimeout(r, 30));
        return texts.map((t) => new Float32Array([t.length, 1]));
      },
    };
    const cached = createCachedEmbedder(slow, new SqliteEmbeddingCache(':memory:'));
    const [a, b] = await Promise.all([cached.embed(['alpha', 'beta']), cached.embed(['beta', 'alpha', 'gamma'])]);
    expect(calls.flat().sort()).toEqual(['alpha', 'beta', 'gamma']);
    expect([...(a[1] as Float32Array)]).toEqual([...(b[0] as Float32Array)]);
    expect(b).toHaveLength(3);
  });
});

describe('question embeddings (MemoryEmbeddingCache)', () => {
  it('keeps the most recently used vectors up to its bound', async () => {
    const cache = new MemoryEmbeddingCache(2);
    const v = (x: number) => Float32Array.of(x);
    await cache.putMany([
      { key: 'a', vector: v(1) },
      { key: 'b', vector: v(2) },
    ]);
    await cache.getMany(['a']); // a is now the most recent
    await cache.putMany([{ key: 'c', vector: v(3) }]);
    expect([...(await cache.getMany(['a', 'b', 'c'])).keys()].sort()).toEqual(['a', 'c']);
    await cache.putMany([{ key: 'a', vector: v(9) }]);
    expect((await cache.getMany(['a'])).get('a')?.[0]).toBe(1);
    expect(cache.size).toBe(2);
    expect(() => new MemoryEmbeddingCache(0)).toThrow(RangeError);
  });

  it('retrieval embeds questions without writing them to the boundary’s persistent cache', async () => {
    const deps = testDeps();
    const file = path.join(deps.config.dataDir, deps.config.boundary, 'embeddings.sqlite');
    const persistent = new SqliteEmbeddingCache(file);
    try {
      const before = persistent.size();
      await retrievalOf(deps).search('tenant-acme-corp', 'How does failover work between regions?', 3);
      await retrievalOf(deps).search('tenant-acme-corp', 'How does failover work between regions?', 3);
      expect(persistent.size()).toBe(before);
    } finally {
      persistent.close();
    }
  });
});
