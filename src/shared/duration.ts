const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/**
 * Parses a duration written as `30s`, `15m`, `24h` or `7d` (a bare number is seconds).
 * Returns whole seconds, or undefined when the text is not a duration.
 */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,9})([smhd]?)$/.exec(text.trim());
  if (m === null) return undefined;
  return Number(m[1]) * (UNITS[m[2] || 's'] ?? 1);
}
