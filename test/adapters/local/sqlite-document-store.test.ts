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
