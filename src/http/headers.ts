/** RFC 6749 §5.1: token (and error) answers must not be cached. */
export const noStore = Object.freeze({ 'cache-control': 'no-store', pragma: 'no-cache' });

/** Metadata and JWKS are public and change rarely; a short cache spares the server. */
export function publicCache(maxAgeSeconds: number): Record<string, string> {
  return { 'cache-control': `public, max-age=${maxAgeSeconds}` };
}

/**
 * Every value of the header `name` (lower case) as the request carried it, unjoined, or
 * undefined when there is none: Node joins repeated unknown headers with ", ", which would
 * hide that a header came twice.
 */
export function headerValues(raw: { rawHeaders: readonly string[] }, name: string): string[] | undefined {
  const values: string[] = [];
  for (let i = 0; i + 1 < raw.rawHeaders.length; i += 2) {
    if (raw.rawHeaders[i]!.length === name.length && raw.rawHeaders[i]!.toLowerCase() === name) values.push(raw.rawHeaders[i + 1]!);
  }
  return values.length === 0 ? undefined : values;
}
