import { describe, expect, it } from 'vitest';
import type { FailureCounters } from '../../../src/store/token-store.js';

export interface FailureCountersOptions {
  /**
   * The store's server ends each counter's window by its own clock (Redis), not by the `now`
   * passed in, so a test cannot move time past a window's end.
   */
  expiresItself?: boolean;
}

/**
 * The behaviour every FailureCounters adapter must show. `open` returns a fresh, empty store;
 * `reopen`, where the adapter persists, a second handle on the same data.
 */
export function failureCountersContract<S extends FailureCounters>(
  name: string,
  open: () => Promise<S>,
  reopen?: (store: S) => Promise<S>,
  options: FailureCountersOptions = {},
): void {
  describe(`${name} FailureCounters contract`, () => {
    it('reserves hits up to each limit in a fixed window, all counters or none, and forgets them after it', async () => {
      const store = await open();
      const now = Date.now();
      // Counters reserved together share their {…} part, as the interface asks.
      const pair = [
        { key: 'client:{10.0.0.1}', limit: 3 },
        { key: 'addr:{10.0.0.1}', limit: 4 },
      ];
      const first = await store.reserveHits(pair, 60_000, now);
      if (!first.granted) throw new Error('the first hit must be granted');
      expect(first.counters.map((c) => c.count)).toEqual([1, 1]);
      expect(first.counters[0]!.resetAt).toBeGreaterThanOrEqual(now + 59_000);
      expect(first.counters[0]!.resetAt).toBeLessThanOrEqual(now + 61_000);
      await store.reserveHits(pair, 60_000, now + 10);
      const third = await store.reserveHits(pair, 60_000, now + 20);
      expect(third.granted && third.counters.map((c) => c.count)).toEqual([3, 3]);
      // The client counter is spent: refused, and the address counter is not touched.
      const refused = await store.reserveHits(pair, 60_000, now + 30);
      expect(refused).toMatchObject({ granted: false, full: 0, counter: { count: 3 } });
      if (!refused.granted) expect(Math.abs(refused.counter.resetAt - first.counters[0]!.resetAt)).toBeLessThan(1000);
      // Another client from the same address takes the address's last hit, then it is spent too.
      const other = [{ key: 'client-2:{10.0.0.1}', limit: 3 }, pair[1]!];
      expect((await store.reserveHits(other, 60_000, now + 40)).granted).toBe(true);
      expect(await store.reserveHits(other, 60_000, now + 50)).toMatchObject({ granted: false, full: 1, counter: { count: 4 } });
      if (!options.expiresItself) {
        // The window ends at resetAt (clocks injected; Redis keeps real time itself).
        const next = await store.reserveHits(pair, 60_000, first.counters[0]!.resetAt);
        expect(next.granted && next.counters.map((c) => c.count)).toEqual([1, 1]);
      }
    });

    it('never grants more than the limit to concurrent callers, on every handle of the store', async () => {
      const store = await open();
      const second = reopen ? await reopen(store) : store;
      const now = Date.now();
      const limits = [
        { key: 'c:{x}', limit: 10 },
        { key: 'a:{x}', limit: 100 },
      ];
      const results = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? store : second).reserveHits(limits, 60_000, now)));
      expect(results.filter((r) => r.granted)).toHaveLength(10);
      const counts = results.flatMap((r) => (r.granted ? [r.counters[0]!.count] : []));
      expect(counts.sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    });

    it('peeks at counters without adding to them', async () => {
      const store = await open();
      const now = Date.now();
      expect(await store.peekCounts(['p', 'q'], now)).toEqual([
        { count: 0, resetAt: 0 },
        { count: 0, resetAt: 0 },
      ]);
      const a = await store.reserveHits([{ key: 'p', limit: 5 }], 60_000, now);
      await store.reserveHits([{ key: 'p', limit: 5 }], 60_000, now + 10);
      if (!a.granted) throw new Error('the first hit must be granted');
      const [p, q] = await store.peekCounts(['p', 'q'], now + 20);
      expect(p!.count).toBe(2);
      expect(Math.abs(p!.resetAt - a.counters[0]!.resetAt)).toBeLessThan(1000);
      expect(q).toEqual({ count: 0, resetAt: 0 });
      // Peeking twice changed nothing.
      expect((await store.peekCounts(['p'], now + 30))[0]!.count).toBe(2);
      if (!options.expiresItself) expect(await store.peekCounts(['p'], a.counters[0]!.resetAt)).toEqual([{ count: 0, resetAt: 0 }]);
    });

    it('gives a released hit back within its window, and never takes one from a later window', async () => {
      const store = await open();
      const now = Date.now();
      const limits = [{ key: 'r', limit: 2 }];
      const a = await store.reserveHits(limits, 60_000, now);
      const b = await store.reserveHits(limits, 60_000, now);
      if (!a.granted || !b.granted) throw new Error('both hits must be granted');
      expect((await store.reserveHits(limits, 60_000, now)).granted).toBe(false);
      await store.releaseHits([{ key: 'r', resetAt: a.counters[0]!.resetAt }], 60_000, now + 5);
      const c = await store.reserveHits(limits, 60_000, now + 10);
      expect(c.granted && c.counters[0]!.count).toBe(2);
      // A hit reserved in the window before this one is not taken from this one.
      await store.releaseHits([{ key: 'r', resetAt: a.counters[0]!.resetAt - 60_000 }], 60_000, now + 15);
      expect((await store.reserveHits(limits, 60_000, now + 20)).granted).toBe(false);
      // Nor from a counter that is gone; nothing goes below zero.
      await store.releaseHits([{ key: 'never-hit', resetAt: now + 60_000 }], 60_000, now + 25);
      expect((await store.reserveHits([{ key: 'never-hit', limit: 1 }], 60_000, now + 30)).granted).toBe(true);
      if (!options.expiresItself) {
        const later = await store.reserveHits(limits, 60_000, a.counters[0]!.resetAt);
        if (!later.granted) throw new Error('a new window must grant');
        await store.releaseHits([{ key: 'r', resetAt: a.counters[0]!.resetAt }], 60_000, a.counters[0]!.resetAt + 5);
        const after = await store.reserveHits(limits, 60_000, a.counters[0]!.resetAt + 10);
        expect(after.granted && after.counters[0]!.count).toBe(2);
      }
    });
  });
}
