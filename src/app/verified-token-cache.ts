/**
 * Remembers verified tokens: a client sends the same bearer token with every request until it
 * expires, and verifying it again each time (HMAC locally, RSA against the JWKS in Azure) was
 * a measurable share of a chat request. Only successes are remembered, keyed by the exact
 * token text, until the token's own `exp` and at most `maxAgeMs` (so a signing key that is
 * rotated out stops being honoured within that time); failures are verified every time.
 */
import type { Clock } from '../ports/clock';
import type { TokenVerifier, VerifiedClaims } from '../ports/token-verifier';

export const DEFAULT_VERIFIED_TOKEN_ENTRIES = 10_000;
export const DEFAULT_VERIFIED_TOKEN_MAX_AGE_MS = 5 * 60_000;

/** `exp` (epoch seconds) of a JWT the inner verifier has accepted, or undefined. */
function expiryOf(token: string): number | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof payload.exp === 'number' && Number.isFinite(payload.exp) ? payload.exp : undefined;
  } catch {
    return undefined;
  }
}

export function createCachingVerifier(
  inner: TokenVerifier,
  clock: Clock,
  options: { maxEntries?: number; maxAgeMs?: number } = {},
): TokenVerifier {
  const maxEntries = options.maxEntries ?? DEFAULT_VERIFIED_TOKEN_ENTRIES;
  const maxAgeMs = options.maxAgeMs ?? DEFAULT_VERIFIED_TOKEN_MAX_AGE_MS;
  const entries = new Map<string, { claims: VerifiedClaims; until: number }>();
  return {
    async verify(token) {
      const now = clock.now();
      const hit = entries.get(token);
      if (hit && now < hit.until) return hit.claims;
      if (hit) entries.delete(token);
      const claims = await inner.verify(token);
      const exp = expiryOf(token);
      // Verifiers require exp; without one readable here, nothing is remembered.
      if (exp !== undefined) {
        entries.set(token, { claims, until: Math.min(exp * 1000, now + maxAgeMs) });
        if (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
      }
      return claims;
    },
  };
}
