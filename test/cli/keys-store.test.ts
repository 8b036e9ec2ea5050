import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readKek } from '../../src/keys/key-encryption.js';
import { StoreKeySet } from '../../src/keys/store-key-set.js';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.js';
import { hashOf, writeFixture, type Fixture } from '../helpers.js';
import { expectUserError, lines, tollgateInProcess } from './run-cli.js';

let clients = '';
beforeAll(async () => {
  clients = `clients:\n  - client_id: svc\n    secrets: [{ hash: "${await hashOf('svc-secret-0123456789abcdefghijklmnopqrst')}" }]\n    audiences: [https://api.test]\n`;
});

const opened: SqliteTokenStore[] = [];
afterAll(async () => {
  for (const s of opened) await s.close();
});

function newKekFile(f: Fixture, name: string): string {
  const file = join(f.dir, name);
  writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  return file;
}

/** A deployment with keys in its SQLite store, and an "instance" already running on it. */
async function deployment(extra = ''): Promise<{ f: Fixture; db: string; running: StoreKeySet }> {
  const f = writeFixture({
    clients,
    config: `issuer: https://auth.test
clients_file: ./clients.yaml
keys: { source: store, encryption_key_file: ./kek, algorithm: ES256, publish_before_use: 10m }
store: { kind: sqlite, path: ./tollgate.db }
${extra}`,
  });
  newKekFile(f, 'kek');
  const db = join(f.dir, 'tollgate.db');
  const store = new SqliteTokenStore(db);
  opened.push(store);
  const running = await StoreKeySet.open(store, { keks: [readKek(join(f.dir, 'kek'))], generateIfEmpty: true, algorithm: 'ES256', publishBeforeUseMs: 600_000 });
  return { f, db, running };
}

const keys = (f: Fixture, ...args: string[]) => tollgateInProcess(['keys', ...args, '--config', f.configFile], { cwd: f.dir });

describe('keys list, rotate and prune with keys.source store', () => {
  it('lists the keys of the store with their times and key-encryption key', async () => {
    const { f, running } = await deployment();
    const run = await keys(f, 'list');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const [header, row, ...rest] = lines(run.stdout);
    expect(rest).toEqual([]);
    expect(header!.split(/\s+/)).toEqual(['KID', 'CREATED', 'SIGNS_FROM', 'KEY', 'USE', 'PRUNABLE_FROM', 'KEK']);
    expect(row!.split(/\s+/)).toEqual([running.signingKey().kid, expect.stringMatching(/^\d{4}-/), expect.stringMatching(/^\d{4}-/), 'EC-P256', 'signing', '-', readKek(join(f.dir, 'kek')).id]);
  });

  it('rotates from any machine: the new key reaches two running instances, pending until its time', async () => {
    const { f, db, running } = await deployment();
    const other = new SqliteTokenStore(db);
    opened.push(other);
    const second = await StoreKeySet.open(other, { keks: [readKek(join(f.dir, 'kek'))], generateIfEmpty: true, publishBeforeUseMs: 600_000 });
    const first = running.signingKey().kid;
    const run = await keys(f, 'rotate');
    expect(run.code).toBe(0);
    const kid = run.stdout.trim();
    expect(kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(run.stderr).toMatch(/^added \S+ to the store: running servers publish it in their JWKS within seconds, and sign new tokens with it from \d{4}-/);
    for (const instance of [running, second]) {
      await instance.refresh();
      expect(instance.jwks().keys.map((k) => k.kid)).toEqual([kid, first]);
      expect(instance.signingKey().kid).toBe(first);
    }
    const list = await keys(f, 'list');
    expect(lines(list.stdout).slice(1).map((l) => l.split(/\s+/)[4])).toEqual(['pending', 'signing']);
  });

  it('prunes nothing while every key may still have live tokens, and says why', async () => {
    const { f, running } = await deployment();
    await keys(f, 'rotate');
    const run = await keys(f, 'prune', '--dry-run');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`kid ${running.signingKey().kid} signs new tokens`);
    expect(run.stderr).toMatch(/is pending: it signs from/);
    expect(run.stderr).toMatch(/no key can be removed yet\n$/);
  });

  it('prunes a key whose successor has signed for longer than any token lives', async () => {
    const { f, db, running } = await deployment('tokens: { ttl: 60 }\n');
    const old = running.signingKey().kid;
    // A successor that has signed for a day: the old key cannot have signed a live token.
    const store = new SqliteTokenStore(db);
    opened.push(store);
    const day = 86_400_000;
    const { generateKeyPairSync } = await import('node:crypto');
    const { kid: successor } = await running.importKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, {
      createdAt: Date.now() - day,
      signsFrom: Date.now() - day,
    });
    // The first key made at start is newer by createdAt; give the store a key older than both.
    const { kid: oldest } = await running.importKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, {
      createdAt: Date.now() - 3 * day,
      signsFrom: Date.now() - 3 * day,
    });
    const dry = await keys(f, 'prune', '--dry-run');
    expect(dry.stdout).toBe(`${oldest}\n`);
    expect(dry.stderr).toMatch(/dry run: 1 key can be removed; nothing was removed\n$/);
    expect((await store.listSigningKeys()).keys).toHaveLength(3);
    const run = await keys(f, 'prune');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`${oldest}\n`);
    expect((await store.listSigningKeys()).keys.map((k) => k.kid).sort()).toEqual([old, successor].sort());
  });

  it('refuses a key-encryption key that does not open the stored keys, in one line naming the file', async () => {
    const { f } = await deployment();
    const kek = join(f.dir, 'kek');
    const before = (await keys(f, 'list')).stdout;
    writeFileSync(kek, `${randomBytes(32).toString('base64')}\n`);
    for (const sub of ['list', 'rotate', 'prune']) {
      expectUserError(await keys(f, sub), new RegExp(`^tollgate: ${kek}: does not open the signing keys in the store`));
    }
    writeFileSync(kek, 'not a key\n');
    expectUserError(await keys(f, 'list'), new RegExp(`^tollgate: ${kek}: the key-encryption key is not base64`));
    writeFileSync(kek, '');
    expectUserError(await keys(f, 'rotate'), /the key-encryption key file is empty/);
    expect(before).not.toBe('');
  });

  it('refuses a store no server has made, rather than start one of its own', async () => {
    const f = writeFixture({
      clients,
      config: 'issuer: https://auth.test\nkeys: { source: store, encryption_key_file: ./kek }\nstore: { kind: sqlite, path: ./none.db }\n',
    });
    newKekFile(f, 'kek');
    expectUserError(await keys(f, 'rotate'), /no token store here: the file does not exist/);
  });
});

describe('keys rekey', () => {
  it('re-seals every key under the new key-encryption key; then only a config naming it opens them', async () => {
    const { f, running } = await deployment();
    await keys(f, 'rotate');
    // Instances hold every key they have opened: the rotation reached this one before the re-seal.
    await running.refresh();
    const next = newKekFile(f, 'next.kek');
    const run = await tollgateInProcess(['keys', 'rekey', '--new-key-file', 'next.kek', '--config', f.configFile], { cwd: f.dir });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('2\n');
    expect(run.stderr).toContain(`re-sealed 2 keys under key-encryption key ${readKek(next).id} (${next})`);
    expect(run.stderr).toContain('set keys.encryption_key_file to');
    // The running instance keeps its keys.
    await running.refresh();
    expect(running.jwks().keys).toHaveLength(2);
    expectUserError(await keys(f, 'list'), /does not open the signing keys in the store/);
    // The switch: the new file, the old one kept as previous.
    const config = f.configFile;
    const text = (await import('node:fs')).readFileSync(config, 'utf8');
    writeFileSync(config, text.replace('encryption_key_file: ./kek', 'encryption_key_file: ./next.kek, previous_encryption_key_file: ./kek'));
    const list = await keys(f, 'list');
    expect(list.code).toBe(0);
    expect(lines(list.stdout).slice(1).map((l) => l.split(/\s+/).at(-1))).toEqual([readKek(next).id, readKek(next).id]);
    // Nothing is left under the previous key.
    const again = await keys(f, 'rekey');
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/already sealed under key-encryption key/);
  });

  it('re-seals keys left under keys.previous_encryption_key_file when run without --new-key-file', async () => {
    const { f } = await deployment();
    newKekFile(f, 'next.kek');
    const text = (await import('node:fs')).readFileSync(f.configFile, 'utf8');
    writeFileSync(f.configFile, text.replace('encryption_key_file: ./kek', 'encryption_key_file: ./next.kek, previous_encryption_key_file: ./kek'));
    const run = await keys(f, 'rekey');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('1\n');
  });

  it.each([
    ['no value for --new-key-file', ['--new-key-file'], /^tollgate: Option '--new-key-file <value>' argument missing/],
    ['an empty file name', ['--new-key-file', ''], /^tollgate: --new-key-file needs a file name/],
    ['a missing file', ['--new-key-file', 'nowhere.kek'], /nowhere\.kek: cannot read the key-encryption key: file not found/],
    ['an unknown option', ['--new-kek', 'x'], /^tollgate: Unknown option '--new-kek'/],
    ['an extra argument', ['now'], /^tollgate: unexpected argument "now"/],
  ])('refuses %s in one line', async (_what, args, message) => {
    const { f } = await deployment();
    expectUserError(await tollgateInProcess(['keys', 'rekey', '--config', f.configFile, ...args], { cwd: f.dir }), message);
  });

  it.each([
    ['short', randomBytes(16).toString('base64')],
    ['hex', randomBytes(32).toString('hex')],
    ['text', 'correct horse battery staple'],
  ])('refuses a %s new key file without printing it, changing nothing', async (_what, content) => {
    const { f, db } = await deployment();
    writeFileSync(join(f.dir, 'bad.kek'), content);
    const store = new SqliteTokenStore(db);
    opened.push(store);
    const before = await store.listSigningKeys();
    const run = await tollgateInProcess(['keys', 'rekey', '--new-key-file', 'bad.kek', '--config', f.configFile], { cwd: f.dir });
    expectUserError(run, /bad\.kek: the key-encryption key/);
    expect(run.stderr).not.toContain(content.slice(0, 10));
    expect(await store.listSigningKeys()).toEqual(before);
  });

  it('refuses keys.source dir', async () => {
    const f = writeFixture({ clients, config: 'issuer: https://auth.test\nkeys: { dir: ./keys }\nstore: { kind: memory }\n' });
    newKekFile(f, 'next.kek');
    expectUserError(await tollgateInProcess(['keys', 'rekey', '--new-key-file', 'next.kek', '--config', f.configFile], { cwd: f.dir }), /keys\.source: keys rekey applies only to keys kept in the store/);
  });
});

describe('keys copy-to-store', () => {
  it('copies the keys of keys.dir with their times, so the same key signs and the same keys are published', async () => {
    const { generateKeyFile, DiskKeySet } = await import('../../src/keys/disk-key-set.js');
    const f = writeFixture({
      clients,
      config: `issuer: https://auth.test
clients_file: ./clients.yaml
keys: { source: store, encryption_key_file: ./kek, dir: ./keys, publish_before_use: 10m }
store: { kind: sqlite, path: ./tollgate.db }
`,
    });
    newKekFile(f, 'kek');
    await generateKeyFile(f.keysDir, 'ES256');
    await generateKeyFile(f.keysDir, 'EdDSA');
    const disk = await DiskKeySet.load(f.keysDir, { generateIfEmpty: false, publishBeforeUseMs: 600_000 });
    // The store exists (the servers already keep their tokens there) and holds no key yet.
    await new SqliteTokenStore(join(f.dir, 'tollgate.db')).close();
    const run = await keys(f, 'copy-to-store');
    expect(run.code).toBe(0);
    expect(lines(run.stdout).sort()).toEqual(disk.list().map((k) => k.kid).sort());
    expect(run.stderr).toMatch(/copied 2 keys of .*keys into the store/);
    const store = new SqliteTokenStore(join(f.dir, 'tollgate.db'));
    opened.push(store);
    const set = await StoreKeySet.open(store, { keks: [readKek(join(f.dir, 'kek'))], generateIfEmpty: false, publishBeforeUseMs: 600_000 });
    expect(set.signingKey().kid).toBe(disk.signingKey().kid);
    expect([...set.jwks().keys].sort((a, b) => a.kid.localeCompare(b.kid))).toEqual([...disk.jwks().keys].sort((a, b) => a.kid.localeCompare(b.kid)));
    expect(set.list().map((k) => k.createdAt)).toEqual(disk.list().map((k) => k.createdAt));
    // Run again: nothing new.
    const again = await keys(f, 'copy-to-store');
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(/copied 0 keys/);
  });

  it('refuses keys.source dir and extra arguments', async () => {
    const f = writeFixture({ clients, config: 'issuer: https://auth.test\nkeys: { dir: ./keys }\nstore: { kind: memory }\n' });
    expectUserError(await keys(f, 'copy-to-store'), /keys\.source: keys copy-to-store copies keys\.dir into the store/);
    expectUserError(await tollgateInProcess(['keys', 'copy-to-store', 'x', '--config', f.configFile], { cwd: f.dir }), /unexpected argument "x"/);
  });
});

describe('keys export and import with keys.source store', () => {
  it('exports the JWKS the instances serve, and every key with its times, from the store', async () => {
    const { f, running } = await deployment();
    const pub = await keys(f, 'export', '--public');
    expect(pub.code).toBe(0);
    expect(JSON.parse(pub.stdout)).toEqual(running.jwks());
    const out = join(f.dir, 'exported');
    const run = await keys(f, 'export', '--to-dir', out);
    expect(run.code).toBe(0);
    expect(lines(run.stdout)).toEqual([running.signingKey().kid]);
    const { DiskKeySet } = await import('../../src/keys/disk-key-set.js');
    const disk = await DiskKeySet.load(out, { generateIfEmpty: false });
    expect(disk.jwks()).toEqual(running.jwks());
    expect(disk.list().map((k) => [k.createdAt, k.signsFrom])).toEqual(running.list().map((k) => [k.createdAt, k.signsFrom]));
  });

  it('imports a key into the store, sealed, with the times given; running instances publish it; the same key twice is refused', async () => {
    const { f, running } = await deployment();
    const { generateKeyPairSync } = await import('node:crypto');
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    writeFileSync(join(f.dir, 'other.pem'), pem, { mode: 0o600 });
    const run = await keys(f, 'import', 'other.pem', '--created', '2026-01-01T00:00:00Z', '--signs-from', 'now');
    expect(run.code).toBe(0);
    const kid = run.stdout.trim();
    expect(run.stderr).toMatch(/^imported ES256 key \S+ into the store/);
    await running.refresh();
    expect(running.jwks().keys.map((k) => k.kid)).toContain(kid);
    expect(running.list().find((k) => k.kid === kid)?.createdAt).toBe(Date.parse('2026-01-01T00:00:00Z'));
    // Nothing of the private key in clear in the store's file.
    const { readFileSync } = await import('node:fs');
    const body = pem.split('\n').slice(1, -2).join('');
    expect(readFileSync(join(f.dir, 'tollgate.db')).includes(Buffer.from(body.slice(0, 40)))).toBe(false);
    expectUserError(await keys(f, 'import', 'other.pem'), /holds a key already in the store: kid /);
  });
});

describe('keys help', () => {
  it('names rekey and copy-to-store, and each prints it with --help', async () => {
    const f = writeFixture({ clients });
    for (const args of [['keys', '--help'], ['keys', 'rekey', '--help'], ['keys', 'copy-to-store', '--help']]) {
      const run = await tollgateInProcess(args, { cwd: f.dir });
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('tollgate keys rekey [--new-key-file FILE] [--config FILE]');
      expect(run.stdout).toContain('tollgate keys copy-to-store [--config FILE]');
    }
  });
});
