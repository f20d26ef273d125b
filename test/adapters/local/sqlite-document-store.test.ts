import { statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ContainerConfig } from '../../../src/config';
import { SqliteDocumentStore } from '../../../src/adapters/local/sqlite-document-store';
import { expectAppError } from '../../contracts/document-store.contract';
import { ManualClock } from '../../support/manual-clock';
import { tempDir } from '../../support/temp-dir';

describe('SqliteDocumentStore (local specifics)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let file: string;
  const clock = new ManualClock();
  const open = (containers: ContainerConfig[], purgeIntervalMs = 0): SqliteDocumentStore =>
    new SqliteDocumentStore({ path: file, containers, clock, purgeIntervalMs });

  beforeEach(() => {
    tmp = tempDir('meridian-sqlite-');
    file = path.join(tmp.dir, 'eu', 'documents.sqlite');
  });
  afterEach(() => {
    vi.useRealTimers();
    tmp.remove();
  });

  it('applies a changed default TTL to existing items on reopen, as Cosmos does', async () => {
    let store = open([{ name: 'cache', partitionKey: '/tenantId' }]);
    await store.create('cache', { id: 'a', tenantId: 't' });
    await store.create('cache', { id: 'own', tenantId: 't', ttl: 3600 });
    await store.close();
    store = open([{ name: 'cache', partitionKey: '/tenantId', ttl: 60 }]);
    clock.advance(61_000);
    expect(await store.read('cache', 't', 'a')).toBeUndefined();
    expect(await store.read('cache', 't', 'own')).toBeDefined();
    await store.close();
  });

  it('commits concurrent writes together: each settles on its own, a failing one alone is rolled back', async () => {
    const store = open([
      { name: 'usage', partitionKey: '/tenantId' },
      { name: 'conversations', partitionKey: '/tenantId' },
    ]);
    try {
      await store.create('usage', { id: 'taken', tenantId: 't' });
      const seen: string[] = [];
      store.onChange('usage', () => seen.push('usage'));
      store.onChange('conversations', () => seen.push('conversations'));
      const before = Number(store.currentContinuation('usage'));
      // Issued in one turn: one transaction, one savepoint each.
      const results = await Promise.allSettled([
        store.create('usage', { id: 'u1', tenantId: 't' }),
        store.create('usage', { id: 'taken', tenantId: 't' }), // conflict
        store.batch('conversations', 't', [
          { type: 'create', item: { id: 'c1', tenantId: 't' } },
          { type: 'create', item: { id: 'c1', tenantId: 't' } }, // fails: the whole batch is rolled back
        ]),
        store.upsert('conversations', { id: 'c2', tenantId: 't', n: 1 }),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
      await expectAppError(Promise.reject((results[1] as PromiseRejectedResult).reason), 'conflict');
      await expectAppError(Promise.reject((results[2] as PromiseRejectedResult).reason), 'conflict');
      expect(await store.read('conversations', 't', 'c1')).toBeUndefined();
      expect(await store.read('conversations', 't', 'c2')).toMatchObject({ n: 1 });
      expect(await store.read('usage', 't', 'u1')).toBeDefined();
      // Sequence numbers of the committed writes only, in order; each listener told once.
      const feed = await store.readChangeFeed('usage', { continuation: String(before) });
      expect(feed.items.map((i) => i.id)).toEqual(['u1']);
      expect(seen.sort()).toEqual(['conversations', 'usage']);
    } finally {
      await store.close();
    }
  });

  it('does not stall writes when a test fakes the global timers', async () => {
    vi.useFakeTimers();
    const store = open([{ name: 'usage', partitionKey: '/tenantId' }]);
    try {
      await store.create('usage', { id: 'a', tenantId: 't' });
      expect(await store.read('usage', 't', 'a')).toBeDefined();
    } finally {
      await store.close();
    }
  });

  it('commits queued writes before closing', async () => {
    const store = open([{ name: 'usage', partitionKey: '/tenantId' }]);
    const write = store.create('usage', { id: 'late', tenantId: 't' });
    await store.close();
    await write;
    const again = open([{ name: 'usage', partitionKey: '/tenantId' }]);
    expect(await again.read('usage', 't', 'late')).toBeDefined();
    await again.close();
  });

  it('checkpoints the WAL from a worker thread when asked (writes never wait for a checkpoint)', async () => {
    const store = new SqliteDocumentStore({
      path: file,
      containers: [{ name: 'usage', partitionKey: '/tenantId' }],
      clock,
      purgeIntervalMs: 0,
      backgroundCheckpointMs: 20,
    });
    try {
      const sizeBefore = statSync(file).size;
      // ~2.5 MB: below SQLite's own 1,000-page threshold, so only the worker copies it over.
      for (let i = 0; i < 50; i++) {
        await Promise.all(
          Array.from({ length: 10 }, (_, k) => store.create('usage', { id: `i${i}-${k}`, tenantId: 't', pad: 'x'.repeat(5000) })),
        );
      }
      const until = Date.now() + 5000;
      while (statSync(file).size < sizeBefore + 2_000_000 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(statSync(file).size).toBeGreaterThan(sizeBefore + 2_000_000);
    } finally {
      await store.close();
    }
  });

  it('refuses to reopen a container with another partition key', async () => {
    const store = open([{ name: 'usage', partitionKey: '/tenantId' }]);
    await store.close();
    expect(() => open([{ name: 'usage', partitionKey: '/userId' }])).toThrowError(/partition key/);
  });

  it('purges expired items in the background without reporting them', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const store = open([{ name: 'cache', partitionKey: '/tenantId', ttl: -1 }], 1_000);
    try {
      await store.create('cache', { id: 'gone', tenantId: 't', ttl: 1 });
      await store.create('cache', { id: 'kept', tenantId: 't' });
      const before = store.currentContinuation('cache');
      clock.advance(2_000);
      expect(store.purgeExpired()).toBe(1);
      await store.create('cache', { id: 'gone2', tenantId: 't', ttl: 1 });
      clock.advance(2_000);
      vi.advanceTimersByTime(1_000);
      expect(store.purgeExpired()).toBe(0);
      expect((await store.readChangeFeed('cache', { continuation: before })).items).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('keeps one ordered sequence across two connections (two processes) writing in turn', async () => {
    const containers: ContainerConfig[] = [{ name: 'usage', partitionKey: '/tenantId' }];
    const one = open(containers);
    const two = open(containers);
    try {
      for (let i = 0; i < 20; i++) await (i % 2 ? one : two).create('usage', { id: `i${i}`, tenantId: 't' });
      const feed = await one.readChangeFeed('usage', { maxItems: 100 });
      expect(feed.items.map((s) => s.id)).toEqual(Array.from({ length: 20 }, (_, i) => `i${i}`));
      const etags = new Set(feed.items.map((s) => s._etag));
      expect(etags.size).toBe(20);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('fails clearly once closed', async () => {
    const store = open([{ name: 'usage', partitionKey: '/tenantId' }]);
    await store.close();
    await store.close();
    await expectAppError(store.read('usage', 't', 'x'), 'unavailable');
    await expectAppError(store.check(), 'unavailable');
  });
});
