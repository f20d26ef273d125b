/** Tenancy and residency rules. Pure: no I/O. */

export const ROLES = ['admin', 'auditor', 'platform-admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Tenant {
  tenantId: string;
  entraTenantId: string;
  boundary: string;
  monthlyTokenBudget: number;
  budgetEnforcement: 'soft' | 'hard';
}

/** Who is calling, derived from a verified token only (never from body or query). */
export interface Principal {
  tenantId: string;
  userId: string;
  /** Roles scoped to `tenantId`; `platform-admin` only ever for the operator tenant. */
  roles: Role[];
  boundary: string;
}

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/**
 * Keeps the roles a token may carry: known roles only, and `platform-admin` only when the
 * token's tenant is the operator tenant (anywhere else it is silently dropped).
 */
export function effectiveRoles(claimed: readonly unknown[], tenantId: string, operatorTenantId: string): Role[] {
  const roles = claimed.filter(isRole);
  return [...new Set(roles.filter((r) => r !== 'platform-admin' || tenantId === operatorTenantId))];
}

export function isPlatformAdmin(p: Principal): boolean {
  return p.roles.includes('platform-admin');
}

export function hasAnyRole(p: Principal, roles: readonly Role[]): boolean {
  return roles.some((r) => p.roles.includes(r));
}
