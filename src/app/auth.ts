import { AppError } from '../domain/errors';
import { effectiveRoles, hasAnyRole, isPlatformAdmin, type Principal, type Role, type Tenant } from '../domain/tenancy';
import type { TokenVerifier } from '../ports/token-verifier';

export interface TenantDirectory {
  /** The tenant for a token's `tid` (Entra directory id in Azure, tenant id locally), or undefined. */
  byDirectoryId(tid: string): Tenant | undefined;
  byTenantId(tenantId: string): Tenant | undefined;
  operatorTenantId: string;
}

export function createTenantDirectory(tenants: readonly Tenant[], operatorTenantId: string): TenantDirectory {
  const byDir = new Map(tenants.map((t) => [t.entraTenantId, t]));
  const byId = new Map(tenants.map((t) => [t.tenantId, t]));
  return {
    byDirectoryId: (tid) => byDir.get(tid),
    byTenantId: (id) => byId.get(id),
    operatorTenantId,
  };
}

export interface Authenticator {
  /**
   * Authenticates a request's Authorization header and applies the residency guard.
   * @param options.crossBoundary the route only reads tenant-free or aggregate data (usage
   *   totals, index status, health details): a platform-admin may call it in any boundary.
   *   Everywhere else the operator tenant is a tenant like any other, kept to its own boundary,
   *   so nothing of it (conversations, documents, sessions, usage, audit) is stored elsewhere.
   * @throws AppError `unauthorized` (401) for a missing/invalid token or unknown tenant;
   *   `misdirected_boundary` (421) when the tenant's boundary is not served here.
   */
  authenticate(authorization: string | null | undefined, options?: { crossBoundary?: boolean }): Promise<Principal>;
}

export function createAuthenticator(deps: {
  verifier: TokenVerifier;
  directory: TenantDirectory;
  boundary: string;
  /** Where the tenant's boundary is served, if known (421 body `baseUrl`). */
  baseUrlOf?: (boundary: string) => string | undefined;
}): Authenticator {
  return {
    async authenticate(authorization, options = {}) {
      const match = /^Bearer\s+([A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]*)\s*$/i.exec(authorization ?? '');
      if (!authorization) throw new AppError('unauthorized', 'A bearer token is required.');
      if (!match) throw new AppError('unauthorized', 'The Authorization header must be "Bearer <JWT>".');
      const claims = await deps.verifier.verify(match[1] as string);
      const tenant = deps.directory.byDirectoryId(claims.tid);
      if (!tenant) throw new AppError('unauthorized', 'The token is not from a tenant of this service.');
      const principal: Principal = {
        tenantId: tenant.tenantId,
        userId: claims.sub,
        roles: effectiveRoles(claims.roles, tenant.tenantId, deps.directory.operatorTenantId),
        boundary: tenant.boundary,
      };
      if (tenant.boundary !== deps.boundary && !(options.crossBoundary === true && isPlatformAdmin(principal))) {
        const baseUrl = deps.baseUrlOf?.(tenant.boundary);
        throw new AppError(
          'misdirected_boundary',
          `This tenant's data lives in boundary ${tenant.boundary}, not ${deps.boundary}.`,
          {
            extensions: { boundary: tenant.boundary, ...(baseUrl ? { baseUrl } : {}) },
          },
        );
      }
      return principal;
    },
  };
}

/** @throws AppError `forbidden` (403) when the principal has none of `roles`. */
export function requireRole(principal: Principal, roles: readonly Role[]): void {
  if (!hasAnyRole(principal, roles)) {
    throw new AppError('forbidden', `This operation needs one of the roles: ${roles.join(', ')}.`, {
      extensions: { requiredRoles: [...roles] },
    });
  }
}
