import { jwtVerify, errors as joseErrors } from 'jose';
import { AppError } from '../../domain/errors';
import type { Clock } from '../../ports/clock';
import type { TokenVerifier, VerifiedClaims } from '../../ports/token-verifier';

export const DEV_TOKEN_ISSUER = 'meridian-local';
export const DEV_TOKEN_AUDIENCE = 'meridian-api';

/** Local mode only: HS256 tokens signed with AUTH_DEV_SECRET (see `npm run token`). */
export class DevTokenVerifier implements TokenVerifier {
  readonly #key: Uint8Array;
  constructor(
    secret: string,
    private readonly clock: Clock,
    private readonly clockToleranceSeconds = 30,
  ) {
    this.#key = new TextEncoder().encode(secret);
  }

  async verify(token: string): Promise<VerifiedClaims> {
    try {
      const { payload } = await jwtVerify(token, this.#key, {
        algorithms: ['HS256'],
        issuer: DEV_TOKEN_ISSUER,
        audience: DEV_TOKEN_AUDIENCE,
        clockTolerance: this.clockToleranceSeconds,
        currentDate: new Date(this.clock.now()),
        requiredClaims: ['tid', 'sub', 'exp'],
      });
      return claimsOf(payload);
    } catch (err) {
      throw toUnauthorized(err);
    }
  }
}

export function claimsOf(payload: Record<string, unknown>): VerifiedClaims {
  const { tid, sub, roles } = payload;
  if (typeof tid !== 'string' || !tid || typeof sub !== 'string' || !sub) {
    throw new AppError('unauthorized', 'The token lacks tid or sub.');
  }
  return { tid, sub, roles: Array.isArray(roles) ? roles : [] };
}

export function toUnauthorized(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const detail =
    err instanceof joseErrors.JWTExpired
      ? 'The token has expired.'
      : err instanceof joseErrors.JWTClaimValidationFailed
        ? `The token's ${err.claim} claim is not valid.`
        : err instanceof joseErrors.JWSSignatureVerificationFailed
          ? 'The token signature is not valid.'
          : err instanceof joseErrors.JOSEAlgNotAllowed
            ? 'The token algorithm is not accepted.'
            : 'The token is malformed or not valid.';
  return new AppError('unauthorized', detail, { cause: err });
}
