import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type RunningAzurite } from '../../devhost/azurite';
import { AzureBlobStore } from '../../src/adapters/azure/azure-blob-store';
import { AZURITE_DEV_KEY } from '../../src/adapters/local/azurite';
import { ManualClock } from '../../src/adapters/local/clock';
import { SqliteDocumentStore } from '../../src/adapters/local/sqlite-document-store';
import { createJsonLogger } from '../../src/app/logging';
import {
  OUTBOX_TIMEOUT_MS,
  outboxNameOf,
  recordUsage,
  REJECTED_PREFIX,
  replayUsageOutbox,
  storeUsageEvent,
  USAGE_OUTBOX_CONTAINER,
  USAGE_RETRY_DELAYS_MS,
  type UsageContext,
} from '../../src/app/usage-events';
import { USAGE_CONTAINER } from '../../src/app/usage-ledger';
import { loadCatalog, loadConfig } from '../../src/config';
import type { BlobStore } from '../../src/ports/blob-store';
import type { DocumentStore } from '../../src/ports/document-store';
import { appErrorOf } from '../helpers/errors';
import { MemoryBlobStore, withUsageOutage } from '../helpers/memory-blobs';
import { usageEvent } from '../support/usage-events';

const catalog = loadCatalog();
const tenants = loadConfig({ MERIDIAN_MODE: 'local', MERIDIAN_DATA_DIR: os.tmpdir() }).tenants;
const US_TENANTS = new Set(tenants.filter((t) => t.boundary === 'us').map((t) => t.tenantId));
const belongsToUs = (tenantId: string) => US_TENANTS.has(tenantId);
const ctx: UsageContext = {
  tenantId: 'tenant-acme-corp',
  userId: 'alice',
  requestId: 'r1',
  invocationId: 'inv-1',
  source: 'chat',
};
const completion = {
  usage: { promptTokens: 120, completionTokens: 30, totalTokens: 150 },
  model: { region: 'eastus', deployment: 'gpt-4o-eastus', model: 'gpt-4o' },
};

describe('usage events survive a usage container that refuses them', () => {
  let dir: string;
  let store: SqliteDocumentStore;
  const clock = new ManualClock(Date.parse('2030-01-15T10:00:00Z'));
  const logs: Record<string, unknown>[] = [];
  const logger = createJsonLogger({ clock, sink: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  const slept: number[] = [];
  const sleep = async (ms: number) => void slept.push(ms);
  let azurite: RunningAzurite | undefined;

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'meridian-usage-outbox-'));
    store = new SqliteDocumentStore({ path: path.join(dir, 'docs.sqlite'), containers: catalog.topology.containers, clock });
  });
  afterAll(async () => {
    await store?.close();
    await azurite?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const stored = (tenantId: string, id: string) => store.read(USAGE_CONTAINER, tenantId, id);
  const replay = (blobs: BlobStore, documents: DocumentStore = store) =>
    replayUsageOutbox({ documents, blobs, logger }, belongsToUs);
  const NOTHING_LEFT = { stored: 0, duplicates: 0, rejected: 0, remaining: 0 };
  /** A blob in the outbox as something (or someone) put it there. */
  const park = (blobs: BlobStore, name: string, body: string) =>
    blobs.put(USAGE_OUTBOX_CONTAINER, name, Buffer.from(body), { contentType: 'application/json', metadata: {} });

  it('retries a failed write, and a write that succeeds on retry is simply stored', async () => {
    slept.length = 0;
    const outage = { failures: 2 };
    const out = await recordUsage(
      { documents: withUsageOutage(store, outage), clock, logger, blobs: new MemoryBlobStore(), sleep },
      { ...ctx, invocationId: 'inv-retry' },
      1,
      completion,
    );
    expect(out).toBe('stored');
    expect(slept).toEqual([...USAGE_RETRY_DELAYS_MS]);
    expect(await stored('tenant-acme-corp', 'inv-retry:1')).toMatchObject({
      promptTokens: 120,
      completionTokens: 30,
      source: 'chat',
    });
  });

  it('parks the event in the outbox when every attempt fails; the replay stores it once and empties the outbox', async () => {
    const blobs = new MemoryBlobStore(); // the container does not exist yet: created on first use
    const outage = { failures: 99 };
    const deps = { documents: withUsageOutage(store, outage), clock, logger, blobs, sleep };
    expect(await recordUsage(deps, { ...ctx, invocationId: 'inv-park' }, 1, completion)).toBe('deferred');
    expect(await stored('tenant-acme-corp', 'inv-park:1')).toBeUndefined();
    const parked = await blobs.get(USAGE_OUTBOX_CONTAINER, outboxNameOf('inv-park:1'));
    expect(JSON.parse(parked!.bytes.toString())).toMatchObject({
      id: 'inv-park:1',
      tenantId: 'tenant-acme-corp',
      promptTokens: 120,
    });
    expect(logs.some((l) => l['message'] === 'usage container unavailable; usage event parked in the outbox')).toBe(true);

    // Still down: the replay keeps the blob for the next run.
    expect(await replay(blobs, deps.documents)).toEqual({ ...NOTHING_LEFT, remaining: 1 });
    expect(await blobs.get(USAGE_OUTBOX_CONTAINER, outboxNameOf('inv-park:1'))).toBeDefined();

    outage.failures = 0;
    expect(await replay(blobs, deps.documents)).toEqual({ ...NOTHING_LEFT, stored: 1 });
    expect(await stored('tenant-acme-corp', 'inv-park:1')).toMatchObject({
      id: 'inv-park:1',
      userId: 'alice',
      at: '2030-01-15T10:00:00.000Z',
    });
    expect(blobs.containers.get(USAGE_OUTBOX_CONTAINER)?.size).toBe(0);
    expect(await replay(blobs)).toEqual(NOTHING_LEFT);
  });

  it('an event stored meanwhile (the write landed but its answer was lost) is not counted twice', async () => {
    const blobs = new MemoryBlobStore([USAGE_OUTBOX_CONTAINER]);
    const e = usageEvent({ id: 'inv-dup:1' });
    await store.create(USAGE_CONTAINER, e);
    await park(blobs, outboxNameOf(e.id), JSON.stringify(e));
    expect(await replay(blobs)).toMatchObject({ stored: 0, duplicates: 1 });
    expect(blobs.containers.get(USAGE_OUTBOX_CONTAINER)?.size).toBe(0);
    // And a direct write of an already stored event says so instead of failing.
    expect(await storeUsageEvent({ documents: store, clock, blobs, sleep }, e)).toBe('duplicate');
  });

  it('moves blobs that are not a valid event of this boundary under rejected/ with the reason, and skips them after', async () => {
    const blobs = new MemoryBlobStore([USAGE_OUTBOX_CONTAINER]);
    const euTenant = tenants.find((t) => t.boundary === 'eu')!.tenantId;
    await park(blobs, 'a.json', '{not json');
    await park(blobs, 'b.json', JSON.stringify({ ...usageEvent(), promptTokens: -5 }));
    await park(blobs, 'c.json', JSON.stringify(usageEvent({ id: 'inv-eu:1', tenantId: euTenant })));
    await park(blobs, 'd.json', JSON.stringify(usageEvent({ id: 'inv-ok:1' })));
    const stats = await replay(blobs);
    expect(stats).toEqual({ stored: 1, duplicates: 0, rejected: 3, remaining: 0 });
    const left = blobs.containers.get(USAGE_OUTBOX_CONTAINER)!;
    expect([...left.keys()].sort()).toEqual([`${REJECTED_PREFIX}a.json`, `${REJECTED_PREFIX}b.json`, `${REJECTED_PREFIX}c.json`]);
    expect(left.get(`${REJECTED_PREFIX}a.json`)?.metadata['reason']).toBe('not JSON');
    expect(left.get(`${REJECTED_PREFIX}b.json`)?.metadata['reason']).toMatch(/^not a usage event: promptTokens /);
    expect(left.get(`${REJECTED_PREFIX}c.json`)?.metadata['reason']).toBe(`tenant ${euTenant} does not belong to this boundary`);
    expect(await store.read(USAGE_CONTAINER, euTenant, 'inv-eu:1')).toBeUndefined();
    expect(await stored('tenant-acme-corp', 'inv-ok:1')).toBeDefined();
    expect(await replay(blobs)).toEqual(NOTHING_LEFT);
  });

  it('fails (and logs the whole event) only when the outbox cannot take it either; a malformed event is not parked', async () => {
    const blobs = new MemoryBlobStore([USAGE_OUTBOX_CONTAINER]);
    blobs.failPuts = true;
    logs.length = 0;
    const err = await appErrorOf(
      recordUsage(
        { documents: withUsageOutage(store, { failures: 99 }), clock, logger, blobs, sleep },
        { ...ctx, invocationId: 'inv-lost' },
        1,
        completion,
      ),
    );
    expect(err.code).toBe('unavailable');
    const entry = logs.find((l) => l['level'] === 'error');
    expect(entry?.['message']).toBe('usage event not stored and not parked: record it by hand');
    expect(entry?.['event']).toMatchObject({
      id: 'inv-lost:1',
      tenantId: 'tenant-acme-corp',
      promptTokens: 120,
      completionTokens: 30,
    });

    // No blob account at all (a local run without Azurite): the same.
    expect(
      (await appErrorOf(recordUsage({ documents: withUsageOutage(store, { failures: 99 }), clock, sleep }, ctx, 1, completion)))
        .code,
    ).toBe('unavailable');

    blobs.failPuts = false;
    const invalid = await appErrorOf(
      recordUsage(
        { documents: withUsageOutage(store, { failures: 1, code: 'validation_failed' }), clock, blobs, sleep },
        ctx,
        2,
        completion,
      ),
    );
    expect(invalid.code).toBe('validation_failed');
    expect(blobs.containers.get(USAGE_OUTBOX_CONTAINER)?.size).toBe(0);
  });

  it('works against the real blob adapter on Azurite: the container is created on first use', async () => {
    azurite = await startAzurite({ account: 'meridianus', location: path.join(dir, 'blob') });
    const blobs: BlobStore = AzureBlobStore.withAccountKey(azurite.url, 'meridianus', AZURITE_DEV_KEY);
    const outage = { failures: 99 };
    const documents = withUsageOutage(store, outage);
    expect(
      await recordUsage({ documents, clock, logger, blobs, sleep }, { ...ctx, invocationId: 'inv-azurite' }, 3, completion),
    ).toBe('deferred');
    const names: string[] = [];
    for await (const b of blobs.list(USAGE_OUTBOX_CONTAINER)) names.push(b.name);
    expect(names).toEqual([outboxNameOf('inv-azurite:3')]);
    outage.failures = 0;
    expect(await replay(blobs, documents)).toMatchObject({ stored: 1, remaining: 0 });
    expect(await stored('tenant-acme-corp', 'inv-azurite:3')).toMatchObject({ promptTokens: 120 });
    names.length = 0;
    for await (const b of blobs.list(USAGE_OUTBOX_CONTAINER)) names.push(b.name);
    expect(names).toEqual([]);
  }, 60_000);

  it('a blob account that takes connections but never answers fails the write in OUTBOX_TIMEOUT_MS, not in the SDK retry policy time', async () => {
    // Accepts and holds every connection: the way a hung storage front end looks to a client.
    const held: net.Socket[] = [];
    const blackHole = net.createServer((socket) => void held.push(socket));
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    const port = (blackHole.address() as net.AddressInfo).port;
    try {
      const blobs = AzureBlobStore.withAccountKey(`http://127.0.0.1:${port}/meridianus`, 'meridianus', AZURITE_DEV_KEY);
      logs.length = 0;
      const started = Date.now();
      const err = await appErrorOf(
        recordUsage(
          { documents: withUsageOutage(store, { failures: 99 }), clock, logger, blobs, sleep },
          { ...ctx, invocationId: 'inv-hung' },
          1,
          completion,
        ),
      );
      const waited = Date.now() - started;
      expect(err.code).toBe('unavailable');
      expect(waited).toBeGreaterThanOrEqual(OUTBOX_TIMEOUT_MS - 50);
      expect(waited).toBeLessThan(OUTBOX_TIMEOUT_MS + 2000);
      const entry = logs.find((l) => l['level'] === 'error');
      expect(entry?.['event']).toMatchObject({ id: 'inv-hung:1', promptTokens: 120 });
      expect(JSON.stringify(entry?.['outboxErr'])).toContain('did not answer in time');
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => blackHole.close(() => resolve()));
    }
  }, 20_000);
});
