import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { SigningKeyRecord, SigningKeyRecords } from '../../../src/shared/signing-key-records.js';

let n = 0;
/** A record as the store sees it: opaque text, which no adapter may read into. */
export function makeKeyRecord(overrides: Partial<SigningKeyRecord> = {}): SigningKeyRecord {
  n++;
  const createdAt = 1_800_000_000_000 + n * 1000;
  return {
    kid: randomBytes(32).toString('base64url'),
    alg: 'ES256',
    createdAt,
    signsFrom: createdAt + 600_000,
    publicJwk: JSON.stringify({ kty: 'EC', crv: 'P-256', x: randomBytes(32).toString('base64url'), y: randomBytes(32).toString('base64url') }),
    sealed: randomBytes(80).toString('base64url'),
    kekId: 'kek-a',
    ...overrides,
  };
}

/**
 * The behaviour every SigningKeyRecords adapter must show. `open` returns a fresh, empty store;
 * `reopen` another instance on the same data, as a second tollgate process would be.
 */
export function signingKeyRecordsContract<S extends SigningKeyRecords>(name: string, open: () => Promise<S>, reopen: (store: S) => Promise<S>): void {
  describe(`${name} SigningKeyRecords contract`, () => {
    it('starts empty and keeps what is added, oldest first, seen by another instance', async () => {
      const store = await open();
      const empty = await store.listSigningKeys();
      expect(empty.keys).toEqual([]);
      expect(await store.signingKeyGeneration()).toBe(empty.generation);
      const newer = makeKeyRecord();
      const older = makeKeyRecord({ createdAt: newer.createdAt - 60_000 });
      expect(await store.addSigningKey(newer)).toBe(true);
      expect(await store.addSigningKey(older)).toBe(true);
      const other = await reopen(store);
      const listed = await other.listSigningKeys();
      expect(listed.keys).toEqual([older, newer]);
      expect(listed.generation).not.toBe(empty.generation);
      expect(await other.signingKeyGeneration()).toBe(listed.generation);
    });

    it('refuses a kid already there, and with onlyIfNone any key into a set that has one, changing nothing', async () => {
      const store = await open();
      const first = makeKeyRecord();
      expect(await store.addSigningKey(first, { onlyIfNone: true })).toBe(true);
      const generation = await store.signingKeyGeneration();
      expect(await store.addSigningKey({ ...first, sealed: 'other' })).toBe(false);
      expect(await store.addSigningKey(makeKeyRecord(), { onlyIfNone: true })).toBe(false);
      expect(await store.signingKeyGeneration()).toBe(generation);
      expect((await store.listSigningKeys()).keys).toEqual([first]);
    });

    it('makes exactly one first key when several instances add one at once into an empty set', async () => {
      const store = await open();
      const instances = [store, ...(await Promise.all(Array.from({ length: 5 }, () => reopen(store))))];
      const results = await Promise.all(instances.map((s) => s.addSigningKey(makeKeyRecord(), { onlyIfNone: true })));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect((await store.listSigningKeys()).keys).toHaveLength(1);
    });

    it('removes a key, moving the generation on, and says when there was none', async () => {
      const store = await open();
      const a = makeKeyRecord();
      const b = makeKeyRecord();
      await store.addSigningKey(a);
      await store.addSigningKey(b);
      const before = await store.signingKeyGeneration();
      expect(await store.removeSigningKey(a.kid)).toBe(true);
      const after = await store.signingKeyGeneration();
      expect(after).not.toBe(before);
      expect(await store.removeSigningKey(a.kid)).toBe(false);
      expect(await store.signingKeyGeneration()).toBe(after);
      expect((await store.listSigningKeys()).keys).toEqual([b]);
    });

    it('re-seals the records named, all at once, only at the generation they were read at', async () => {
      const store = await open();
      const a = makeKeyRecord();
      const b = makeKeyRecord();
      await store.addSigningKey(a);
      await store.addSigningKey(b);
      const { generation } = await store.listSigningKeys();
      // Read at a generation that has passed: refused, nothing changed.
      expect(await store.resealSigningKeys(generation - 1, [{ kid: a.kid, sealed: 'x', kekId: 'kek-b' }])).toBe(false);
      expect((await store.listSigningKeys()).keys).toEqual([a, b]);
      const reseals = [
        { kid: a.kid, sealed: 'sealed-a-under-b', kekId: 'kek-b' },
        { kid: b.kid, sealed: 'sealed-b-under-b', kekId: 'kek-b' },
      ];
      expect(await store.resealSigningKeys(generation, reseals)).toBe(true);
      const after = await store.listSigningKeys();
      expect(after.generation).not.toBe(generation);
      expect(after.keys).toEqual([
        { ...a, sealed: 'sealed-a-under-b', kekId: 'kek-b' },
        { ...b, sealed: 'sealed-b-under-b', kekId: 'kek-b' },
      ]);
      // Made from the generation before: stale now.
      expect(await store.resealSigningKeys(generation, [{ kid: a.kid, sealed: 'late', kekId: 'kek-c' }])).toBe(false);
    });

    it('lets only one of two re-seals from the same read win', async () => {
      const store = await open();
      const a = makeKeyRecord();
      await store.addSigningKey(a);
      const other = await reopen(store);
      const { generation } = await store.listSigningKeys();
      const results = await Promise.all([
        store.resealSigningKeys(generation, [{ kid: a.kid, sealed: 'one', kekId: 'kek-1' }]),
        other.resealSigningKeys(generation, [{ kid: a.kid, sealed: 'two', kekId: 'kek-2' }]),
      ]);
      expect(results.filter(Boolean)).toHaveLength(1);
      const [kept] = (await store.listSigningKeys()).keys;
      expect(kept!.sealed).toBe(results[0] ? 'one' : 'two');
    });
  });
}
