import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteDocumentStore } from '../../../src/adapters/local/sqlite-document-store';
import { ManualClock } from '../../support/manual-clock';
import { tempDir } from '../../support/temp-dir';

type Op = { kind: 'upsert'; pk: string; id: string; v: number } | { kind: 'delete'; pk: string; id: string } | { kind: 'mark' };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('upsert' as const),
      pk: fc.constantFrom('a', 'b'),
      id: fc.constantFrom('x', 'y', 'z', 'w'),
      v: fc.integer(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('delete' as const),
      pk: fc.constantFrom('a', 'b'),
      id: fc.constantFrom('x', 'y', 'z', 'w'),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'mark' as const }) },
);

describe('change feed against a model (latest-version mode)', () => {
  const tmp = tempDir('meridian-feed-prop-');
  afterAll(() => tmp.remove());
  let run = 0;

  it('from any continuation, yields each item changed since, once, at its latest version, in last-write order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), fc.integer({ min: 1, max: 7 }), async (ops, pageSize) => {
        const store = new SqliteDocumentStore({
          path: path.join(tmp.dir, `run-${run++}.sqlite`),
          containers: [{ name: 'usage', partitionKey: '/tenantId' }],
          clock: new ManualClock(),
          purgeIntervalMs: 0,
        });
        try {
          // Model: key -> {v, writeIndex}; marks remember the write counter and the store's continuation.
          const model = new Map<string, { pk: string; id: string; v: number; at: number }>();
          const marks: Array<{ at: number; continuation: string }> = [
            { at: 0, continuation: store.currentContinuation('usage') },
          ];
          let writes = 0;
          for (const o of ops) {
            const key = `${'pk' in o ? o.pk : ''}/${'id' in o ? o.id : ''}`;
            if (o.kind === 'upsert') {
              await store.upsert('usage', { id: o.id, tenantId: o.pk, v: o.v });
              model.set(key, { pk: o.pk, id: o.id, v: o.v, at: ++writes });
            } else if (o.kind === 'delete') {
              if (model.has(key)) {
                await store.delete('usage', o.pk, o.id);
                model.delete(key);
              }
            } else {
              marks.push({ at: writes, continuation: store.currentContinuation('usage') });
            }
          }
          for (const mark of marks) {
            for (const pk of [undefined, 'a', 'b']) {
              const expected = [...model.values()]
                .filter((m) => m.at > mark.at && (pk === undefined || m.pk === pk))
                .sort((p, q) => p.at - q.at)
                .map((m) => `${m.pk}/${m.id}=${m.v}`);
              const seen: string[] = [];
              let continuation = mark.continuation;
              for (let guard = 0; guard < 100; guard++) {
                const page = await store.readChangeFeed('usage', {
                  continuation,
                  maxItems: pageSize,
                  ...(pk ? { partitionKey: pk } : {}),
                });
                if (page.items.length === 0) break;
                seen.push(...page.items.map((i) => `${i['tenantId'] as string}/${i.id}=${i['v'] as number}`));
                continuation = page.continuation;
              }
              expect(seen).toEqual(expected);
            }
          }
        } finally {
          await store.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});
