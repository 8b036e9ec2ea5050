import { existsSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { hashOf, tempDir, writeFixture, type Fixture } from '../helpers.js';
import { SQLITE_SCHEMA_VERSION, SqliteTokenStore } from '../../src/store/sqlite-token-store.js';
import { REDIS_URL, testPrefix } from '../store/redis-helpers.js';
import { ecPem, ODD_PEM_FORMS } from '../keys/odd-pem.js';
import { makePki } from '../tls-fixtures.js';
import { expectUserError, lines, tollgateInProcess, type CliRun } from './run-cli.js';

let HASH = '';
beforeAll(async () => {
  HASH = await hashOf('svc-secret-0123456789abcdefghijklmnopqrst');
});

const CONFIG = `issuer: https://auth.test
clients_file: ./clients.yaml
tokens: { ttl: 900, audience: [] }
keys: { dir: ./keys }
store: { kind: memory }
`;
const sound = () => `# a sound registry
clients:
  - client_id: svc
    secrets: [{ hash: "${HASH}" }]
    scopes: [a]
    audiences: [https://api.test]
`;

function check(f: Fixture, env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return tollgateInProcess(['config', 'check', '--config', f.configFile], { cwd: f.dir, env });
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A failed check: exit 1, nothing on stdout, and the problems, one a line, on stderr. */
function problems(run: CliRun): string[] {
  expect(run.stdout).toBe('');
  expect(run.stderr).not.toMatch(/^\s+at /m);
  expect(run.code).toBe(1);
  return lines(run.stderr);
}

describe.concurrent('config check', () => {
  it('says ok on a sound config and registry, exit 0', async () => {
    const f = writeFixture({ config: CONFIG, clients: sound() });
    const run = await check(f);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^ok: /);
    expect(run.stdout).toContain('1 client');
    expect(lines(run.stdout)).toHaveLength(1);
    expect(run.code).toBe(0);
  });

  it('lists every problem of a broken registry, each with the file, the line and the path', async () => {
    const f = writeFixture({
      config: CONFIG,
      clients: `# broken on purpose
clients:
  - client_id: plain
    secret: hunter2
    audiences: [https://api.test]
  - client_id: plain
    secrets: [{ hash: "$argon2id$v=19$m=19456,t=2,p=1$short$x" }]
    audiences: [https://api.test]
    colour: blue
    allowed_ips: [10.0.0.0/33, 192.0.2.7]
    token_ttl: 86401
`,
    });
    const file = f.clientsFile;
    const found = problems(await check(f));
    const expected = [
      [4, 'clients[0].secret', /plaintext secrets are refused/],
      [6, 'clients[1].client_id', /duplicate client_id "plain"/],
      [7, 'clients[1].secrets[0].hash', /argon2id/],
      [9, 'clients[1].colour', /unknown field/],
      [10, 'clients[1].allowed_ips[0]', /CIDR/],
      [11, 'clients[1].token_ttl', /at most 86400/],
    ] as const;
    expect(found).toHaveLength(expected.length);
    for (const [line, path, reason] of expected) {
      const problem = found.find((p) => p.startsWith(`${file}:${line}: ${path}: `));
      expect(problem, `${file}:${line}: ${path}: … in\n${found.join('\n')}`).toBeDefined();
      expect(problem).toMatch(reason);
    }
  });

  it('lists every problem of a broken config, each with the file, the line and the path', async () => {
    const f = writeFixture({
      config: `issuer: https://auth.test/
clients_file: ./clients.yaml
tokens:
  ttl: 30
keys: { dir: ./keys }
store: { kind: memory }
colour: blue
`,
      clients: sound(),
    });
    const found = problems(await check(f));
    expect(found).toHaveLength(3);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^${esc(f.configFile)}:1: issuer: .*trailing slash`)),
        expect.stringMatching(new RegExp(`^${esc(f.configFile)}:4: tokens\\.ttl: must be at least 60 seconds$`)),
        expect.stringMatching(new RegExp(`^${esc(f.configFile)}:7: colour: unknown field$`)),
      ]),
    );
  });

  it('names the file and line of a YAML syntax error in the registry', async () => {
    const f = writeFixture({ config: CONFIG, clients: 'clients:\n  - client_id: svc\n    scopes: [a, b\n' });
    const found = problems(await check(f));
    expect(found.length).toBeGreaterThan(0);
    for (const p of found) expect(p).toMatch(new RegExp(`^${esc(f.clientsFile)}:\\d+: YAML syntax: `));
  });

  it('names the file and line of a YAML syntax error in the config', async () => {
    const f = writeFixture({ config: 'issuer: https://auth.test\nlisten:\n  port: 1\n port: 2\n', clients: sound() });
    const found = problems(await check(f));
    expect(found.length).toBeGreaterThan(0);
    for (const p of found) expect(p).toMatch(new RegExp(`^${esc(f.configFile)}:\\d+: YAML syntax: `));
  });

  it('names a key file it cannot use', async () => {
    const f = writeFixture({ config: CONFIG, clients: sound() });
    mkdirSync(f.keysDir);
    writeFileSync(join(f.keysDir, 'junk.pem'), 'not a key\n');
    expect(problems(await check(f))).toEqual([`${join(f.keysDir, 'junk.pem')}: is not a PEM private key`]);
  });

  it.each(ODD_PEM_FORMS)('accepts a key file with %s, exit 0 rather than 2 (unexpected error)', async (_what, odd) => {
    const f = writeFixture({ config: CONFIG, clients: sound() });
    mkdirSync(f.keysDir);
    writeFileSync(join(f.keysDir, 'odd.pem'), odd(ecPem()));
    const run = await check(f);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^ok: .*1 signing key in /);
    expect(run.code).toBe(0);
  });

  it('refuses a key folder whose only key is a symbolic link to a missing file, and warns of one beside other keys', async () => {
    const f = writeFixture({ config: CONFIG, clients: sound() });
    mkdirSync(f.keysDir);
    symlinkSync('/nonexistent/gone.pem', join(f.keysDir, 'gone.pem'));
    expect(problems(await check(f))).toEqual([
      `${join(f.keysDir, 'gone.pem')}: is a symbolic link to a missing file (/nonexistent/gone.pem), and no other key in the folder loads`,
    ]);
    writeFileSync(join(f.keysDir, 'a.pem'), ecPem());
    const run = await check(f);
    expect(run.stderr).toBe(`warning: ${join(f.keysDir, 'gone.pem')}: skipped: a symbolic link to a missing file (/nonexistent/gone.pem)\n`);
    expect(run.stdout).toMatch(/^ok: .*1 signing key in /);
    expect(run.code).toBe(0);
  });

  it('names TLS files it cannot use: missing, a key that is not the certificate’s, a CA file without certificates', async () => {
    const pki = makePki(tempDir());
    const tlsConfig = (cert: string, key: string, ca: string) => `${CONFIG}listen: { tls: { cert: ${cert}, key: ${key}, client_ca: ${ca} } }\n`;
    const missing = writeFixture({ config: tlsConfig('./nope.pem', pki.file('server.key'), pki.file('ca.pem')), clients: sound() });
    expect(problems(await check(missing))).toEqual([`${join(missing.dir, 'nope.pem')}: cannot read: ENOENT`]);
    const mismatched = writeFixture({ config: tlsConfig(pki.file('server.pem'), pki.file('edge.key'), pki.file('ca.pem')), clients: sound() });
    expect(problems(await check(mismatched))[0]).toMatch(new RegExp(`^${esc(pki.file('server.pem'))}: cannot serve TLS with this certificate and key: `));
    const notCa = writeFixture({ config: tlsConfig(pki.file('server.pem'), pki.file('server.key'), pki.file('server.key')), clients: sound() });
    expect(problems(await check(notCa))[0]).toMatch(new RegExp(`^${esc(pki.file('server.'))}(pem|key): `));
    const good = writeFixture({ config: tlsConfig(pki.file('server.pem'), pki.file('server.key'), pki.file('ca.pem')), clients: sound() });
    expect((await check(good)).code).toBe(0);
  });

  it('honours TOLLGATE_* overrides, and names the variable when one is wrong', async () => {
    const f = writeFixture({ config: CONFIG, clients: sound() });
    expect(problems(await check(f, { TOLLGATE_TOKENS__TTL: '5' }))).toEqual(['environment TOLLGATE_TOKENS__TTL: tokens.ttl: must be at least 60 seconds']);
    expect((await check(f, { TOLLGATE_TOKENS__TTL: '120' })).code).toBe(0);
    // An override can also be what makes a config sound.
    const broken = writeFixture({ config: CONFIG.replace('https://auth.test', 'https://auth.test/'), clients: sound() });
    expect((await check(broken)).code).toBe(1);
    expect((await check(broken, { TOLLGATE_ISSUER: 'https://auth.test' })).code).toBe(0);
  });

  it('an override of clients_file selects another registry', async () => {
    const f = writeFixture({ config: CONFIG, clients: sound() });
    writeFileSync(join(f.dir, 'other.yaml'), 'clients:\n  - client_id: x\n    password: hunter2\n    audiences: [a]\n');
    const found = problems(await check(f, { TOLLGATE_CLIENTS_FILE: 'other.yaml' }));
    expect(found).toEqual([expect.stringMatching(new RegExp(`^${esc(join(f.dir, 'other.yaml'))}:3: clients\\[0\\]\\.password: plaintext secrets are refused`))]);
  });

  it('takes the config from --config, else $TOLLGATE_CONFIG, else config/tollgate.yaml under the current directory', async () => {
    const good = writeFixture({ config: CONFIG, clients: sound() });
    const bad = writeFixture({ config: CONFIG.replace('ttl: 900', 'ttl: 5'), clients: sound() });
    const elsewhere = tempDir();

    const byEnv = await tollgateInProcess(['config', 'check'], { cwd: elsewhere, env: { TOLLGATE_CONFIG: good.configFile } });
    expect(byEnv.code).toBe(0);
    expect(byEnv.stdout).toContain(good.configFile);
    problems(await tollgateInProcess(['config', 'check'], { cwd: elsewhere, env: { TOLLGATE_CONFIG: bad.configFile } }));

    // --config wins over the variable.
    const byFlag = await tollgateInProcess(['config', 'check', '--config', good.configFile], { cwd: elsewhere, env: { TOLLGATE_CONFIG: bad.configFile } });
    expect(byFlag.code).toBe(0);
    problems(await tollgateInProcess(['config', 'check', '--config', bad.configFile], { cwd: elsewhere, env: { TOLLGATE_CONFIG: good.configFile } }));

    // Neither: config/tollgate.yaml here, and the registry it names relative to it.
    mkdirSync(join(elsewhere, 'config'));
    writeFileSync(join(elsewhere, 'config', 'tollgate.yaml'), CONFIG);
    writeFileSync(join(elsewhere, 'config', 'clients.yaml'), sound());
    const byDefault = await tollgateInProcess(['config', 'check'], { cwd: elsewhere });
    expect(byDefault.stdout).toMatch(/^ok: config\/tollgate\.yaml: 1 client in .*config\/clients\.yaml/);
    expect(byDefault.code).toBe(0);
  });
});

// config check said "ok" for a store serve could not open: a Redis server that does not answer,
// a SQLite file that is not a database. It now tries the store, and changes nothing in it.
describe.concurrent('config check and the token store', () => {
  const withStore = (store: string) => CONFIG.replace('store: { kind: memory }', `store: ${store}`);

  it('pings a Redis store: ok when it answers, one line naming it (without its password) when not', async () => {
    const up = writeFixture({ config: withStore(`{ kind: redis, url: "${REDIS_URL}", prefix: "${testPrefix()}" }`), clients: sound() });
    const ok = await check(up);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`redis token store ${REDIS_URL.replace(/\/\/[^@]*@/, '//')}`);

    const down = writeFixture({ config: withStore('{ kind: redis, url: "redis://:s3cret-pw@127.0.0.1:1/0" }'), clients: sound() });
    const run = await check(down);
    expect(problems(run)).toEqual([
      expect.stringMatching(new RegExp(`^${esc(down.configFile)}: store\\.url: cannot reach the token store: redis://127\\.0\\.0\\.1:1/0: .*ECONNREFUSED`)),
    ]);
    expect(run.stderr).not.toContain('s3cret-pw');
  });

  it('opens an existing SQLite store read-only, and refuses one serve could not use', async () => {
    const dir = tempDir();
    const path = join(dir, 'tokens.db');
    await new SqliteTokenStore(path).close();
    const good = writeFixture({ config: withStore(`{ kind: sqlite, path: ${path} }`), clients: sound() });
    const before = statSync(path).mtimeMs;
    const ok = await check(good);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`sqlite token store ${path}`);
    expect(statSync(path).mtimeMs).toBe(before);

    const junk = join(dir, 'junk.db');
    writeFileSync(junk, 'not a database, but long enough to be read as one by SQLite: '.repeat(20));
    const bad = writeFixture({ config: withStore(`{ kind: sqlite, path: ${junk} }`), clients: sound() });
    expect(problems(await check(bad))).toEqual([`${junk}: cannot open the token store: file is not a database`]);

    const newer = join(dir, 'newer.db');
    const db = new Database(newer);
    db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION + 1}`);
    db.close();
    const future = writeFixture({ config: withStore(`{ kind: sqlite, path: ${newer} }`), clients: sound() });
    expect(problems(await check(future))).toEqual([expect.stringMatching(new RegExp(`^${esc(newer)}: the token store has schema version ${SQLITE_SCHEMA_VERSION + 1}, newer than`))]);
  });

  it('does not create a missing SQLite store, and says serve will', async () => {
    const path = join(tempDir(), 'state', 'tokens.db');
    const f = writeFixture({ config: withStore(`{ kind: sqlite, path: ${path} }`), clients: sound() });
    const run = await check(f);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`sqlite token store ${path} (not created yet: serve creates it)`);
    expect(existsSync(join(path, '..'))).toBe(false);
  });

  it('reads the key-encryption key with keys.source store, naming its id, and names a bad one', async () => {
    const f = writeFixture({
      config: 'issuer: https://auth.test\nclients_file: ./clients.yaml\nkeys: { source: store, encryption_key_file: ./kek }\nstore: { kind: sqlite, path: ./t.db }\n',
      clients: sound(),
    });
    const kek = join(f.dir, 'kek');
    writeFileSync(kek, `${Buffer.alloc(32, 7).toString('base64')}\n`);
    const ok = await check(f);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`signing keys in the store, key-encryption key [A-Za-z0-9_-]{12} from ${esc(kek)}`));
    writeFileSync(kek, 'hunter2\n');
    const bad = await check(f);
    expect(problems(bad)).toEqual([expect.stringMatching(new RegExp(`^${esc(kek)}: the key-encryption key is not base64`))]);
    expect(bad.stderr).not.toContain('hunter2');
  });

  it('names the memory store as what it is', async () => {
    const run = await check(writeFixture({ config: CONFIG, clients: sound() }));
    expect(run.stdout).toContain('memory token store');
  });
});

describe.concurrent('a registry with YAML aliases, in every command that reads it', () => {
  /** `n` clients whose audiences are one alias of an anchor on the first. */
  const shared = (n: number) =>
    `clients:\n${Array.from({ length: n }, (_, i) => `  - client_id: svc-${i}\n    secrets: [{ hash: "${HASH}" }]\n    audiences: ${i === 0 ? '&aud [https://api.test]' : '*aud'}\n`).join('')}`;
  const bomb = `x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]
${Array.from({ length: 9 }, (_, i) => `x${i + 1}: &x${i + 1} [${Array(10).fill(`*x${i}`).join(', ')}]`).join('\n')}
clients: []
`;

  it('takes 60 clients sharing one anchor (yaml stopped at 50 with "Excessive alias count", exit 2)', async () => {
    const f = writeFixture({ config: CONFIG, clients: shared(60) });
    const run = await check(f);
    expect(run.stdout).toContain('60 clients');
    expect(run.code).toBe(0);
    const list = await tollgateInProcess(['client', 'list', '--config', f.configFile], { cwd: f.dir });
    expect(lines(list.stdout)).toHaveLength(61);
    expect(list.code).toBe(0);
    const add = await tollgateInProcess(['client', 'add', 'one-more', '--audience', 'https://api.test', '--config', f.configFile], { cwd: f.dir });
    expect(add.stderr).toMatch(/added client "one-more"/);
    expect(add.code).toBe(0);
    const keys = await tollgateInProcess(['keys', 'list', '--config', f.configFile], { cwd: f.dir });
    expect(keys.stderr).not.toMatch(/registry does not load/);
    expect(keys.code).toBe(0);
  });

  it('refuses an alias bomb with one line and exit 1 in config check, client list, client add and serve', async () => {
    const f = writeFixture({ config: CONFIG, clients: bomb });
    const message = /clients\.yaml: YAML: its aliases expand to more than 1000000 values/;
    const found = problems(await check(f));
    expect(found).toEqual([expect.stringMatching(message)]);
    for (const args of [['client', 'list'], ['client', 'add', 'x', '--audience', 'https://api.test'], ['serve']]) {
      expectUserError(await tollgateInProcess([...args, '--config', f.configFile], { cwd: f.dir }), message);
    }
  });
});
