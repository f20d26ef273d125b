import { describe, expect, it } from 'vitest';
import { createRateLimiter } from '../../src/app/rate-limiter';
import { AppError } from '../../src/domain/errors';
import { toProblem } from '../../src/app/problem';
import { ManualClock } from '../support/manual-clock';

describe('rate limiter (sliding window)', () => {
  it('admits the limit per window per key, then refuses with the time until the oldest leaves', () => {
    const clock = new ManualClock();
    const limiter = createRateLimiter({ clock, limit: 3 });
    expect(limiter.take('u1')).toEqual({ allowed: true, remaining: 2, retryAfterSeconds: 0 });
    clock.advance(10_000);
    limiter.take('u1');
    clock.advance(10_000);
    limiter.take('u1');
    expect(limiter.take('u1')).toEqual({ allowed: false, remaining: 0, retryAfterSeconds: 40 });
    expect(limiter.take('u2').allowed).toBe(true); // keys are independent
    clock.advance(39_999);
    expect(limiter.take('u1')).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
    clock.advance(1);
    expect(limiter.take('u1')).toMatchObject({ allowed: true, remaining: 0 });
    expect(limiter.take('u1')).toMatchObject({ allowed: false, retryAfterSeconds: 10 });
  });

  it('never admits more than the limit in any window (refusals are not counted)', () => {
    const clock = new ManualClock();
    const limiter = createRateLimiter({ clock, limit: 500 });
    const admitted: number[] = [];
    for (let i = 0; i < 3_000; i++) {
      if (limiter.take('u').allowed) admitted.push(clock.now());
      clock.advance(37);
    }
    for (let i = 0; i + 500 < admitted.length; i++) {
      expect((admitted[i + 500] as number) - (admitted[i] as number)).toBeGreaterThanOrEqual(60_000);
    }
    expect(admitted.length).toBeGreaterThan(500);
  });

  it('enforce throws 429 rate_limited with Retry-After', () => {
    const clock = new ManualClock();
    const limiter = createRateLimiter({ clock, limit: 1, windowMs: 60_000 });
    limiter.enforce('u');
    clock.advance(500);
    let err: unknown;
    try {
      limiter.enforce('u');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    const problem = toProblem(err, 'req-1');
    expect(problem.status).toBe(429);
    expect(problem.body.code).toBe('rate_limited');
    expect(problem.headers['retry-after']).toBe('60');
  });
});
