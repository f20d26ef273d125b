/**
 * The DocumentStore contract: every adapter runs it (CONVENTIONS 6). A skipped feature must
 * say why. Each test works in its own fresh partition, so one store serves the whole suite.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerConfig } from '../../src/config';
import { isAppError, type ErrorCode } from '../../src/domain/errors';
import type { DocumentStore, QueryPage, QuerySpec, Stored } from '../../src/ports/document-store';

/** Containers the suite needs; an adapter's test creates them (locally or in the emulator). */
export const CONTRACT_CONTAINERS: ContainerConfig[] = [
  { name: 'things', partitionKey: '/tenantId' },
  { name: 'by-id', partitionKey: '/id' },
  { name: 'ttl-default', partitionKey: '/tenantId', ttl: 60 },
  { name: 'ttl-item', partitionKey: '/tenantId', ttl: -1 },
  { name: 'leases', partitionKey: '/id' },
];

export type ContractFeature = 'ttl' | 'batch' | 'patchRemoveMissing' | 'crossTypeComparison' | 'pagingUnderWrites';

export interface ContractSubject {
  store: DocumentStore;
  /** Moves the store's clock forward; required unless `ttl` is skipped. */
  advanceClock?: (ms: number) => void;
  dispose(): Promise<void>;
}

export interface ContractOptions {
  /** Features this adapter's backend cannot run here, each with the reason. */
  skip?: Partial<Record<ContractFeature, string>>;
}

export async function expectAppError(promise: Promise<unknown>, code: ErrorCode): Promise<Error> {
  let thrown: unknown;
  try {
    await promise;
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `expected AppError ${code}`).toBeDefined();
  expect(isAppError(thrown) ? thrown.code : thrown).toBe(code);
  return thrown as Error;
}

export function documentStoreContract(
  name: string,
  factory: () => Promise<ContractSubject>,
  options: ContractOptions = {},
): void {
  const skip = options.skip ?? {};
  const feature = (f: ContractFeature, title: string): [boolean, string] => {
    const reason = skip[f];
    return [reason !== undefined, reason === undefined ? title : `${title} — skipped: ${reason}`];
  };

  describe(`DocumentStore contract: ${name}`, () => {
    let subject: ContractSubject;
    let store: DocumentStore;
    beforeAll(async () => {
      subject = await factory();
      store = subject.store;
    });
    afterAll(async () => {
      await subject?.dispose();
    });
    const tenant = (): string => `t-${randomUUID()}`;
    const ids = (items: Array<{ id: string }>): string[] => items.map((i) => i.id);

    describe('CRUD and etags', () => {
      it('creates, reads and returns system fields', async () => {
        const t = tenant();
        const created = await store.create('things', { id: 'a', tenantId: t, n: 1, nested: { x: [1, 2] } });
        expect(created).toMatchObject({ id: 'a', tenantId: t, n: 1, nested: { x: [1, 2] } });
        expect(typeof created._etag).toBe('string');
        expect(created._etag.length).toBeGreaterThan(0);
        expect(Number.isInteger(created._ts)).toBe(true);
        const read = await store.read('things', t, 'a');
        expect(read).toMatchObject({ id: 'a', tenantId: t, n: 1, nested: { x: [1, 2] }, _etag: created._etag });
        expect(await store.read('things', t, 'missing')).toBeUndefined();
      });

      it('refuses a second create of the same id in a partition, allows it in another', async () => {
        const t = tenant();
        await store.create('things', { id: 'dup', tenantId: t });
        await expectAppError(store.create('things', { id: 'dup', tenantId: t, v: 2 }), 'conflict');
        expect((await store.read('things', t, 'dup'))?.['v']).toBeUndefined();
        const other = tenant();
        await store.create('things', { id: 'dup', tenantId: other });
        expect(await store.read('things', other, 'dup')).toBeDefined();
      });

      it('upserts (create then replace) and changes the etag on every write', async () => {
        const t = tenant();
        const first = await store.upsert('things', { id: 'u', tenantId: t, v: 1 });
        const second = await store.upsert('things', { id: 'u', tenantId: t, v: 2 });
        expect(second._etag).not.toBe(first._etag);
        expect((await store.read('things', t, 'u'))?.['v']).toBe(2);
      });

      it('replace: absent is not_found, stale etag is precondition_failed, current etag wins', async () => {
        const t = tenant();
        await expectAppError(store.replace('things', { id: 'r', tenantId: t }), 'not_found');
        const v1 = await store.create('things', { id: 'r', tenantId: t, v: 1 });
        const v2 = await store.replace('things', { id: 'r', tenantId: t, v: 2 }, { ifMatch: v1._etag });
        await expectAppError(
          store.replace('things', { id: 'r', tenantId: t, v: 3 }, { ifMatch: v1._etag }),
          'precondition_failed',
        );
        expect((await store.read('things', t, 'r'))?.['v']).toBe(2);
        await store.replace('things', { id: 'r', tenantId: t, v: 4 }, { ifMatch: v2._etag });
        expect((await store.read('things', t, 'r'))?.['v']).toBe(4);
      });

      it('upsert with ifMatch: stale etag is precondition_failed', async () => {
        const t = tenant();
        const v1 = await store.create('things', { id: 'ui', tenantId: t, v: 1 });
        await store.upsert('things', { id: 'ui', tenantId: t, v: 2 }, { ifMatch: v1._etag });
        await expectAppError(
          store.upsert('things', { id: 'ui', tenantId: t, v: 3 }, { ifMatch: v1._etag }),
          'precondition_failed',
        );
        expect((await store.read('things', t, 'ui'))?.['v']).toBe(2);
      });

      it('delete: removes, then not_found; stale etag is precondition_failed', async () => {
        const t = tenant();
        const v1 = await store.create('things', { id: 'd', tenantId: t });
        await store.upsert('things', { id: 'd', tenantId: t, v: 2 });
        await expectAppError(store.delete('things', t, 'd', { ifMatch: v1._etag }), 'precondition_failed');
        expect(await store.read('things', t, 'd')).toBeDefined();
        await store.delete('things', t, 'd');
        expect(await store.read('things', t, 'd')).toBeUndefined();
        await expectAppError(store.delete('things', t, 'd'), 'not_found');
        await store.create('things', { id: 'd', tenantId: t, again: true });
        expect((await store.read('things', t, 'd'))?.['again']).toBe(true);
      });

      it('lets exactly one of two writers with the same etag win', async () => {
        const t = tenant();
        const v1 = await store.create('things', { id: 'race', tenantId: t, v: 0 });
        const results = await Promise.allSettled([
          store.replace('things', { id: 'race', tenantId: t, v: 1 }, { ifMatch: v1._etag }),
          store.replace('things', { id: 'race', tenantId: t, v: 2 }, { ifMatch: v1._etag }),
        ]);
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost.map((r) => isAppError(r.reason) && r.reason.code)).toEqual(['precondition_failed']);
      });

      it('refuses items over 2 MiB with payload_too_large', async () => {
        const t = tenant();
        await expectAppError(
          store.create('things', { id: 'big', tenantId: t, blob: 'x'.repeat(2 * 1024 * 1024) }),
          'payload_too_large',
        );
        expect(await store.read('things', t, 'big')).toBeUndefined();
      });

      it('ignores system fields sent by the caller', async () => {
        const t = tenant();
        const created = await store.create('things', { id: 's', tenantId: t, _etag: '"forged"', _ts: 1 });
        expect(created._etag).not.toBe('"forged"');
        expect(created._ts).not.toBe(1);
      });

      it('refuses an item without its partition key, and unknown containers', async () => {
        await expectAppError(store.create('things', { id: 'nopk' }), 'validation_failed');
        await expectAppError(store.read('no-such-container', 'x', 'y'), 'not_found');
      });

      it('works with /id as the partition key', async () => {
        const id = `doc-${randomUUID()}`;
        await store.create('by-id', { id, tenantId: 'x' });
        expect(await store.read('by-id', id, id)).toMatchObject({ id, tenantId: 'x' });
      });
    });

    describe('patch', () => {
      it('incr starts a missing path from 0, then adds', async () => {
        const t = tenant();
        await store.create('things', { id: 'p', tenantId: t, counters: {} });
        await store.patch('things', t, 'p', [{ op: 'incr', path: '/counters/tokens', value: 5 }]);
        const after = await store.patch('things', t, 'p', [
          { op: 'incr', path: '/counters/tokens', value: 7 },
          { op: 'incr', path: '/total', value: 2 },
        ]);
        expect(after['counters']).toEqual({ tokens: 12 });
        expect(after['total']).toBe(2);
        expect((await store.read('things', t, 'p'))?.['counters']).toEqual({ tokens: 12 });
      });

      it('set, add and remove', async () => {
        const t = tenant();
        await store.create('things', { id: 'p2', tenantId: t, a: { b: 1 }, list: [1, 2], gone: 'x' });
        const after = await store.patch('things', t, 'p2', [
          { op: 'set', path: '/a/c', value: 'new' },
          { op: 'set', path: '/a/b', value: 10 },
          { op: 'add', path: '/list/-', value: 3 },
          { op: 'remove', path: '/gone' },
        ]);
        expect(after).toMatchObject({ a: { b: 10, c: 'new' }, list: [1, 2, 3] });
        expect(after['gone']).toBeUndefined();
        const read = await store.read('things', t, 'p2');
        expect(read).toMatchObject({ a: { b: 10, c: 'new' }, list: [1, 2, 3] });
        expect(read?.['gone']).toBeUndefined();
      });

      it('honours ifMatch and refuses absent items', async () => {
        const t = tenant();
        const v1 = await store.create('things', { id: 'p3', tenantId: t, n: 0 });
        const v2 = await store.patch('things', t, 'p3', [{ op: 'incr', path: '/n', value: 1 }], { ifMatch: v1._etag });
        expect(v2._etag).not.toBe(v1._etag);
        await expectAppError(
          store.patch('things', t, 'p3', [{ op: 'incr', path: '/n', value: 1 }], { ifMatch: v1._etag }),
          'precondition_failed',
        );
        expect((await store.read('things', t, 'p3'))?.['n']).toBe(1);
        await expectAppError(store.patch('things', t, 'absent', [{ op: 'set', path: '/n', value: 1 }]), 'not_found');
      });

      it('refuses to patch the id or the partition key', async () => {
        const t = tenant();
        await store.create('things', { id: 'p4', tenantId: t });
        await expectAppError(
          store.patch('things', t, 'p4', [{ op: 'set', path: '/tenantId', value: 'other' }]),
          'validation_failed',
        );
        await expectAppError(store.patch('things', t, 'p4', [{ op: 'set', path: '/id', value: 'other' }]), 'validation_failed');
      });

      const [skipRemove, removeTitle] = feature(
        'patchRemoveMissing',
        'remove of a missing path is validation_failed (as Cosmos)',
      );
      it.skipIf(skipRemove)(removeTitle, async () => {
        const t = tenant();
        await store.create('things', { id: 'p5', tenantId: t });
        await expectAppError(store.patch('things', t, 'p5', [{ op: 'remove', path: '/nothing' }]), 'validation_failed');
      });
    });

    describe('query', () => {
      let t: string;
      beforeAll(async () => {
        t = tenant();
        const names = ['alpha', 'beta', 'gamma', 'alphabet', 'delta'];
        for (let i = 0; i < 5; i++) {
          await store.create('things', {
            id: `q${i}`,
            tenantId: t,
            n: i + 1,
            name: names[i],
            flag: i % 2 === 0,
            ...(i === 4 ? {} : { opt: i === 3 ? null : `o${i}` }),
          });
        }
        await store.create('things', { id: 'q-str', tenantId: t, n: '3', name: 'zeta' });
      });
      const run = async (spec: QuerySpec): Promise<string[]> => {
        const page = await store.query<Stored>('things', t, spec, { limit: 100 });
        return ids(page.items).sort();
      };

      it('comparison operators on numbers', async () => {
        expect(await run({ where: [{ path: '/n', op: '=', value: 3 }] })).toEqual(['q2']);
        expect(await run({ where: [{ path: '/n', op: '>', value: 3 }] })).toEqual(['q3', 'q4']);
        expect(await run({ where: [{ path: '/n', op: '>=', value: 3 }] })).toEqual(['q2', 'q3', 'q4']);
        expect(await run({ where: [{ path: '/n', op: '<', value: 2 }] })).toEqual(['q0']);
        expect(await run({ where: [{ path: '/n', op: '<=', value: 2 }] })).toEqual(['q0', 'q1']);
        expect(
          await run({
            where: [
              { path: '/n', op: '>', value: 1 },
              { path: '/n', op: '<', value: 4 },
            ],
          }),
        ).toEqual(['q1', 'q2']);
      });

      it('strings, booleans, null, in, startsWith, isDefined, notDefined', async () => {
        expect(await run({ where: [{ path: '/name', op: '=', value: 'beta' }] })).toEqual(['q1']);
        expect(await run({ where: [{ path: '/flag', op: '=', value: true }] })).toEqual(['q0', 'q2', 'q4']);
        expect(await run({ where: [{ path: '/flag', op: '=', value: false }] })).toEqual(['q1', 'q3']);
        expect(await run({ where: [{ path: '/opt', op: '=', value: null }] })).toEqual(['q3']);
        expect(await run({ where: [{ path: '/name', op: 'in', value: ['gamma', 'delta', 'nope'] }] })).toEqual(['q2', 'q4']);
        expect(await run({ where: [{ path: '/name', op: 'startsWith', value: 'alpha' }] })).toEqual(['q0', 'q3']);
        expect(await run({ where: [{ path: '/opt', op: 'isDefined' }] })).toEqual(['q0', 'q1', 'q2', 'q3']);
        expect(await run({ where: [{ path: '/opt', op: 'notDefined' }] })).toEqual(['q-str', 'q4']);
        expect(await run({ where: [{ path: '/opt', op: '!=', value: 'o0' }] })).toEqual(['q1', 'q2', 'q3']);
      });

      const [skipCross, crossTitle] = feature(
        'crossTypeComparison',
        'values of different types never compare (string "3" vs number 3)',
      );
      it.skipIf(skipCross)(crossTitle, async () => {
        expect(await run({ where: [{ path: '/n', op: '=', value: '3' }] })).toEqual(['q-str']);
        expect(await run({ where: [{ path: '/n', op: '>=', value: 3 }] })).toEqual(['q2', 'q3', 'q4']);
        expect(await run({ where: [{ path: '/n', op: '<', value: 'a' }] })).toEqual(['q-str']);
      });

      it('treats values as data, never as query text', async () => {
        expect(await run({ where: [{ path: '/name', op: '=', value: "x' OR 1=1 --" }] })).toEqual([]);
        expect(await run({ where: [{ path: '/name', op: '=', value: 'x" OR true OR "' }] })).toEqual([]);
        await expectAppError(
          store.query('things', t, { where: [{ path: '/name") OR (1=1', op: 'isDefined' }] }),
          'validation_failed',
        );
        await expectAppError(store.query('things', t, { select: ['id, c'] }), 'validation_failed');
      });

      it('orders ascending and descending, and projects with select', async () => {
        const spec: QuerySpec = { where: [{ path: '/flag', op: 'isDefined' }], orderBy: { path: '/n', direction: 'asc' } };
        const asc = await store.query<Stored>('things', t, spec);
        expect(ids(asc.items)).toEqual(['q0', 'q1', 'q2', 'q3', 'q4']);
        const desc = await store.query<Stored>('things', t, { ...spec, orderBy: { path: '/n', direction: 'desc' } });
        expect(ids(desc.items)).toEqual(['q4', 'q3', 'q2', 'q1', 'q0']);
        const byName = await store.query<Stored>('things', t, { orderBy: { path: '/name', direction: 'asc' } });
        expect(ids(byName.items)).toEqual(['q0', 'q3', 'q1', 'q4', 'q2', 'q-str']);
        const projected = await store.query<Record<string, unknown>>('things', t, {
          where: [{ path: '/n', op: '=', value: 2 }],
          select: ['id', 'name'],
        });
        expect(projected.items).toEqual([{ id: 'q1', name: 'beta' }]);
      });

      it('pages with opaque continuation tokens, without losing or repeating items', async () => {
        const spec: QuerySpec = { where: [{ path: '/flag', op: 'isDefined' }], orderBy: { path: '/n', direction: 'asc' } };
        const seen: string[] = [];
        let token: string | undefined;
        let pages = 0;
        do {
          const page = await store.query<Stored>('things', t, spec, { limit: 2, ...(token ? { continuationToken: token } : {}) });
          expect(page.items.length).toBeLessThanOrEqual(2);
          seen.push(...ids(page.items));
          token = page.continuationToken;
          expect(typeof (token ?? '')).toBe('string');
        } while (token && ++pages < 10);
        expect(seen).toEqual(['q0', 'q1', 'q2', 'q3', 'q4']);
      });

      it('pages without orderBy and descending, each item exactly once', async () => {
        const unordered: string[] = [];
        const descending: number[] = [];
        let token: string | undefined;
        for (let guard = 0; guard < 10; guard++) {
          const page = await store.query<Stored>('things', t, {}, { limit: 4, ...(token ? { continuationToken: token } : {}) });
          unordered.push(...ids(page.items));
          token = page.continuationToken;
          if (!token) break;
        }
        expect(unordered.sort()).toEqual(['q-str', 'q0', 'q1', 'q2', 'q3', 'q4']);
        token = undefined;
        const spec: QuerySpec = { where: [{ path: '/flag', op: 'isDefined' }], orderBy: { path: '/n', direction: 'desc' } };
        for (let guard = 0; guard < 10; guard++) {
          const page: QueryPage<Stored> = await store.query<Stored>('things', t, spec, {
            limit: 2,
            ...(token ? { continuationToken: token } : {}),
          });
          descending.push(...page.items.map((i) => i['n'] as number));
          token = page.continuationToken;
          if (!token) break;
        }
        expect(descending).toEqual([5, 4, 3, 2, 1]);
      });

      const [skipStable, stableTitle] = feature(
        'pagingUnderWrites',
        'writes between pages neither repeat nor skip items that existed throughout',
      );
      it.skipIf(skipStable)(stableTitle, async () => {
        const p = tenant();
        for (let i = 1; i <= 6; i++) await store.create('things', { id: `s${i}`, tenantId: p, n: i * 10 });
        const spec: QuerySpec = { orderBy: { path: '/n', direction: 'asc' } };
        const first = await store.query<Stored>('things', p, spec, { limit: 3 });
        expect(first.items.map((i) => i['n'])).toEqual([10, 20, 30]);
        await store.create('things', { id: 'early', tenantId: p, n: 5 });
        await store.delete('things', p, 's1');
        const rest: unknown[] = [];
        let token = first.continuationToken;
        for (let guard = 0; token && guard < 10; guard++) {
          const page: QueryPage<Stored> = await store.query<Stored>('things', p, spec, { limit: 3, continuationToken: token });
          rest.push(...page.items.map((i) => i['n']));
          token = page.continuationToken;
        }
        expect(rest).toEqual([40, 50, 60]);
      });

      it('refuses a continuation token of another query', async () => {
        const page = await store.query<Stored>('things', t, {}, { limit: 1 });
        expect(page.continuationToken).toBeDefined();
        const token = page.continuationToken ?? '';
        await expectAppError(
          store.query('things', t, { where: [{ path: '/n', op: '>', value: 0 }] }, { limit: 1, continuationToken: token }),
          'validation_failed',
        );
        await expectAppError(store.query('things', tenant(), {}, { limit: 1, continuationToken: token }), 'validation_failed');
        await expectAppError(store.query('things', t, {}, { limit: 1, continuationToken: 'not-a-token' }), 'validation_failed');
      });

      it('never returns another partition’s items', async () => {
        const a = tenant();
        const b = tenant();
        await store.create('things', { id: 'shared-id', tenantId: a, secret: 'A' });
        await store.create('things', { id: 'only-a', tenantId: a, secret: 'A' });
        await store.create('things', { id: 'shared-id', tenantId: b, secret: 'B' });
        const all = await store.query<Stored>('things', b, {});
        expect(all.items.map((i) => i['secret'])).toEqual(['B']);
        const filtered = await store.query<Stored>('things', b, { where: [{ path: '/secret', op: '=', value: 'A' }] });
        expect(filtered.items).toEqual([]);
        expect(await store.read('things', b, 'only-a')).toBeUndefined();
        expect((await store.read('things', b, 'shared-id'))?.['secret']).toBe('B');
      });
    });

    describe('batch', () => {
      const [skipBatch, batchTitle] = feature('batch', 'applies every operation of a batch');
      it.skipIf(skipBatch)(batchTitle, async () => {
        const t = tenant();
        const existing = await store.create('things', { id: 'b0', tenantId: t, n: 1 });
        await store.create('things', { id: 'b-del', tenantId: t });
        const results = await store.batch('things', t, [
          { type: 'create', item: { id: 'b1', tenantId: t } },
          { type: 'upsert', item: { id: 'b2', tenantId: t, v: 2 } },
          { type: 'patch', id: 'b0', operations: [{ op: 'incr', path: '/n', value: 1 }], ifMatch: existing._etag },
          { type: 'read', id: 'b0' },
          { type: 'delete', id: 'b-del' },
          { type: 'replace', item: { id: 'b2', tenantId: t, v: 3 } },
        ]);
        expect(results.map((r) => r.status)).toEqual([201, 200, 200, 200, 204, 200]);
        expect(results[3]?.item?.['n']).toBe(2);
        expect((await store.read('things', t, 'b2'))?.['v']).toBe(3);
        expect(await store.read('things', t, 'b1')).toBeDefined();
        expect(await store.read('things', t, 'b-del')).toBeUndefined();
      });

      const [skipAtomic, atomicTitle] = feature('batch', 'is all-or-nothing and names the failed operation');
      it.skipIf(skipAtomic)(atomicTitle, async () => {
        const t = tenant();
        await store.create('things', { id: 'x', tenantId: t, n: 1 });
        const err = await expectAppError(
          store.batch('things', t, [
            { type: 'create', item: { id: 'y', tenantId: t } },
            { type: 'patch', id: 'x', operations: [{ op: 'incr', path: '/n', value: 1 }] },
            { type: 'create', item: { id: 'x', tenantId: t } },
          ]),
          'conflict',
        );
        expect(isAppError(err) && err.extensions['failedOperationIndex']).toBe(2);
        expect(await store.read('things', t, 'y')).toBeUndefined();
        expect((await store.read('things', t, 'x'))?.['n']).toBe(1);
        const stale = await expectAppError(
          store.batch('things', t, [
            { type: 'upsert', item: { id: 'z', tenantId: t } },
            { type: 'replace', item: { id: 'x', tenantId: t, n: 9 }, ifMatch: '"stale"' },
          ]),
          'precondition_failed',
        );
        expect(isAppError(stale) && stale.extensions['failedOperationIndex']).toBe(1);
        expect(await store.read('things', t, 'z')).toBeUndefined();
      });

      it('refuses items of another partition and empty batches', async () => {
        const t = tenant();
        await expectAppError(
          store.batch('things', t, [{ type: 'create', item: { id: 'o', tenantId: tenant() } }]),
          'validation_failed',
        );
        await expectAppError(store.batch('things', t, []), 'validation_failed');
        expect((await store.query('things', t, {})).items).toEqual([]);
      });
    });

    describe('TTL', () => {
      const [skipTtl, ttlTitle] = feature('ttl', 'container default TTL hides items when due; item ttl overrides');
      const advance = (ms: number): void => {
        if (!subject.advanceClock) throw new Error('the factory must provide advanceClock for TTL tests');
        subject.advanceClock(ms);
      };
      it.skipIf(skipTtl)(ttlTitle, async () => {
        const t = tenant();
        await store.create('ttl-default', { id: 'default', tenantId: t });
        await store.create('ttl-default', { id: 'short', tenantId: t, ttl: 10 });
        await store.create('ttl-default', { id: 'forever', tenantId: t, ttl: -1 });
        advance(11_000);
        expect(await store.read('ttl-default', t, 'short')).toBeUndefined();
        expect(await store.read('ttl-default', t, 'default')).toBeDefined();
        advance(50_000);
        expect(await store.read('ttl-default', t, 'default')).toBeUndefined();
        expect(await store.read('ttl-default', t, 'forever')).toBeDefined();
        const page = await store.query<Stored>('ttl-default', t, {});
        expect(ids(page.items)).toEqual(['forever']);
      });

      const [skipItem, itemTitle] = feature(
        'ttl',
        'ttl -1 container: only items with their own ttl expire; a write restarts the clock',
      );
      it.skipIf(skipItem)(itemTitle, async () => {
        const t = tenant();
        await store.create('ttl-item', { id: 'keep', tenantId: t });
        await store.create('ttl-item', { id: 'temp', tenantId: t, ttl: 5 });
        await store.create('ttl-item', { id: 'touched', tenantId: t, ttl: 5 });
        advance(4_000);
        await store.upsert('ttl-item', { id: 'touched', tenantId: t, ttl: 5, v: 2 });
        advance(2_000);
        expect(await store.read('ttl-item', t, 'temp')).toBeUndefined();
        expect(await store.read('ttl-item', t, 'touched')).toBeDefined();
        expect(await store.read('ttl-item', t, 'keep')).toBeDefined();
        await expectAppError(store.replace('ttl-item', { id: 'temp', tenantId: t }), 'not_found');
        await store.create('ttl-item', { id: 'temp', tenantId: t, reborn: true });
        expect((await store.read('ttl-item', t, 'temp'))?.['reborn']).toBe(true);
      });

      const [skipOff, offTitle] = feature('ttl', 'a container without TTL ignores item ttl');
      it.skipIf(skipOff)(offTitle, async () => {
        const t = tenant();
        await store.create('things', { id: 'ttl-ignored', tenantId: t, ttl: 1 });
        advance(10_000);
        expect(await store.read('things', t, 'ttl-ignored')).toBeDefined();
      });
    });

    it('check() passes while open', async () => {
      await expect(store.check()).resolves.toBeUndefined();
    });
  });
}
