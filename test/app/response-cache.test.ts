import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteDocumentStore } from '../../src/adapters/local/sqlite-document-store';
import { createResponseCache, type CachedAnswer } from '../../src/app/response-cache';
import { loadCatalog } from '../../src/config';
import { sha256Hex } from '../../src/app/hashing';
import { normaliseQuestion, responseCacheKey as keyOf, type ResponseCacheKeyInput } from '../../src/domain/response-cache-key';
import { ManualClock } from '../support/manual-clock';
import { tempDir } from '../support/temp-dir';

const base: ResponseCacheKeyInput = {
  tenantId: 'tenant-acme-corp',
  question: 'What is the leave policy?',
  context: [],
  indexVersion: 7,
  sharedIndexVersion: 3,
};

const responseCacheKey = (input: ResponseCacheKeyInput): string => keyOf(input, sha256Hex);

describe('response cache key', () => {
  it('normalises case, spacing, width and trailing punctuation', () => {
    expect(normaliseQuestion('  What is   the LEAVE\tpolicy ?! ')).toBe('what is the leave policy');
    expect(normaliseQuestion('ＷＨＡＴ is it？')).toBe('what is it');
    expect(responseCacheKey({ ...base, question: 'what is the  leave policy' })).toBe(responseCacheKey(base));
    expect(responseCacheKey(base)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('changes with the question, the context, the tenant and either index version', () => {
    const k = responseCacheKey(base);
    const variants: ResponseCacheKeyInput[] = [
      { ...base, question: 'What is the sick leave policy?' },
      { ...base, context: [{ role: 'user', content: 'We talked about Germany.' }] },
      { ...base, tenantId: 'tenant-globex-intl' },
      { ...base, indexVersion: 8 },
      { ...base, sharedIndexVersion: 4 },
      { ...base, variant: 'prompt-v2' },
    ];
    const keys = variants.map(responseCacheKey);
    expect(keys).not.toContain(k);
    expect(new Set(keys).size).toBe(keys.length);
    // The context is not confusable with the question by concatenation.
    expect(responseCacheKey({ ...base, question: 'a b', context: [{ role: 'user', content: 'c' }] })).not.toBe(
      responseCacheKey({ ...base, question: 'b', context: [{ role: 'user', content: 'c a' }] }),
    );
  });
});

describe('createResponseCache', () => {
  const dirs: Array<{ remove(): void }> = [];
  afterEach(() => dirs.splice(0).forEach((d) => d.remove()));

  function open(clock: ManualClock) {
    const tmp = tempDir('meridian-cache-');
    dirs.push(tmp);
    const documents = openSqliteDocumentStore({
      path: path.join(tmp.dir, 'docs.sqlite'),
      containers: loadCatalog().topology.containers,
      clock,
      purgeIntervalMs: 0,
    });
    return { documents, cache: createResponseCache<CachedAnswer>({ documents, clock, ttlSeconds: 600 }) };
  }

  const answer: CachedAnswer = {
    answer: 'Twenty five days [1].',
    citations: [{ documentId: 'd1', name: 'leave.md', chunkId: 'd1:0' }],
    usage: { promptTokens: 100, completionTokens: 8, totalTokens: 108 },
    model: { region: 'eastus', deployment: 'chat' },
  };

  it('stores per tenant in the cache container with a per-item ttl, and hits on the normalised question', async () => {
    const clock = new ManualClock();
    const { documents, cache } = open(clock);
    expect(await cache.get(base)).toBeUndefined();
    await cache.put(base, answer);
    const hit = await cache.get({ ...base, question: '  what is the leave POLICY' });
    expect(hit).toEqual({ value: answer, storedAt: clock.now() });
    const item = await documents.read('cache', base.tenantId, cache.key(base));
    expect(item).toMatchObject({ tenantId: base.tenantId, ttl: 600 });
    expect(await cache.get({ ...base, tenantId: 'tenant-globex-intl' })).toBeUndefined();
    expect(await cache.get({ ...base, indexVersion: 8 })).toBeUndefined();
    await documents.close();
  });

  it('expires after the TTL', async () => {
    const clock = new ManualClock();
    const { documents, cache } = open(clock);
    await cache.put(base, answer);
    clock.advance(599_999);
    expect(await cache.get(base)).toBeDefined();
    clock.advance(1);
    expect(await cache.get(base)).toBeUndefined();
    await documents.close();
  });
});
