import { afterAll, describe, expect, it } from 'vitest';
import { PostgresTokenStore } from '../../src/store/postgres-token-store.js';
import { parsePostgresUrl } from '../../src/shared/postgres-url.js';
import { hashOf, writeFixture } from '../helpers.js';
import { type CliRun, tollgateInProcess } from './run-cli.js';
import { makeRecord } from '../store/contract/token-records.js';
import { freePort, plainSql, POSTGRES_URL, requirePostgres } from '../store/postgres-helpers.js';
import { serviceAndResourceServer, startServerProcess } from '../server-process.js';

const available = requirePostgres();
const SECRET = 'svc-secret-0123456789abcdefghijklmnopqrstu';

function tollgate(configFile: string, ...args: string[]): Promise<CliRun> {
  return tollgateInProcess([...args, '--config', configFile], { cwd: process.cwd() });
}

async function fixtureFor(url: string): Promise<string> {
  return writeFixture({
    config: `issuer: https://auth.test
keys: { dir: ./keys }
store: { kind: postgres, url: "${url}" }
`,
    clients: `clients:
  - client_id: svc
    secrets: [{ hash: "${await hashOf(SECRET)}" }]
    audiences: [https://api.test]
  - client_id: old
    secrets: [{ hash: "${await hashOf(SECRET)}" }]
    audiences: [https://api.test]
`,
  }).configFile;
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe.skipIf(!available)('the CLI against a PostgreSQL store', () => {
  // The servers' store: the CLI finds the tables it made (the run's database, its public schema).
  const store = available ? new PostgresTokenStore({ url: POSTGRES_URL }) : undefined;
  const WHERE = available ? esc(parsePostgresUrl(POSTGRES_URL).display) : '';
  afterAll(async () => {
    await store?.close();
  });

  it('config check connects and reads the schema version, and names an unreachable database without its password', async () => {
    await store!.untilOpened();
    const ok = await tollgate(await fixtureFor(POSTGRES_URL), 'config', 'check');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`postgres token store ${WHERE}`));

    const port = await freePort();
    const down = await fixtureFor(`postgres://tollgate:hunter2-pw@127.0.0.1:${port},127.0.0.1:${port}/tollgate?target_session_attrs=read-write`);
    const run = await tollgate(down, 'config', 'check');
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`store\\.url: cannot reach the token store: postgres://tollgate@127\\.0\\.0\\.1:${port},127\\.0\\.0\\.1:${port}/tollgate: .*ECONNREFUSED`));
    expect(run.stderr).not.toContain('hunter2');
  });

  it('token revoke --jti and --client revoke in the database, counting the client tokens', async () => {
    const config = await fixtureFor(POSTGRES_URL);
    const now = Math.floor(Date.now() / 1000);
    const one = makeRecord({ iat: now, clientId: 'svc' });
    await store!.record(one);
    const run = await tollgate(config, 'token', 'revoke', `--jti=${one.jti}`);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(new RegExp(`revoked token .* in ${WHERE}`));
    expect((await store!.find(one.jti))?.revokedAt).toBeDefined();

    const unknown = await tollgate(config, 'token', 'revoke', '--jti', 'no-such-jti');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(new RegExp(`no token with jti "no-such-jti" in ${WHERE}`));

    const two = [makeRecord({ iat: now - 1, clientId: 'old' }), makeRecord({ iat: now - 1, clientId: 'old' })];
    await Promise.all(two.map((r) => store!.record(r)));
    const client = await tollgate(config, 'token', 'revoke', '--client', 'old');
    expect(client.code, client.stderr).toBe(0);
    expect(client.stderr).toMatch(new RegExp(`revoked 2 live tokens of client "old" in ${WHERE}`));
    expect((await store!.find(two[1]!.jti))?.revokedAt).toBeDefined();
  });

  it('client disable and client remove revoke the client in the database, printing the count', async () => {
    const config = await fixtureFor(POSTGRES_URL);
    const now = Math.floor(Date.now() / 1000);
    const recs = [makeRecord({ iat: now - 1, clientId: 'svc' }), makeRecord({ iat: now - 1, clientId: 'svc' }), makeRecord({ iat: now - 1, clientId: 'svc' })];
    await Promise.all(recs.map((r) => store!.record(r)));
    const disable = await tollgate(config, 'client', 'disable', 'svc');
    expect(disable.code, disable.stderr).toBe(0);
    expect(disable.stderr).toMatch(new RegExp(`revoked \\d+ live tokens? of client "svc" in ${WHERE}`));
    expect((await store!.find(recs[0]!.jti))?.revokedAt).toBeDefined();

    const old = makeRecord({ iat: now - 1, clientId: 'old' });
    await store!.record(old);
    const remove = await tollgate(config, 'client', 'remove', 'old');
    expect(remove.code, remove.stderr).toBe(0);
    expect(remove.stderr).toMatch(new RegExp(`revoked \\d+ live tokens? of client "old" in ${WHERE}`));
    expect((await store!.find(old.jti))?.revokedAt).toBeDefined();
  });

  it('fails in one line, naming the servers but not the password, when the database is unreachable, and leaves the registry alone', async () => {
    const port = await freePort();
    const config = await fixtureFor(`postgres://tollgate:hunter2-pw@127.0.0.1:${port}/tollgate`);
    const run = await tollgate(config, 'token', 'revoke', '--client', 'svc');
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(new RegExp(`^tollgate: postgres://tollgate@127\\.0\\.0\\.1:${port}/tollgate: cannot write to the token store: .*ECONNREFUSED`));
    expect(run.stderr).not.toContain('hunter2');
    const disable = await tollgate(config, 'client', 'disable', 'svc');
    expect(disable.code).toBe(1);
    expect(disable.stderr).not.toContain('hunter2');
  });
});

describe.skipIf(!available)('serve against a PostgreSQL store', () => {
  const serveFixture = async (url: string): Promise<string> =>
    writeFixture({
      config: `issuer: http://127.0.0.1
listen: { host: 127.0.0.1, port: 0 }
keys: { dir: ./keys }
store: { kind: postgres, url: "${url}" }
`,
      clients: await serviceAndResourceServer(SECRET, SECRET),
    }).configFile;

  it('refuses to start on a schema written by a newer tollgate, in one line', async () => {
    // A database of its own, dropped after: the run's database keeps its current schema.
    const name = `${new URL(POSTGRES_URL).pathname.slice(1)}_newer`;
    const admin = plainSql();
    await admin.unsafe(`CREATE DATABASE ${name}`);
    try {
      const url = new URL(POSTGRES_URL);
      url.pathname = `/${name}`;
      const db = plainSql(url.toString());
      try {
        await db.unsafe('CREATE TABLE tollgate_schema (version integer NOT NULL); INSERT INTO tollgate_schema VALUES (99)');
      } finally {
        await db.end();
      }
      const started = startServerProcess(await serveFixture(url.toString()));
      await expect(started).rejects.toThrow(/store\.url: postgres:\/\/postgres@127\.0\.0\.1:5432\/\w+: the token store has schema version 99, newer than this tollgate knows \(\d+\); upgrade tollgate/);
      await expect(started).rejects.not.toThrow(/\n\s+at /);
    } finally {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });

  it('starts while the database is down, answering 503 and /readyz 503 rather than exit', async () => {
    const port = await freePort();
    const server = await startServerProcess(await serveFixture(`postgres://tollgate:hunter2-pw@127.0.0.1:${port}/tollgate`));
    try {
      expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
      const res = await fetch(`${server.url}/oauth2/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`svc:${SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(((await res.json()) as { error: string }).error).toBe('temporarily_unavailable');
      expect(server.stdout() + server.stderr()).not.toContain('hunter2');
    } finally {
      await server.stop();
    }
  });
});
