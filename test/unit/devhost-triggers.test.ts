import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type RunningAzurite } from '../../devhost/azurite';
import { FunctionHost } from '../../devhost/host';
import { startBlobTriggers, parseBlobPath } from '../../devhost/triggers/blob';
import { batchRetryOf, cosmosTriggerPlan, startCosmosTriggers } from '../../devhost/triggers/cosmos';
import { startServiceBusTriggers } from '../../devhost/triggers/service-bus';
import { AZURITE_DEV_KEY } from '../../src/adapters/local/azurite';
import { ManualClock } from '../../src/adapters/local/clock';
import { ensureTopology, LocalServiceBus } from '../../src/adapters/local/service-bus';
import { SqliteDocumentStore } from '../../src/adapters/local/sqlite-document-store';
import { loadCatalog } from '../../src/config';

interface Seen {
  east: { id: string; deliveryCount: number; messageId: string }[];
  dlq: { id: string; reason: string }[];
  ledger: string[][];
  ledgerRetries: (number | undefined)[];
  audit: string[];
  blobs: { name: string; text: string; tenant: string }[];
}
const seen = () => (globalThis as unknown as { __triggerFixture: Seen }).__triggerFixture;

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const catalog = loadCatalog();
const host = new FunctionHost({ appDir: path.resolve(__dirname, '../fixtures/trigger-app') });
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'devhost-triggers-'));
  await host.load();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const message = (documentId: string, targetRegion: string, extra: Record<string, unknown> = {}) => ({
  messageId: `upsert:${documentId}@1`,
  body: { schema: 1, op: 'upsert', documentId, version: 1, targetRegion, ...extra },
  applicationProperties: { targetRegion, tier: 'upload' },
  contentType: 'application/json',
});

describe('serviceBusTrigger on the local bus', () => {
  it('delivers through the SQL-filtered subscription, dead-letters a poison message after maxDeliveryCount, and runs the DLQ function', async () => {
    const clock = new ManualClock(Date.now());
    const bus = new LocalServiceBus({ path: path.join(dir, 'bus.sqlite'), clock });
    await ensureTopology(bus, catalog.topology);
    const triggers = startServiceBusTriggers({ host, bus, clock, log: () => undefined });
    try {
      await bus.publish('index-sync', message('doc-us', 'us'));
      await bus.publish('index-sync', message('doc-eu', 'eu'));
      await bus.publish('index-sync', message('doc-all', 'all'));
      await bus.publish('index-sync', message('doc-poison', 'us', { poison: true }));
      await waitFor(() => seen().dlq.length === 1);
      expect(
        seen()
          .east.map((e) => e.id)
          .sort(),
      ).toEqual(['doc-all', 'doc-us']);
      expect(seen().east[0]).toMatchObject({ deliveryCount: 1, messageId: expect.stringMatching(/^upsert:doc-/) });
      expect(seen().dlq).toEqual([{ id: 'doc-poison', reason: 'MaxDeliveryCountExceeded' }]);
      expect(await bus.stats('index-sync', 'meridian-eastus-indexer')).toMatchObject({ active: 0, locked: 0 });
    } finally {
      await triggers.stop();
      await bus.close();
    }
  });
});

describe('cosmosDBTrigger on the local change feed', () => {
  it('gives each function its own lease, retries a failed batch without skipping under a retry policy, and resumes after a restart', async () => {
    const clock = new ManualClock(Date.now());
    const file = path.join(dir, 'docs.sqlite');
    const logs: string[] = [];
    let store = new SqliteDocumentStore({ path: file, containers: catalog.topology.containers, clock });
    let triggers = await startCosmosTriggers({ host, store, database: 'meridian', clock, log: (m) => logs.push(m) });
    await store.create('usage', { id: 'e1', tenantId: 't1' });
    await store.create('usage', { id: 'e2', tenantId: 't1', failOnce: true });
    await waitFor(() => seen().ledger.flat().includes('e2') && seen().audit.includes('e2'), 8000);
    expect(new Set(seen().ledger.flat())).toEqual(new Set(['e1', 'e2']));
    expect(seen().audit.sort()).toEqual(['e1', 'e2']);
    // The retried batch knew it was a retry (context.retryContext, as the host sends it).
    expect(seen().ledgerRetries.at(-1)).toBe(1);
    expect(logs).toContain(
      'cosmosDBTrigger auditFeed has no retry policy: a batch whose invocation throws is skipped, here as in Azure (give app.cosmosDB a retry option)',
    );
    await triggers.stop();
    await store.close();

    // Restart: a new store object and processors on the same file resume after their leases.
    store = new SqliteDocumentStore({ path: file, containers: catalog.topology.containers, clock });
    await store.create('usage', { id: 'e3', tenantId: 't2' });
    triggers = await startCosmosTriggers({ host, store, database: 'meridian', clock, log: () => undefined });
    await waitFor(() => seen().ledger.flat().includes('e3') && seen().audit.includes('e3'), 8000);
    expect(seen().audit.sort()).toEqual(['e1', 'e2', 'e3']);
    // The failed batch was retried whole: each change recorded once, none skipped.
    expect(
      seen()
        .ledger.flat()
        .filter((id) => id === 'e1'),
    ).toHaveLength(1);
    expect(
      seen()
        .ledger.flat()
        .filter((id) => id === 'e3'),
    ).toHaveLength(1);
    await triggers.stop();
    await store.close();
  });

  it('skips a failed batch of a function without a retry policy, as Azure does, and says so', async () => {
    const clock = new ManualClock(Date.now());
    const logs: string[] = [];
    const store = new SqliteDocumentStore({
      path: path.join(dir, 'skip.sqlite'),
      containers: catalog.topology.containers,
      clock,
    });
    const triggers = await startCosmosTriggers({ host, store, database: 'meridian', clock, log: (m) => logs.push(m) });
    try {
      await store.create('usage', { id: 's1', tenantId: 't1', auditRefuses: true });
      await waitFor(() => logs.some((m) => m.startsWith('cosmosDBTrigger auditFeed: batch skipped after 1 failed attempt')));
      await store.create('usage', { id: 's2', tenantId: 't1' });
      await waitFor(() => seen().audit.includes('s2') && seen().ledger.flat().includes('s2'));
      expect(seen().audit).not.toContain('s1');
      // The function with a retry policy was not affected.
      expect(seen().ledger.flat()).toContain('s1');
    } finally {
      await triggers.stop();
      await store.close();
    }
  });

  it('reads the retry policy the library registers', () => {
    expect(batchRetryOf(null)).toBeUndefined();
    expect(
      batchRetryOf({
        retryStrategy: 'exponentialBackoff',
        maxRetryCount: -1,
        minimumInterval: { seconds: 1 },
        maximumInterval: { seconds: 60 },
      } as never),
    ).toEqual({ maxRetries: -1, initialDelayMs: 1000, maxDelayMs: 60_000 });
    expect(batchRetryOf({ retryStrategy: 'fixedDelay', maxRetryCount: 3, delayInterval: '5s' })).toEqual({
      maxRetries: 3,
      initialDelayMs: 5000,
      maxDelayMs: 5000,
    });
    const app = host.functions().find((f) => f.name === 'ledgerFeed');
    expect(batchRetryOf(app?.metadata.retryOptions)).toEqual({ maxRetries: -1, initialDelayMs: 100, maxDelayMs: 100 });
  });

  it('refuses two functions that would share one lease on a container', () => {
    const fns = host.functions().filter((f) => f.trigger.type === 'cosmosDBTrigger');
    const clash = fns.map((f) => ({ ...f, trigger: { ...f.trigger, leaseContainerPrefix: 'same' } }));
    expect(() => cosmosTriggerPlan(clash, 'meridian')).toThrow(/both watch usage with lease prefix "same"/);
    expect(cosmosTriggerPlan(fns, 'meridian')).toHaveLength(2);
  });
});

describe('blobTrigger on Azurite', () => {
  let azurite: RunningAzurite;
  beforeAll(async () => {
    azurite = await startAzurite({ account: 'meridiantest', location: path.join(dir, 'blob') });
  }, 60_000);
  afterAll(async () => {
    await azurite?.stop();
  });

  it('parses blob path patterns', () => {
    const p = parseBlobPath('documents/{tenant}/{name}');
    expect(p.container).toBe('documents');
    expect(p.match('t1/a/b.md')).toEqual({ tenant: 't1', name: 'a/b.md' });
    expect(parseBlobPath('shared/{name}.txt').match('x.txt')).toEqual({ name: 'x' });
    expect(parseBlobPath('shared/{name}.txt').match('x.pdf')).toBeUndefined();
  });

  it('triggers once per blob version, also across a restart, and not on delete', async () => {
    const container = new BlobServiceClient(
      azurite.url,
      new StorageSharedKeyCredential('meridiantest', AZURITE_DEV_KEY),
    ).getContainerClient('documents');
    await container.createIfNotExists();
    const upload = (name: string, text: string) =>
      container.getBlockBlobClient(name).upload(text, Buffer.byteLength(text), { metadata: { tenant: 'tenant-acme-corp' } });
    const start = () =>
      startBlobTriggers({
        host,
        accounts: { boundary: { url: azurite.url, account: 'meridiantest' } },
        receiptsDir: dir,
        pollMs: 60_000,
        log: () => undefined,
      });

    let triggers = await start();
    await upload('doc-1', 'version one');
    await triggers.pollOnce();
    await triggers.pollOnce();
    expect(seen().blobs).toEqual([{ name: 'doc-1', text: 'version one', tenant: 'tenant-acme-corp' }]);
    await triggers.stop();

    triggers = await start(); // restart: receipts persisted, nothing re-triggers
    await triggers.pollOnce();
    expect(seen().blobs).toHaveLength(1);
    await upload('doc-1', 'version two');
    await container.deleteBlob('doc-1').catch(() => undefined);
    await upload('doc-2', 'another');
    await triggers.pollOnce();
    expect(seen().blobs.map((b) => `${b.name}:${b.text}`)).toEqual(['doc-1:version one', 'doc-2:another']);
    await upload('doc-2', 'another, edited');
    await triggers.pollOnce();
    expect(
      seen()
        .blobs.map((b) => b.text)
        .at(-1),
    ).toBe('another, edited');
    await triggers.stop();
  }, 30_000);
});
