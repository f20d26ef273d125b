import type { UsageEvent } from '../../src/domain/usage-ledger';
import type { LedgerDocument } from '../../src/app/usage-ledger';

let n = 0;

/** A usage event as chat writes it; `id` = `<invocationId>:<n>`. */
export function usageEvent(over: Partial<UsageEvent> = {}): UsageEvent {
  n++;
  return {
    id: `inv-${n}:0`,
    tenantId: 'tenant-acme-corp',
    userId: 'u1',
    requestId: `req-${n}`,
    region: 'eastus',
    deployment: 'gpt-4o-eastus',
    source: 'chat',
    promptTokens: 10,
    completionTokens: 5,
    at: '2030-01-15T10:00:00.000Z',
    ...over,
  };
}

type Counts = LedgerDocument['totals'];
const addTo = (m: Record<string, Counts>, k: string, e: UsageEvent) => {
  const c = (m[k] ??= { promptTokens: 0, completionTokens: 0, totalTokens: 0 });
  c.promptTokens += e.promptTokens;
  c.completionTokens += e.completionTokens;
  c.totalTokens += e.promptTokens + e.completionTokens;
};

/** The model: per tenant and period, the plain sum of DISTINCT events (by id). */
export function expectedLedgers(events: readonly UsageEvent[]) {
  const distinct = new Map(events.map((e) => [e.id, e]));
  const out = new Map<string, Pick<LedgerDocument, 'totals' | 'byRegion' | 'byDeployment' | 'bySource' | 'events'>>();
  for (const e of distinct.values()) {
    const key = `${e.tenantId}|${e.at.slice(0, 7)}`;
    let l = out.get(key);
    if (!l) {
      l = {
        totals: { promptTokens: 0, completionTokens: 0, totalTokens: 0 },
        byRegion: {},
        byDeployment: {},
        bySource: {},
        events: 0,
      };
      out.set(key, l);
    }
    const t: Record<string, Counts> = { all: l.totals };
    addTo(t, 'all', e);
    addTo(l.byRegion, e.region, e);
    addTo(l.byDeployment, e.deployment, e);
    addTo(l.bySource, e.source, e);
    l.events++;
  }
  return out;
}
