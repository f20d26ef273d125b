/** Claims Meridian reads from a verified bearer token. */
export interface VerifiedClaims {
  /** Directory id: the Meridian tenant id locally, the Entra directory id in Azure. */
  tid: string;
  sub: string;
  roles: unknown[];
}

export interface TokenVerifier {
  /**
   * Verifies signature, algorithm, expiry, not-before, audience and issuer.
   * @throws AppError `unauthorized` for any token that fails; never returns unverified claims.
   */
  verify(token: string): Promise<VerifiedClaims>;
}
