import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, compactVerify, createLocalJWKSet, exportJWK, importSPKI, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { DiskKeySet, type KeySetEvent } from '../../src/keys/disk-key-set.js';
import { tempDir } from '../helpers.js';
import { ecPem, ODD_PEM_FORMS } from './odd-pem.js';

function rsaPem(bits = 2048): { pem: string; spki: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return { pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), spki: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

describe('DiskKeySet', () => {
  it('generates an RSA-2048 key into an empty directory: PKCS#8, mode 0600, named by its RFC 7638 thumbprint', async () => {
    const dir = join(tempDir(), 'keys');
    const keys = await DiskKeySet.load(dir, { generateIfEmpty: true });
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    const file = join(dir, files[0]!);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o077).toBe(0);
    expect(readFileSync(file, 'utf8')).toMatch(/^Tollgate-Created: \S+Z\nTollgate-Signs-From: \S+Z\n-----BEGIN PRIVATE KEY-----\n/);

    const [jwk] = keys.jwks().keys;
    expect(files[0]).toBe(`${jwk!.kid}.pem`);
    expect(jwk!.kid).toBe(await calculateJwkThumbprint({ kty: 'RSA', n: jwk!.n!, e: jwk!.e! }, 'sha256'));
    expect(keys.signingKey().kid).toBe(jwk!.kid);
    expect(keys.list()[0]!.bits).toBe(2048);

    // Loading again uses the same key instead of making another.
    const again = await DiskKeySet.load(dir, { generateIfEmpty: true });
    expect(again.signingKey().kid).toBe(keys.signingKey().kid);
    expect(readdirSync(dir)).toHaveLength(1);
  });

  it('signs with the newest key and publishes all of them', async () => {
    const dir = tempDir();
    const old = rsaPem();
    const young = rsaPem(3072);
    writeFileSync(join(dir, 'old.pem'), old.pem, { mode: 0o600 });
    writeFileSync(join(dir, 'young.pem'), young.pem, { mode: 0o600 });
    writeFileSync(join(dir, 'README'), 'not a key');
    utimesSync(join(dir, 'old.pem'), new Date('2026-01-01'), new Date('2026-01-01'));
    utimesSync(join(dir, 'young.pem'), new Date('2026-02-01'), new Date('2026-02-01'));

    const keys = await DiskKeySet.load(dir, { generateIfEmpty: true });
    expect(keys.jwks().keys).toHaveLength(2);
    const youngKid = await calculateJwkThumbprint(await exportJWK(await importSPKI(young.spki, 'RS256')), 'sha256');
    expect(keys.signingKey().kid).toBe(youngKid);
    expect(keys.list().map((k) => k.bits)).toEqual([3072, 2048]);

    // A token signed by the key set verifies against its own JWKS, by kid.
    const signing = keys.signingKey();
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: signing.kid }).sign(signing.key);
    const jwks = createLocalJWKSet(keys.jwks() as never);
    const { key } = await compactVerify(jwt, jwks);
    expect(key).toBeDefined();
  });

  it.each([
    ['not PEM at all', 'hello'],
    ['a public key', rsaPem().spki],
    ['a PKCS#1 RSA key', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()],
    ['an RSA-1024 key', rsaPem(1024).pem],
    ['an EC key on a curve other than P-256', generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()],
    ['an Ed448 key', generateKeyPairSync('ed448').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()],
  ])('refuses %s with the file named', async (_what, pem) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.pem'), pem);
    await expect(DiskKeySet.load(dir, { generateIfEmpty: true })).rejects.toThrow(new RegExp(`^${join(dir, 'bad.pem')}: `));
  });

  it('refuses the same key in two files', async () => {
    const dir = tempDir();
    const { pem } = rsaPem();
    writeFileSync(join(dir, 'a.pem'), pem);
    writeFileSync(join(dir, 'b.pem'), pem);
    await expect(DiskKeySet.load(dir, { generateIfEmpty: true })).rejects.toThrow(/holds the same key as another file/);
  });

  it('says so when the directory is empty and generation is off or impossible', async () => {
    const empty = tempDir();
    await expect(DiskKeySet.load(empty, { generateIfEmpty: false })).rejects.toThrow(/holds no keys/);
    // A key directory whose parent is a file cannot be read or made, for root too.
    const parent = join(tempDir(), 'not-a-dir');
    writeFileSync(parent, '');
    await expect(DiskKeySet.load(join(parent, 'keys'), { generateIfEmpty: true })).rejects.toThrow(
      /not-a-dir\/keys: cannot read the key directory: ENOTDIR$/,
    );
  });
});

describe('DiskKeySet rotation', () => {
  it('publishes a new key at once but signs with it only after publishBeforeUseMs', async () => {
    const dir = tempDir();
    const old = rsaPem();
    const fresh = rsaPem();
    writeFileSync(join(dir, 'old.pem'), old.pem);
    writeFileSync(join(dir, 'fresh.pem'), fresh.pem);
    const t0 = Date.parse('2026-03-01T12:00:00Z');
    utimesSync(join(dir, 'old.pem'), new Date(t0 - 86_400_000), new Date(t0 - 86_400_000));
    utimesSync(join(dir, 'fresh.pem'), new Date(t0), new Date(t0));
    const clock = { ms: t0 + 60_000, now() { return this.ms; } };
    const keys = await DiskKeySet.load(dir, { generateIfEmpty: false, publishBeforeUseMs: 600_000, clock });
    const kidOf = async (spki: string) => calculateJwkThumbprint(await exportJWK(await importSPKI(spki, 'RS256')), 'sha256');
    const [oldKid, freshKid] = [await kidOf(old.spki), await kidOf(fresh.spki)];

    expect(keys.jwks().keys.map((k) => k.kid).sort()).toEqual([oldKid, freshKid].sort());
    expect(keys.signingKey().kid).toBe(oldKid);
    expect(keys.list().map((k) => [k.kid, k.use])).toEqual([[freshKid, 'pending'], [oldKid, 'signing']]);
    clock.ms = t0 + 600_000;
    expect(keys.signingKey().kid).toBe(freshKid);
    expect(keys.list().map((k) => k.use)).toEqual(['signing', 'published']);
  });

  it('signs with a lone new key at once, since nothing else could', async () => {
    const dir = join(tempDir(), 'keys');
    const keys = await DiskKeySet.load(dir, { generateIfEmpty: true, publishBeforeUseMs: 600_000 });
    expect(keys.signingKey().kid).toBe(keys.jwks().keys[0]!.kid);
  });

  it('reloads a changed directory, and keeps the keys in use when the change is broken', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.pem'), rsaPem().pem);
    const keys = await DiskKeySet.load(dir, { generateIfEmpty: false });
    const events: string[] = [];
    keys.watch((e) => events.push(e.type), 20);
    writeFileSync(join(dir, 'b.pem'), rsaPem().pem);
    for (let i = 0; i < 200 && !events.includes('reloaded'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(keys.jwks().keys).toHaveLength(2);
    writeFileSync(join(dir, 'c.pem'), 'broken');
    for (let i = 0; i < 200 && !events.includes('rejected'); i++) await new Promise((r) => setTimeout(r, 10));
    keys.close();
    expect(events).toContain('rejected');
    expect(keys.jwks().keys).toHaveLength(2);
  });
});

describe('DiskKeySet algorithms', () => {
  it.each([
    ['ES256', 'EC', { crv: 'P-256' }],
    ['EdDSA', 'OKP', { crv: 'Ed25519' }],
    ['RS256', 'RSA', { e: 'AQAB' }],
  ] as const)('generates and loads a %s key whose tokens verify against the JWKS', async (alg, kty, extra) => {
    const dir = join(tempDir(), 'keys');
    const keys = await DiskKeySet.load(dir, { generateIfEmpty: true, algorithm: alg });
    const [jwk] = keys.jwks().keys;
    expect(jwk).toMatchObject({ kty, alg, use: 'sig', kid: keys.signingKey().kid, ...extra });
    expect(jwk).not.toHaveProperty('d');
    expect(keys.signingKey().alg).toBe(alg);
    const signing = keys.signingKey();
    const jwt = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg, kid: signing.kid }).sign(signing.key);
    await expect(compactVerify(jwt, createLocalJWKSet(keys.jwks() as never))).resolves.toBeDefined();
  });
});

const kidOfPem = async (pem: string) => calculateJwkThumbprint(await exportJWK(createPublicKey(pem)), 'sha256');

/** Watches keys every 10 ms, collecting its events; until() waits for one that matches. */
function watchEvents(keys: DiskKeySet) {
  const events: KeySetEvent[] = [];
  keys.watch((e) => events.push(e), 10);
  return {
    events,
    async until(match: (e: KeySetEvent) => boolean): Promise<KeySetEvent> {
      for (let i = 0; i < 500; i++) {
        const found = events.find(match);
        if (found) return found;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`no such event in ${JSON.stringify(events)}`);
    },
  };
}

describe('DiskKeySet and key files jose alone could not read', () => {
  it.each(ODD_PEM_FORMS)('loads a key file with %s, and signs tokens that verify against the JWKS', async (_what, odd) => {
    const dir = tempDir();
    const pem = ecPem();
    writeFileSync(join(dir, 'odd.pem'), odd(pem), { mode: 0o600 });
    const keys = await DiskKeySet.load(dir, { generateIfEmpty: false });
    const signing = keys.signingKey();
    expect(signing.kid).toBe(await kidOfPem(pem));
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: signing.kid }).sign(signing.key);
    await expect(compactVerify(jwt, createLocalJWKSet(keys.jwks() as never))).resolves.toBeDefined();
  });

  it.each(ODD_PEM_FORMS)('takes a key file with %s dropped into a watched folder, instead of ending the process', async (_what, odd) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.pem'), ecPem());
    const keys = await DiskKeySet.load(dir, { generateIfEmpty: false });
    const watched = watchEvents(keys);
    const pem = ecPem();
    writeFileSync(join(dir, 'odd.pem'), odd(pem));
    const event = await watched.until((e) => e.type !== 'rotated');
    keys.close();
    expect(event).toMatchObject({ type: 'reloaded' });
    expect(keys.jwks().keys.map((k) => k.kid)).toContain(await kidOfPem(pem));
  });

  it('keeps watching when the listener itself throws: no error of a reload is left unhandled', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.pem'), ecPem());
    const keys = await DiskKeySet.load(dir, { generateIfEmpty: false });
    const seen: string[] = [];
    keys.watch((e) => {
      seen.push(e.type);
      throw new Error('a listener that fails');
    }, 10);
    writeFileSync(join(dir, 'b.pem'), ecPem());
    for (let i = 0; i < 500 && !seen.includes('reloaded'); i++) await new Promise((r) => setTimeout(r, 10));
    writeFileSync(join(dir, 'c.pem'), 'broken');
    for (let i = 0; i < 500 && !seen.includes('rejected'); i++) await new Promise((r) => setTimeout(r, 10));
    keys.close();
    expect(seen.filter((t) => t !== 'rotated')).toEqual(['reloaded', 'rejected']);
    expect(keys.jwks().keys).toHaveLength(2);
  });
});

describe('DiskKeySet and a folder it cannot read', () => {
  it('reports a key folder that can no longer be read, once, keeps its keys, and reloads once it can be read again', async () => {
    const dir = join(tempDir(), 'keys');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.pem'), ecPem());
    const keys = await DiskKeySet.load(dir, { generateIfEmpty: false });
    const kids = keys.jwks().keys.map((k) => k.kid);
    const watched = watchEvents(keys);

    // Replaced by a file: unreadable as a folder for root too (unlike a chmod).
    renameSync(dir, `${dir}.away`);
    writeFileSync(dir, '');
    const rejected = await watched.until((e) => e.type === 'rejected');
    expect(rejected.type === 'rejected' && rejected.problem.message).toBe(`${dir}: cannot read the key directory: ENOTDIR`);
    expect(keys.jwks().keys.map((k) => k.kid)).toEqual(kids);
    // Said once, not at every check.
    await new Promise((r) => setTimeout(r, 100));
    expect(watched.events.filter((e) => e.type === 'rejected')).toHaveLength(1);

    unlinkSync(dir);
    renameSync(`${dir}.away`, dir);
    writeFileSync(join(dir, 'b.pem'), ecPem());
    await watched.until((e) => e.type === 'reloaded');
    keys.close();
    expect(keys.jwks().keys).toHaveLength(2);
  });
});

describe('DiskKeySet and symbolic links', () => {
  it('reads keys through the symbolic links of a Kubernetes Secret volume, ignoring its ..data entries', async () => {
    const dir = tempDir();
    const pem = ecPem();
    mkdirSync(join(dir, '..2026_03_01_12_00_00.000000001'));
    writeFileSync(join(dir, '..2026_03_01_12_00_00.000000001', 'signing.pem'), pem);
    symlinkSync('..2026_03_01_12_00_00.000000001', join(dir, '..data'));
    symlinkSync('..data/signing.pem', join(dir, 'signing.pem'));
    const keys = await DiskKeySet.load(dir, { generateIfEmpty: false });
    expect(keys.jwks().keys.map((k) => k.kid)).toEqual([await kidOfPem(pem)]);
    expect(keys.skipped()).toEqual([]);
  });

  it('skips a symbolic link to a missing file at start, saying so, when other keys load', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.pem'), ecPem());
    symlinkSync('..data/gone.pem', join(dir, 'gone.pem'));
    const keys = await DiskKeySet.load(dir, { generateIfEmpty: true });
    expect(keys.jwks().keys).toHaveLength(1);
    expect(keys.skipped()).toEqual([`${join(dir, 'gone.pem')}: skipped: a symbolic link to a missing file (..data/gone.pem)`]);
  });

  it('refuses a folder whose only key is a symbolic link to a missing file, rather than generating another key', async () => {
    const dir = tempDir();
    symlinkSync('/nonexistent/signing.pem', join(dir, 'signing.pem'));
    await expect(DiskKeySet.load(dir, { generateIfEmpty: true })).rejects.toThrow(
      `${join(dir, 'signing.pem')}: is a symbolic link to a missing file (/nonexistent/signing.pem), and no other key in the folder loads`,
    );
    expect(readdirSync(dir)).toEqual(['signing.pem']);
  });

  it('takes a key removed from a Kubernetes Secret while its link dangles for a moment, as a removed key', async () => {
    const dir = tempDir();
    const [a, b] = [ecPem(), ecPem()];
    writeFileSync(join(dir, 'a.pem'), a);
    mkdirSync(join(dir, '..v1'));
    writeFileSync(join(dir, '..v1', 'b.pem'), b);
    symlinkSync('..v1', join(dir, '..data'));
    symlinkSync('..data/b.pem', join(dir, 'b.pem'));
    const keys = await DiskKeySet.load(dir, { generateIfEmpty: false });
    expect(keys.jwks().keys).toHaveLength(2);
    const watched = watchEvents(keys);
    rmSync(join(dir, '..v1'), { recursive: true });
    const event = await watched.until((e) => e.type !== 'rotated');
    keys.close();
    expect(event).toEqual({ type: 'reloaded', kids: [await kidOfPem(a)], skipped: [expect.stringMatching(/b\.pem: skipped: a symbolic link to a missing file/)], untimed: [] });
  });
});
