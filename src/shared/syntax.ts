// Character-level rules from RFC 6749 Appendix A and RFC 8707, shared by request parsing,
// the registry schema and the CLI so that all three accept exactly the same values.

/** RFC 6749 A.4: scope-token = 1*NQCHAR, NQCHAR = %x21 / %x23-5B / %x5D-7E. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** RFC 6749 A.1: client-id = *VSCHAR, VSCHAR = %x20-7E. tollgate also wants it non-empty. */
const VSCHARS = /^[\x20-\x7E]+$/;

export const MAX_CLIENT_ID_LENGTH = 255;

export function isScopeToken(s: string): boolean {
  return SCOPE_TOKEN.test(s);
}

export function isClientId(s: string): boolean {
  return s.length <= MAX_CLIENT_ID_LENGTH && VSCHARS.test(s);
}

/**
 * Splits a `scope` parameter (RFC 6749 §3.3: scope-token *( SP scope-token )).
 * Returns undefined on bad syntax: empty tokens from doubled, leading or trailing spaces, or
 * characters outside NQCHAR. Duplicates are dropped; the order of first appearance is kept.
 */
export function parseScope(value: string): string[] | undefined {
  const tokens = value.split(' ');
  if (!tokens.every(isScopeToken)) return undefined;
  return [...new Set(tokens)];
}

/** RFC 8707 §2: a resource is an absolute URI and must not include a fragment. */
export function isResourceIndicator(s: string): boolean {
  if (s.length > 2048 || /[\s]/.test(s)) return false;
  try {
    const url = new URL(s);
    return url.hash === '' && !s.includes('#');
  } catch {
    return false;
  }
}

/** An audience value in the registry: a resource indicator or any other visible-ASCII name. */
export function isAudience(s: string): boolean {
  return s.length > 0 && s.length <= 2048 && /^[\x21-\x7E]+$/.test(s);
}
