import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { epochSeconds, type Clock } from '../clock.js';
import type { KeySet } from '../keys/key-set.js';
import type { Grant } from './client-credentials.js';

/** The claims of an access token (RFC 9068 §2.2). */
export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  nbf: number;
  jti: string;
  client_id: string;
  scope?: string;
  /** RFC 8705 §3.1: the SHA-256 thumbprint of the certificate the token is bound to. */
  cnf?: { 'x5t#S256': string };
}

export interface IssuedToken {
  accessToken: string;
  claims: AccessTokenClaims;
}

/** A jti with 144 random bits: RFC 9068 wants it unique, the contract at least 128 bits. */
export function newJti(): string {
  return randomBytes(18).toString('base64url');
}

/** Mints RFC 9068 JWT access tokens, signed by the key set's current signing key. */
export class TokenIssuer {
  constructor(
    private readonly issuer: string,
    private readonly keys: KeySet,
    private readonly clock: Clock,
  ) {}

  async issue(clientId: string, grant: Grant, certificateThumbprint?: string): Promise<IssuedToken> {
    const now = epochSeconds(this.clock);
    const claims: AccessTokenClaims = {
      iss: this.issuer,
      // RFC 9068 §2.2: with no resource owner, sub is the client's own identifier.
      sub: clientId,
      aud: grant.audience.length === 1 ? grant.audience[0]! : [...grant.audience],
      exp: now + grant.ttl,
      iat: now,
      nbf: now,
      jti: newJti(),
      client_id: clientId,
    };
    if (grant.scopes.length > 0) claims.scope = grant.scopes.join(' ');
    if (certificateThumbprint !== undefined) claims.cnf = { 'x5t#S256': certificateThumbprint };
    const key = this.keys.signingKey();
    const accessToken = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: key.alg, typ: 'at+jwt', kid: key.kid })
      .sign(key.key);
    return { accessToken, claims };
  }
}
