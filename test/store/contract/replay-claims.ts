import { describe, expect, it } from 'vitest';
import type { ReplayClaims } from '../../../src/store/token-store.js';

/** The behaviour every ReplayClaims adapter must show. `open` returns a fresh, empty store. */
export function replayClaimsContract(name: string, open: () => Promise<ReplayClaims>): void {
  describe(`${name} ReplayClaims contract`, () => {
    it('grants a claim once until it expires', async () => {
      const store = await open();
      const now = Date.now();
      expect(await store.claimOnce('svc:jti-1', now + 60_000, now)).toBe(true);
      expect(await store.claimOnce('svc:jti-1', now + 60_000, now)).toBe(false);
      expect(await store.claimOnce('svc:jti-2', now + 60_000, now)).toBe(true);
      // Concurrent claims of one key: exactly one wins.
      const racing = await Promise.all(Array.from({ length: 10 }, () => store.claimOnce('svc:jti-3', now + 60_000, now)));
      expect(racing.filter(Boolean)).toHaveLength(1);
      // A claim that has expired can be made again.
      expect(await store.claimOnce('svc:jti-4', now - 1, now)).toBe(true);
      expect(await store.claimOnce('svc:jti-4', now + 60_000, now)).toBe(true);
    });

    it('grants a claim made without an fsync once too, whichever way the next claim is made', async () => {
      const store = await open();
      const now = Date.now();
      expect(await store.claimOnce('dpop:k:jti', now + 60_000, now, { fsync: false })).toBe(true);
      expect(await store.claimOnce('dpop:k:jti', now + 60_000, now, { fsync: false })).toBe(false);
      expect(await store.claimOnce('dpop:k:jti', now + 60_000, now)).toBe(false);
    });
  });
}
