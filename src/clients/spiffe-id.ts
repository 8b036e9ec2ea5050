// SPIFFE IDs (SPIFFE ID specification §2): spiffe://<trust domain>/<path>, as a workload's
// JWT-SVID carries it in `sub`.

/** §2.1: lowercase letters, digits, dots, dashes and underscores. */
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
/** §2.2: segments of letters, digits, dots, dashes and underscores; none empty, `.` or `..`. */
const SEGMENT = /^[A-Za-z0-9._-]+$/;
/** §2.3: a SPIFFE ID is at most 2048 bytes; a trust domain at most 255 characters. */
const MAX_ID_LENGTH = 2048;
const MAX_TRUST_DOMAIN_LENGTH = 255;

export function isTrustDomain(s: string): boolean {
  return s.length <= MAX_TRUST_DOMAIN_LENGTH && TRUST_DOMAIN.test(s);
}

/**
 * The trust domain of a workload's SPIFFE ID, or undefined when `id` is not one: the scheme and
 * trust domain in lowercase, a non-empty path, no query, fragment, port or user info.
 */
export function spiffeTrustDomain(id: string): string | undefined {
  if (id.length > MAX_ID_LENGTH || !id.startsWith('spiffe://')) return undefined;
  const rest = id.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const domain = rest.slice(0, slash);
  if (!isTrustDomain(domain)) return undefined;
  const segments = rest.slice(slash + 1).split('/');
  if (!segments.every((s) => SEGMENT.test(s) && s !== '.' && s !== '..')) return undefined;
  return domain;
}
