import { hash, timingSafeEqual } from 'node:crypto';

/**
 * SHA-256 of a compact JWT, base64url: what the store keeps instead of the token. It runs once
 * per token issued and once per introspection. The one-shot `crypto.hash` (Node 20.12 and later,
 * the oldest Node package.json allows) took about 1.1 µs for a token here, a Hash object 2.1 µs.
 */
export function tokenDigest(token: string): string {
  return hash('sha256', token, 'base64url');
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
  // One pass, no validation beyond the shape: a compact JWS of three base64url parts whose
  // first two are JSON objects. Everything else is decided by the digest comparison.
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  if (first <= 0 || second <= first + 1 || token.indexOf('.', second + 1) !== -1 || token.length > MAX_TOKEN_LENGTH) return undefined;
  const header = parseJsonPart(token.slice(0, first));
  const claims = parseJsonPart(token.slice(first + 1, second));
  if (header === undefined || claims === undefined) return undefined;
  if (typeof claims.jti !== 'string' || claims.jti === '') return undefined;
  return { jti: claims.jti, kid: typeof header.kid === 'string' ? header.kid : undefined, claims };
}

/** Longer than any token tollgate issues by far. */
const MAX_TOKEN_LENGTH = 8192;

function parseJsonPart(part: string): Record<string, unknown> | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(part)) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
