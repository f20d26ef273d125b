import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ContainerConfig } from '../../../src/config';
import {
  leaseIdOf,
  startChangeFeedProcessor,
  type ChangeFeedErrorContext,
  type ChangeFeedProcessor,
  type ChangeFeedProcessorOptions,
  type LeaseDocument,
} from '../../../src/adapters/local/change-feed-processor';
import { SqliteDocumentStore, type ChangeFeedItem } from '../../../src/adapters/local/sqlite-document-store';
import { expectAppError } from '../../contracts/document-store.contract';
import { ManualClock } from '../../support/manual-clock';
import { tempDir } from '../../support/temp-dir';

const CONTAINERS: ContainerConfig[] = [
  { name: 'usage', partitionKey: '/tenantId', leasePrefixes: ['ledger-usage'] },
  { name: 'cache', partitionKey: '/tenantId', ttl: -1 },
  { name: 'leases', partitionKey: '/id' },
];

/** Collects delivered batches; `until(n)` resolves once n items were delivered in total. */
class Collector {
  readonly batches: ChangeFeedItem[][] = [];
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  failNext = 0;
  get items(): ChangeFeedItem[] {
    return this.batches.flat();
  }
  handler = (batch: ChangeFeedItem[]): void => {
    this.batches.push(batch);
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('handler failed on purpose');
    }
    const delivered = this.successful().length;
    this.waiters = this.waiters.filter((w) => (delivered >= w.n ? (w.resolve(), false) : true));
  };
  private failedBatches = new Set<ChangeFeedItem[]>();
  successful(): ChangeFeedItem[] {
    return this.batches.filter((b) => !this.failedBatches.has(b)).flat();
  }
  /** Wraps the handler so failures are remembered per batch. */
  wrapped = (batch: ChangeFeedItem[]): void => {
    try {
      this.handler(batch);
    } catch (err) {
      this.failedBatches.add(batch);
      throw err;
    }
  };
  until(n: number, timeoutMs = 10_000): Promise<void> {
    if (this.successful().length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${this.successful().length} of ${n} items delivered`)), timeoutMs);
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}

describe('SqliteDocumentStore change feed', () => {
  let tmp: ReturnType<typeof tempDir>;
  let file: string;
  let clock: ManualClock;
  let store: SqliteDocumentStore;
  const processors: ChangeFeedProcessor[] = [];
  const open = (): SqliteDocumentStore =>
    new SqliteDocumentStore({ path: file, containers: CONTAINERS, clock, purgeIntervalMs: 0 });

  beforeEach(() => {
    tmp = tempDir('meridian-feed-');
    file = path.join(tmp.dir, 'us', 'documents.sqlite');
    clock = new ManualClock();
    store = open();
  });
  afterEach(async () => {
    await Promise.all(processors.splice(0).map((p) => p.stop()));
    await store.close();
    tmp.remove();
  });

  const start = async (
    collector: Collector,
    overrides: Partial<ChangeFeedProcessorOptions> = {},
  ): Promise<ChangeFeedProcessor> => {
    const p = await startChangeFeedProcessor({
      store,
      container: 'usage',
      leasePrefix: 'ledger-usage',
      handler: collector.wrapped,
      maxBatchSize: 10,
      pollIntervalMs: 10,
      startFromBeginning: true,
      clock,
      retry: { initialDelayMs: 1, maxDelayMs: 5 },
      onError: () => undefined,
      ...overrides,
    });
    processors.push(p);
    return p;
  };

  describe('readChangeFeed', () => {
    it('reports every write once, in order, per partition and overall', async () => {
      const written: Array<[string, string]> = [];
      for (let i = 0; i < 30; i++) {
        const t = i % 3 === 0 ? 'a' : 'b';
        await store.create('usage', { id: `e${i}`, tenantId: t, i });
        written.push([t, `e${i}`]);
      }
      const seen: ChangeFeedItem[] = [];
      let continuation: string | undefined;
      for (let guard = 0; guard < 20; guard++) {
        const page = await store.readChangeFeed('usage', { maxItems: 7, ...(continuation ? { continuation } : {}) });
        if (page.items.length === 0) {
          expect(page.continuation).toBe(continuation);
          break;
        }
        expect(page.items.length).toBeLessThanOrEqual(7);
        seen.push(...page.items);
        continuation = page.continuation;
      }
      expect(seen.map((s) => s.id)).toEqual(written.map(([, id]) => id));
      const lsns = seen.map((s) => s._lsn);
      expect([...lsns].sort((x, y) => x - y)).toEqual(lsns);
      expect(new Set(lsns).size).toBe(lsns.length);
      const onlyA = await store.readChangeFeed('usage', { partitionKey: 'a', maxItems: 100 });
      expect(onlyA.items.map((s) => s.id)).toEqual(written.filter(([t]) => t === 'a').map(([, id]) => id));
    });

    it('gives the latest version only and leaves deletes and expiries out', async () => {
      await store.create('usage', { id: 'x', tenantId: 't', v: 1 });
      await store.create('usage', { id: 'y', tenantId: 't', v: 1 });
      await store.create('usage', { id: 'gone', tenantId: 't' });
      await store.patch('usage', 't', 'x', [{ op: 'incr', path: '/v', value: 1 }]);
      await store.delete('usage', 't', 'gone');
      const first = await store.readChangeFeed('usage', {});
      expect(first.items.map((s) => [s.id, s['v']])).toEqual([
        ['y', 1],
        ['x', 2],
      ]);
      expect(first.items[1]?._etag).toBe((await store.read('usage', 't', 'x'))?._etag);

      await store.upsert('usage', { id: 'y', tenantId: 't', v: 2 });
      await store.upsert('usage', { id: 'y', tenantId: 't', v: 3 });
      const second = await store.readChangeFeed('usage', { continuation: first.continuation });
      expect(second.items.map((s) => [s.id, s['v']])).toEqual([['y', 3]]);

      const before = store.currentContinuation('cache');
      await store.create('cache', { id: 'short', tenantId: 't', ttl: 5 });
      await store.create('cache', { id: 'long', tenantId: 't', ttl: 500 });
      clock.advance(6_000);
      const cache = await store.readChangeFeed('cache', { continuation: before });
      expect(cache.items.map((s) => s.id)).toEqual(['long']);
      expect(store.purgeExpired()).toBe(1);
    });

    it('includes committed batches and nothing of a failed one', async () => {
      const from = store.currentContinuation('usage');
      await store.batch('usage', 't', [
        { type: 'create', item: { id: 'b1', tenantId: 't' } },
        { type: 'create', item: { id: 'b2', tenantId: 't' } },
      ]);
      await expectAppError(
        store.batch('usage', 't', [
          { type: 'create', item: { id: 'b3', tenantId: 't' } },
          { type: 'create', item: { id: 'b1', tenantId: 't' } },
        ]),
        'conflict',
      );
      const page = await store.readChangeFeed('usage', { continuation: from });
      expect(page.items.map((s) => s.id)).toEqual(['b1', 'b2']);
    });

    it('refuses a malformed continuation and an unknown container', async () => {
      await expectAppError(store.readChangeFeed('usage', { continuation: 'abc' }), 'validation_failed');
      await expectAppError(store.readChangeFeed('nope', {}), 'not_found');
    });

    it('sees writes made by another connection to the same file (another process)', async () => {
      const other = open();
      try {
        await other.create('usage', { id: 'remote', tenantId: 't' });
        expect((await store.readChangeFeed('usage', {})).items.map((s) => s.id)).toEqual(['remote']);
      } finally {
        await other.close();
      }
    });
  });

  describe('change-feed processor', () => {
    it('delivers every write, in order, and stores the continuation in the lease', async () => {
      const c = new Collector();
      const p = await start(c);
      for (let i = 0; i < 95; i++) await store.create('usage', { id: `w${i}`, tenantId: i % 2 ? 'a' : 'b', i });
      await c.until(95);
      const ids = c.items.map((s) => s.id);
      expect(ids).toEqual(Array.from({ length: 95 }, (_, i) => `w${i}`));
      expect(c.batches.every((b) => b.length >= 1 && b.length <= 10)).toBe(true);
      await p.stop();
      const lease = await store.read<LeaseDocument>(
        'leases',
        leaseIdOf('ledger-usage', 'usage'),
        leaseIdOf('ledger-usage', 'usage'),
      );
      expect(lease?.continuation).toBe(String(c.items[c.items.length - 1]?._lsn));
      expect(lease?.owner).toBeNull();
    });

    it('gathers the writes of one moment into one batch when woken by a write (coalesceMs)', async () => {
      const c = new Collector();
      await start(c, { pollIntervalMs: 60_000, coalesceMs: 30, maxBatchSize: 100 });
      // Writes spread over ~10 ms, as concurrent requests make them: woken by the first, the
      // processor reads once the window has passed and gets them all.
      for (let i = 0; i < 8; i++) {
        await store.create('usage', { id: `g${i}`, tenantId: 't' });
        await new Promise((r) => setTimeout(r, 1));
      }
      await c.until(8);
      expect(c.batches.map((b) => b.length)).toEqual([8]);

      const solo = new Collector();
      await start(solo, { leasePrefix: 'solo', pollIntervalMs: 60_000, coalesceMs: 0, maxBatchSize: 100 });
      await solo.until(8); // startFromBeginning: the backlog in one read
      for (let i = 0; i < 3; i++) {
        await store.create('usage', { id: `s${i}`, tenantId: 't' });
        await solo.until(9 + i);
      }
      expect(solo.batches.map((b) => b.length)).toEqual([8, 1, 1, 1]);
    });

    it('redelivers the same batch after a failing handler, skipping nothing', async () => {
      const c = new Collector();
      c.failNext = 2;
      const errors: ChangeFeedErrorContext[] = [];
      for (let i = 0; i < 25; i++) await store.create('usage', { id: `r${i}`, tenantId: 't' });
      await start(c, { onError: (_e, ctx) => errors.push(ctx) });
      await c.until(25);
      const [first, second, third] = c.batches;
      expect(first?.map((s) => s._etag)).toEqual(second?.map((s) => s._etag));
      expect(second?.map((s) => s.id)).toEqual(third?.map((s) => s.id));
      expect(c.successful().map((s) => s.id)).toEqual(Array.from({ length: 25 }, (_, i) => `r${i}`));
      expect(errors.map((e) => [e.phase, e.attempt])).toEqual([
        ['handler', 1],
        ['handler', 2],
      ]);
    });

    it('resumes from the lease on a reopened store: nothing lost, nothing twice beyond the failed batch', async () => {
      const c1 = new Collector();
      const p1 = await start(c1);
      for (let i = 0; i < 20; i++) await store.create('usage', { id: `s${i}`, tenantId: 't' });
      await c1.until(20);
      await p1.stop();
      for (let i = 20; i < 45; i++) await store.create('usage', { id: `s${i}`, tenantId: 't' });
      await store.close();
      store = open();

      const c2 = new Collector();
      c2.failNext = 1;
      await start(c2);
      await c2.until(25);
      expect(c2.successful().map((s) => s.id)).toEqual(Array.from({ length: 25 }, (_, i) => `s${i + 20}`));
      const all = c2.items.map((s) => s.id);
      const failedBatch = c2.batches[0]?.map((s) => s.id) ?? [];
      expect(all.length).toBe(25 + failedBatch.length);
      expect(all.slice(0, failedBatch.length)).toEqual(all.slice(failedBatch.length, 2 * failedBatch.length));
    });

    it('refuses a second processor on the same lease while the first runs, then allows one', async () => {
      const p1 = await start(new Collector());
      await expectAppError(start(new Collector()), 'conflict');
      const otherPrefix = await start(new Collector(), { leasePrefix: 'audit-usage' });
      expect(otherPrefix.leaseId).not.toBe(p1.leaseId);
      await p1.stop();
      await start(new Collector());
    });

    it('takes over a crashed owner’s lease only after it expires', async () => {
      const leaseId = leaseIdOf('ledger-usage', 'usage');
      await store.create('usage', { id: 'old', tenantId: 't' });
      const after = store.currentContinuation('usage');
      await store.create<LeaseDocument>('leases', {
        id: leaseId,
        container: 'usage',
        leasePrefix: 'ledger-usage',
        continuation: after,
        owner: 'crashed-host',
        expiresAt: clock.now() + 30_000,
      });
      await store.create('usage', { id: 'new', tenantId: 't' });
      await expectAppError(start(new Collector()), 'conflict');
      clock.advance(30_001);
      const c = new Collector();
      await start(c);
      await c.until(1);
      expect(c.items.map((s) => s.id)).toEqual(['new']);
    });

    it('starts from now when asked (the cosmosDBTrigger default)', async () => {
      await store.create('usage', { id: 'before', tenantId: 't' });
      const c = new Collector();
      await start(c, { startFromBeginning: false });
      await store.create('usage', { id: 'after', tenantId: 't' });
      await c.until(1);
      expect(c.items.map((s) => s.id)).toEqual(['after']);
    });

    it('stops delivering when another owner takes the lease over', async () => {
      const c = new Collector();
      const leaseId = leaseIdOf('ledger-usage', 'usage');
      let onLost: () => void = () => undefined;
      const lost = new Promise<void>((resolve) => (onLost = resolve));
      const p = await start(c, { onError: (_e, ctx) => ctx.phase === 'lost' && onLost() });
      await store.create('usage', { id: 'one', tenantId: 't' });
      await c.until(1);
      const lease = await store.read<LeaseDocument>('leases', leaseId, leaseId);
      await store.replace('leases', { ...lease!, owner: 'thief', expiresAt: clock.now() + 60_000 });
      await store.create('usage', { id: 'two', tenantId: 't' });
      await lost;
      await p.finished;
      // 'two' may have been handled before the lease write found the thief (at-least-once);
      // after that, nothing more is delivered.
      const delivered = c.items.length;
      await store.create('usage', { id: 'three', tenantId: 't' });
      await new Promise((r) => setTimeout(r, 50));
      expect(c.items.length).toBe(delivered);
      expect((await store.read<LeaseDocument>('leases', leaseId, leaseId))?.owner).toBe('thief');
    });
  });
});
