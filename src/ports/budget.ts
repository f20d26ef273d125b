/**
 * The monthly token budget, as model-calling use cases see it. The ledger (issue 7) implements
 * it over the `usage` container (wired in the composition root).
 */
import type { Tenant } from '../domain/tenancy';

export interface BudgetGuard {
  /**
   * Resolves when the tenant may make another model call at `at` (epoch ms): always for
   * `soft` enforcement, and for `hard` while the month's tokens are not spent.
   * @throws AppError `budget_exceeded` (429) with `retryAfterSeconds` until the next month
   *   (UTC) when a `hard` tenant's month is spent; `unavailable` when the ledger cannot be read.
   */
  assertWithinBudget(tenant: Tenant, at: number): Promise<void>;
}
