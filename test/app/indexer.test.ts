/**
 * The regional indexer (src/app/indexer.ts) on the local SQLite store and search index, with a
 * store that fails on demand. A delivery that throws part-way is redelivered by Service Bus;
 * these tests redeliver by calling `handle` again with the same body and check that the
 * redelivery finishes the job (catalog, indexVersion, state) rather than skip it. Malformed
 * messages are recorded with their reason and completed, never retried.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/adapters/local/clock';
import { LocalSearchIndex } from '../../src/adapters/local/search-index';
import { SqliteDocumentStore } from '../../src/adapters/local/sqlite-document-store';
import { LocalTextExtractor } from '../../src/adapters/local/text-extractor';
import { countTokens } from '../../src/adapters/local/token-counter';
import { CATALOG, createDocuments, type Documents } from '../../src/app/documents';
import {
  createIndexer,
  INDEX_PARTITION,
  INDEX_VERSION_ID,
  indexStateId,
  type IndexState,
  type Indexer,
  type PoisonMessageRecord,
} from '../../src/app/indexer';
import { createJsonLogger } from '../../src/app/logging';
import { createSweeps } from '../../src/app/sweeps';
import { loadCatalog } from '../../src/config';
import { AppError } from '../../src/domain/errors';
import type { Principal } from '../../src/domain/tenancy';
import type { DocumentStore } from '../../src/ports/document-store';
import type { OutgoingMessage } from '../../src/ports/event-publisher';
import { MemoryBlobStore } from '../helpers/memory-blobs';
import type { Embedder } from '../../src/ports/embedder';
import { trigramEmbedder as embedder } from '../helpers/trigram-embedder';
import { IsolatedTextExtractor } from '../../src/adapters/local/isolated-text-extractor';
import type { TextExtractor } from '../../src/ports/text-extractor';
import { flateBombPdf } from '../helpers/pdf';

const catalog = loadCatalog();
const alice: Principal = { tenantId: 'tenant-acme-corp', userId: 'alice', roles: [], boundary: 'us' };

/** One store failure to inject: which call fails, and how many more times. */
interface Fault {
  op: 'create' | 'upsert' | 'replace' | 'patch' | 'batch';
  matches: (container: string, subject: { id?: string; kind?: unknown; status?: unknown }) => boolean;
  remaining: number;
}

/** The store with `fault()` applied to its writes; reads and everything else pass through. */
function faulty(real: DocumentStore, fault: () => Fault | undefined): DocumentStore {
  return new Proxy(real, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      const fn = (value as (...a: unknown[]) => unknown).bind(target);
      if (!['create', 'upsert', 'replace', 'patch', 'batch'].includes(String(prop))) return fn;
      return async (container: string, ...rest: unknown[]) => {
        const f = fault();
        const subject = prop === 'patch' ? { id: rest[1] as string } : ((rest[0] ?? {}) as { id?: string });
        if (f && f.op === prop && f.remaining > 0 && f.matches(container, subject)) {
          f.remaining--;
          throw new AppError('unavailable', `${container}: 503 (injected)`);
        }
        return fn(container, ...rest);
      };
    },
  });
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'meridian-indexer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('indexer', () => {
  let n = 0;
  let fault: Fault | undefined;
  let real: SqliteDocumentStore;
  let index: LocalSearchIndex;
  let docs: Documents;
  let indexer: Indexer;
  let indexerWith: (extractor: TextExtractor) => Indexer;
  let sent: OutgoingMessage[];
  let logs: Record<string, unknown>[];
  let onEmbed: (() => Promise<void>) | undefined;

  beforeEach(() => {
    n++;
    fault = undefined;
    onEmbed = undefined;
    sent = [];
    logs = [];
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const logger = createJsonLogger({ clock, sink: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) });
    real = new SqliteDocumentStore({ path: path.join(dir, `docs-${n}.sqlite`), containers: catalog.topology.containers, clock });
    const documents = faulty(real, () => fault);
    index = new LocalSearchIndex({ file: path.join(dir, `search-${n}.sqlite`), name: 'meridian-eastus', dimensions: 512 });
    const blobs = new MemoryBlobStore(['documents']);
    const events = {
      publish: async (_topic: string, m: OutgoingMessage) => void sent.push(m),
      publishBatch: async (_topic: string, ms: OutgoingMessage[]) => void sent.push(...ms),
    };
    const base = { documents, clock, logger, boundary: 'us' };
    docs = createDocuments({ ...base, blobs, events, maxDocumentBytes: 1 << 20 });
    const slowEmbedder: Embedder = {
      ...embedder,
      embed: async (texts) => {
        const hook = onEmbed;
        onEmbed = undefined;
        if (hook) await hook();
        return embedder.embed(texts);
      },
    };
    indexerWith = (extractor) =>
      createIndexer(
        { ...base, blobs, extractor, embedder: slowEmbedder, countTokens },
        { index, region: 'eastus', primary: true },
      );
    indexer = indexerWith(new LocalTextExtractor());
  });
  afterEach(async () => {
    await real.close();
  });

  /** Uploads (a new version of) `name` and returns the index-sync message it published. */
  const upload = async (
    name: string,
    text: string | Uint8Array,
    contentType: 'text/markdown' | 'text/plain' | 'application/pdf' = 'text/markdown',
  ) => {
    const r = await docs.upload(alice, { name, tier: 'upload', scope: 'tenant', contentType, bytes: Buffer.from(text) });
    await docs.publishBlobChange('tenant', r.documentId);
    const message = sent.pop();
    if (!message) throw new Error('nothing was published');
    return { documentId: r.documentId, body: message.body, messageId: message.messageId };
  };
  const indexVersion = async () =>
    (await real.read<{ id: string; value: number }>(CATALOG, alice.tenantId, INDEX_VERSION_ID))?.value ?? 0;
  const stateOf = (documentId: string) =>
    real.read<IndexState>(CATALOG, alice.tenantId, indexStateId('meridian-eastus', documentId));
  const held = async (documentId: string) => (await index.documentVersions()).find((d) => d.documentId === documentId);
  const isDocument = (c: string, item: { kind?: unknown }) => c === CATALOG && item.kind === 'document';
  const isIndexVersion = (c: string, item: { id?: string }) => c === CATALOG && item.id === INDEX_VERSION_ID;
  const poisonRows = async () =>
    (
      await real.query<PoisonMessageRecord>(CATALOG, INDEX_PARTITION, {
        where: [{ path: '/kind', op: '=', value: 'poison-message' }],
      })
    ).items;

  describe('a redelivery finishes what a transient failure interrupted', () => {
    it('catalog update fails after the chunks are committed: the redelivery marks it indexed and moves indexVersion', async () => {
      const m = await upload('guide.md', '# Guide\nHow regional failover works for the eastus primary.');
      fault = { op: 'replace', matches: isDocument, remaining: 1 };
      await expect(indexer.handle(m.body)).rejects.toThrow(/injected/);
      expect((await held(m.documentId))?.chunks).toBeGreaterThan(0); // committed before the failure

      await expect(indexer.handle(m.body)).resolves.toMatchObject({ result: 'indexed' });
      const row = await docs.get(alice, m.documentId);
      expect(row).toMatchObject({ status: 'indexed', version: 1 });
      expect(row.chunks).toBeGreaterThan(0);
      expect(await indexVersion()).toBeGreaterThanOrEqual(1);
      expect(await stateOf(m.documentId)).toMatchObject({ version: 1, op: 'upsert' });
      // Now it is done: a further duplicate is skipped.
      await expect(indexer.handle(m.body)).resolves.toMatchObject({ result: 'skipped' });
    });

    it('the indexVersion bump fails: the redelivery bumps it (cached chat answers are invalidated)', async () => {
      const m = await upload('guide.md', '# Guide\nHow regional failover works for the eastus primary.');
      // A tenant's first bump creates the counter.
      fault = { op: 'create', matches: isIndexVersion, remaining: 1 };
      await expect(indexer.handle(m.body)).rejects.toThrow(/injected/);
      expect(await indexVersion()).toBe(0);

      await expect(indexer.handle(m.body)).resolves.toMatchObject({ result: 'indexed' });
      expect(await indexVersion()).toBe(1);
      expect(await docs.get(alice, m.documentId)).toMatchObject({ status: 'indexed' });
    });

    it('delete: the bump fails after the chunks are removed: the redelivery bumps and records the delete', async () => {
      const m = await upload('gone.md', '# Gone\nThis document will be deleted.');
      await indexer.handle(m.body);
      const before = await indexVersion();
      await docs.remove(alice, m.documentId);
      const del = sent.pop();
      if (!del) throw new Error('no delete message');
      fault = { op: 'patch', matches: isIndexVersion, remaining: 1 };
      await expect(indexer.handle(del.body)).rejects.toThrow(/injected/);
      expect(await held(m.documentId)).toBeUndefined();

      await expect(indexer.handle(del.body)).resolves.toMatchObject({ result: 'deleted' });
      expect(await indexVersion()).toBe(before + 1);
      expect(await stateOf(m.documentId)).toMatchObject({ op: 'delete', version: 2 });
    });

    it('a permanent failure whose catalog update fails: the redelivery marks the document failed with the reason', async () => {
      const m = await upload('broken.pdf', '%PDF-1.7\nthis is not a pdf at all', 'application/pdf');
      fault = { op: 'replace', matches: isDocument, remaining: 1 };
      await expect(indexer.handle(m.body)).rejects.toThrow(/injected/);

      await expect(indexer.handle(m.body)).resolves.toMatchObject({ result: 'failed' });
      const row = await docs.get(alice, m.documentId);
      expect(row.status).toBe('failed');
      expect(row.error).toBeTruthy();
    });

    it('an older message finishing after a newer one leaves the newer catalog row, state and chunks', async () => {
      const v1 = await upload('race.md', '# Race\nThe first version mentions zebracorns.');
      // v1 has read its blob; while it embeds, v2 is uploaded and fully indexed.
      onEmbed = async () => {
        const v2 = await upload('race.md', '# Race\nThe second version mentions okapis.');
        await expect(indexer.handle(v2.body)).resolves.toMatchObject({ result: 'indexed' });
      };
      await expect(indexer.handle(v1.body)).resolves.toMatchObject({ result: 'skipped' });

      const row = await docs.get(alice, v1.documentId);
      expect(row).toMatchObject({ status: 'indexed', version: 2 });
      expect(await stateOf(v1.documentId)).toMatchObject({ version: 2 });
      expect(await held(v1.documentId)).toMatchObject({ version: 2, olderVersionChunks: 0 });
    });
  });

  describe('a malformed message is recorded with its reason and completed, not retried', () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const statusOf = async () =>
      (
        await createSweeps({
          documents: real,
          clock,
          logger: createJsonLogger({ clock, sink: () => undefined }),
          boundary: 'us',
          searchIndexes: [{ region: 'eastus', primary: true, index }],
          publisher: docs,
        }).status()
      ).indexes[0];

    it('fails schema validation: resolves `rejected`, keeps the raw body with the zod issues, counts it once', async () => {
      const body = { schema: 1, op: 'upsert', documentId: 'abc', version: 'two' };
      const outcome = await indexer.handle(body, { messageId: 'garbage-1', deliveryCount: 1 });
      expect(outcome).toMatchObject({ result: 'rejected' });
      // A redelivery (the completion was lost) is recognised: one row, counted once.
      await expect(indexer.handle(body, { messageId: 'garbage-1', deliveryCount: 2 })).resolves.toMatchObject({
        result: 'rejected',
      });

      const rows = await poisonRows();
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        disposition: 'rejected',
        index: 'meridian-eastus',
        boundary: 'us',
        messageId: 'garbage-1',
        body,
        bodyEncoding: 'json',
        bodyTruncated: false,
      });
      expect(rows[0]?.reason).toMatch(/version/);
      expect(rows[0]?.reason).toMatch(/documentId/);
      expect((await statusOf())?.deadLettered).toBe(1);
      expect(logs.find((l) => l['message'] === 'index-sync message rejected')).toMatchObject({
        level: 'error',
        messageId: 'garbage-1',
      });
    });

    it('non-JSON bytes and text are kept too, each message once', async () => {
      await indexer.handle(Buffer.from([0xde, 0xad, 0xbe, 0xef]), { messageId: 'bytes' });
      await indexer.handle('not json at all', { messageId: 'text' });
      await indexer.handle('not json at all', { messageId: 'text-again' }); // another message, same body
      const rows = await poisonRows();
      expect(rows.map((r) => [r.messageId, r.bodyEncoding, r.body]).sort()).toEqual([
        ['bytes', 'base64', '3q2+7w=='],
        ['text', 'text', 'not json at all'],
        ['text-again', 'text', 'not json at all'],
      ]);
      expect((await statusOf())?.deadLettered).toBe(3);
    });

    it('breaks the blob-name rule: rejected with the reason; the document it names is left as it was', async () => {
      const m = await upload('poisoned.md', '# Poison target\nThis document will receive a poison message.');
      await indexer.handle(m.body);
      const poison = {
        ...(m.body as Record<string, unknown>),
        version: 2,
        blob: { account: 'x', container: 'documents', name: 'nope' },
      };
      await expect(indexer.handle(poison, { messageId: 'p' })).resolves.toMatchObject({
        result: 'rejected',
        reason: expect.stringMatching(/blob\.name/) as unknown,
      });
      expect(await docs.get(alice, m.documentId)).toMatchObject({ status: 'indexed', version: 1 });
      expect((await statusOf())?.deadLettered).toBe(1);
    });

    it('when the record cannot be written, the delivery throws so the bus keeps the message', async () => {
      fault = { op: 'batch', matches: () => true, remaining: 1 };
      await expect(indexer.handle({ nonsense: true }, { messageId: 'x' })).rejects.toThrow(/injected/);
      expect(await poisonRows()).toHaveLength(0);
      await expect(indexer.handle({ nonsense: true }, { messageId: 'x' })).resolves.toMatchObject({ result: 'rejected' });
      expect((await statusOf())?.deadLettered).toBe(1);
    });

    it('the dead-letter handler records and counts an unparseable message with its validation reason', async () => {
      await indexer.handleDeadLetter({ nonsense: true }, 'MaxDeliveryCountExceeded', 'delivered 5 times', { messageId: 'dl' });
      const rows = await poisonRows();
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        disposition: 'dead-lettered',
        deadLetterReason: 'MaxDeliveryCountExceeded',
        deadLetterErrorDescription: 'delivered 5 times',
        body: { nonsense: true },
      });
      expect(rows[0]?.reason).toMatch(/not an index-sync message/);
      expect((await statusOf())?.deadLettered).toBe(1);
    });

    it('the dead-letter handler marks a valid message’s document failed and counts it once per message', async () => {
      const m = await upload('stuck.md', '# Stuck\nThis one never gets indexed.');
      await indexer.handleDeadLetter(m.body, 'TTLExpiredException', undefined, { messageId: m.messageId });
      await indexer.handleDeadLetter(m.body, 'TTLExpiredException', undefined, { messageId: m.messageId });
      expect(await docs.get(alice, m.documentId)).toMatchObject({
        status: 'failed',
        error: 'dead-lettered: TTLExpiredException',
      });
      expect((await statusOf())?.deadLettered).toBe(1);
    });
  });
  describe('untrusted content', () => {
    /** The production extractor, with limits small enough for the test process. */
    const isolated = new IsolatedTextExtractor({ maxArrayBufferMb: 16, maxHeapMb: 128 });
    afterAll(() => isolated.close());

    it('a PDF decompression bomb is marked failed with the reason, completed, and not retried', async () => {
      const m = await upload('bomb.pdf', flateBombPdf(48), 'application/pdf');
      const ix = indexerWith(isolated);
      const t = performance.now();
      const outcome = await ix.handle(m.body);
      expect(performance.now() - t).toBeLessThan(10_000);
      expect(outcome).toEqual({ result: 'failed', reason: 'the document needs more than 16 MiB of memory to extract its text' });
      expect(await docs.get(alice, m.documentId)).toMatchObject({
        status: 'failed',
        error: outcome.result === 'failed' && outcome.reason,
      });
      // Completed for good: a redelivery of the same message is skipped, not extracted again.
      await expect(ix.handle(m.body)).resolves.toMatchObject({ result: 'skipped' });
      // The worker was replaced: the next document indexes.
      const next = await upload('next.md', '# Next\nIndexed after the bomb.');
      await expect(ix.handle(next.body)).resolves.toMatchObject({ result: 'indexed' });
    });

    it('text/plain is chunked as plain text: a line starting with # is content, not a heading', async () => {
      const m = await upload('notes.txt', '# not a heading\nbody of the note', 'text/plain');
      await expect(indexer.handle(m.body)).resolves.toMatchObject({ result: 'indexed', chunks: 1 });
      const hits = await index.search({ tenantIds: [alice.tenantId], text: 'heading', top: 5 });
      expect(hits.map((h) => [h.headingPath, h.content])).toEqual([['', '# not a heading\nbody of the note']]);
    });
  });
});
