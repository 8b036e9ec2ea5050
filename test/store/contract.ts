import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { TokenRecord, TokenStore } from '../../src/store/token-store.js';

/** A record issued at `iatSeconds` for `ttl` seconds. */
export function makeRecord(overrides: Partial<TokenRecord> & { iat: number }): TokenRecord {
  return {
    jti: randomBytes(18).toString('base64url'),
    clientId: 'svc-a',
    scope: 'read write',
    aud: ['https://api.test'],
    exp: overrides.iat + 900,
    digest: randomBytes(32).toString('base64url'),
    ...overrides,
  };
}

// The present, to the second: a store whose server expires records by its own clock (Redis)
// would drop records dated in the past as soon as they were written.
const T0 = Math.floor(Date.now() / 1000);

export interface ContractOptions {
  /**
   * The store's server deletes each record at its exp by itself (Redis), so purgeExpired has
   * nothing to do and records of expired tokens are gone at once.
   */
  expiresItself?: boolean;
  /** revokeClient cannot count what it revoked without reading every token (Redis): it resolves undefined. */
  uncountedClientRevocation?: boolean;
}

/**
 * The behaviour every TokenStore adapter must show. `open` returns a fresh, empty store;
 * `reopen`, where the adapter persists, a second handle on the same data.
 */
export function tokenStoreContract(
  name: string,
  open: () => Promise<TokenStore>,
  reopen?: (store: TokenStore) => Promise<TokenStore>,
  options: ContractOptions = {},
): void {
  describe(`${name} TokenStore contract`, () => {
    it('finds a recorded token by jti, with every field as recorded', async () => {
      const store = await open();
      const rec = makeRecord({ iat: T0, aud: ['https://a.test', 'https://b.test'] });
      await store.record(rec);
      expect(await store.find(rec.jti)).toEqual(rec);
      const bound = makeRecord({ iat: T0, cnf: 'x5t-thumbprint-of-a-client-certificate' });
      await store.record(bound);
      expect(await store.find(bound.jti)).toEqual(bound);
      expect(await store.find('unknown-jti')).toBeUndefined();
    });

    it('refuses to record the same jti twice, keeping the first', async () => {
      const store = await open();
      const rec = makeRecord({ iat: T0 });
      await store.record(rec);
      await expect(store.record({ ...rec, clientId: 'intruder' })).rejects.toThrow();
      expect((await store.find(rec.jti))?.clientId).toBe('svc-a');
    });

    it('rejects only the duplicate when records arrive together', async () => {
      const store = await open();
      const a = makeRecord({ iat: T0 });
      const b = makeRecord({ iat: T0 });
      const results = await Promise.allSettled([store.record(a), store.record({ ...a, clientId: 'intruder' }), store.record(b)]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((await store.find(a.jti))?.clientId).toBe('svc-a');
      expect(await store.find(b.jti)).toEqual(b);
    });

    it('revokes one token, keeps the first revocation time, and leaves others alone', async () => {
      const store = await open();
      const a = makeRecord({ iat: T0 });
      const b = makeRecord({ iat: T0 });
      await store.record(a);
      await store.record(b);
      expect(await store.revoke(a.jti, T0 * 1000 + 5000)).toBe(true);
      expect(await store.revoke(a.jti, T0 * 1000 + 9000)).toBe(true);
      expect((await store.find(a.jti))?.revokedAt).toBe(T0 * 1000 + 5000);
      expect((await store.find(b.jti))?.revokedAt).toBeUndefined();
      expect(await store.revoke('unknown', T0 * 1000)).toBe(false);
    });

    it('revokes every token of a client issued up to the revocation, even ones recorded afterwards', async () => {
      const store = await open();
      const old = makeRecord({ iat: T0 });
      const other = makeRecord({ iat: T0, clientId: 'svc-b' });
      await store.record(old);
      await store.record(other);
      await store.revokeClient('svc-a', (T0 + 10) * 1000);
      // A slower instance records a token it issued before the revocation.
      const late = makeRecord({ iat: T0 + 5 });
      await store.record(late);
      const fresh = makeRecord({ iat: T0 + 11 });
      await store.record(fresh);

      expect((await store.find(old.jti))?.revokedAt).toBe((T0 + 10) * 1000);
      expect((await store.find(late.jti))?.revokedAt).toBe((T0 + 10) * 1000);
      expect((await store.find(fresh.jti))?.revokedAt).toBeUndefined();
      expect((await store.find(other.jti))?.revokedAt).toBeUndefined();
      // An earlier revokeClient never moves the line back.
      await store.revokeClient('svc-a', T0 * 1000);
      expect((await store.find(late.jti))?.revokedAt).toBe((T0 + 10) * 1000);
    });

    it('says how many live tokens revokeClient revoked (an empty store: 0)', async () => {
      const store = await open();
      const count = (clientId: string, at: number) => store.revokeClient(clientId, at);
      if (options.uncountedClientRevocation) {
        expect(await count('svc-a', T0 * 1000)).toBeUndefined();
        return;
      }
      expect(await count('nobody', T0 * 1000)).toBe(0);
      const revokedAlone = makeRecord({ iat: T0 });
      for (const r of [makeRecord({ iat: T0 }), makeRecord({ iat: T0 + 1 }), revokedAlone, makeRecord({ iat: T0, clientId: 'svc-b' })]) await store.record(r);
      // Expired by the time of the revocation, and issued after it: neither is counted.
      await store.record(makeRecord({ iat: T0 - 1000, exp: T0 - 100 }));
      await store.record(makeRecord({ iat: T0 + 20 }));
      await store.revoke(revokedAlone.jti, T0 * 1000);
      expect(await count('svc-a', (T0 + 10) * 1000)).toBe(2);
      // Revoked already: a second revocation revokes nothing more, until a newer token.
      expect(await count('svc-a', (T0 + 15) * 1000)).toBe(0);
      expect(await count('svc-a', (T0 + 30) * 1000)).toBe(1);
      expect(await count('svc-b', (T0 + 30) * 1000)).toBe(1);
    });

    if (options.expiresItself) it('forgets records of expired tokens by itself, with nothing left to purge', async () => {
      const store = await open();
      const now = Math.floor(Date.now() / 1000);
      const expired = makeRecord({ iat: now - 120, exp: now - 60 });
      const live = makeRecord({ iat: now, exp: now + 3600 });
      await store.record(expired);
      await store.record(live);
      expect(await store.find(expired.jti)).toBeUndefined();
      expect(await store.purgeExpired(Date.now() + 7200_000)).toBe(0);
      expect(await store.find(live.jti)).toBeDefined();
    });

    if (!options.expiresItself) it('purges only expired records', async () => {
      const store = await open();
      const expired = makeRecord({ iat: T0, exp: T0 + 60 });
      const live = makeRecord({ iat: T0, exp: T0 + 3600 });
      await store.record(expired);
      await store.record(live);
      expect(await store.purgeExpired((T0 + 59) * 1000)).toBe(0);
      expect(await store.find(expired.jti)).toBeDefined();
      expect(await store.purgeExpired((T0 + 61) * 1000)).toBe(1);
      expect(await store.find(expired.jti)).toBeUndefined();
      expect(await store.find(live.jti)).toBeDefined();
    });

    if (!options.expiresItself) it('purges in batches without losing count', async () => {
      const store = await open();
      const n = 2500;
      for (let i = 0; i < n; i++) await store.record(makeRecord({ iat: T0, exp: T0 + 1 }));
      const keep = makeRecord({ iat: T0, exp: T0 + 7200 });
      await store.record(keep);
      expect(await store.purgeExpired((T0 + 2) * 1000)).toBe(n);
      expect(await store.find(keep.jti)).toBeDefined();
    });

    it('loses nothing when writers interleave', async () => {
      const store = await open();
      const second = reopen ? await reopen(store) : store;
      const records = Array.from({ length: 400 }, (_, i) => makeRecord({ iat: T0 + i }));
      await Promise.all(records.map((r, i) => (i % 2 === 0 ? store : second).record(r)));
      await Promise.all(records.filter((_, i) => i % 3 === 0).map((r, i) => (i % 2 === 0 ? second : store).revoke(r.jti, T0 * 1000)));
      for (const [i, r] of records.entries()) {
        const found = await store.find(r.jti);
        expect(found?.jti).toBe(r.jti);
        expect(found?.revokedAt).toBe(i % 3 === 0 ? T0 * 1000 : undefined);
      }
    });

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

    it('reserves hits up to each limit in a fixed window, all counters or none, and forgets them after it', async () => {
      const store = await open();
      const now = Date.now();
      const pair = [
        { key: 'client', limit: 3 },
        { key: 'addr', limit: 4 },
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
      const other = [{ key: 'client-2', limit: 3 }, pair[1]!];
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
        { key: 'c', limit: 10 },
        { key: 'a', limit: 100 },
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

    it('answers ping while open', async () => {
      const store = await open();
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
