import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { authenticated, json } from '../../functions/lib/http';
import { health } from '../../functions/health';
import { EntraTokenVerifier } from '../../src/adapters/azure/entra-token-verifier';
import { ManualClock } from '../../src/adapters/local/clock';
import { createAuthenticator, createTenantDirectory } from '../../src/app/auth';
import { setDepsForTesting } from '../../src/composition';
import { appErrorOf } from '../helpers/errors';
import { bearer, mintDevToken } from '../helpers/tokens';
import { call, testDeps } from '../helpers/deps';

const URL_ = 'http://127.0.0.1/api/probe';
const adminOnly = authenticated({ roles: ['admin'] }, async ({ principal }) => json(200, principal));

afterEach(() => setDepsForTesting(undefined));

describe('bearer authentication at the HTTP edge', () => {
  it('accepts a valid token and takes the tenant from it', async () => {
    testDeps();
    const res = await call(adminOnly, {
      url: URL_,
      headers: { authorization: await bearer('tenant-acme-corp', 'alice', ['admin']) },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ tenantId: 'tenant-acme-corp', userId: 'alice', roles: ['admin'], boundary: 'us' });
    expect(res.headers.get('x-meridian-region')).toBe('eastus');
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  const cases: [string, () => Promise<Record<string, string>>, RegExp][] = [
    ['missing', async () => ({}), /bearer token is required/],
    ['not a bearer', async () => ({ authorization: 'Basic abc' }), /must be "Bearer <JWT>"/],
    ['malformed', async () => ({ authorization: 'Bearer not.a.jwt' }), /malformed|not valid/],
    [
      'expired',
      async () => ({
        authorization: await bearer('tenant-acme-corp', 'a', ['admin'], { now: Date.now() - 7_200_000, expiresInSeconds: 60 }),
      }),
      /expired/,
    ],
    [
      'wrong signature',
      async () => ({
        authorization: await bearer('tenant-acme-corp', 'a', ['admin'], { secret: 'another-secret-that-is-long-enough-1234' }),
      }),
      /signature/,
    ],
    ['unknown tenant', async () => ({ authorization: await bearer('tenant-nobody', 'a', ['admin']) }), /not from a tenant/],
  ];
  for (const [name, headers, detail] of cases) {
    it(`answers 401 problem+json for a ${name} token`, async () => {
      const deps = testDeps();
      const res = await call(adminOnly, { url: URL_, headers: await headers() });
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(res.body).toMatchObject({ status: 401, code: 'unauthorized', type: expect.stringContaining('unauthorized') });
      expect((res.body as { detail: string }).detail).toMatch(detail);
      expect(deps.logs.some((l) => l['message'] === 'request refused' && l['code'] === 'unauthorized')).toBe(true);
    });
  }

  it('answers 403 for a missing role and records a security event in the caller tenant', async () => {
    const deps = testDeps();
    const res = await call(adminOnly, {
      url: URL_,
      headers: { authorization: await bearer('tenant-acme-corp', 'bob', ['auditor']) },
    });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: 'forbidden', status: 403, requiredRoles: ['admin'] });
    const event = deps.logs.find((l) => l['message'] === 'request refused: missing role');
    expect(event).toMatchObject({ tenantId: 'tenant-acme-corp', userId: 'bob', requiredRoles: ['admin'] });
  });

  it('never grants platform-admin outside the operator tenant', async () => {
    testDeps();
    const res = await call(
      authenticated({ roles: ['platform-admin'] }, async () => json(200, {})),
      {
        url: URL_,
        headers: { authorization: await bearer('tenant-acme-corp', 'eve', ['platform-admin', 'admin']) },
      },
    );
    expect(res.status).toBe(403);
  });

  it('answers 421 misdirected_boundary for a tenant of a boundary not served here', async () => {
    const deps = testDeps(); // serves us
    const res = await call(adminOnly, {
      url: URL_,
      headers: { authorization: await bearer('tenant-eureka-gmbh', 'u', ['admin']) },
    });
    expect(res.status).toBe(421);
    expect(res.body).toMatchObject({ code: 'misdirected_boundary', boundary: 'eu' });
    expect(JSON.stringify(deps.logs)).not.toContain('security');
  });

  it('keeps the operator tenant to its own boundary on every route that stores or reads tenant data', async () => {
    testDeps({ MERIDIAN_SERVED_REGIONS: 'westeurope' }); // the operator tenant lives in us
    const headers = { authorization: await bearer('meridian-operators', 'ops', ['platform-admin']) };
    // A route like chat, documents, sessions or evaluate: 421, nothing of the operator stored in eu.
    const tenantRoute = authenticated({}, async ({ principal }) => json(200, principal));
    const refused = await call(tenantRoute, { url: URL_, headers });
    expect(refused.status).toBe(421);
    expect(refused.body).toMatchObject({ code: 'misdirected_boundary', boundary: 'us' });
    // A route that reads aggregates across boundaries lets it through.
    const aggregateRoute = authenticated({ roles: ['platform-admin'], crossBoundary: true }, async () => json(200, {}));
    expect((await call(aggregateRoute, { url: URL_, headers })).status).toBe(200);
    // crossBoundary is for platform-admins only: a tenant admin of another boundary still gets 421.
    const adminHeaders = { authorization: await bearer('tenant-acme-corp', 'alice', ['admin']) };
    expect((await call(aggregateRoute, { url: URL_, headers: adminHeaders })).status).toBe(421);
  });

  it('lets a platform-admin of the operator tenant through to another boundary (tenant-free reads)', async () => {
    testDeps({ MERIDIAN_SERVED_REGIONS: 'westeurope' });
    const res = await call(health, {
      url: 'http://127.0.0.1/api/health',
      headers: { authorization: await bearer('meridian-operators', 'ops', ['platform-admin']) },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', region: 'westeurope', boundary: 'eu' });
    const checks = (res.body as { checks: { name: string; boundary: string; status: string }[] }).checks;
    expect(checks.map((c) => `${c.name}/${c.boundary}/${c.status}`).sort()).toEqual([
      'chat-models/eu/ok',
      'document-store/eu/ok',
      'reasoning-models/eu/ok',
      'search:meridian-westeurope/eu/ok',
      'service-bus/global/ok',
    ]);
  });

  it('keeps a valid client request id and replaces an unsafe one', async () => {
    testDeps();
    const ok = await call(health, { url: 'http://127.0.0.1/api/health', headers: { 'x-request-id': 'abc.DEF-123_x' } });
    expect(ok.headers.get('x-request-id')).toBe('abc.DEF-123_x');
    const bad = await call(health, { url: 'http://127.0.0.1/api/health', headers: { 'x-request-id': 'a b<script>' } });
    expect(bad.headers.get('x-request-id')).not.toBe('a b<script>');
    expect(bad.body).toEqual({ status: 'ok' });
  });
});

describe('azure mode (Entra ID)', () => {
  const clock = new ManualClock(Date.now());
  const directory = createTenantDirectory(
    [
      {
        tenantId: 'contoso',
        entraTenantId: '11111111-2222-3333-4444-555555555555',
        boundary: 'us',
        monthlyTokenBudget: 1,
        budgetEnforcement: 'soft',
      },
    ],
    'ops',
  );
  let signRs256: (claims: Record<string, unknown>, issuer?: string) => Promise<string>;
  let verifier: EntraTokenVerifier;
  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' };
    verifier = new EntraTokenVerifier({
      audience: 'api://meridian',
      jwks: createLocalJWKSet({ keys: [jwk] }),
      isKnownDirectory: (tid) => directory.byDirectoryId(tid) !== undefined,
      clock,
    });
    signRs256 = (claims, issuer = `https://login.microsoftonline.com/${String(claims['tid'])}/v2.0`) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(issuer)
        .setAudience('api://meridian')
        .setSubject('user-1')
        .setIssuedAt()
        .setExpirationTime('1h')
        .sign(privateKey);
  });

  const auth = () => createAuthenticator({ verifier, directory, boundary: 'us' });
  /** The error code a bearer token is refused with. */
  const refusal = async (token: string) => (await appErrorOf(auth().authenticate(`Bearer ${token}`))).code;

  it('accepts an RS256 Entra token and maps tid to the Meridian tenant', async () => {
    const token = await signRs256({ tid: '11111111-2222-3333-4444-555555555555', roles: ['admin'] });
    await expect(auth().authenticate(`Bearer ${token}`)).resolves.toMatchObject({ tenantId: 'contoso', roles: ['admin'] });
  });

  it('refuses an HS256 token, even one signed with the local dev secret', async () => {
    const hs = await mintDevToken({ tenant: '11111111-2222-3333-4444-555555555555', user: 'x' });
    expect(await refusal(hs)).toBe('unauthorized');
  });

  it('refuses a wrong issuer and an unknown directory', async () => {
    const wrongIssuer = await signRs256({ tid: '11111111-2222-3333-4444-555555555555' }, 'https://evil.example/v2.0');
    expect(await refusal(wrongIssuer)).toBe('unauthorized');
    const unknown = await signRs256({ tid: '99999999-2222-3333-4444-555555555555' });
    expect(await refusal(unknown)).toBe('unauthorized');
  });
});
