import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SQLITE_SCHEMA_VERSION, SqliteTokenStore } from '../../src/store/sqlite-token-store.js';
import type { TokenStore } from '../../src/store/token-store.js';
import { tempDir } from '../helpers.js';
import { failureCountersContract } from './contract/failure-counters.js';
import { replayClaimsContract } from './contract/replay-claims.js';
import { signingKeyRecordsContract } from './contract/signing-key-records.js';
import { storeLifecycleContract } from './contract/store-lifecycle.js';
import { makeRecord, tokenRecordsContract } from './contract/token-records.js';

const dir = tempDir();
const opened: TokenStore[] = [];
afterAll(async () => {
  for (const s of opened) await s.close();
});
let n = 0;
function openAt(path: string): SqliteTokenStore {
  const store = new SqliteTokenStore(path);
  opened.push(store);
  return store;
}

const open = async (): Promise<SqliteTokenStore> => openAt(join(dir, `contract-${n++}.db`));
const reopen = async (store: SqliteTokenStore): Promise<SqliteTokenStore> => openAt(store.path);
tokenRecordsContract('sqlite', open, reopen);
replayClaimsContract('sqlite', open);
failureCountersContract('sqlite', open, reopen);
storeLifecycleContract('sqlite', open);
signingKeyRecordsContract('sqlite', open, reopen);

describe('SqliteTokenStore', () => {
  it('keeps records and revocations across a close and reopen', async () => {
    const path = join(dir, 'persist.db');
    const first = openAt(path);
    const a = makeRecord({ iat: 1_800_000_000 });
    const b = makeRecord({ iat: 1_800_000_000, clientId: 'svc-b' });
    await first.record(a);
    await first.record(b);
    await first.revoke(a.jti, 1_800_000_001_000);
    await first.revokeClient('svc-b', 1_800_000_002_000);
    await first.close();

    const second = openAt(path);
    expect((await second.find(a.jti))?.revokedAt).toBe(1_800_000_001_000);
    expect((await second.find(b.jti))?.revokedAt).toBe(1_800_000_002_000);
  });

  it('runs in WAL mode and records its schema version', async () => {
    const path = join(dir, 'wal.db');
    openAt(path);
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION);
    db.close();
  });

  it('migrates a version 1 file, keeping its records', async () => {
    const path = join(dir, 'v1.db');
    const old = new Database(path);
    // Version 1 as it was released: tokens and client revocations only.
    old.exec(`CREATE TABLE tokens (jti TEXT PRIMARY KEY, client_id TEXT NOT NULL, scope TEXT NOT NULL, aud TEXT NOT NULL,
      iat INTEGER NOT NULL, exp INTEGER NOT NULL, digest TEXT NOT NULL, revoked_at INTEGER) WITHOUT ROWID;
      CREATE INDEX tokens_exp ON tokens (exp);
      CREATE TABLE client_revocations (client_id TEXT PRIMARY KEY, revoked_before INTEGER NOT NULL) WITHOUT ROWID;`);
    old.prepare('INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run('old-jti', 'svc-a', 'read', '["https://api.test"]', 1_800_000_000, 1_800_000_900, 'd', null);
    old.pragma('user_version = 1');
    old.close();

    const store = openAt(path);
    expect((await store.find('old-jti'))?.clientId).toBe('svc-a');
    expect(await store.claimOnce('k', Date.now() + 1000, Date.now())).toBe(true);
  });

  it('migrates a version 3 file to hold DPoP thumbprints, keeping its certificate-bound records', async () => {
    const path = join(dir, 'v3.db');
    const old = new Database(path);
    // Version 3 as it was released: tokens with cnf, claims and counters.
    old.exec(`CREATE TABLE tokens (jti TEXT PRIMARY KEY, client_id TEXT NOT NULL, scope TEXT NOT NULL, aud TEXT NOT NULL,
      iat INTEGER NOT NULL, exp INTEGER NOT NULL, digest TEXT NOT NULL, revoked_at INTEGER) WITHOUT ROWID;
      CREATE INDEX tokens_exp ON tokens (exp);
      CREATE TABLE client_revocations (client_id TEXT PRIMARY KEY, revoked_before INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE claims (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE counters (key TEXT PRIMARY KEY, count INTEGER NOT NULL, reset_at INTEGER NOT NULL) WITHOUT ROWID;
      ALTER TABLE tokens ADD COLUMN cnf TEXT;`);
    old.prepare('INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run('bound-jti', 'edge', 'read', '["https://api.test"]', 1_800_000_000, 1_800_000_900, 'd', null, 'x5t');
    old.pragma('user_version = 3');
    old.close();

    const store = openAt(path);
    expect(await store.find('bound-jti')).toEqual({ jti: 'bound-jti', clientId: 'edge', scope: 'read', aud: ['https://api.test'], iat: 1_800_000_000, exp: 1_800_000_900, digest: 'd', cnf: 'x5t' });
    const dpop = makeRecord({ iat: 1_800_000_000, jkt: 'thumbprint' });
    await store.record(dpop);
    expect(await store.find(dpop.jti)).toEqual(dpop);
    const db = new Database(path, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION);
    db.close();
  });

  it('sees what another process wrote to the same file', async () => {
    const path = join(dir, 'shared.db');
    const store = openAt(path);
    const rec = makeRecord({ iat: 1_800_000_000 });
    await store.record(rec);
    // Another process revokes through its own connection.
    const script = `const D=require('better-sqlite3');const d=new D(${JSON.stringify(path)});d.prepare('UPDATE tokens SET revoked_at=7 WHERE jti=?').run(${JSON.stringify(rec.jti)});`;
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(child.status, child.stderr).toBe(0);
    expect((await store.find(rec.jti))?.revokedAt).toBe(7);
  });

  it('answers lookups made in the same turn each with its own record, in one read transaction', async () => {
    const store = openAt(join(dir, 'burst.db'));
    const records = Array.from({ length: 40 }, (_, i) => makeRecord({ iat: 1_800_000_000, clientId: `svc-${i % 3}` }));
    await Promise.all(records.map((r) => store.record(r)));
    await store.revoke(records[5]!.jti, 1_800_000_000_500);
    await store.revokeClient('svc-2', 1_800_000_001_000);
    // Known, unknown and repeated jtis, all asked at once.
    const asked = [...records.map((r) => r.jti), 'no-such-jti', records[0]!.jti, 'another-unknown'];
    const found = await Promise.all(asked.map((jti) => store.find(jti)));
    expect(found.map((r) => r?.jti)).toEqual([...records.map((r) => r.jti), undefined, records[0]!.jti, undefined]);
    expect(found.map((r) => r?.digest)).toEqual([...records.map((r) => r.digest), undefined, records[0]!.digest, undefined]);
    expect(found[5]?.revokedAt).toBe(1_800_000_000_500);
    // Every token of svc-2 falls under its client-wide revocation; the others do not.
    for (const [i, r] of found.slice(0, 40).entries()) {
      if (i === 5) continue;
      expect(r?.revokedAt, `record ${i}`).toBe(i % 3 === 2 ? 1_800_000_001_000 : undefined);
    }
  });

  it('fails only the lookup of a row it cannot read, and answers the others of the same turn', async () => {
    const path = join(dir, 'damaged.db');
    const store = openAt(path);
    const good = makeRecord({ iat: 1_800_000_000 });
    const bad = makeRecord({ iat: 1_800_000_000 });
    await Promise.all([store.record(good), store.record(bad)]);
    // Damage one row behind the store's back, as a faulty tool or disk might.
    const db = new Database(path);
    db.prepare('UPDATE tokens SET aud = ? WHERE jti = ?').run('not json', bad.jti);
    db.close();
    const [first, second] = await Promise.allSettled([store.find(bad.jti), store.find(good.jti)]);
    expect(first.status).toBe('rejected');
    expect(second).toEqual({ status: 'fulfilled', value: expect.objectContaining({ jti: good.jti, digest: good.digest }) });
    // The store goes on answering.
    expect((await store.find(good.jti))?.jti).toBe(good.jti);
  });

  it('answers the lookups waiting when it closes, and fails later ones instead of leaving them hanging', async () => {
    const store = new SqliteTokenStore(join(dir, 'closing.db'));
    const rec = makeRecord({ iat: 1_800_000_000 });
    await store.record(rec);
    // Lookups asked just before close are still answered: close runs what is waiting first.
    const pending = Promise.all([store.find(rec.jti), store.find('no-such-jti')]);
    await store.close();
    expect((await pending).map((r) => r?.jti)).toEqual([rec.jti, undefined]);
    // After close, lookups fail (the guard turns this into a 503) instead of hanging.
    await expect(Promise.all([store.find(rec.jti), store.find(rec.jti)])).rejects.toThrow(/database connection is not open/);
  });

  it('refuses a file that is not a token store, and a newer schema, with one clear error', () => {
    const junk = join(dir, 'junk.db');
    writeFileSync(junk, 'this is not sqlite at all, just some bytes that fill the header page'.repeat(100));
    expect(() => new SqliteTokenStore(junk)).toThrow(/junk\.db: cannot (open|prepare) the token store/);

    const newer = join(dir, 'newer.db');
    const db = new Database(newer);
    db.pragma('user_version = 99');
    db.close();
    expect(() => new SqliteTokenStore(newer)).toThrow(/schema version 99, newer than this tollgate knows/);
  });

  it('waits for another process that writes to a new file while it switches the file to WAL', async () => {
    // When the workers of serve --workers N open a new file at once, one may hold a write lock
    // just as another, already reading, asks for one: SQLite fails the second with SQLITE_BUSY
    // at once rather than wait, since waiting could deadlock. The store must try again.
    const path = join(dir, 'contended.db');
    const holder = spawn(
      process.execPath,
      ['-e', `const db = new (require('better-sqlite3'))(process.argv[1]);
        db.exec('BEGIN IMMEDIATE; CREATE TABLE other (x)');
        console.log('locked');
        setTimeout(() => db.exec('COMMIT'), 300);`, path],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = once(holder, 'exit');
    const [line] = (await once(holder.stdout, 'data')) as [Buffer];
    expect(line.toString()).toBe('locked\n');

    const store = openAt(path);
    const rec = makeRecord({ iat: 1_800_000_000 });
    await store.record(rec);
    expect((await store.find(rec.jti))?.jti).toBe(rec.jti);
    expect(await exited).toEqual([0, null]);
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });
});
