import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTenantDirectory } from '../../src/app/auth';
import { createJsonLogger } from '../../src/app/logging';
import { createBudgetGuard, createUsageLedger, ledgerIdOf, type LedgerDocument } from '../../src/app/usage-ledger';
import { SqliteDocumentStore } from '../../src/adapters/local/sqlite-document-store';
import { loadCatalog } from '../../src/config';
import { isAppError } from '../../src/domain/errors';
import { ManualClock } from '../support/manual-clock';
import { tempDir } from '../support/temp-dir';
import { usageEvent } from '../support/usage-events';

const T = 'tenant-budget';
const directory = createTenantDirectory(
  [
    { tenantId: T, entraTenantId: T, boundary: 'us', monthlyTokenBudget: 1000, budgetEnforcement: 'hard' },
    { tenantId: 'tenant-soft', entraTenantId: 'tenant-soft', boundary: 'us', monthlyTokenBudget: 10, budgetEnforcement: 'soft' },
  ],
  'ops',
);

describe('usage ledger over SqliteDocumentStore', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: SqliteDocumentStore;
  let logs: Record<string, unknown>[];
  const clock = new ManualClock(Date.UTC(2030, 0, 20));
  let ledger: ReturnType<typeof createUsageLedger>;

  beforeEach(() => {
    tmp = tempDir('ledger-');
    store = new SqliteDocumentStore({
      path: path.join(tmp.dir, 'db.sqlite'),
      containers: loadCatalog().topology.containers,
      clock,
    });
    logs = [];
    const logger = createJsonLogger({ clock, level: 'debug', sink: (l) => logs.push(JSON.parse(l) as Record<string, unknown>) });
    ledger = createUsageLedger({ documents: store, clock, logger, directory, config: { boundary: 'us', region: 'eastus' } });
  });
  afterEach(async () => {
    await store.close();
    tmp.remove();
  });

  const read = (tenant: string, period = '2030-01') => store.read<LedgerDocument>('usage', tenant, ledgerIdOf(period));

  it('merges a redelivered batch exactly once and ignores its own documents', async () => {
    const events = [
      usageEvent({ tenantId: T }),
      usageEvent({ tenantId: T, promptTokens: 7 }),
      usageEvent({ tenantId: T, at: '2030-02-01T00:00:00Z' }),
    ];
    const first = await ledger.merge(events);
    expect(first).toMatchObject({ applied: 3, duplicates: 0 });
    const again = await ledger.merge([...events, events[0]]);
    expect(again).toMatchObject({ applied: 0, duplicates: 4 });
    // what the change feed of `usage` delivers back: markers and ledgers, never merged
    const own = (await store.readChangeFeed('usage')).items.filter((i) => 'type' in i);
    expect((await ledger.merge(own)).ignored).toBe(own.length);
    expect((await read(T))?.totals).toEqual({ promptTokens: 17, completionTokens: 10, totalTokens: 27 });
    expect((await read(T, '2030-02'))?.events).toBe(1);
  });

  it('skips malformed events with an error log instead of blocking the feed', async () => {
    const stats = await ledger.merge([{ id: 'x', tenantId: T, promptTokens: -1 }, usageEvent({ tenantId: T })]);
    expect(stats).toMatchObject({ applied: 1, invalid: 1 });
    expect(logs.some((l) => l['message'] === 'malformed usage event skipped')).toBe(true);
  });

  it('recomputes when another writer moved the ledger on (If-Match), losing nothing', async () => {
    const a = usageEvent({ tenantId: T, promptTokens: 1, completionTokens: 0 });
    const b = usageEvent({ tenantId: T, promptTokens: 2, completionTokens: 0 });
    await ledger.merge([usageEvent({ tenantId: T, promptTokens: 0, completionTokens: 0 })]);
    // Interleave two merges by hand: both read the ledger before either writes.
    const realBatch = store.batch.bind(store);
    let gate!: () => void;
    const bothRead = new Promise<void>((r) => (gate = r));
    let waiting = 0;
    store.batch = async (...args) => {
      if (++waiting === 1) await bothRead;
      else gate();
      return realBatch(...args);
    };
    const [sa, sb] = await Promise.all([ledger.merge([a]), ledger.merge([b])]);
    store.batch = realBatch;
    expect(sa.retries + sb.retries).toBeGreaterThanOrEqual(1);
    expect((await read(T))?.totals.promptTokens).toBe(3);
  });

  it('audits each budget threshold once per month, logs one warning each', async () => {
    const stream = [
      usageEvent({ tenantId: T, promptTokens: 500, completionTokens: 0 }),
      usageEvent({ tenantId: T, promptTokens: 299, completionTokens: 0 }),
      usageEvent({ tenantId: T, promptTokens: 1, completionTokens: 0 }), // 800 = 80 %
      usageEvent({ tenantId: T, promptTokens: 150, completionTokens: 0 }),
      usageEvent({ tenantId: T, promptTokens: 100, completionTokens: 0 }), // 1050 ≥ 100 %
      usageEvent({ tenantId: T, promptTokens: 100, completionTokens: 0 }),
    ];
    for (const e of stream) await ledger.merge([e]);
    await ledger.merge(stream); // redelivery of everything
    const next = usageEvent({ tenantId: T, promptTokens: 900, completionTokens: 0, at: '2030-02-03T00:00:00Z' });
    await ledger.merge([next, next]);
    const docs = (
      await store.query<{ id: string; thresholdPercent: number; totalTokens: number }>('usage', T, {
        where: [{ path: '/type', op: '=', value: 'budget-threshold' }],
        orderBy: { path: '/id', direction: 'asc' },
      })
    ).items;
    expect(docs.map((d) => [d.id, d.totalTokens])).toEqual([
      ['budget:2030-01:100', 1050],
      ['budget:2030-01:80', 800],
      ['budget:2030-02:80', 900],
    ]);
    const warnings = logs.filter((l) => l['message'] === 'token budget threshold crossed');
    expect(warnings.map((w) => `${String(w['period'])}:${String(w['thresholdPercent'])}`)).toEqual([
      '2030-01:80',
      '2030-01:100',
      '2030-02:80',
    ]);
    expect((await read(T))?.thresholds).toEqual([80, 100]);
  });

  it('budget guard: hard budgets refuse once spent (Retry-After to next month), soft ones never', async () => {
    const guard = createBudgetGuard({ documents: store, clock, directory });
    await guard.assertWithinBudget(T);
    await ledger.merge([usageEvent({ tenantId: T, promptTokens: 1000, completionTokens: 0 })]);
    const err = await guard.assertWithinBudget(T).catch((e: unknown) => e);
    expect(isAppError(err, 'budget_exceeded')).toBe(true);
    expect((err as { retryAfterSeconds: number }).retryAfterSeconds).toBe(12 * 86400);
    await ledger.merge([usageEvent({ tenantId: 'tenant-soft', promptTokens: 1000 })]);
    await guard.assertWithinBudget('tenant-soft');
    await guard.assertWithinBudget('unknown-tenant');
  });

  it('reports a month with its budget', async () => {
    await ledger.merge([
      usageEvent({ tenantId: T, promptTokens: 200, completionTokens: 50, deployment: 'd1', source: 'evaluation' }),
    ]);
    expect(await ledger.report(T, '2030-01')).toEqual({
      tenantId: T,
      period: '2030-01',
      totals: { promptTokens: 200, completionTokens: 50, totalTokens: 250 },
      byRegion: { eastus: { promptTokens: 200, completionTokens: 50, totalTokens: 250 } },
      byDeployment: { d1: { promptTokens: 200, completionTokens: 50, totalTokens: 250 } },
      bySource: { evaluation: { promptTokens: 200, completionTokens: 50, totalTokens: 250 } },
      budget: { limitTokens: 1000, utilization: 0.25, enforcement: 'hard' },
    });
    expect((await ledger.report(T, '2029-12')).totals.totalTokens).toBe(0);
  });
});
