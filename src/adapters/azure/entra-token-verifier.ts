import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { AppError } from '../../domain/errors';
import type { Clock } from '../../ports/clock';
import type { TokenVerifier, VerifiedClaims } from '../../ports/token-verifier';
import { claimsOf, toUnauthorized } from '../local/dev-token-verifier';

/**
 * Entra ID access tokens: RS256 only (an HS256 token is refused whatever its secret), audience
 * from config, keys from the JWKS URL, and the issuer pinned to
 * `https://login.microsoftonline.com/{tid}/v2.0` for a `tid` in the tenant directory.
 */
export class EntraTokenVerifier implements TokenVerifier {
  readonly #keys: JWTVerifyGetKey;

  constructor(
    private readonly options: {
      audience: string;
      /** Remote JWKS URL, or a key getter (tests use jose's createLocalJWKSet). */
      jwks: string | JWTVerifyGetKey;
      isKnownDirectory: (tid: string) => boolean;
      clock: Clock;
      clockToleranceSeconds?: number;
    },
  ) {
    this.#keys =
      typeof options.jwks === 'string' ? createRemoteJWKSet(new URL(options.jwks), { cooldownDuration: 30_000 }) : options.jwks;
  }

  async verify(token: string): Promise<VerifiedClaims> {
    let tid: unknown;
    try {
      tid = decodeJwt(token)['tid'];
    } catch (err) {
      throw toUnauthorized(err);
    }
    if (typeof tid !== 'string' || !this.options.isKnownDirectory(tid)) {
      throw new AppError('unauthorized', 'The token is not from a directory known to this service.');
    }
    try {
      const { payload } = await jwtVerify(token, this.#keys, {
        algorithms: ['RS256'],
        audience: this.options.audience,
        issuer: `https://login.microsoftonline.com/${tid}/v2.0`,
        clockTolerance: this.options.clockToleranceSeconds ?? 30,
        currentDate: new Date(this.options.clock.now()),
        requiredClaims: ['exp', 'sub', 'tid'],
      });
      return claimsOf(payload);
    } catch (err) {
      throw toUnauthorized(err);
    }
  }
}
