import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type RunningAzurite } from '../../devhost/azurite';
import { AzureBlobStore } from '../../src/adapters/azure/azure-blob-store';
import { AZURITE_DEV_KEY } from '../../src/adapters/local/azurite';
import { ManualClock } from '../../src/adapters/local/clock';
import { LocalSearchIndex } from '../../src/adapters/local/search-index';
import { ensureTopology, LocalServiceBus } from '../../src/adapters/local/service-bus';
import { SqliteDocumentStore } from '../../src/adapters/local/sqlite-document-store';
import { LocalTextExtractor } from '../../src/adapters/local/text-extractor';
import { countTokens } from '../../src/adapters/local/token-counter';
import { createDocuments, CATALOG } from '../../src/app/documents';
import { createIndexer, INDEX_PARTITION } from '../../src/app/indexer';
import { createJsonLogger } from '../../src/app/logging';
import { createSweeps } from '../../src/app/sweeps';
import { loadCatalog } from '../../src/config';
import { AppError } from '../../src/domain/errors';
import type { Principal } from '../../src/domain/tenancy';
import type { BlobProperties, BlobStore } from '../../src/ports/blob-store';
import type { OutgoingMessage } from '../../src/ports/event-publisher';
import { MemoryBlobStore } from '../helpers/memory-blobs';
import { trigramEmbedder } from '../helpers/trigram-embedder';

const catalog = loadCatalog();

/** `blobs` with `list` replaced (a listing that races, misses a blob or fails). */
const withList = (blobs: BlobStore, list: BlobStore['list']): BlobStore =>
  new Proxy(blobs, {
    get(target, prop) {
      if (prop === 'list') return list;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
const alice: Principal = { tenantId: 'tenant-acme-corp', userId: 'alice', roles: [], boundary: 'us' };

describe('index sweeps repair what events missed', () => {
  let dir: string;
  let azurite: RunningAzurite;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'meridian-sweeps-'));
    azurite = await startAzurite({ account: 'meridianus', location: path.join(dir, 'blob') });
  }, 60_000);
  afterAll(async () => {
    await azurite?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('re-indexes chunks deleted behind the indexer, a blob changed without an event, drops orphans and finished deletions', async () => {
    const clock = new ManualClock(Date.now());
    const logger = createJsonLogger({ clock, sink: () => undefined });
    const documents = new SqliteDocumentStore({
      path: path.join(dir, 'docs.sqlite'),
      containers: catalog.topology.containers,
      clock,
    });
    const bus = new LocalServiceBus({ path: path.join(dir, 'bus.sqlite'), clock });
    await ensureTopology(bus, catalog.topology);
    const blobs = AzureBlobStore.withAccountKey(azurite.url, 'meridianus', AZURITE_DEV_KEY);
    await blobs.ensureContainer('documents');
    const index = new LocalSearchIndex({ file: path.join(dir, 'search.sqlite'), name: 'meridian-eastus', dimensions: 512 });
    const base = { documents, clock, logger, boundary: 'us' };
    const docs = createDocuments({ ...base, blobs, events: bus, maxDocumentBytes: 1 << 20 });
    const indexer = createIndexer(
      { ...base, blobs, extractor: new LocalTextExtractor(), embedder: trigramEmbedder, countTokens },
      { index, region: 'eastus', primary: true },
    );
    const sweeps = createSweeps({ ...base, blobs, searchIndexes: [{ region: 'eastus', primary: true, index }], publisher: docs });
    /** Delivers everything waiting on the eastus subscription to the indexer (the trigger's job). */
    const drain = async () => {
      for (;;) {
        const batch = await bus.receive('index-sync', 'meridian-eastus-indexer', { maxMessages: 10 });
        if (batch.length === 0) return;
        for (const m of batch) {
          await indexer.handle(m.body);
          await bus.complete(m.lockToken);
        }
      }
    };
    const upload = async (name: string, text: string, publish = true) => {
      const r = await docs.upload(alice, {
        name,
        tier: 'upload',
        scope: 'tenant',
        contentType: 'text/markdown',
        bytes: Buffer.from(text),
      });
      if (publish) await docs.publishBlobChange('tenant', r.documentId);
      return r;
    };
    const held = async () => new Map((await index.documentVersions()).map((d) => [d.documentId, d]));

    const a = await upload('a.md', '# Alpha\nAlpha documents describe regional failover for the eastus primary.');
    const b = await upload('b.md', '# Beta\nBeta documents describe the cost model of the pilot.');
    await drain();
    expect((await held()).get(a.documentId)).toMatchObject({ version: 1 });
    expect(await docs.get(alice, b.documentId)).toMatchObject({ status: 'indexed', version: 1 });

    // Behind the indexer's back: A's chunks vanish; B gets a new version whose event is lost.
    await index.deleteDocument('tenant-acme-corp', a.documentId);
    await upload('b.md', '# Beta v2\nBeta now describes the cost model for 1,200 users.', false);
    // An orphan: chunks of a document nobody knows.
    await index.upsertChunks([
      {
        id: 'dghost000000:1:0',
        tenantId: 'tenant-acme-corp',
        documentId: 'dghost000000',
        documentName: 'ghost',
        version: 1,
        tier: 'upload',
        etag: 'x',
        ordinal: 0,
        headingPath: '',
        content: 'ghost',
        tokenCount: 1,
        vector: (await trigramEmbedder.embed(['ghost']))[0]!,
      },
    ]);
    expect((await held()).has(a.documentId)).toBe(false);
    expect((await held()).get(b.documentId)).toMatchObject({ version: 1 });

    const report = await sweeps.run('upload', 'run1');
    expect(report).toMatchObject({ republished: 2, orphansDeleted: 1 });
    await drain();
    const after = await held();
    expect(after.get(a.documentId)).toMatchObject({ version: 1 });
    expect(after.get(b.documentId)).toMatchObject({ version: 2, olderVersionChunks: 0 });
    expect(after.has('dghost000000')).toBe(false);
    expect(await docs.get(alice, b.documentId)).toMatchObject({ status: 'indexed', version: 2 });

    // A second sweep finds nothing to do, and records freshness.
    expect(await sweeps.run('upload', 'run2')).toMatchObject({ republished: 0, orphansDeleted: 0 });
    const status = await sweeps.status();
    expect(status.indexes[0]).toMatchObject({
      name: 'meridian-eastus',
      region: 'eastus',
      boundary: 'us',
      documents: 2,
      pending: 0,
    });
    expect(status.indexes[0]?.lastSweepAt).toBeTruthy();

    // Deletion: excluded at once, chunks removed by the delete message, the row dropped by the sweep.
    await docs.remove(alice, a.documentId);
    expect(await docs.get(alice, a.documentId)).toMatchObject({ status: 'deleting' });
    await drain();
    expect((await held()).has(a.documentId)).toBe(false);
    expect(await sweeps.run('upload', 'run3')).toMatchObject({ deletionsFinished: 1 });
    await expect(docs.get(alice, a.documentId)).rejects.toMatchObject({ code: 'not_found' });
    expect(
      (await documents.query(CATALOG, INDEX_PARTITION, { where: [{ path: '/kind', op: '=', value: 'pending-delete' }] })).items,
    ).toEqual([]);

    // A blob deleted out of band: the next sweep removes its chunks and, since no served index
    // holds any, drops the catalog row in the same run.
    const c = await upload('c.md', '# Gamma\nGamma documents describe the runbook for a regional outage.');
    await drain();
    expect((await held()).has(c.documentId)).toBe(true);
    await blobs.delete('documents', c.documentId);
    expect(await sweeps.run('upload', 'run4')).toMatchObject({ orphansDeleted: 1, deletionsFinished: 1 });
    expect((await held()).has(c.documentId)).toBe(false);
    await expect(docs.get(alice, c.documentId)).rejects.toMatchObject({ code: 'not_found' });
    expect(await sweeps.run('upload', 'run5')).toMatchObject({ orphansDeleted: 0, deletionsFinished: 0 });

    await bus.close();
    await documents.close();
    index.close();
  }, 60_000);
});

describe('sweeps delete nothing they cannot prove deleted', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'meridian-sweeps-safety-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** One boundary on fast local adapters; the indexer is fed by hand, as the subscription would. */
  const setup = (name: string) => {
    const clock = new ManualClock(Date.now());
    const logged: { level: string; msg: string; [field: string]: unknown }[] = [];
    const logger = createJsonLogger({ clock, sink: (line) => void logged.push(JSON.parse(line)) });
    const documents = new SqliteDocumentStore({
      path: path.join(dir, `${name}.sqlite`),
      containers: catalog.topology.containers,
      clock,
    });
    const blobs = new MemoryBlobStore(['documents']);
    const sent: OutgoingMessage[] = [];
    const events = {
      publish: async (_topic: string, m: OutgoingMessage) => void sent.push(m),
      publishBatch: async () => undefined,
    };
    const index = new LocalSearchIndex({
      file: path.join(dir, `${name}-search.sqlite`),
      name: 'meridian-eastus',
      dimensions: 512,
    });
    const base = { documents, clock, logger, boundary: 'us' };
    const docs = createDocuments({ ...base, blobs, events, maxDocumentBytes: 1 << 20 });
    const indexer = createIndexer(
      { ...base, blobs, extractor: new LocalTextExtractor(), embedder: trigramEmbedder, countTokens },
      { index, region: 'eastus', primary: true },
    );
    const searchIndexes = [{ region: 'eastus', primary: true, index }];
    const sweepsOver = (over: { blobs?: BlobStore } = { blobs }) =>
      createSweeps({ ...base, ...(over.blobs ? { blobs: over.blobs } : {}), searchIndexes, publisher: docs });
    /** Hands every message published so far to the indexer. */
    const drain = async () => {
      for (let m = sent.shift(); m; m = sent.shift()) await indexer.handle(m.body);
    };
    const uploadAndIndex = async (name: string) => {
      const r = await docs.upload(alice, {
        name,
        tier: 'kb',
        scope: 'tenant',
        contentType: 'text/markdown',
        bytes: Buffer.from(`# ${name}\nSome text about ${name}.`),
      });
      await docs.publishBlobChange('tenant', r.documentId);
      await drain();
      return r;
    };
    const isHeld = async (documentId: string) => (await index.documentVersions()).some((d) => d.documentId === documentId);
    const statusOf = (documentId: string) =>
      docs.get(alice, documentId).then(
        (d) => d.status,
        () => 'gone',
      );
    return { base, blobs, searchIndexes, docs, sent, logged, drain, uploadAndIndex, isHeld, statusOf, sweepsOver };
  };

  it('keeps a document uploaded and indexed while the sweep lists the blobs', async () => {
    const t = setup('race');
    await t.uploadAndIndex('old.md');
    // The listing is a snapshot taken before the upload; the upload is indexed before the
    // listing is used.
    let fresh: { documentId: string } | undefined;
    const racingBlobs = withList(t.blobs, async function* (container) {
      const snapshot: BlobProperties[] = [];
      for await (const b of t.blobs.list(container)) snapshot.push(b);
      fresh ??= await t.uploadAndIndex('new.md');
      yield* snapshot;
    });
    const report = await t.sweepsOver({ blobs: racingBlobs }).run('upload', 'r1');
    expect(report).toMatchObject({ orphansDeleted: 0, deletionsFinished: 0 });
    expect(await t.statusOf(fresh!.documentId)).toBe('indexed');
    expect(await t.isHeld(fresh!.documentId)).toBe(true);
  });

  it('keeps a held document that a listing missed while its blob exists', async () => {
    const t = setup('missed');
    const a = await t.uploadAndIndex('a.md');
    const missing = withList(t.blobs, async function* (container) {
      for await (const b of t.blobs.list(container)) if (b.name !== a.documentId) yield b;
    });
    expect(await t.sweepsOver({ blobs: missing }).run('kb', 'r1')).toMatchObject({ orphansDeleted: 0, deletionsFinished: 0 });
    expect(await t.statusOf(a.documentId)).toBe('indexed');
    expect(await t.isHeld(a.documentId)).toBe(true);
  });

  it('treats a blob store that is not configured or cannot list as unknown, never as empty', async () => {
    const t = setup('no-blob-store');
    const ids: string[] = [];
    for (const n of ['a.md', 'b.md', 'c.md']) ids.push((await t.uploadAndIndex(n)).documentId);
    // A deletion whose blob delete failed: the row is `deleting`, the blob and chunks remain.
    t.blobs.failDeletes = 1;
    await expect(t.docs.remove(alice, ids[2]!)).rejects.toMatchObject({ code: 'unavailable' });

    // Same data, a process without MERIDIAN_BLOB_URL (no blob store) and one whose listing fails.
    const failing = withList(t.blobs, async function* () {
      yield* [];
      throw new AppError('unavailable', 'blob listing failed');
    });
    for (const sweeps of [t.sweepsOver({}), t.sweepsOver({ blobs: failing })]) {
      const report = await sweeps.run('kb', 'r1');
      expect(report).toMatchObject({ orphansDeleted: 0, deletionsFinished: 0, blobStateUnknown: 3 });
      expect(report.unknownContainers).toContain('documents');
    }
    expect(await Promise.all(ids.map(t.statusOf))).toEqual(['indexed', 'indexed', 'deleting']);
    for (const id of ids) expect(await t.isHeld(id)).toBe(true);
    expect(t.blobs.containers.get('documents')?.size).toBe(3);
    expect(t.logged.filter((l) => l.level === 'warn').map((l) => l['message'])).toContain(
      'index sweep left documents alone: their blob store is not configured or did not answer',
    );
  });

  it('refuses to mark many documents deleted out of band in one run, and reports it', async () => {
    const t = setup('mass');
    const ids: string[] = [];
    for (const n of ['a.md', 'b.md', 'c.md', 'd.md', 'e.md']) ids.push((await t.uploadAndIndex(n)).documentId);
    // Three of five blobs gone at once (say, a wrong or emptied account): above the limit.
    for (const id of ids.slice(0, 3)) t.blobs.containers.get('documents')!.delete(id);
    const report = await t.sweepsOver().run('kb', 'r1');
    expect(report).toMatchObject({ orphansDeleted: 0, deletionsFinished: 0, outOfBandRefused: 3 });
    expect(await Promise.all(ids.map(t.statusOf))).toEqual(['indexed', 'indexed', 'indexed', 'indexed', 'indexed']);
    expect(t.logged.find((l) => l.level === 'error')).toMatchObject({
      message: 'index sweep refused to remove documents whose blobs are gone: too many at once',
      container: 'documents',
      missing: 3,
      held: 5,
      allowed: 2,
    });

    // An operator who means it raises the limit (or deletes them through the API).
    const raised = createSweeps({
      ...t.base,
      blobs: t.blobs,
      searchIndexes: t.searchIndexes,
      publisher: t.docs,
      outOfBandLimit: { documents: 3, fraction: 0 },
    });
    expect(await raised.run('kb', 'r2')).toMatchObject({ orphansDeleted: 3, deletionsFinished: 3, outOfBandRefused: 0 });
    expect(await Promise.all(ids.map(t.statusOf))).toEqual(['gone', 'gone', 'gone', 'indexed', 'indexed']);
  });

  it('finishes a deletion whose blob delete failed: blob deleted, delete re-published, row dropped later', async () => {
    const t = setup('failed-delete');
    const a = await t.uploadAndIndex('a.md');
    t.blobs.failDeletes = 1;
    await expect(t.docs.remove(alice, a.documentId)).rejects.toMatchObject({ code: 'unavailable' });
    expect(await t.statusOf(a.documentId)).toBe('deleting');
    expect(t.sent).toEqual([]); // no delete message went out

    const report = await t.sweepsOver().run('upload', 'r1');
    expect(report).toMatchObject({ deletionsResumed: 1, deletionsFinished: 0, orphansDeleted: 0 });
    expect(await t.blobs.head('documents', a.documentId)).toBeUndefined();
    expect(t.sent.map((m) => [m.messageId, m.body])).toEqual([
      [`delete:${a.documentId}@2:sweep:r1`, expect.objectContaining({ op: 'delete', documentId: a.documentId, version: 2 })],
    ]);
    await t.drain();
    expect(await t.isHeld(a.documentId)).toBe(false);
    expect(await t.sweepsOver().run('upload', 'r2')).toMatchObject({ deletionsResumed: 0, deletionsFinished: 1 });
    expect(await t.statusOf(a.documentId)).toBe('gone');
  });
});
