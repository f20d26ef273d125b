/**
 * Two regions' ledger processors in two OS processes, each with its own connection and lease
 * prefix, so BOTH consume every usage event and race on the same ledger documents in
 * parallel (2 cores). Nothing may be lost or counted twice. Requires a build (dist/).
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteDocumentStore } from '../../src/adapters/local/sqlite-document-store';
import type { LedgerDocument } from '../../src/app/usage-ledger';
import { loadCatalog } from '../../src/config';
import type { Item } from '../../src/ports/document-store';
import { tempDir } from '../support/temp-dir';
import { expectedLedgers, usageEvent } from '../support/usage-events';

const ROOT = path.resolve(__dirname, '../..');
const FIXTURE = path.join(ROOT, 'test/fixtures/ledger-writer.cjs');

interface Stats {
  applied: number;
  duplicates: number;
  retries: number;
  batches: number;
  errors: number;
}

describe('two processors (two regions) merging the same feed concurrently', () => {
  const tmp = tempDir('ledger-2w-');
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    tmp.remove();
  });

  function startWriter(region: string, dbPath: string, maxBatchSize: number, shard?: number): Promise<ChildProcess> {
    const child = fork(FIXTURE, [JSON.stringify({ distDir: path.join(ROOT, 'dist'), dbPath, region, maxBatchSize, shard })], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.push(child);
    return new Promise((resolve, reject) => {
      child.once('message', () => resolve(child));
      child.once('exit', (code) => reject(new Error(`${region} writer exited with ${code}`)));
    });
  }
  const stop = (child: ChildProcess): Promise<Stats> =>
    new Promise((resolve) => {
      child.on('message', (m: { type: string; stats: Stats }) => m.type === 'stats' && resolve(m.stats));
      child.send({ type: 'stop' });
    });

  it.each([
    ['both merge every event (redelivered to each other)', false],
    ['each merges different events into the same ledgers', true],
  ])(
    'lose nothing and count nothing twice: %s',
    async (_name, disjoint) => {
      const dbPath = path.join(tmp.dir, `${disjoint ? 'disjoint' : 'overlap'}.sqlite`);
      const store = new SqliteDocumentStore({ path: dbPath, containers: loadCatalog().topology.containers });
      const [east, west] = await Promise.all([
        startWriter('eastus', dbPath, 7, disjoint ? 0 : undefined),
        startWriter('westus2', dbPath, 13, disjoint ? 1 : undefined),
      ]);
      const tenants = ['tw-a', 'tw-b', 'tw-c'];
      const events = Array.from({ length: 1500 }, (_, i) =>
        usageEvent({
          id: `tw-inv${i}:${i % 3}`,
          tenantId: tenants[i % tenants.length],
          region: i % 2 ? 'eastus' : 'westus2',
          promptTokens: (i * 7) % 101,
          completionTokens: (i * 13) % 37,
        }),
      );
      let last = 0;
      for (const [i, e] of events.entries()) {
        last = parseInt((await store.upsert('usage', { ...e } as Item))._etag.slice(1, -1), 16);
        if (i % 50 === 0) await new Promise((r) => setImmediate(r)); // let both consumers interleave with the writer
      }
      const deadline = Date.now() + 60_000;
      for (;;) {
        const leases = await Promise.all(
          ['ledger-eastus:usage', 'ledger-westus2:usage'].map((id) =>
            store.read<{ id: string; continuation: string | null }>('leases', id, id),
          ),
        );
        if (leases.every((l) => Number(l?.continuation ?? 0) >= last)) break;
        if (Date.now() > deadline) throw new Error('the processors did not catch up within 60 s');
        await new Promise((r) => setTimeout(r, 20));
      }
      const [se, sw] = await Promise.all([stop(east), stop(west)]);

      const expected = expectedLedgers(events);
      for (const t of tenants) {
        const l = await store.read<LedgerDocument>('usage', t, 'ledger:2030-01');
        const want = expected.get(`${t}|2030-01`);
        expect({
          totals: l?.totals,
          byRegion: l?.byRegion,
          byDeployment: l?.byDeployment,
          bySource: l?.bySource,
          events: l?.events,
        }).toEqual(want);
      }
      // Applied once overall; with full overlap each event was a duplicate to the other processor.
      expect(se.applied + sw.applied).toBe(events.length);
      expect(se.duplicates + sw.duplicates).toBe(disjoint ? 0 : events.length);
      expect(se.errors + sw.errors).toBe(0);
      // The race really happened (etag or marker conflicts resolved by recomputing).
      expect(se.retries + sw.retries).toBeGreaterThan(0);
      await store.close();
    },
    120_000,
  );
});
