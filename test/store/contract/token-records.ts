import { randomBytes } from 'node:crypto';
import { newJti } from '../../../src/oauth/token-issuer.js';
import { describe, expect, it } from 'vitest';
import type { TokenRecord, TokenRecords } from '../../../src/store/token-store.js';

/** A record issued at `iatSeconds` for `ttl` seconds, with a jti as tollgate issues it to its client. */
export function makeRecord(overrides: Partial<TokenRecord> & { iat: number }): TokenRecord {
  const clientId = overrides.clientId ?? 'svc-a';
  return {
    jti: newJti(overrides.iat * 1000, clientId),
    clientId,
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

export interface TokenRecordsOptions {
  /**
   * The store's server deletes each record at its exp by itself (Redis), so purgeExpired has
   * nothing to do and records of expired tokens are gone at once.
   */
  expiresItself?: boolean;
  /** revokeClient cannot count what it revoked without reading every token (Redis): it resolves undefined. */
  uncountedClientRevocation?: boolean;
}

/**
 * The behaviour every TokenRecords adapter must show. `open` returns a fresh, empty store;
 * `reopen`, where the adapter persists, a second handle on the same data.
 */
export function tokenRecordsContract<S extends TokenRecords>(
  name: string,
  open: () => Promise<S>,
  reopen?: (store: S) => Promise<S>,
  options: TokenRecordsOptions = {},
): void {
  describe(`${name} TokenRecords contract`, () => {
    it('finds a recorded token by jti, with every field as recorded', async () => {
      const store = await open();
      const rec = makeRecord({ iat: T0, aud: ['https://a.test', 'https://b.test'] });
      await store.record(rec);
      expect(await store.find(rec.jti)).toEqual(rec);
      const bound = makeRecord({ iat: T0, cnf: 'x5t-thumbprint-of-a-client-certificate' });
      await store.record(bound);
      expect(await store.find(bound.jti)).toEqual(bound);
      const dpop = makeRecord({ iat: T0, jkt: 'rfc7638-thumbprint-of-a-dpop-key' });
      await store.record(dpop);
      expect(await store.find(dpop.jti)).toEqual(dpop);
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
  });
}
