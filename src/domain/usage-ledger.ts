/**
 * Token-usage ledger math. Pure: merging is a fold of usage events into per-tenant, per-month
 * totals; exactly-once and concurrency are the use case's job (src/app/usage-ledger.ts).
 */

export type UsageSource = 'chat' | 'session' | 'evaluation';

/** One model call (API.md "Usage event"); `id` = `<invocationId>:<n>` is the exactly-once key. */
export interface UsageEvent {
  id: string;
  tenantId: string;
  userId: string;
  requestId: string;
  region: string;
  deployment: string;
  source: UsageSource;
  promptTokens: number;
  completionTokens: number;
  /** ISO 8601; its UTC month is the ledger period. */
  at: string;
  /** Stored as a document: system fields come back on reads. */
  [property: string]: unknown;
}

export interface TokenCounts {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

/** One tenant's month. Lives in `usage`, partition = tenant, id `ledger:<period>`. */
export interface LedgerTotals {
  period: string;
  totals: TokenCounts;
  byRegion: Record<string, TokenCounts>;
  byDeployment: Record<string, TokenCounts>;
  bySource: Record<string, TokenCounts>;
  /** Distinct events merged. */
  events: number;
  /** Budget thresholds (percent) already crossed and recorded this month. */
  thresholds: number[];
}

/** Budget thresholds that are audited, in percent of the monthly budget. */
export const BUDGET_THRESHOLDS = [80, 100] as const;

const PERIOD = /^(\d{4})-(0[1-9]|1[0-2])$/;

export function isPeriod(value: string): boolean {
  return PERIOD.test(value);
}

/** The ledger period (`YYYY-MM`, UTC) of an instant. */
export function periodOf(at: string | number): string {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) throw new RangeError(`not a time: ${String(at)}`);
  return `${d.getUTCFullYear().toString().padStart(4, '0')}-${(d.getUTCMonth() + 1).toString().padStart(2, '0')}`;
}

/** Milliseconds from `now` to the start of the next UTC month. */
export function msUntilNextPeriod(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) - now;
}

export function zeroCounts(): TokenCounts {
  return { promptTokens: 0, completionTokens: 0, totalTokens: 0 };
}

export function emptyLedger(period: string): LedgerTotals {
  return { period, totals: zeroCounts(), byRegion: {}, byDeployment: {}, bySource: {}, events: 0, thresholds: [] };
}

function add(into: TokenCounts | undefined, e: UsageEvent): TokenCounts {
  const c = into ?? zeroCounts();
  return {
    promptTokens: c.promptTokens + e.promptTokens,
    completionTokens: c.completionTokens + e.completionTokens,
    totalTokens: c.totalTokens + e.promptTokens + e.completionTokens,
  };
}

/**
 * Adds events (all of `ledger.period`; each counted as given — the caller passes distinct,
 * not yet applied events) and returns a new ledger.
 */
export function applyEvents(ledger: LedgerTotals, events: readonly UsageEvent[]): LedgerTotals {
  const next: LedgerTotals = {
    ...ledger,
    totals: { ...ledger.totals },
    byRegion: { ...ledger.byRegion },
    byDeployment: { ...ledger.byDeployment },
    bySource: { ...ledger.bySource },
    thresholds: [...ledger.thresholds],
  };
  for (const e of events) {
    if (periodOf(e.at) !== ledger.period) throw new RangeError(`event ${e.id} is not in period ${ledger.period}`);
    next.totals = add(next.totals, e);
    next.byRegion[e.region] = add(next.byRegion[e.region], e);
    next.byDeployment[e.deployment] = add(next.byDeployment[e.deployment], e);
    next.bySource[e.source] = add(next.bySource[e.source], e);
    next.events += 1;
  }
  return next;
}

/**
 * Thresholds (percent) that `totalTokens` has reached and that are not yet in `already`.
 * A budget of 0 means "no budget": nothing is ever crossed. Integer arithmetic, no rounding.
 */
export function newlyCrossed(totalTokens: number, limitTokens: number, already: readonly number[]): number[] {
  if (limitTokens <= 0) return [];
  return BUDGET_THRESHOLDS.filter((p) => totalTokens * 100 >= p * limitTokens && !already.includes(p));
}

export function utilization(totalTokens: number, limitTokens: number): number {
  return limitTokens > 0 ? totalTokens / limitTokens : 0;
}
