import { z } from 'zod';
import { parseDuration } from './duration.js';
import { MAX_TTL, MIN_TTL } from './limits.js';
import { isAudience } from './syntax.js';

// Schemas for values that tollgate.yaml and the client registry both accept, so the two files
// read a duration or an audience the same way without importing each other.

/**
 * A duration written `30s`, `15m`, `24h`, `7d` or as a number of seconds, between min and max
 * seconds; parsed to whole seconds. `messages` words the out-of-range cases where a field has
 * something plainer to say than the range.
 */
export function durationSchema(minSeconds: number, maxSeconds: number, messages: { tooSmall?: string; tooBig?: string } = {}) {
  const range = `must be a duration from ${minSeconds}s to ${maxSeconds}s, such as 30s, 15m, 24h or 7d`;
  return z
    .union([z.number(), z.string()], { error: 'must be a duration such as 30s, 15m, 24h or 7d' })
    .transform((v, ctx) => {
      const seconds = typeof v === 'number' ? (Number.isInteger(v) ? v : undefined) : parseDuration(v);
      const message =
        seconds === undefined ? range : seconds < minSeconds ? (messages.tooSmall ?? range) : seconds > maxSeconds ? (messages.tooBig ?? range) : undefined;
      if (message !== undefined) {
        ctx.addIssue({ code: 'custom', message });
        return z.NEVER;
      }
      return seconds!;
    })
    .meta({ docType: `duration: seconds, or 30s, 15m, 24h, 7d; ${spoken(minSeconds)} to ${spoken(maxSeconds)}` });
}

/** 86400 as `24h`, 604800 as `7d`: how the reference pages write a duration's bounds. */
function spoken(seconds: number): string {
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60]] as const) {
    // A day reads better as 24h; a week as 7d.
    if (seconds > 86_400 ? seconds % size === 0 : seconds >= size && size < 86_400 && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

/** An access-token lifetime: `15m`, `1h` or whole seconds, like every other duration. */
export const ttlSchema = durationSchema(MIN_TTL, MAX_TTL, {
  tooSmall: `must be at least ${MIN_TTL} seconds`,
  tooBig: `must be at most ${MAX_TTL} seconds (24h)`,
});

export const audienceSchema = z
  .string()
  .refine(isAudience, {
    error: 'must be a non-empty string of visible ASCII characters (an absolute URI is usual)',
  })
  .meta({ docType: 'audience: visible ASCII, usually an absolute URI' });
