import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { tollgate, expectUserError } from '../cli/run-cli.js';
import { writeFixture, type Fixture } from '../helpers.js';
import { httpClient, serviceAndResourceServer, startServerProcess, type ServerProcess } from '../server-process.js';
import { plainSql, POSTGRES_URL, requirePostgres } from '../store/postgres-helpers.js';

// Several tollgate processes with keys.source store: one fleet, whose keys live in the shared
// store instead of a folder on each machine.
const SVC = 'svc-secret-0123456789abcdefghijklmnopqrstu';
const RS = 'rs-secret-0123456789abcdefghijklmnopqrstuv';

const servers: ServerProcess[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop();
});

async function fleet(store: string, keys = ''): Promise<Fixture> {
  const f = writeFixture({
    config: `issuer: https://auth.test
listen: { host: 127.0.0.1, port: 0 }
keys: { source: store, encryption_key_file: ./kek, algorithm: ES256, publish_before_use: 0s${keys} }
store: ${store}
`,
    clients: await serviceAndResourceServer(SVC, RS),
  });
  writeFileSync(join(f.dir, 'kek'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  return f;
}

async function start(f: Fixture): Promise<ServerProcess> {
  const s = await startServerProcess(f.configFile);
  servers.push(s);
  return s;
}

const kidsOf = async (s: ServerProcess): Promise<string[]> => ((await (await fetch(`${s.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);

/** Instances started at once against an empty store: one first key between them, served by all. */
async function raceFirstStarts(f: Fixture, n: number): Promise<ServerProcess[]> {
  const started = await Promise.all(Array.from({ length: n }, () => start(f)));
  for (const s of started) expect(s.stdout()).toMatch(/"event":"server.started".*"keys_source":"store"/);
  const kids = await Promise.all(started.map(kidsOf));
  expect(kids[0]).toHaveLength(1);
  for (const k of kids) expect(k).toEqual(kids[0]);
  return started;
}

describe('a fleet with its signing keys in the store', () => {
  it('makes one first key for three instances starting at once on one SQLite file, and a rotation reaches all of them', async () => {
    const f = await fleet('{ kind: sqlite, path: ./tollgate.db }');
    const [a, b, c] = await raceFirstStarts(f, 3);
    // A token from one instance verifies against another's JWKS.
    const token = await httpClient(() => a!.url).issue('svc', SVC);
    await jwtVerify(token, createRemoteJWKSet(new URL(`${b!.url}/.well-known/jwks.json`)), { issuer: 'https://auth.test' });

    const rotate = await tollgate(['keys', 'rotate', '--config', f.configFile], { cwd: f.dir });
    expect(rotate.code).toBe(0);
    const kid = rotate.stdout.trim();
    // Each instance reports the new key once it has read it from the store.
    for (const s of [a!, b!, c!]) {
      await s.waitForOutput(new RegExp(`"event":"keys.reloaded","kids":\\["${kid}"`));
      expect(await kidsOf(s)).toContain(kid);
    }
    // publish_before_use is 0s: the new key signs at once.
    const next = await httpClient(() => c!.url).issue('svc', SVC);
    const header = JSON.parse(Buffer.from(next.split('.')[0]!, 'base64url').toString()) as { kid: string };
    expect(header.kid).toBe(kid);
    await jwtVerify(next, createRemoteJWKSet(new URL(`${a!.url}/.well-known/jwks.json`)), { issuer: 'https://auth.test' });
  });

  it('refuses to start with a key-encryption key that does not open the stored keys, in one line', async () => {
    const f = await fleet('{ kind: sqlite, path: ./tollgate.db }');
    const first = await start(f);
    await first.stop();
    const kek = join(f.dir, 'kek');
    writeFileSync(kek, `${randomBytes(32).toString('base64')}\n`);
    const run = await tollgate(['serve', '--config', f.configFile], { cwd: f.dir });
    expectUserError(run, new RegExp(`^tollgate: ${kek}: does not open the signing keys in the store`));
  });

  it('refuses to start without its key-encryption key file, in one line naming it', async () => {
    const f = await fleet('{ kind: sqlite, path: ./tollgate.db }', ', previous_encryption_key_file: ./old.kek');
    const run = await tollgate(['serve', '--config', f.configFile], { cwd: f.dir });
    expectUserError(run, new RegExp(`^tollgate: ${join(f.dir, 'old.kek')}: cannot read the key-encryption key: file not found`));
  });

  it('serve --workers 2: the primary makes the first key and the workers serve it; a wrong key-encryption key is one line, not a crash loop', async () => {
    const f = await fleet('{ kind: sqlite, path: ./tollgate.db }');
    const s = await startServerProcess(f.configFile, {}, ['--workers', '2']);
    servers.push(s);
    const kids = await kidsOf(s);
    expect(kids).toHaveLength(1);
    for (let i = 0; i < 4; i++) expect(await kidsOf(s)).toEqual(kids);
    expect(await s.stop()).toBe(0);
    const kek = join(f.dir, 'kek');
    writeFileSync(kek, `${randomBytes(32).toString('base64')}\n`);
    expectUserError(await tollgate(['serve', '--workers', '2', '--config', f.configFile], { cwd: f.dir }), new RegExp(`^tollgate: ${kek}: does not open the signing keys in the store`));
  });

  const pg = requirePostgres();
  it.skipIf(!pg)('makes one first key for three instances starting at once on an empty PostgreSQL database', async () => {
    const db = `${new URL(POSTGRES_URL).pathname.slice(1)}_keys`;
    const admin = plainSql();
    try {
      await admin.unsafe(`CREATE DATABASE ${db}`);
    } finally {
      await admin.end();
    }
    const url = new URL(POSTGRES_URL);
    url.pathname = `/${db}`;
    try {
      const f = await fleet(`{ kind: postgres, url: "${url}" }`);
      const started = await raceFirstStarts(f, 3);
      for (const s of started) await s.stop();
    } finally {
      const drop = plainSql();
      try {
        await drop.unsafe(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      } finally {
        await drop.end();
      }
    }
  });
});
