/**
 * The guards every model-calling route shares (API.md): the per-user rate limit — the one
 * limiter of the process's deps, so chat, session messages and evaluate count together — and
 * the hard monthly budget.
 */
import type { Deps } from '../../src/composition';
import { AppError } from '../../src/domain/errors';
import type { Principal } from '../../src/domain/tenancy';

/**
 * The per-user rate limit alone, for routes that call only the embedding model (search): it
 * costs a model call per new query but no usage is metered, so no budget applies.
 * @throws AppError rate_limited (429 with Retry-After).
 */
export function guardRate(deps: Deps, principal: Principal): void {
  deps.rateLimiter.enforce(`${principal.tenantId}/${principal.userId}`);
}

/** @throws AppError rate_limited or budget_exceeded (both 429 with Retry-After). */
export async function guardModelCall(deps: Deps, principal: Principal): Promise<void> {
  guardRate(deps, principal);
  const tenant = deps.directory.byTenantId(principal.tenantId);
  if (!tenant) throw new AppError('not_found', 'Unknown tenant.');
  await deps.budget.assertWithinBudget(tenant, deps.clock.now());
}
