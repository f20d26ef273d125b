import { describe, expect, it } from 'vitest';
import { boundaryFor, durableInstanceBoundary, readTokenHint } from '../../devhost/front-door';
import { mintDevToken } from '../helpers/tokens';

const tenants = [
  { tenantId: 'tenant-acme-corp', boundary: 'us' },
  { tenantId: 'tenant-eureka-gmbh', boundary: 'eu' },
  { tenantId: 'meridian-operators', boundary: 'us' },
];
const url = (q = '') => new URL(`http://127.0.0.1/api/health${q}`);

describe('front door routing', () => {
  it('routes by the tenant in the token', async () => {
    const hint = readTokenHint(`Bearer ${await mintDevToken({ tenant: 'tenant-eureka-gmbh', user: 'u' })}`);
    expect(boundaryFor(hint, url(), tenants, 'meridian-operators')).toBe('eu');
  });

  it('routes platform-admins of the operator tenant by tenant= or boundary=, others ignore those', async () => {
    const admin = readTokenHint(
      `Bearer ${await mintDevToken({ tenant: 'meridian-operators', user: 'o', roles: ['platform-admin'] })}`,
    );
    expect(boundaryFor(admin, url('?tenant=tenant-eureka-gmbh'), tenants, 'meridian-operators')).toBe('eu');
    expect(boundaryFor(admin, url('?boundary=eu'), tenants, 'meridian-operators')).toBe('eu');
    expect(boundaryFor(admin, url(), tenants, 'meridian-operators')).toBe('us');
    const user = readTokenHint(
      `Bearer ${await mintDevToken({ tenant: 'tenant-acme-corp', user: 'u', roles: ['platform-admin'] })}`,
    );
    expect(boundaryFor(user, url('?boundary=eu'), tenants, 'meridian-operators')).toBe('us');
  });

  it('has no opinion without a readable token or for an unknown tenant', () => {
    expect(readTokenHint(undefined)).toBeUndefined();
    expect(readTokenHint('Bearer garbage')).toBeUndefined();
    expect(readTokenHint('Bearer a.!!!.c')).toBeUndefined();
    expect(boundaryFor({ tid: 'tenant-nobody' }, url(), tenants, 'meridian-operators')).toBeUndefined();
  });

  it('routes durable management URLs by the region encoded in the instance id', () => {
    const regions = new Map([
      ['eastus', 'us'],
      ['westeurope', 'eu'],
    ]);
    const u = (p: string) => new URL(`http://127.0.0.1/runtime/webhooks/durabletask/instances/${p}`);
    expect(durableInstanceBoundary(u('westeurope-0123456789abcdef0123456789abcdef'), regions)).toBe('eu');
    expect(durableInstanceBoundary(u('eastus-0123456789abcdef0123456789abcdef/raiseEvent/x'), regions)).toBe('us');
    expect(durableInstanceBoundary(u('custom-id'), regions)).toBeUndefined();
  });
});
