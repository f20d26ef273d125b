/**
 * The guards every model-calling route shares (API.md): the per-user rate limit (one limiter
 * per deps, so chat, session messages and evaluate count together) and the hard budget.
 */
import { createRateLimiter, type RateLimiter } from '../../src/app/rate-limiter';
import { createBudgetGuard } from '../../src/app/usage-ledger';
import type { Deps } from '../../src/composition';
import type { Principal } from '../../src/domain/tenancy';

const limiters = new WeakMap<Deps, RateLimiter>();

export function rateLimiterOf(deps: Deps): RateLimiter {
  let limiter = limiters.get(deps);
  if (!limiter) {
    limiter = createRateLimiter({ clock: deps.clock, limit: deps.config.http.rateLimitPerMinute });
    limiters.set(deps, limiter);
  }
  return limiter;
}

/** @throws AppError rate_limited or budget_exceeded (both 429 with Retry-After). */
export async function guardModelCall(deps: Deps, principal: Principal): Promise<void> {
  rateLimiterOf(deps).enforce(`${principal.tenantId}/${principal.userId}`);
  await createBudgetGuard(deps).assertWithinBudget(principal.tenantId);
}
