/** Time source, injected so that tests set the time instead of sleeping. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** Whole seconds since the Unix epoch for a time in ms, as JWT NumericDate claims want them (RFC 7519 §2). */
export function epochSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}
