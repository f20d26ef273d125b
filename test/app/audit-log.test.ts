import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAuditLog, HEAD_ID, type ChainHeadDocument } from '../../src/app/audit-log';
import { sha256Hex } from '../../src/app/hashing';
import { createJsonLogger } from '../../src/app/logging';
import { SqliteDocumentStore } from '../../src/adapters/local/sqlite-document-store';
import { loadCatalog } from '../../src/config';
import type { AuditEntry } from '../../src/domain/audit-chain';
import { canonicalJson } from '../../src/domain/canonical-json';
import type { Item, Stored } from '../../src/ports/document-store';
import { ManualClock } from '../support/manual-clock';
import { tempDir } from '../support/temp-dir';

const T = 'tenant-acme-corp';

describe('audit log over SqliteDocumentStore', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: SqliteDocumentStore;
  const clock = new ManualClock(Date.UTC(2030, 0, 20));
  let audit: ReturnType<typeof createAuditLog>;

  beforeEach(() => {
    tmp = tempDir('audit-');
    store = new SqliteDocumentStore({
      path: path.join(tmp.dir, 'db.sqlite'),
      containers: loadCatalog().topology.containers,
      clock,
    });
    const logger = createJsonLogger({ clock, level: 'error', sink: () => undefined });
    audit = createAuditLog({ documents: store, clock, logger, config: { boundary: 'us', region: 'eastus' }, hash: sha256Hex });
  });
  afterEach(async () => {
    await store.close();
    tmp.remove();
  });

  /** Writes `n` session changes and audits them through the container's change feed. */
  async function auditSessions(n: number, tenantId = T) {
    for (let i = 0; i < n; i++) {
      await store.upsert('sessions', { id: `s${i}`, tenantId, userId: `u${i}`, status: i % 2 ? 'active' : 'completed' });
      clock.advance(1000);
    }
    const feed = (await store.readChangeFeed('sessions', { maxItems: 10_000 })).items;
    return audit.appendChanges('sessions', feed);
  }

  const entries = async () =>
    (
      await store.query<Stored<AuditEntry & Item>>(
        'audit',
        T,
        { where: [{ path: '/type', op: '=', value: 'audit-entry' }], orderBy: { path: '/seq', direction: 'asc' } },
        { limit: 1000 },
      )
    ).items;

  it('appends a gap-free chain and records actor, action, resource, boundary, region, time', async () => {
    await auditSessions(3);
    const list = await audit.list(T, { limit: 50 });
    expect(list.items.map((e) => [e.seq, e.actor, e.action, e.resource, e.boundary, e.region])).toEqual([
      [1, 'u0', 'session.completed', 'sessions/s0', 'us', 'eastus'],
      [2, 'u1', 'session.active', 'sessions/s1', 'us', 'eastus'],
      [3, 'u2', 'session.completed', 'sessions/s2', 'us', 'eastus'],
    ]);
    expect(list.items[1]?.prevHash).toBe(list.items[0]?.hash);
    expect(await audit.verify(T)).toEqual({ valid: true, count: 3, head: { seq: 3, hash: list.items[2]?.hash } });
  });

  it('concurrent verifications of one tenant share one read of the chain; a later one reads it again', async () => {
    await auditSessions(3);
    const original = store.query.bind(store);
    let scans = 0;
    store.query = ((...args: Parameters<typeof store.query>) => {
      if (args[0] === 'audit') scans++;
      return original(...args);
    }) as typeof store.query;
    const results = await Promise.all([audit.verify(T), audit.verify(T), audit.verify(T)]);
    expect(results.every((r) => r.valid)).toBe(true);
    expect(scans).toBe(1);
    await audit.verify(T);
    expect(scans).toBe(2);
  });

  it('audits a redelivered change once, a new version of the same document again', async () => {
    await auditSessions(2);
    const feed = (await store.readChangeFeed('sessions')).items;
    expect((await audit.appendChanges('sessions', [...feed, ...feed])).appended).toBe(0);
    await store.upsert('sessions', { id: 's0', tenantId: T, userId: 'u0', status: 'expired' });
    const next = await store.readChangeFeed('sessions', { continuation: String(feed[feed.length - 1]?._lsn) });
    expect((await audit.appendChanges('sessions', next.items)).appended).toBe(1);
    expect(await audit.verify(T)).toMatchObject({ valid: true, count: 3 });
  });

  it('keeps one chain under racing appenders (If-Match on the head)', async () => {
    const other = new SqliteDocumentStore({
      path: path.join(tmp.dir, 'db.sqlite'),
      containers: loadCatalog().topology.containers,
      clock,
    });
    const logger = createJsonLogger({ clock, level: 'error', sink: () => undefined });
    const audit2 = createAuditLog({
      documents: other,
      clock,
      logger,
      config: { boundary: 'us', region: 'westus2' },
      hash: sha256Hex,
    });
    const change = (i: number) => ({
      tenantId: T,
      actor: 'u',
      action: 'x.write',
      resource: `r/${i}`,
      source: { container: 'x', id: `d${i}`, etag: `"${i}"` },
    });
    const stats = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? audit : audit2).append([change(i), change(i + 100)])),
    );
    await other.close();
    expect(stats.reduce((s, x) => s + x.appended, 0)).toBe(40);
    expect(stats.reduce((s, x) => s + x.retries, 0)).toBeGreaterThan(0);
    expect((await entries()).map((e) => e.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(await audit.verify(T)).toMatchObject({ valid: true, count: 40 });
  });

  it('pages by seq with from/to/afterSeq and a continuation token only when more remain', async () => {
    await auditSessions(5);
    const p1 = await audit.list(T, { limit: 2 });
    expect(p1.items.map((e) => e.seq)).toEqual([1, 2]);
    expect(p1.continuationToken).toBe('2');
    const p3 = await audit.list(T, { limit: 2, afterSeq: 4 });
    expect(p3).toEqual({ items: [expect.objectContaining({ seq: 5 })] });
    // all five were appended at one instant; `to` excludes it, `from` includes it
    const at = p1.items[0]?.at ?? '';
    expect((await audit.list(T, { limit: 10, to: at })).items).toEqual([]);
    expect((await audit.list(T, { limit: 10, from: at })).items).toHaveLength(5);
  });

  describe('tampering directly in the store is reported where it happened', () => {
    beforeEach(async () => {
      await auditSessions(6);
    });
    const entryAt = async (seq: number) => (await entries()).find((e) => e.seq === seq) as Stored<AuditEntry & Item>;
    const strip = ({ _etag: _e, _ts: _t, ...rest }: Stored<AuditEntry & Item>) => rest;

    it('an edited entry', async () => {
      const e = await entryAt(4);
      await store.replace('audit', { ...strip(e), actor: 'mallory' });
      expect(await audit.verify(T)).toEqual({ valid: false, brokenAt: 4, reason: 'hash_mismatch' });
    });

    it('an edited entry whose hash was recomputed too', async () => {
      const e = strip(await entryAt(2));
      const edited = { ...e, action: 'session.nothing' };
      edited.hash = sha256Hex(edited.prevHash + canonicalJson({ ...edited, hash: undefined }));
      await store.replace('audit', edited);
      expect(await audit.verify(T)).toEqual({ valid: false, brokenAt: 3, reason: 'prev_hash_mismatch' });
    });

    it('a deleted entry', async () => {
      await store.delete('audit', T, (await entryAt(3)).id);
      expect(await audit.verify(T)).toEqual({ valid: false, brokenAt: 3, reason: 'missing_entry' });
    });

    it('truncation (the newest entries deleted)', async () => {
      await store.delete('audit', T, (await entryAt(6)).id);
      await store.delete('audit', T, (await entryAt(5)).id);
      expect(await audit.verify(T)).toEqual({ valid: false, brokenAt: 5, reason: 'head_mismatch' });
    });

    it('the head moved back to hide a truncation', async () => {
      const head = (await store.read<ChainHeadDocument>('audit', T, HEAD_ID)) as Stored<ChainHeadDocument>;
      await store.delete('audit', T, (await entryAt(6)).id);
      await store.replace('audit', {
        id: HEAD_ID,
        tenantId: T,
        type: 'audit-head',
        seq: 5,
        hash: head.hash,
        updatedAt: head.updatedAt,
      });
      expect(await audit.verify(T)).toEqual({ valid: false, brokenAt: 6, reason: 'head_mismatch' });
    });
  });
});
