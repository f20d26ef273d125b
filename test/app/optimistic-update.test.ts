import { describe, expect, it } from 'vitest';
import { createOptimisticUpdater, MAX_ATTEMPTS } from '../../src/app/optimistic-update';
import { AppError } from '../../src/domain/errors';
import { SqliteDocumentStore } from '../../src/adapters/local/sqlite-document-store';

const noSleep = { sleep: async () => undefined };

describe('optimistic updates of one document', () => {
  it('runs the writers of one key in turn, other keys beside them', async () => {
    const updater = createOptimisticUpdater(noSleep);
    const log: string[] = [];
    const step = (key: string, i: number) =>
      updater.run(
        key,
        async () => {
          log.push(`${key}${i}+`);
          await new Promise((r) => setTimeout(r, 5));
          log.push(`${key}${i}-`);
          return i;
        },
        'x',
      );
    const results = await Promise.all([step('a', 1), step('a', 2), step('b', 1), step('a', 3)]);
    expect(results).toEqual([1, 2, 1, 3]);
    const a = log.filter((l) => l.startsWith('a'));
    expect(a).toEqual(['a1+', 'a1-', 'a2+', 'a2-', 'a3+', 'a3-']);
    // b did not wait for a's queue.
    expect(log.indexOf('b1+')).toBeLessThan(log.indexOf('a1-'));
  });

  it('a failed writer does not block the next one', async () => {
    const updater = createOptimisticUpdater(noSleep);
    const first = updater.run('k', async () => Promise.reject(new AppError('not_found', 'gone')), 'x');
    const second = updater.run('k', async () => 'ok', 'x');
    await expect(first).rejects.toMatchObject({ code: 'not_found' });
    await expect(second).resolves.toBe('ok');
  });

  it('retries an If-Match loss, and after MAX_ATTEMPTS losses answers conflict, not the store’s 412', async () => {
    const updater = createOptimisticUpdater(noSleep);
    let calls = 0;
    const lose = (times: number) => async () => {
      calls++;
      if (calls <= times) throw new AppError('precondition_failed', 'item c1 in conversations does not match etag "0001"');
      return 'stored';
    };
    await expect(updater.run('k', lose(3), 'The conversation')).resolves.toBe('stored');
    expect(calls).toBe(4);
    calls = 0;
    const err = await updater.run('k', lose(Infinity), 'The conversation').catch((e: unknown) => e);
    expect(calls).toBe(MAX_ATTEMPTS);
    expect(err).toMatchObject({ code: 'conflict', message: 'The conversation is being changed by other requests; try again.' });
  });

  it('two processes (two queues) appending to one document lose no write', async () => {
    const store = new SqliteDocumentStore({ path: ':memory:', containers: [{ name: 'c', partitionKey: '/tenantId' }] });
    await store.create('c', { id: 'd', tenantId: 't', items: [] as number[] });
    const instances = [createOptimisticUpdater(), createOptimisticUpdater()];
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (instances[i % 2] as (typeof instances)[number]).run(
          'c/t/d',
          async () => {
            const doc = (await store.read<{ id: string; tenantId: string; items: number[] }>('c', 't', 'd'))!;
            await new Promise((r) => setImmediate(r));
            const { _etag, _ts, ...rest } = doc;
            await store.replace('c', { ...rest, items: [...doc.items, i] }, { ifMatch: _etag });
          },
          'The document',
        ),
      ),
    );
    const final = await store.read<{ id: string; items: number[] }>('c', 't', 'd');
    expect([...(final?.items ?? [])].sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    await store.close();
  });
});
