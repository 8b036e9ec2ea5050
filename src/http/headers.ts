/** RFC 6749 §5.1: token (and error) answers must not be cached. */
export const noStore = Object.freeze({ 'cache-control': 'no-store', pragma: 'no-cache' });

/** Metadata and JWKS are public and change rarely; a short cache spares the server. */
export function publicCache(maxAgeSeconds: number): Record<string, string> {
  return { 'cache-control': `public, max-age=${maxAgeSeconds}` };
}
