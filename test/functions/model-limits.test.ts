import { afterEach, describe, expect, it } from 'vitest';
import { guardModelCall } from '../../functions/lib/model-limits';
import { setDepsForTesting } from '../../src/composition';
import type { Principal } from '../../src/domain/tenancy';
import { call, testDeps } from '../helpers/deps';
import { bearer } from '../helpers/tokens';

afterEach(() => setDepsForTesting(undefined));

describe('model-calling routes share one per-user limit (API.md)', () => {
  it('counts session/evaluate calls and chat calls against the same limiter', async () => {
    const deps = testDeps({ MERIDIAN_RATE_LIMIT_PER_MINUTE: '3' });
    const alice: Principal = { tenantId: 'tenant-acme-corp', userId: 'alice', roles: [], boundary: 'us' };
    await guardModelCall(deps, alice);
    await guardModelCall(deps, alice);
    // A chat request takes from the same limiter (src/app/chat.ts uses deps.rateLimiter with this key).
    expect(deps.rateLimiter.take('tenant-acme-corp/alice').allowed).toBe(true);
    await expect(guardModelCall(deps, alice)).rejects.toMatchObject({ code: 'rate_limited' });
    // Another user has their own budget of calls.
    await expect(guardModelCall(deps, { ...alice, userId: 'bob' })).resolves.toBeUndefined();
  });

  it('GET /api/search (an embedding call per new query) takes from the same per-user limit', async () => {
    const deps = testDeps({ MERIDIAN_RATE_LIMIT_PER_MINUTE: '2' });
    const { search } = await import('../../functions/indexing.js');
    const headers = { authorization: await bearer('tenant-acme-corp', 'alice', []) };
    const ask = (q: string) => call(search, { url: `http://127.0.0.1/api/search?q=${q}`, headers });
    expect((await ask('leave')).status).toBe(200);
    expect((await ask('travel')).status).toBe(200);
    const limited = await ask('budget');
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ code: 'rate_limited' });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    await deps.documents.close();
  });
});
