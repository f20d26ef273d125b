import { describe, expect, it } from 'vitest';
import { createCachingVerifier } from '../../src/app/verified-token-cache';
import { AppError } from '../../src/domain/errors';
import type { TokenVerifier } from '../../src/ports/token-verifier';
import { ManualClock } from '../support/manual-clock';

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const tokenOf = (sub: string, exp?: number) => `${b64({ alg: 'HS256' })}.${b64({ sub, tid: 't', ...(exp ? { exp } : {}) })}.sig`;

/** Accepts tokens whose signature part is "sig" and that are not past exp; counts calls. */
function countingVerifier(clock: ManualClock) {
  const calls: string[] = [];
  const verifier: TokenVerifier = {
    async verify(token) {
      calls.push(token);
      const [, payload, sig] = token.split('.');
      const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as { sub: string; exp?: number };
      if (sig !== 'sig') throw new AppError('unauthorized', 'The token signature is not valid.');
      if (claims.exp !== undefined && clock.now() >= claims.exp * 1000)
        throw new AppError('unauthorized', 'The token has expired.');
      return { tid: 't', sub: claims.sub, roles: [] };
    },
  };
  return { verifier, calls };
}

describe('createCachingVerifier', () => {
  it('verifies a token once until its exp, then verifies (and refuses) it again', async () => {
    const clock = new ManualClock(1_000_000);
    const { verifier, calls } = countingVerifier(clock);
    const cached = createCachingVerifier(verifier, clock);
    const token = tokenOf('alice', 1_000 + 120);
    for (let i = 0; i < 5; i++) expect((await cached.verify(token)).sub).toBe('alice');
    expect(calls).toHaveLength(1);
    clock.advance(120_000);
    await expect(cached.verify(token)).rejects.toMatchObject({ code: 'unauthorized' });
    expect(calls).toHaveLength(2);
  });

  it('never remembers a failure, nor a token without exp, and forgets after maxAgeMs', async () => {
    const clock = new ManualClock(1_000_000);
    const { verifier, calls } = countingVerifier(clock);
    const cached = createCachingVerifier(verifier, clock, { maxAgeMs: 10_000, maxEntries: 2 });
    const forged = tokenOf('mallory', 5_000).replace(/sig$/, 'bad');
    await expect(cached.verify(forged)).rejects.toMatchObject({ code: 'unauthorized' });
    await expect(cached.verify(forged)).rejects.toMatchObject({ code: 'unauthorized' });
    const noExp = tokenOf('bob');
    await cached.verify(noExp);
    await cached.verify(noExp);
    expect(calls).toEqual([forged, forged, noExp, noExp]);

    const long = tokenOf('carol', 1_000_000);
    await cached.verify(long);
    clock.advance(9_000);
    await cached.verify(long);
    expect(calls.filter((c) => c === long)).toHaveLength(1);
    clock.advance(2_000); // past maxAgeMs
    await cached.verify(long);
    expect(calls.filter((c) => c === long)).toHaveLength(2);

    // Bounded: the oldest entry goes first.
    await cached.verify(tokenOf('d', 1_000_000));
    await cached.verify(tokenOf('e', 1_000_000));
    await cached.verify(long);
    expect(calls.filter((c) => c === long)).toHaveLength(3);
  });
});
