/**
 * The ledger through the real path: the compiled app (dist/functions/index.js) loaded by
 * devhost's FunctionHost, its `usageLedger` cosmosDB trigger driven by devhost's
 * startCosmosTriggers over a SqliteDocumentStore file — not a Map. Seeded property: random
 * usage streams with duplicates (the same event written again), random order across
 * tenant partitions, a processor restart in the middle whose lease is rewound (a crash after
 * merging but before checkpointing: the batches come again) give ledger totals exactly
 * equal to the sum of the distinct events, in every run.
 *
 * One FunctionHost per process: this file is its own vitest worker. Requires a build.
 */
import fc from 'fast-check';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FunctionHost } from '../../devhost/host';
import { batchRetryOf, startCosmosTriggers } from '../../devhost/triggers/cosmos';
import { openSqliteDocumentStore, type SqliteDocumentStore } from '../../src/adapters/local/sqlite-document-store';
import { loadCatalog } from '../../src/config';
import { createAuditLog } from '../../src/app/audit-log';
import { sha256Hex } from '../../src/app/hashing';
import { createJsonLogger } from '../../src/app/logging';
import type { LedgerDocument } from '../../src/app/usage-ledger';
import type { UsageEvent } from '../../src/domain/usage-ledger';
import type { Item } from '../../src/ports/document-store';
import { ManualClock } from '../support/manual-clock';
import { tempDir } from '../support/temp-dir';
import { expectedLedgers } from '../support/usage-events';
import { prng } from '../../bench/lib/prng';

const ROOT = path.resolve(__dirname, '../..');
const LEDGER_LEASE = 'ledger-usage:usage';

describe('usage ledger through devhost cosmosDB triggers and SqliteDocumentStore', () => {
  const tmp = tempDir('ledger-host-');
  const catalog = loadCatalog();
  const clock = new ManualClock(Date.UTC(2030, 0, 15));
  const triggerErrors: string[] = [];
  let host: FunctionHost;
  let store: SqliteDocumentStore;
  let triggers: { stop(): Promise<void> } | undefined;

  const start = async () => {
    triggers = await startCosmosTriggers({
      host,
      store,
      database: catalog.topology.database,
      clock,
      log: (message, fields) => triggerErrors.push(`${message} ${JSON.stringify(fields)}`),
    });
  };

  beforeAll(async () => {
    process.env['MERIDIAN_MODE'] = 'local';
    process.env['MERIDIAN_DATA_DIR'] = tmp.dir;
    process.env['LOG_LEVEL'] = 'error';
    delete process.env['MERIDIAN_SERVED_REGIONS'];
    host = new FunctionHost({ appDir: ROOT });
    await host.load([path.join(ROOT, 'dist/functions/index.js')]);
    // The same file the app's composition root opened for boundary `us`.
    store = openSqliteDocumentStore({
      path: path.join(tmp.dir, 'us', 'documents.sqlite'),
      containers: catalog.topology.containers,
      clock,
    });
    await start();
  });

  afterAll(async () => {
    await triggers?.stop();
    await host?.terminate();
    await store?.close();
    tmp.remove();
  });

  /** The sequence number of the newest change in `usage` (the store's sequence spans all containers). */
  async function lastUsageLsn(): Promise<number> {
    let continuation: string | undefined;
    let last = 0;
    for (;;) {
      const page = await store.readChangeFeed('usage', { maxItems: 10_000, ...(continuation ? { continuation } : {}) });
      if (page.items.length === 0) return last;
      last = page.items[page.items.length - 1]?._lsn ?? last;
      continuation = page.continuation;
    }
  }
  const seqOf = (etag: string): number => parseInt(etag.slice(1, -1), 16);

  /** Resolves when `lease` has acknowledged everything up to `target` (bounded). */
  async function leaseReaches(leaseId: string, target: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lease = await store.read<{ id: string; continuation: string | null }>('leases', leaseId, leaseId);
      if (lease && Number(lease.continuation ?? 0) >= target) return;
      if (Date.now() > deadline)
        throw new Error(`lease ${leaseId} stuck at ${lease?.continuation} < ${target}: ${triggerErrors.slice(-3).join('; ')}`);
      await new Promise<void>((resolve) => {
        const off = store.onChange('leases', () => {
          clearTimeout(t);
          off();
          resolve();
        });
        const t = setTimeout(() => {
          off();
          resolve();
        }, 25);
      });
    }
  }

  it('registers one cosmosDB function per lease prefix declared in config/topology.json', () => {
    const registered = host
      .functions()
      .filter((f) => f.trigger.type === 'cosmosDBTrigger')
      .map((f) => `${String(f.trigger['containerName'])}/${String(f.trigger['leaseContainerPrefix'])}`)
      .sort();
    const declared = catalog.topology.containers.flatMap((c) => (c.leasePrefixes ?? []).map((p) => `${c.name}/${p}`)).sort();
    expect(registered).toEqual(declared);
    expect(registered).toContain('usage/ledger-usage');
    expect(registered).toContain('usage/audit-usage');
  });

  it('every change-feed function has a retry policy that never gives a batch up (Azure skips a failed batch without one)', () => {
    const policies = host
      .functions()
      .filter((f) => f.trigger.type === 'cosmosDBTrigger')
      .map((f) => [f.name, batchRetryOf(f.metadata.retryOptions)?.maxRetries]);
    expect(policies.length).toBeGreaterThanOrEqual(7);
    for (const [name, maxRetries] of policies) expect({ name, maxRetries }).toEqual({ name, maxRetries: -1 });
  });

  let run = 0;
  const eventArb = fc.record({
    tenant: fc.integer({ min: 0, max: 2 }),
    month: fc.integer({ min: 1, max: 3 }),
    region: fc.constantFrom('eastus', 'westus2'),
    deployment: fc.constantFrom('gpt-4o-eastus', 'gpt-4o-westus2', 'o3-mini'),
    source: fc.constantFrom<UsageEvent['source']>('chat', 'session', 'evaluation'),
    promptTokens: fc.integer({ min: 0, max: 5000 }),
    completionTokens: fc.integer({ min: 0, max: 5000 }),
    calls: fc.integer({ min: 1, max: 3 }),
  });

  it('ledger totals equal the sum of distinct events, whatever the redelivery (200 seeded runs)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(eventArb, { minLength: 1, maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 20 }), // duplicates: indexes of events written again
        fc.nat(), // shuffle seed: order across (and within) tenant partitions
        fc.double({ min: 0, max: 1, noNaN: true }), // where in the stream the processors restart
        fc.double({ min: 0, max: 1, noNaN: true }), // how far back the lease is rewound then
        async (specs, dupIdx, shuffleSeed, restartAt, rewind) => {
          run++;
          const events: UsageEvent[] = [];
          specs.forEach((s, i) => {
            for (let n = 0; n < s.calls; n++) {
              events.push({
                id: `run${run}-inv${i}:${n}`,
                tenantId: `prop-r${run}-t${s.tenant}`,
                userId: 'u',
                requestId: `req-${i}`,
                region: s.region,
                deployment: s.deployment,
                source: s.source,
                promptTokens: s.promptTokens,
                completionTokens: s.completionTokens,
                at: `2030-0${s.month}-1${n}T12:00:00.000Z`,
              });
            }
          });
          const writes = [...events, ...dupIdx.map((d) => events[d % events.length] as UsageEvent)];
          shuffle(writes, shuffleSeed);
          const startSeq = Number(store.currentContinuation('usage'));
          const restartIndex = Math.floor(restartAt * writes.length);
          let lastWrite = 0;
          for (let i = 0; i < writes.length; i++) {
            if (i === restartIndex) {
              await triggers?.stop();
              const lease = await store.read<{ id: string; continuation: string | null }>('leases', LEDGER_LEASE, LEDGER_LEASE);
              if (lease) {
                const at = Number(lease.continuation ?? 0);
                const back = Math.max(0, Math.floor(startSeq + rewind * (at - startSeq)));
                const { _etag: _e, _ts: _t, ...rest } = lease;
                await store.replace('leases', { ...rest, continuation: String(back) });
              }
              await start();
            }
            lastWrite = seqOf((await store.upsert('usage', asItem(writes[i] as UsageEvent)))._etag);
          }
          await leaseReaches(LEDGER_LEASE, lastWrite);

          const expected = expectedLedgers(events);
          const tenants = new Set(events.map((e) => e.tenantId));
          let ledgers = 0;
          for (const tenantId of tenants) {
            const page = await store.query<LedgerDocument>('usage', tenantId, {
              where: [{ path: '/type', op: '=', value: 'usage-ledger' }],
            });
            ledgers += page.items.length;
            for (const l of page.items) {
              const want = expected.get(`${tenantId}|${l.period}`);
              expect({
                totals: l.totals,
                byRegion: l.byRegion,
                byDeployment: l.byDeployment,
                bySource: l.bySource,
                events: l.events,
              }).toEqual(want);
            }
          }
          expect(ledgers).toBe(expected.size);
        },
      ),
      { numRuns: 200, seed: 20300115, endOnFailure: true },
    );
    expect(triggerErrors).toEqual([]);
  }, 240_000);

  it('a budget crossed through the whole path gives one audit entry per threshold, on a chain that verifies', async () => {
    // tenant-globex-intl: 2,000,000 tokens a month, hard (config/tenants.local.json).
    const T = 'tenant-globex-intl';
    const ev = (i: number, tokens: number): UsageEvent => ({
      id: `budget-inv${i}:0`,
      tenantId: T,
      userId: 'u',
      requestId: `r${i}`,
      region: 'eastus',
      deployment: 'gpt-4o-eastus',
      source: 'chat',
      promptTokens: tokens,
      completionTokens: 0,
      at: '2030-01-20T00:00:00.000Z',
    });
    const stream = [ev(1, 1_000_000), ev(2, 599_999), ev(3, 1), ev(4, 300_000), ev(5, 100_000), ev(6, 5)];
    for (const e of stream) await store.upsert('usage', asItem(e));
    await triggers?.stop();
    await start();
    let last = 0;
    for (const e of stream) last = seqOf((await store.upsert('usage', asItem(e)))._etag); // everything written again
    await leaseReaches(LEDGER_LEASE, last);
    await leaseReaches('audit-usage:usage', await lastUsageLsn()); // the ledger's threshold documents too
    const entries = (
      await store.query<{ action: string; seq: number }>('audit', T, {
        where: [{ path: '/type', op: '=', value: 'audit-entry' }],
        orderBy: { path: '/seq', direction: 'asc' },
      })
    ).items;
    expect(entries.map((e) => e.action)).toEqual(['budget.threshold_80', 'budget.threshold_100']);
    const ledger = await store.read<LedgerDocument>('usage', T, 'ledger:2030-01');
    expect(ledger?.totals.totalTokens).toBe(2_000_005);
    expect(ledger?.thresholds).toEqual([80, 100]);
    const audit = createAuditLog({
      documents: store,
      clock,
      logger: createJsonLogger({ clock, level: 'error', sink: () => undefined }),
      config: { boundary: 'us', region: 'eastus' },
      hash: sha256Hex,
    });
    expect(await audit.verify(T)).toMatchObject({ valid: true, count: 2 });
  }, 60_000);
});

const asItem = (e: UsageEvent): Item => ({ ...e });

/** Fisher–Yates with a small seeded PRNG. */
function shuffle<T>(a: T[], seed: number): void {
  const rnd = prng(seed);
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
}
