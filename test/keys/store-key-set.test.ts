import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { compactVerify, createLocalJWKSet, SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { readKek, readKeks, type Kek } from '../../src/keys/key-encryption.js';
import { StoreKeySet, type StoreKeySetEvent, type StoreKeySetOptions } from '../../src/keys/store-key-set.js';
import { resealAll } from '../../src/keys/store-rekey.js';
import { ConfigError } from '../../src/shared/config-error.js';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.js';
import { tempDir, TestClock } from '../helpers.js';

const dir = tempDir();
const opened: SqliteTokenStore[] = [];
afterAll(async () => {
  for (const s of opened) await s.close();
});
let n = 0;

/** A key-encryption key file as `openssl rand -base64 32` writes it, read back. */
function kekFile(text = `${randomBytes(32).toString('base64')}\n`): Kek {
  const file = join(dir, `kek-${n++}`);
  writeFileSync(file, text, { mode: 0o600 });
  return readKek(file);
}

function sqliteAt(path: string): SqliteTokenStore {
  const store = new SqliteTokenStore(path);
  opened.push(store);
  return store;
}

const newStore = (): SqliteTokenStore => sqliteAt(join(dir, `keys-${n++}.db`));

function options(keks: [Kek, ...Kek[]], extra: Partial<StoreKeySetOptions> = {}): StoreKeySetOptions {
  return { keks, generateIfEmpty: true, algorithm: 'ES256', publishBeforeUseMs: 600_000, ...extra };
}

async function verifies(set: StoreKeySet, jwks: { keys: readonly object[] }): Promise<void> {
  const signing = set.signingKey();
  const jwt = await new SignJWT({}).setProtectedHeader({ alg: signing.alg, kid: signing.kid }).sign(signing.key);
  await compactVerify(jwt, createLocalJWKSet({ keys: [...jwks.keys] as never }));
}

describe('StoreKeySet', () => {
  it('makes one first key in an empty store, which signs at once and is served alike by a second instance', async () => {
    const store = newStore();
    const kek = kekFile();
    const a = await StoreKeySet.open(store, options([kek]));
    const b = await StoreKeySet.open(sqliteAt(store.path), options([kek]));
    expect(a.jwks().keys).toHaveLength(1);
    expect(b.jwks()).toEqual(a.jwks());
    expect(a.signingKey().kid).toBe(a.jwks().keys[0]!.kid);
    expect(a.list()).toEqual([expect.objectContaining({ alg: 'ES256', bits: 256, use: 'signing', kekId: kek.id })]);
    // Public members only.
    expect(Object.keys(a.jwks().keys[0]!).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    await verifies(a, b.jwks());
  });

  it('makes exactly one first key when several instances start at once on one SQLite file', async () => {
    const path = join(dir, `race-${n++}.db`);
    const kek = kekFile();
    const sets = await Promise.all(Array.from({ length: 6 }, () => StoreKeySet.open(sqliteAt(path), options([kek]))));
    const kids = new Set(sets.map((s) => s.signingKey().kid));
    expect(kids.size).toBe(1);
    expect((await sqliteAt(path).listSigningKeys()).keys).toHaveLength(1);
  });

  it('brings a rotation made by one instance to another, publishing the key at once and signing from its time', async () => {
    const store = newStore();
    const kek = kekFile();
    const clock = new TestClock(Date.now());
    const a = await StoreKeySet.open(store, options([kek], { clock }));
    const b = await StoreKeySet.open(sqliteAt(store.path), options([kek], { clock }));
    const first = a.signingKey().kid;
    // A key made later than the first, so that newest-first has one order.
    clock.advance(1);
    const { kid, signsFrom } = await a.rotate();
    expect(signsFrom).toBe(clock.now() + 600_000);
    const events: StoreKeySetEvent[] = [];
    await b.refresh((e) => events.push(e));
    expect(events).toEqual([{ type: 'reloaded', kids: [kid, first], skipped: [], untimed: [] }]);
    expect(b.jwks().keys.map((k) => k.kid)).toEqual([kid, first]);
    expect(b.signingKey().kid).toBe(first);
    expect(b.list().map((k) => k.use)).toEqual(['pending', 'signing']);
    clock.advance(600);
    expect(b.signingKey().kid).toBe(kid);
    expect(a.signingKey().kid).toBe(kid);
    // Nothing changed since: nothing reported.
    await b.refresh((e) => events.push(e));
    expect(events).toHaveLength(1);
    await verifies(b, a.jwks());
  });

  it('keeps the private key out of the store in clear: no PEM, no private JWK member, no DER', async () => {
    const store = newStore();
    const kek = kekFile();
    const set = await StoreKeySet.open(store, options([kek], { algorithm: 'RS256' }));
    const key = set.keys()[0]!;
    const der = key.privateKey.export({ type: 'pkcs8', format: 'der' });
    const jwk = key.privateKey.export({ format: 'jwk' });
    const db = new Database(store.path, { readonly: true });
    const rows = db.prepare('SELECT * FROM signing_keys').all() as Record<string, unknown>[];
    db.close();
    expect(rows).toHaveLength(1);
    const raw = JSON.stringify(rows);
    expect(raw).not.toMatch(/PRIVATE KEY/);
    for (const form of [der.toString('base64'), der.toString('base64url'), der.toString('hex')]) expect(raw).not.toContain(form.slice(40, 120));
    expect(raw).not.toContain(jwk.d);
    expect(raw).not.toContain(jwk.p);
    expect(JSON.parse(rows[0]!.public_jwk as string)).not.toHaveProperty('d');
    expect(rows[0]!.kek_id).toBe(kek.id);
    expect(raw).not.toContain(kek.key.toString('base64'));
  });

  it('seals each key with a nonce of its own: the same key sealed twice differs', async () => {
    const kek = kekFile();
    const { sealPrivateKey } = await import('../../src/keys/key-encryption.js');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const one = await sealPrivateKey(kek, privateKey, { createdAt: 1, signsFrom: 1 });
    const two = await sealPrivateKey(kek, privateKey, { createdAt: 1, signsFrom: 1 });
    expect(one.sealed).not.toBe(two.sealed);
    expect(Buffer.from(one.sealed, 'base64url').subarray(0, 12)).not.toEqual(Buffer.from(two.sealed, 'base64url').subarray(0, 12));
  });

  it('refuses a key-encryption key that does not open the stored keys, naming the file and never the key', async () => {
    const store = newStore();
    const right = kekFile();
    await StoreKeySet.open(store, options([right]));
    const wrong = kekFile();
    const err = await StoreKeySet.open(store, options([wrong])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message.split('\n')).toHaveLength(1);
    expect(message).toMatch(new RegExp(`^${wrong.file}: does not open the signing keys in the store: kid \\S+ is sealed under the key-encryption key with id ${right.id}`));
    for (const k of [right, wrong]) {
      expect(message).not.toContain(k.key.toString('base64'));
      expect(message).not.toContain(k.key.toString('base64url'));
    }
  });

  it('refuses a record whose seal was changed in the store, and a seal moved to another kid', async () => {
    const store = newStore();
    const kek = kekFile();
    const set = await StoreKeySet.open(store, options([kek]));
    const kid = set.signingKey().kid;
    await set.rotate();
    const db = new Database(store.path);
    const [first, second] = db.prepare('SELECT kid, sealed FROM signing_keys ORDER BY created_at').all() as { kid: string; sealed: string }[];
    // The second key's seal under the first key's kid: the associated data (kid, alg) no longer matches.
    db.prepare('UPDATE signing_keys SET sealed = ? WHERE kid = ?').run(second!.sealed, first!.kid);
    db.close();
    expect(first!.kid).toBe(kid);
    await expect(StoreKeySet.open(store, options([kek]))).rejects.toThrow(new RegExp(`^${kek.file}: does not open the stored key kid ${kid}, though its id matches`));
  });

  it('refuses a change that does not open while running, keeping the keys in use, and says so once', async () => {
    const store = newStore();
    const kek = kekFile();
    const set = await StoreKeySet.open(store, options([kek]));
    const before = set.jwks();
    // Another machine rotates with a different key-encryption key.
    const other = kekFile();
    const { sealPrivateKey } = await import('../../src/keys/key-encryption.js');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await store.addSigningKey(await sealPrivateKey(other, privateKey, { createdAt: Date.now(), signsFrom: Date.now() }));
    const events: StoreKeySetEvent[] = [];
    await set.refresh((e) => events.push(e));
    await set.refresh((e) => events.push(e));
    expect(events).toEqual([{ type: 'rejected', problem: expect.any(ConfigError) }]);
    expect((events[0] as { problem: Error }).problem.message).toContain(`id ${other.id}`);
    expect(set.jwks()).toBe(before);
  });

  it('keeps its keys through a store outage, reporting it once and its end once', async () => {
    const path = join(dir, `outage-${n++}.db`);
    const kek = kekFile();
    const store = sqliteAt(path);
    const set = await StoreKeySet.open(store, options([kek]));
    const kid = set.signingKey().kid;
    // A store whose file cannot be reached any more: the connection is closed under the set.
    await store.close();
    const events: StoreKeySetEvent[] = [];
    await set.refresh((e) => events.push(e));
    await set.refresh((e) => events.push(e));
    expect(events).toEqual([{ type: 'unreachable', reason: expect.any(String) }]);
    expect(set.signingKey().kid).toBe(kid);
    expect(set.jwks().keys).toHaveLength(1);
  });

  it('refuses an empty store when it may not make a key', async () => {
    await expect(StoreKeySet.open(newStore(), options([kekFile()], { generateIfEmpty: false, storeName: 'the-store' }))).rejects.toThrow(
      /^the-store: holds no signing keys \(keys\.source store\)/,
    );
  });

  it('imports a key made elsewhere with its times, once', async () => {
    const store = newStore();
    const kek = kekFile();
    const clock = new TestClock(Date.now());
    const set = await StoreKeySet.open(store, options([kek], { clock }));
    const { privateKey } = generateKeyPairSync('ed25519');
    const imported = await set.importKey(privateKey, { createdAt: clock.now() - 86_400_000, signsFrom: clock.now() - 86_400_000 });
    expect(imported.added).toBe(true);
    expect(await set.importKey(privateKey)).toEqual({ kid: imported.kid, added: false });
    expect(set.list().find((k) => k.kid === imported.kid)).toMatchObject({ alg: 'EdDSA', use: 'published' });
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    await expect(set.importKey(weak)).rejects.toThrow(/must be an RSA key of at least 2048 bits/);
    expect(await set.remove(imported.kid)).toBe(true);
    expect(await set.remove(imported.kid)).toBe(false);
    expect(set.jwks().keys.map((k) => k.kid)).not.toContain(imported.kid);
  });
});

describe('re-sealing under a new key-encryption key', () => {
  it('re-seals every key at once; a running instance keeps serving; the old key no longer opens them, the new one does', async () => {
    const store = newStore();
    const old = kekFile();
    const running = await StoreKeySet.open(store, options([old]));
    await running.rotate();
    const next = kekFile();
    expect(await resealAll(store, [old], next)).toBe(2);
    expect((await store.listSigningKeys()).keys.map((k) => k.kekId)).toEqual([next.id, next.id]);
    // Already done: nothing to do.
    expect(await resealAll(store, [next], next)).toBe(0);
    const events: StoreKeySetEvent[] = [];
    await running.refresh((e) => events.push(e));
    expect(events.map((e) => e.type)).toEqual(['reloaded']);
    await expect(StoreKeySet.open(store, options([old]))).rejects.toThrow(/does not open the signing keys in the store/);
    const restarted = await StoreKeySet.open(store, options([next]));
    expect(restarted.jwks()).toEqual(running.jwks());
    // During the switch, an instance given both opens keys sealed under either.
    const both = await StoreKeySet.open(store, options([old, next]));
    expect(both.jwks()).toEqual(running.jwks());
    await verifies(restarted, running.jwks());
  });

  it('is refused when the keys given do not open the stored keys, changing nothing', async () => {
    const store = newStore();
    const kek = kekFile();
    await StoreKeySet.open(store, options([kek]));
    const before = await store.listSigningKeys();
    await expect(resealAll(store, [kekFile()], kekFile())).rejects.toThrow(/does not open the signing keys in the store/);
    expect(await store.listSigningKeys()).toEqual(before);
  });
});

describe('readKek', () => {
  it('reads 32 bytes of base64 with whitespace around them, and gives a short id that is not the key', () => {
    const bytes = randomBytes(32);
    const kek = kekFile(`\n  ${bytes.toString('base64')}  \r\n`);
    expect(kek.key).toEqual(bytes);
    expect(kek.id).toMatch(/^[A-Za-z0-9_-]{12}$/);
    expect(bytes.toString('base64url')).not.toContain(kek.id);
  });

  const secretLooking = randomBytes(24).toString('base64');
  it.each([
    ['an empty file', '', /the key-encryption key file is empty/],
    ['whitespace only', ' \n\t\n', /the key-encryption key file is empty/],
    ['16 bytes', randomBytes(16).toString('base64'), /is 16 bytes long, not 32/],
    ['24 bytes', secretLooking, /is 24 bytes long, not 32/],
    ['64 bytes', randomBytes(64).toString('base64'), /is 64 bytes long, not 32/],
    ['hex', randomBytes(32).toString('hex'), /looks like hex/],
    ['two lines of base64', `${randomBytes(16).toString('base64')}\n${randomBytes(16).toString('base64')}`, /is not base64/],
    ['a PEM key', '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n', /is not base64/],
    ['binary bytes', '\u0000\u0001\u00ff', /is not base64/],
  ])('refuses %s in one line naming the file, without its content', (_what, text, message) => {
    const file = join(dir, `bad-kek-${n++}`);
    writeFileSync(file, text);
    const err = (() => {
      try {
        readKek(file);
      } catch (e) {
        return e as Error;
      }
      throw new Error('accepted');
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(new RegExp(`^${file}: `));
    expect(err.message).toMatch(message);
    expect(err.message.split('\n')).toHaveLength(1);
    if (text.trim() !== '') expect(err.message).not.toContain(text.trim().slice(0, 12));
  });

  it('refuses a missing file and a folder', () => {
    expect(() => readKek(join(dir, 'no-such-kek'))).toThrow(new RegExp(`^${join(dir, 'no-such-kek')}: cannot read the key-encryption key: file not found$`));
    const folder = join(dir, `kek-folder-${n++}`);
    mkdirSync(folder);
    expect(() => readKek(folder)).toThrow(/cannot read the key-encryption key: is a folder, not a file$/);
  });

  it('reads a previous key only when it differs from the current one', () => {
    const a = kekFile();
    const b = kekFile();
    expect(readKeks(a.file, b.file).map((k) => k.id)).toEqual([a.id, b.id]);
    expect(readKeks(a.file, a.file).map((k) => k.id)).toEqual([a.id]);
  });
});
