import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listAudit, verifyAudit } from '../../functions/audit';
import { uploadDocument } from '../../functions/documents';
import { getUsage } from '../../functions/usage';
import { createAuditLog } from '../../src/app/audit-log';
import { sha256Hex } from '../../src/app/hashing';
import { createUsageLedger } from '../../src/app/usage-ledger';
import { setDepsForTesting } from '../../src/composition';
import type { SqliteDocumentStore } from '../../src/adapters/local/sqlite-document-store';
import { call, testDeps } from '../helpers/deps';
import { bearer } from '../helpers/tokens';
import { tempDir } from '../support/temp-dir';
import { usageEvent } from '../support/usage-events';

const ACME = 'tenant-acme-corp';
const tmp = tempDir('usage-audit-');
let deps: ReturnType<typeof testDeps>;
const store = () => deps.documents as SqliteDocumentStore;

beforeAll(async () => {
  deps = testDeps({ MERIDIAN_DATA_DIR: tmp.dir });
  await createUsageLedger(deps).merge([
    usageEvent({ tenantId: ACME, promptTokens: 1000, completionTokens: 250, at: '2030-01-02T00:00:00Z' }),
    usageEvent({ tenantId: ACME, promptTokens: 10, completionTokens: 5, region: 'westus2', at: '2030-01-03T00:00:00Z' }),
  ]);
});
afterEach(() => setDepsForTesting(deps));
afterAll(async () => {
  setDepsForTesting(undefined);
  await deps.documents.close();
  tmp.remove();
});

const usage = async (query: string, auth: string) =>
  call(getUsage, { url: `http://127.0.0.1/api/usage${query}`, headers: { authorization: auth } });

describe('GET /api/usage', () => {
  it("answers an admin with the own tenant's month and budget", async () => {
    const res = await usage('?period=2030-01', await bearer(ACME, 'ann', ['admin']));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      tenantId: ACME,
      period: '2030-01',
      totals: { promptTokens: 1010, completionTokens: 255, totalTokens: 1265 },
      byRegion: { eastus: { totalTokens: 1250 }, westus2: { totalTokens: 15 } },
      bySource: { chat: { totalTokens: 1265 } },
      budget: { limitTokens: 5_000_000, utilization: 1265 / 5_000_000, enforcement: 'soft' },
    });
  });

  it('lets a platform-admin read a tenant of this boundary, 421 for another boundary', async () => {
    const ops = await bearer('meridian-operators', 'op', ['platform-admin']);
    expect((await usage(`?period=2030-01&tenant=${ACME}`, ops)).body).toMatchObject({
      tenantId: ACME,
      totals: { totalTokens: 1265 },
    });
    expect((await usage('?period=2030-01&tenant=tenant-eureka-gmbh', ops)).status).toBe(421);
    expect((await usage('?period=2030-01&tenant=tenant-nobody', ops)).status).toBe(404);
  });

  it("is 404 for another tenant's usage asked by a tenant admin", async () => {
    expect((await usage('?period=2030-01&tenant=tenant-globex-intl', await bearer(ACME, 'ann', ['admin']))).status).toBe(404);
  });

  it.each(['', '?period=2030-13', '?period=2030-01&x=1', '?period=2030-01&period=2030-02'])('400 for query %j', async (q) => {
    const res = await usage(q, await bearer(ACME, 'ann', ['admin']));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'validation_failed' });
  });
});

describe('403 refusals are stored as security events in the caller tenant and audited', () => {
  it('stores one security-events document with TTL, chained into the audit log', async () => {
    const before = store().currentContinuation('security-events');
    const res = await usage('?period=2030-01&tenant=tenant-globex-intl', await bearer(ACME, 'mallory', []));
    expect(res.status).toBe(403);
    const feed = (await store().readChangeFeed('security-events', { continuation: before })).items;
    expect(feed).toHaveLength(1);
    expect(feed[0]).toMatchObject({
      tenantId: ACME,
      type: 'security-event',
      kind: 'forbidden',
      userId: 'mallory',
      route: '/api/usage',
      method: 'GET',
      ttl: 2_592_000,
    });
    const audit = createAuditLog({ ...deps, hash: sha256Hex });
    await audit.appendChanges('security-events', feed);
    const items = (await audit.list(ACME, { limit: 200 })).items;
    expect(items.at(-1)).toMatchObject({
      actor: 'mallory',
      action: 'security.forbidden',
      resource: 'GET /api/usage',
      boundary: 'us',
      region: 'eastus',
    });
  });

  it('stores a 403 a use case refuses too: a shared upload without platform-admin', async () => {
    const before = store().currentContinuation('security-events');
    for (const roles of [[], ['platform-admin']]) {
      const res = await call(uploadDocument, {
        method: 'POST',
        url: 'http://127.0.0.1/api/documents?name=s.txt&tier=upload&scope=shared',
        headers: { authorization: await bearer(ACME, 'mallory', roles), 'content-type': 'text/plain' },
        body: 'x',
      });
      expect(res.status).toBe(403);
      expect(res.body).toMatchObject({ code: 'forbidden', requiredRoles: ['platform-admin'] });
    }
    const feed = (await store().readChangeFeed('security-events', { continuation: before })).items;
    expect(feed).toHaveLength(2);
    for (const event of feed) {
      expect(event).toMatchObject({
        tenantId: ACME,
        kind: 'forbidden',
        userId: 'mallory',
        method: 'POST',
        route: '/api/documents',
        requiredRoles: ['platform-admin'],
      });
    }
    const audit = createAuditLog({ ...deps, hash: sha256Hex });
    await audit.appendChanges('security-events', feed);
    expect((await audit.list(ACME, { limit: 200 })).items.slice(-2)).toMatchObject([
      { actor: 'mallory', action: 'security.forbidden', resource: 'POST /api/documents' },
      { actor: 'mallory', action: 'security.forbidden', resource: 'POST /api/documents' },
    ]);
  });

  it('stores nothing for 401 and 421', async () => {
    const before = store().currentContinuation('security-events');
    expect((await usage('?period=2030-01', 'Bearer x.y.z')).status).toBe(401);
    expect((await usage('?period=2030-01', await bearer('tenant-eureka-gmbh', 'e', ['admin']))).status).toBe(421);
    expect((await store().readChangeFeed('security-events', { continuation: before })).items).toEqual([]);
  });
});

describe('GET /api/audit and /api/audit/verify', () => {
  const get = async (handler: typeof listAudit, url: string, roles = ['auditor']) =>
    call(handler, { url: `http://127.0.0.1${url}`, headers: { authorization: await bearer(ACME, 'aud', roles) } });

  beforeAll(async () => {
    const audit = createAuditLog({ ...deps, hash: sha256Hex });
    await audit.append(
      Array.from({ length: 5 }, (_, i) => ({
        tenantId: ACME,
        actor: 'u',
        action: 'document.queued',
        resource: `documents/d${i}`,
        source: { container: 'documents', id: `d${i}`, etag: '"1"' },
      })),
    );
  });

  it('pages entries by seq with a continuation token', async () => {
    const first = await get(listAudit, '/api/audit?limit=2');
    expect(first.status).toBe(200);
    const body = first.body as { items: { seq: number; hash: string; prevHash: string }[]; continuationToken?: string };
    expect(body.items.map((i) => i.seq)).toEqual([1, 2]);
    expect(Object.keys(body.items[0] ?? {}).sort()).toEqual([
      'action',
      'actor',
      'at',
      'boundary',
      'hash',
      'prevHash',
      'region',
      'resource',
      'seq',
    ]);
    const next = await get(listAudit, `/api/audit?limit=2&continuationToken=${body.continuationToken}`);
    expect((next.body as typeof body).items.map((i) => i.seq)).toEqual([3, 4]);
  });

  it.each(['?limit=201', '?limit=0', '?afterSeq=-1', '?from=yesterday', '?continuationToken=abc', '?tenant=x'])(
    '400 for %j',
    async (q) => {
      expect((await get(listAudit, `/api/audit${q}`)).status).toBe(400);
    },
  );

  it('403 for a plain user', async () => {
    expect((await get(listAudit, '/api/audit', [])).status).toBe(403);
  });

  it('verify: valid, then the first broken link after a direct edit in the store', async () => {
    const ok = await get(verifyAudit, '/api/audit/verify');
    expect(ok.body).toMatchObject({ valid: true });
    const count = (ok.body as { count: number }).count;
    const page = await store().query<{ id: string; seq: number; resource: string }>('audit', ACME, {
      where: [{ path: '/seq', op: '=', value: 3 }],
    });
    const { _etag: _e, _ts: _t, ...entry } = page.items[0] as Record<string, unknown> & { id: string };
    await store().replace('audit', { ...entry, resource: 'documents/other' });
    expect((await get(verifyAudit, '/api/audit/verify')).body).toEqual({ valid: false, brokenAt: 3, reason: 'hash_mismatch' });
    expect(count).toBeGreaterThanOrEqual(5);
  });
});
