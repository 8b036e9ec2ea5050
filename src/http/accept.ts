// RFC 9110 §12.5.1 content negotiation, as far as an endpoint with two answers needs it.

interface MediaRange {
  type: string;
  subtype: string;
  q: number;
}

/** Longest Accept header read; anything longer is treated as asking for nothing in particular. */
const MAX_ACCEPT_LENGTH = 4096;

function mediaRanges(accept: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  for (const part of accept.split(',')) {
    const [range = '', ...params] = part.split(';');
    const m = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\/([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*$/.exec(range);
    if (m === null) continue;
    let q = 1;
    for (const param of params) {
      const p = /^\s*q\s*=\s*(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)\s*$/i.exec(param);
      if (p !== null) q = Number(p[1]);
      else if (/^\s*q\s*=/i.test(param)) q = -1; // a malformed weight: the range is ignored
    }
    if (q >= 0) ranges.push({ type: m[1]!.toLowerCase(), subtype: m[2]!.toLowerCase(), q });
  }
  return ranges;
}

/** The weight Accept gives `mediaType`: that of the most specific range matching it, 0 if none. */
function weightOf(ranges: readonly MediaRange[], mediaType: string): { q: number; exact: boolean } {
  const [type, subtype] = mediaType.split('/') as [string, string];
  let best: { q: number; specificity: number } = { q: 0, specificity: -1 };
  for (const r of ranges) {
    const specificity = r.type === type && r.subtype === subtype ? 2 : r.type === type && r.subtype === '*' ? 1 : r.type === '*' && r.subtype === '*' ? 0 : -1;
    if (specificity > best.specificity) best = { q: r.q, specificity };
  }
  return { q: best.specificity < 0 ? 0 : best.q, exact: best.specificity === 2 };
}

/**
 * Whether the request's Accept asks for `preferred` over `usual`: only when it names
 * `preferred` itself (a wildcard is no request for a special format) with a weight above 0
 * and at least that of `usual`. No Accept, or one naming neither, keeps the usual answer.
 */
export function prefers(accept: string | undefined, preferred: string, usual: string): boolean {
  if (accept === undefined || accept.length > MAX_ACCEPT_LENGTH) return false;
  const ranges = mediaRanges(accept);
  const wanted = weightOf(ranges, preferred);
  return wanted.exact && wanted.q > 0 && wanted.q >= weightOf(ranges, usual).q;
}
