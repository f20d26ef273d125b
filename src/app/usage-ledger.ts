/**
 * The usage ledger: merges usage events from the `usage` change feed into per-tenant,
 * per-month totals, exactly once per event, with no lost increments under concurrent writers.
 *
 * - Exactly once: for every event an applied-marker (`applied:<eventId>`) is CREATED in the
 *   same transactional batch (tenant partition) as the ledger update. A redelivered or
 *   replayed event makes the create conflict, the whole batch is rolled back, the markers are
 *   re-read and only the events without one are merged.
 * - No lost increments: the ledger document is replaced with If-Match on the etag it was
 *   computed from (created when absent). A concurrent writer (the other region's processor,
 *   a restarted instance) makes the batch fail with `precondition_failed` or `conflict`; the
 *   merge re-reads and recomputes. No counter is ever last-writer-wins.
 * - Budget thresholds (80 %, 100 %): crossing one creates a `budget-threshold` document in
 *   the same batch (deterministic id, so at most once per month) and records it in the
 *   ledger; the audit trigger on `usage` turns that document into one audit entry. A warning
 *   is logged after the batch commits.
 */
import { z } from 'zod';
import { AppError, isAppError } from '../domain/errors';
import {
  applyEvents,
  emptyLedger,
  msUntilNextPeriod,
  newlyCrossed,
  periodOf,
  utilization,
  type LedgerTotals,
  type TokenCounts,
  type UsageEvent,
} from '../domain/usage-ledger';
import type { Clock } from '../ports/clock';
import type { BatchOperation, DocumentStore, Item, Stored } from '../ports/document-store';
import type { Logger } from '../ports/logger';
import type { TenantDirectory } from './auth';

export const USAGE_CONTAINER = 'usage';

export interface LedgerDocument extends LedgerTotals, Item {
  id: string;
  tenantId: string;
  type: 'usage-ledger';
  updatedAt: string;
}

export interface AppliedMarker extends Item {
  tenantId: string;
  type: 'usage-applied';
  period: string;
}

export interface BudgetThresholdDocument extends Item {
  tenantId: string;
  type: 'budget-threshold';
  period: string;
  thresholdPercent: number;
  limitTokens: number;
  totalTokens: number;
  at: string;
  boundary: string;
  region: string;
}

export const ledgerIdOf = (period: string): string => `ledger:${period}`;
export const markerIdOf = (eventId: string): string => `applied:${eventId}`;
export const thresholdIdOf = (period: string, percent: number): string => `budget:${period}:${percent}`;

/** Cosmos ids may not hold / \ ? # ; the marker adds 8 characters to the 255 maximum. */
const EVENT_ID = /^[^/\\?#]{1,200}:\d{1,9}$/;

export const usageEventSchema = z.object({
  id: z.string().regex(EVENT_ID),
  tenantId: z.string().min(1),
  userId: z.string().min(1),
  requestId: z.string(),
  region: z.string().min(1),
  deployment: z.string().min(1),
  source: z.enum(['chat', 'session', 'evaluation']),
  promptTokens: z.number().int().min(0),
  completionTokens: z.number().int().min(0),
  at: z.iso.datetime({ offset: true }),
});

/** Events per transactional batch: markers + one ledger write + up to two threshold creates ≤ 100. */
export const MERGE_CHUNK = 90;
/** Optimistic-concurrency attempts per chunk before the trigger fails (and the batch is redelivered). */
export const MAX_ATTEMPTS = 50;

export interface MergeStats {
  /** Distinct events merged now (not counting those already applied). */
  applied: number;
  /** Events skipped because their marker existed (redelivery, replay, a duplicate write). */
  duplicates: number;
  /** Documents of the feed that are not usage events (ledgers, markers, thresholds). */
  ignored: number;
  /** Malformed events: logged and skipped, never blocking the feed. */
  invalid: number;
  /** Batches retried after a concurrent writer won (etag or marker race). */
  retries: number;
  /** Thresholds crossed now. */
  thresholds: { tenantId: string; period: string; percent: number }[];
}

export interface UsageReport {
  tenantId: string;
  period: string;
  totals: TokenCounts;
  byRegion: Record<string, TokenCounts>;
  byDeployment: Record<string, TokenCounts>;
  bySource: Record<string, TokenCounts>;
  budget: { limitTokens: number; utilization: number; enforcement: 'soft' | 'hard' };
}

export interface UsageLedgerDeps {
  documents: DocumentStore;
  clock: Clock;
  logger: Logger;
  directory: TenantDirectory;
  config: { boundary: string; region: string };
}

export function createUsageLedger(deps: UsageLedgerDeps) {
  const { documents, clock, logger } = deps;

  async function readLedger(tenantId: string, period: string): Promise<Stored<LedgerDocument> | undefined> {
    return documents.read<LedgerDocument>(USAGE_CONTAINER, tenantId, ledgerIdOf(period));
  }

  /** Merges one chunk (one tenant, one period, distinct ids) until it commits. */
  async function mergeChunk(tenantId: string, period: string, chunk: UsageEvent[], stats: MergeStats): Promise<void> {
    let candidates = chunk;
    let checkMarkers = false;
    for (let attempt = 1; ; attempt++) {
      if (checkMarkers) {
        const seen = await Promise.all(candidates.map((e) => documents.read(USAGE_CONTAINER, tenantId, markerIdOf(e.id))));
        const fresh = candidates.filter((_, i) => seen[i] === undefined);
        stats.duplicates += candidates.length - fresh.length;
        candidates = fresh;
        if (candidates.length === 0) return;
      }
      const stored = await readLedger(tenantId, period);
      const before: LedgerTotals = stored ?? emptyLedger(period);
      const limit = deps.directory.byTenantId(tenantId)?.monthlyTokenBudget ?? 0;
      const merged = applyEvents(before, candidates);
      const crossed = newlyCrossed(merged.totals.totalTokens, limit, merged.thresholds);
      const now = new Date(clock.now()).toISOString();
      const ledger: LedgerDocument = {
        id: ledgerIdOf(period),
        tenantId,
        type: 'usage-ledger',
        ...merged,
        thresholds: [...merged.thresholds, ...crossed].sort((a, b) => a - b),
        updatedAt: now,
      };
      const ops: BatchOperation[] = candidates.map((e) => ({
        type: 'create',
        item: { id: markerIdOf(e.id), tenantId, type: 'usage-applied', period } satisfies AppliedMarker,
      }));
      ops.push(stored ? { type: 'replace', item: ledger, ifMatch: stored._etag } : { type: 'create', item: ledger });
      for (const percent of crossed) {
        const doc: BudgetThresholdDocument = {
          id: thresholdIdOf(period, percent),
          tenantId,
          type: 'budget-threshold',
          period,
          thresholdPercent: percent,
          limitTokens: limit,
          totalTokens: merged.totals.totalTokens,
          at: now,
          boundary: deps.config.boundary,
          region: deps.config.region,
        };
        ops.push({ type: 'create', item: doc });
      }
      try {
        await documents.batch(USAGE_CONTAINER, tenantId, ops);
      } catch (err) {
        if (!(isAppError(err, 'conflict') || isAppError(err, 'precondition_failed')) || attempt >= MAX_ATTEMPTS) throw err;
        // Someone else applied some of these events or moved the ledger on: re-read, recompute.
        stats.retries++;
        checkMarkers = true;
        continue;
      }
      stats.applied += candidates.length;
      for (const percent of crossed) {
        stats.thresholds.push({ tenantId, period, percent });
        logger.warn('token budget threshold crossed', {
          tenantId,
          period,
          thresholdPercent: percent,
          totalTokens: merged.totals.totalTokens,
          limitTokens: limit,
        });
      }
      return;
    }
  }

  return {
    /**
     * Merges a change-feed batch of the `usage` container. Items that are not usage events
     * (this ledger's own documents) are ignored; malformed events are logged and skipped.
     * @throws the store's AppError when it fails, or after {@link MAX_ATTEMPTS} lost races:
     *   the trigger then fails and the same batch is delivered again (safe: exactly-once).
     */
    async merge(items: readonly unknown[]): Promise<MergeStats> {
      const stats: MergeStats = { applied: 0, duplicates: 0, ignored: 0, invalid: 0, retries: 0, thresholds: [] };
      const groups = new Map<string, Map<string, Map<string, UsageEvent>>>();
      for (const item of items) {
        if (typeof item !== 'object' || item === null || 'type' in item) {
          stats.ignored++;
          continue;
        }
        const parsed = usageEventSchema.safeParse(stripSystem(item as Record<string, unknown>));
        if (!parsed.success) {
          stats.invalid++;
          logger.error('malformed usage event skipped', {
            id: (item as { id?: unknown }).id,
            issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
          });
          continue;
        }
        const e = parsed.data;
        const period = periodOf(e.at);
        let byPeriod = groups.get(e.tenantId);
        if (!byPeriod) groups.set(e.tenantId, (byPeriod = new Map()));
        let byId = byPeriod.get(period);
        if (!byId) byPeriod.set(period, (byId = new Map()));
        // The same id twice in one batch cannot happen in a latest-version feed, but a
        // duplicate must never be merged twice: keep the first.
        if (byId.has(e.id)) stats.duplicates++;
        else byId.set(e.id, e);
      }
      // Tenants are independent partitions: merge them concurrently; one tenant's chunks in order.
      await Promise.all(
        [...groups].map(async ([tenantId, byPeriod]) => {
          for (const [period, byId] of byPeriod) {
            const events = [...byId.values()];
            for (let i = 0; i < events.length; i += MERGE_CHUNK) {
              await mergeChunk(tenantId, period, events.slice(i, i + MERGE_CHUNK), stats);
            }
          }
        }),
      );
      return stats;
    },

    /** The month's usage of a tenant (zeros when nothing was merged yet). */
    async report(tenantId: string, period: string): Promise<UsageReport> {
      const stored = await readLedger(tenantId, period);
      const ledger = stored ?? emptyLedger(period);
      const tenant = deps.directory.byTenantId(tenantId);
      const limitTokens = tenant?.monthlyTokenBudget ?? 0;
      return {
        tenantId,
        period,
        totals: ledger.totals,
        byRegion: ledger.byRegion,
        byDeployment: ledger.byDeployment,
        bySource: ledger.bySource,
        budget: {
          limitTokens,
          utilization: utilization(ledger.totals.totalTokens, limitTokens),
          enforcement: tenant?.budgetEnforcement ?? 'soft',
        },
      };
    },
  };
}

export type UsageLedger = ReturnType<typeof createUsageLedger>;

/** For model-calling routes (chat, sessions, evaluations): refuse when a `hard` budget is spent. */
export function createBudgetGuard(deps: Pick<UsageLedgerDeps, 'documents' | 'clock' | 'directory'>) {
  return {
    /**
     * @throws AppError `budget_exceeded` (429, Retry-After = until the next UTC month) when
     *   the tenant's enforcement is `hard` and this month's merged usage reached its budget.
     *   Soft budgets and tenants without a budget always pass.
     */
    async assertWithinBudget(tenantId: string): Promise<void> {
      const tenant = deps.directory.byTenantId(tenantId);
      if (!tenant || tenant.budgetEnforcement !== 'hard' || tenant.monthlyTokenBudget <= 0) return;
      const now = deps.clock.now();
      const ledger = await deps.documents.read<LedgerDocument>(USAGE_CONTAINER, tenantId, ledgerIdOf(periodOf(now)));
      const used = ledger?.totals.totalTokens ?? 0;
      if (used >= tenant.monthlyTokenBudget) {
        throw new AppError('budget_exceeded', 'The monthly token budget of this tenant is spent.', {
          retryAfterSeconds: Math.max(1, Math.ceil(msUntilNextPeriod(now) / 1000)),
        });
      }
    },
  };
}

function stripSystem(item: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item)) if (!k.startsWith('_') && k !== 'ttl') out[k] = v;
  return out;
}
