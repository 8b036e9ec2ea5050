import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, createRemoteJWKSet, decodeProtectedHeader, exportJWK, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { basic, FORM, hashOf, tempDir, writeFixture, type Fixture } from '../helpers.js';
import { parseKeyFile } from '../../src/keys/key-file.js';
import { startServerProcess } from '../server-process.js';
import { expectUserError, lines, tollgate, tollgateInProcess, type CliRun } from './run-cli.js';

const SECRET = 'svc-secret-0123456789abcdefghijklmnopqrst';
const MIN = 60_000;

const config = (keys = '') => `issuer: https://auth.test
listen: { host: 127.0.0.1, port: 0 }
clients_file: ./clients.yaml
keys: { dir: ./keys${keys} }
store: { kind: memory }
`;

let hash = '';
beforeAll(async () => {
  hash = await hashOf(SECRET);
});
/** svc gets tokens.ttl (900 s); slow, when present, gets 1 h tokens. */
const clients = (withSlow = false) =>
  `clients:
  - client_id: svc
    secrets: [{ hash: "${hash}" }]
    audiences: [https://api.test]
${withSlow ? `  - client_id: slow\n    secrets: [{ hash: "${hash}" }]\n    audiences: [https://api.test]\n    token_ttl: 3600\n` : ''}`;

const keys = (f: Fixture, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> =>
  tollgateInProcess(['keys', ...args, '--config', f.configFile], { cwd: f.dir, env });

/** `keys list` as rows of KID, USE and PRUNABLE_FROM. */
async function listed(f: Fixture, env: NodeJS.ProcessEnv = {}): Promise<string[][]> {
  const run = await keys(f, ['list'], env);
  expect(run.code, run.stderr).toBe(0);
  return lines(run.stdout)
    .slice(1)
    .map((r) => r.split(/\s+/))
    .map((r) => [r[0]!, r[4]!, r[5]!]);
}

/** The RFC 7638 thumbprint of the public half of a PEM private key, as a resource server would compute it. */
async function thumbprint(pemFile: string): Promise<string> {
  const { kty, n, e } = await exportJWK(createPublicKey(readFileSync(pemFile, 'utf8')));
  return calculateJwkThumbprint({ kty: kty!, n: n!, e: e! }, 'sha256');
}

/** Writes a key file as if it had been added `ageMs` before `now`; returns its kid. */
async function keyFrom(f: Fixture, name: string, now: number, ageMs: number): Promise<string> {
  mkdirSync(f.keysDir, { recursive: true, mode: 0o700 });
  const file = join(f.keysDir, `${name}.pem`);
  writeFileSync(file, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const at = new Date(now - ageMs);
  utimesSync(file, at, at);
  return thumbprint(file);
}

const iso = (ms: number) => new Date(ms).toISOString();
const keyFiles = (f: Fixture) => readdirSync(f.keysDir).sort();

describe('keys rotate', () => {
  it('adds a key, prints its kid alone, and the key is pending until publish_before_use has passed', async () => {
    const f = writeFixture({ config: config(), clients: clients() });
    const first = await keys(f, ['rotate']);
    expect(first.code, first.stderr).toBe(0);
    const [firstKid] = lines(first.stdout);
    expect(first.stderr).toMatch(/the only key, so it signs as soon as a server loads it/);

    const run = await keys(f, ['rotate']);
    expect(run.code, run.stderr).toBe(0);
    expect(lines(run.stdout)).toHaveLength(1);
    const kid = run.stdout.trim();
    expect(kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const file = join(f.keysDir, `${kid}.pem`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await thumbprint(file)).toBe(kid);
    expect(keyFiles(f)).toEqual([`${firstKid}.pem`, `${kid}.pem`].sort());
    // The times are written into the file, where the servers read them.
    const times = parseKeyFile(readFileSync(file, 'utf8'));
    expect(times.signsFrom! - times.created!).toBe(10 * MIN);
    expect(Math.abs(times.created! - Date.now())).toBeLessThan(MIN);
    expect(run.stderr).toContain(`sign new tokens with it from ${iso(times.signsFrom!)}`);
    expect(run.stderr).toMatch(/running servers publish it in their JWKS within seconds/);

    expect(await listed(f)).toEqual([
      [kid, 'pending', '-'],
      [firstKid, 'signing', '-'],
    ]);
    // A key's signs-from time is its own: a later change of publish_before_use does not move it.
    expect(await listed(f, { TOLLGATE_KEYS__PUBLISH_BEFORE_USE: '0s' })).toEqual([
      [kid, 'pending', '-'],
      [firstKid, 'signing', '-'],
    ]);
    // Nor does a fresh mtime (a copy without -p, a restore, a Kubernetes Secret update).
    utimesSync(file, new Date(), new Date(Date.now() + 3_600_000));
    expect(await listed(f)).toEqual([
      [kid, 'pending', '-'],
      [firstKid, 'signing', '-'],
    ]);
  });

  it('refuses a key folder it cannot write, in one line, and writes nothing', async () => {
    const f = writeFixture({ config: config(), clients: clients() });
    await keyFrom(f, 'old', Date.now(), 0);
    // root ignores file modes, so a root test run tries as nobody.
    const user = process.getuid?.() === 0 ? { uid: 65_534, gid: 65_534 } : undefined;
    chmodSync(f.dir, 0o755);
    if (user !== undefined) {
      chownSync(f.keysDir, user.uid, user.gid);
      chownSync(join(f.keysDir, 'old.pem'), user.uid, user.gid);
    }
    chmodSync(f.keysDir, 0o500);
    try {
      // The real binary: in-process it could not run as another user.
      const run = await tollgate(['keys', 'rotate', '--config', f.configFile], { cwd: f.dir, ...(user && { user }) });
      expectUserError(run, /keys: cannot write a new key into the key directory: permission denied: tollgate runs as uid \d+ .*\n$/);
      expect(keyFiles(f)).toEqual(['old.pem']);
    } finally {
      chmodSync(f.keysDir, 0o700);
    }
  });

  it('refuses a key folder it cannot read, and a broken key folder the servers would refuse too', async () => {
    const f = writeFixture({ config: config(), clients: clients() });
    writeFileSync(join(f.dir, 'file'), '');
    expectUserError(await tollgateInProcess(['keys', 'rotate', '--config', f.configFile], { cwd: f.dir, env: { TOLLGATE_KEYS__DIR: 'file/keys' } }), /cannot read the key directory: ENOTDIR\n$/);

    mkdirSync(f.keysDir);
    writeFileSync(join(f.keysDir, 'junk.pem'), 'not a key\n');
    expectUserError(await keys(f, ['rotate']), /junk\.pem: is not a PEM private key\n$/);
    expect(keyFiles(f)).toEqual(['junk.pem']);
  });

  it.each([
    [['rotate', 'now'], /unexpected argument "now"/],
    [['rotate', '--dry-run'], /unknown option '--dry-run'/i],
    [['prune', 'all'], /unexpected argument "all"/],
    [['prune', '--force'], /unknown option '--force'/i],
    [['prune', '--dry-run=yes'], /--dry-run/],
    [[], /missing command/],
    [['retire'], /unknown command "keys retire"/],
  ])('tollgate keys %j: exit 1 with one line on stderr', async (args, message) => {
    expectUserError(await tollgateInProcess(['keys', ...args], { cwd: tempDir() }), message);
  });

  it('documents rotate and prune in its help', async () => {
    const run = await tollgateInProcess(['keys', 'rotate', '--help'], { cwd: tempDir() });
    expect(run.code).toBe(0);
    for (const word of ['keys rotate', 'keys prune', '--dry-run', 'publish_before_use']) expect(run.stdout).toContain(word);
  });
});

describe('keys prune', () => {
  it('removes exactly the keys whose tokens must all have expired, counting the longest token_ttl', async () => {
    const f = writeFixture({ config: config(), clients: clients(true) });
    const now = Math.floor(Date.now() / 1000) * 1000;
    // publish_before_use is 10 min (the default); the longest token lifetime is slow's 1 h.
    const ancient = await keyFrom(f, 'ancient', now, 10 * 24 * 60 * MIN);
    const old = await keyFrom(f, 'old', now, 120 * MIN); // replaced ancient 110 min ago: ancient's tokens are gone
    const current = await keyFrom(f, 'current', now, 40 * MIN); // replaced old 30 min ago: its 1 h tokens live on
    const next = await keyFrom(f, 'next', now, MIN); // pending
    const oldUntil = iso(now - 40 * MIN + 10 * MIN + 60 * MIN);

    expect(await listed(f)).toEqual([
      [next, 'pending', '-'],
      [current, 'signing', '-'],
      [old, 'published', oldUntil],
      [ancient, 'published', iso(now - 120 * MIN + 70 * MIN)],
    ]);

    const dry = await keys(f, ['prune', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(lines(dry.stdout)).toEqual([ancient]);
    expect(dry.stderr).toMatch(/dry run: 1 key can be removed; nothing was removed/);
    expect(keyFiles(f)).toEqual(['ancient.pem', 'current.pem', 'next.pem', 'old.pem']);

    const run = await keys(f, ['prune']);
    expect(run.code, run.stderr).toBe(0);
    expect(lines(run.stdout)).toEqual([ancient]);
    expect(keyFiles(f)).toEqual(['current.pem', 'next.pem', 'old.pem']);
    expect(run.stderr).toContain(`kid ${old} still verifies tokens until ${oldUntil}`);
    expect(run.stderr).toContain(`kid ${current} signs new tokens`);
    expect(run.stderr).toContain(`kid ${next} is pending: it signs from ${iso(now - MIN + 10 * MIN)}`);

    const again = await keys(f, ['prune']);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(/no key can be removed yet/);

    // Without slow's 1 h tokens, old's last token (900 s) expired 15 min ago.
    writeFileSync(f.clientsFile, clients(false));
    const shorter = await keys(f, ['prune']);
    expect(lines(shorter.stdout)).toEqual([old]);
    expect(keyFiles(f)).toEqual(['current.pem', 'next.pem']);
  });

  it('never removes the signing key, so never the last key', async () => {
    const f = writeFixture({ config: config(), clients: clients() });
    const now = Date.now();
    const lone = await keyFrom(f, 'lone', now, 365 * 24 * 60 * MIN);
    let run = await keys(f, ['prune']);
    expect([run.code, run.stdout]).toEqual([0, '']);
    expect(run.stderr).toContain(`kid ${lone} signs new tokens`);
    expect(keyFiles(f)).toEqual(['lone.pem']);

    const newer = await keyFrom(f, 'newer', now, 300 * 24 * 60 * MIN);
    run = await keys(f, ['prune']);
    expect(lines(run.stdout)).toEqual([lone]);
    expect(keyFiles(f)).toEqual(['newer.pem']);
    run = await keys(f, ['prune']);
    expect([run.code, run.stdout]).toEqual([0, '']);
    expect(run.stderr).toContain(`kid ${newer} signs new tokens`);
  });

  it('keeps every key while none has been published long enough: the oldest goes on signing', async () => {
    const f = writeFixture({ config: config(), clients: clients() });
    const now = Date.now();
    const a = await keyFrom(f, 'a', now, 2 * MIN);
    const b = await keyFrom(f, 'b', now, MIN);
    expect(await listed(f)).toEqual([
      [b, 'pending', '-'],
      [a, 'signing', '-'],
    ]);
    const run = await keys(f, ['prune']);
    expect([run.code, run.stdout]).toEqual([0, '']);
    expect(keyFiles(f)).toEqual(['a.pem', 'b.pem']);
  });

  it('removes nothing when the registry does not load, since the longest token lifetime is unknown', async () => {
    const f = writeFixture({ config: config(), clients: clients() });
    const now = Date.now();
    await keyFrom(f, 'ancient', now, 300 * 24 * 60 * MIN);
    await keyFrom(f, 'current', now, 200 * 24 * 60 * MIN);
    writeFileSync(f.clientsFile, 'clients:\n  - client_id: svc\n    secret: plain\n    audiences: [https://api.test]\n');
    expectUserError(await keys(f, ['prune']), /clients\.yaml:3: clients\[0\]\.secret: plaintext secrets are refused/);
    expect(keyFiles(f)).toEqual(['ancient.pem', 'current.pem']);
    // keys list still lists them, without the removal times.
    const list = await keys(f, ['list']);
    expect(list.code).toBe(0);
    expect(list.stderr).toMatch(/cannot tell when old keys may be removed/);
    expect(lines(list.stdout).slice(1).map((r) => r.split(/\s+/)[5])).toEqual(['-', 'unknown']);
  });

  it('says so when there are no keys', async () => {
    const f = writeFixture({ config: config(), clients: clients() });
    const run = await keys(f, ['prune']);
    expect([run.code, run.stdout]).toEqual([0, '']);
    expect(run.stderr).toMatch(/^no keys in .*keys; nothing to remove\n$/);
  });
});

describe('rotation under a running server', () => {
  it('publishes the new key within seconds, signs with it only after publish_before_use, and old tokens still verify', async () => {
    // 4 s rather than 2: the server re-reads keys.dir every 2 s, so with 2 s the key could be
    // published and start signing in the same check, and the window this test looks at would vanish.
    const f = writeFixture({ config: config(', publish_before_use: 4s'), clients: clients() });
    const server = await startServerProcess(f.configFile);
    const jwksUrl = new URL(`${server.url}/.well-known/jwks.json`);
    const kidsServed = async () => ((await (await fetch(jwksUrl)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
    const token = async () => {
      const res = await fetch(`${server.url}/oauth2/token`, {
        method: 'POST',
        headers: { ...FORM, authorization: basic('svc', SECRET) },
        body: 'grant_type=client_credentials',
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { access_token: string }).access_token;
    };
    const kidOf = (jwt: string) => decodeProtectedHeader(jwt).kid;
    const verify = (jwt: string, jwks: ReturnType<typeof createRemoteJWKSet>) =>
      jwtVerify(jwt, jwks, { issuer: 'https://auth.test', audience: 'https://api.test', typ: 'at+jwt', algorithms: ['RS256'] });

    const [oldKid] = await kidsServed();
    const before = await token();
    expect(kidOf(before)).toBe(oldKid);

    const rotate = await keys(f, ['rotate']);
    expect(rotate.code, rotate.stderr).toBe(0);
    const newKid = rotate.stdout.trim();
    const signsFrom = parseKeyFile(readFileSync(join(f.keysDir, `${newKid}.pem`), 'utf8')).signsFrom!;

    let deadline = Date.now() + 10_000;
    while (!(await kidsServed()).includes(newKid)) {
      expect(Date.now(), 'the new key was not published in time').toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await kidsServed()).sort()).toEqual([oldKid, newKid].sort());
    await server.waitForOutput(/"event":"keys.reloaded"/);
    // A resource server that fetches the JWKS now, while the new key is published but not yet
    // signing. Its cooldown keeps it from fetching again within a minute, so it verifies the
    // new key's tokens below only because the key was already in this fetch.
    const resourceServer = createRemoteJWKSet(jwksUrl, { cooldownDuration: 60_000 });
    await verify(before, resourceServer);
    const meanwhile = await token();
    expect(Date.now(), 'too slow to see the window between publishing and signing').toBeLessThan(signsFrom);
    expect(kidOf(meanwhile)).toBe(oldKid);

    let after = meanwhile;
    deadline = signsFrom + 10_000;
    while (kidOf(after) !== newKid) {
      expect(Date.now(), 'the new key did not start signing in time').toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 200));
      after = await token();
    }
    expect(Date.now()).toBeGreaterThanOrEqual(signsFrom);
    await server.waitForOutput(new RegExp(`"event":"key.rotated","from_kid":"${oldKid}","to_kid":"${newKid}"`));

    expect((await verify(after, resourceServer)).protectedHeader.kid).toBe(newKid);
    expect((await verify(meanwhile, resourceServer)).protectedHeader.kid).toBe(oldKid);
    // And a resource server that fetches the JWKS only now verifies both.
    const late = createRemoteJWKSet(jwksUrl);
    await verify(before, late);
    await verify(after, late);

    expect(existsSync(join(f.keysDir, `${oldKid}.pem`))).toBe(true);
    expect(await server.stop()).toBe(0);
  });
});
