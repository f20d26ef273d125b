import { describe, expect, it } from 'vitest';
import { nextOccurrences, parseSchedule, resolveSchedule } from '../../devhost/timers';

const iso = (d: Date[]) => d.map((x) => x.toISOString());

describe('NCRONTAB schedules', () => {
  it('reads six fields, seconds first', () => {
    expect(iso(nextOccurrences('0 */5 * * * *', new Date('2026-01-01T00:00:00Z'), 3))).toEqual([
      '2026-01-01T00:05:00.000Z',
      '2026-01-01T00:10:00.000Z',
      '2026-01-01T00:15:00.000Z',
    ]);
    expect(iso(nextOccurrences('30 0 2 * * *', new Date('2026-01-01T03:00:00Z'), 1))).toEqual(['2026-01-02T02:00:30.000Z']);
  });

  it('requires day-of-month AND day-of-week when both are set (NCRONTAB, unlike Vixie cron)', () => {
    // Friday the 13th at 09:00: 2026-02-13 and 2026-03-13 are Fridays; 2026-11-13 too.
    expect(iso(nextOccurrences('0 0 9 13 * 5', new Date('2026-01-01T00:00:00Z'), 3))).toEqual([
      '2026-02-13T09:00:00.000Z',
      '2026-03-13T09:00:00.000Z',
      '2026-11-13T09:00:00.000Z',
    ]);
  });

  it('refuses five-field and malformed expressions', () => {
    expect(() => parseSchedule('*/5 * * * *')).toThrow(/must have 6 fields/);
    expect(() => parseSchedule('0 61 * * * *')).toThrow();
  });

  it('resolves %SETTING% schedules from app settings', () => {
    expect(resolveSchedule('%SWEEP%', { SWEEP: '0 */2 * * * *' })).toBe('0 */2 * * * *');
    expect(() => resolveSchedule('%MISSING%', {})).toThrow(/MISSING, which is not set/);
  });
});
