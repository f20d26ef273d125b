import { describe, expect, it } from 'vitest';
import { applyEvents, emptyLedger, msUntilNextPeriod, newlyCrossed, periodOf } from '../../src/domain/usage-ledger';
import { usageEvent } from '../support/usage-events';

describe('ledger math', () => {
  it('takes the UTC month of `at` as the period', () => {
    expect(periodOf('2030-01-31T23:59:59.999Z')).toBe('2030-01');
    expect(periodOf('2030-02-01T00:30:00+01:00')).toBe('2030-01');
    expect(msUntilNextPeriod(Date.UTC(2030, 0, 31, 23, 59, 59))).toBe(1000);
  });

  it('sums totals by region, deployment and source', () => {
    const l = applyEvents(emptyLedger('2030-01'), [
      usageEvent({ promptTokens: 3, completionTokens: 4 }),
      usageEvent({ region: 'westus2', deployment: 'd2', source: 'session', promptTokens: 1, completionTokens: 0 }),
    ]);
    expect(l.totals).toEqual({ promptTokens: 4, completionTokens: 4, totalTokens: 8 });
    expect(l.byRegion['westus2']).toEqual({ promptTokens: 1, completionTokens: 0, totalTokens: 1 });
    expect(l.bySource['chat']?.totalTokens).toBe(7);
    expect(l.events).toBe(2);
  });

  it('refuses an event of another period', () => {
    expect(() => applyEvents(emptyLedger('2030-02'), [usageEvent()])).toThrow(RangeError);
  });

  it('crosses 80 % and 100 % once each, with exact integer arithmetic', () => {
    expect(newlyCrossed(79, 100, [])).toEqual([]);
    expect(newlyCrossed(80, 100, [])).toEqual([80]);
    expect(newlyCrossed(150, 100, [])).toEqual([80, 100]);
    expect(newlyCrossed(150, 100, [80])).toEqual([100]);
    expect(newlyCrossed(150, 100, [80, 100])).toEqual([]);
    expect(newlyCrossed(1_000_000, 0, [])).toEqual([]);
  });
});
