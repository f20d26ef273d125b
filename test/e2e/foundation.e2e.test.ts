import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../helpers/tokens';
import { processesMentioning, startSystem, type RunningSystem } from './harness';

describe('npm start: the whole system over HTTP', () => {
  let sys: RunningSystem;
  let startedInMs = 0;
  beforeAll(async () => {
    const t0 = Date.now();
    sys = await startSystem();
    startedInMs = Date.now() - t0;
  }, 120_000);
  afterAll(async () => {
    await sys?.stop();
  });

  // The 10 s start-up goal is measured by bench/startup.ts on an otherwise idle machine; here,
  // with other test files running beside it, only a gross regression fails the test.
  it('serves liveness soon after start', async () => {
    const res = await fetch(`${sys.url}/api/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
    expect(res.headers.get('x-meridian-region')).toBe('eastus');
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(startedInMs).toBeLessThan(45_000);
  });

  it('serves readiness: status only for anonymous callers, details for platform-admins per boundary', async () => {
    const anon = await fetch(`${sys.url}/api/health`);
    expect(anon.status).toBe(200);
    expect(await anon.json()).toEqual({ status: 'ok' });

    const admin = await bearer('meridian-operators', 'ops', ['platform-admin']);
    for (const [boundary, region] of [
      ['us', 'eastus'],
      ['eu', 'westeurope'],
    ] as const) {
      const res = await fetch(`${sys.url}/api/health?boundary=${boundary}`, { headers: { authorization: admin } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as {
        region: string;
        checks: { name: string; boundary: string; status: string; latencyMs: number }[];
      };
      expect(body.region).toBe(region);
      const blob = body.checks.find((c) => c.name === 'blob-storage');
      expect(blob).toMatchObject({ boundary, status: 'ok' });
      expect(blob?.latencyMs).toBeGreaterThanOrEqual(0);
    }
  });

  it('routes each tenant to its own boundary process', async () => {
    const eu = await fetch(`${sys.url}/api/health`, { headers: { authorization: await bearer('tenant-eureka-gmbh') } });
    expect(eu.headers.get('x-meridian-region')).toBe('westeurope');
    const us = await fetch(`${sys.url}/api/health`, { headers: { authorization: await bearer('tenant-acme-corp') } });
    expect(us.headers.get('x-meridian-region')).toBe('eastus');
  });

  it('answers 401 problem+json for a forged token (the boundary process verifies)', async () => {
    const forged = await bearer('tenant-acme-corp', 'mallory', [], { secret: 'not-the-dev-secret-but-long-enough-123' });
    const res = await fetch(`${sys.url}/api/health`, { headers: { authorization: forged } });
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });

  it('serves the OpenAPI document and 404/405 problems for unknown routes and methods', async () => {
    const doc = await fetch(`${sys.url}/api/openapi.yaml`);
    expect(doc.status).toBe(200);
    expect(await doc.text()).toContain('openapi: 3.1');
    const nf = await fetch(`${sys.url}/api/nothing-here`);
    expect(nf.status).toBe(404);
    expect((await nf.json()) as unknown).toMatchObject({ code: 'not_found' });
    const na = await fetch(`${sys.url}/api/healthz`, { method: 'DELETE' });
    expect(na.status).toBe(405);
    expect(na.headers.get('allow')).toBe('GET');
  });
});

describe('npm start with only the us boundary running', () => {
  it('answers 421 through the front door for an eu tenant, then shuts down leaving no child behind', async () => {
    const sys = await startSystem({ MERIDIAN_SERVED_REGIONS: 'eastus,westus2' });
    try {
      const res = await fetch(`${sys.url}/api/health`, { headers: { authorization: await bearer('tenant-eureka-gmbh') } });
      expect(res.status).toBe(421);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(await res.json()).toMatchObject({ code: 'misdirected_boundary', boundary: 'eu' });
      const us = await fetch(`${sys.url}/api/health`, { headers: { authorization: await bearer('tenant-globex-intl') } });
      expect(us.status).toBe(200);
    } finally {
      const code = await sys.stop();
      expect(code).toBe(0);
      await new Promise((r) => setTimeout(r, 300));
      expect(processesMentioning(sys.dataDir)).toEqual([]);
    }
  }, 120_000);
});
