import { createHash, timingSafeEqual } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader } from 'jose';

/** SHA-256 of a compact JWT, base64url: what the store keeps instead of the token. */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** Compares two digests in constant time. */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface PresentedToken {
  jti: string;
  kid: string | undefined;
  claims: Record<string, unknown>;
}

/**
 * Reads the jti of a presented token without trusting it. Trust comes later, from the store:
 * only a token whose digest equals that of the token issued under this jti is ever believed.
 * Anything that is not a JWT with a string jti is undefined.
 */
export function readPresentedToken(token: string): PresentedToken | undefined {
  try {
    const header = decodeProtectedHeader(token);
    const claims = decodeJwt(token);
    if (typeof claims.jti !== 'string' || claims.jti === '') return undefined;
    return { jti: claims.jti, kid: typeof header.kid === 'string' ? header.kid : undefined, claims };
  } catch {
    return undefined;
  }
}
