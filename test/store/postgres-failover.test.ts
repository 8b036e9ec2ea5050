import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFixture } from '../helpers.js';
import { httpClient, serviceAndResourceServer, startServerProcess, type ServerProcess } from '../server-process.js';
import {
  canRunOwnServers,
  configure,
  initPrimary,
  initStandby,
  type OwnServer,
  plainSql,
  postgresTempDir,
  promote,
  reload,
  signalServer,
  removeDir,
  startServer,
  stopServer,
} from './postgres-helpers.js';
import { requireOrSkip } from './redis-helpers.js';

// A primary and a synchronous streaming standby of this file's own, in a temporary folder, on
// free loopback ports; tollgate is given both hosts and must follow the promotion by itself.
const available = requireOrSkip(canRunOwnServers(), 'PostgreSQL server programs (initdb, pg_basebackup, pg_ctl) run as the postgres user');
const SVC = 'svc-secret-0123456789abcdefghijklmnopqrstu';
const RS = 'rs-secret-0123456789abcdefghijklmnopqrstuv';
const PASSWORD = 'pw-never-logged-7f3a';

let root = '';
let primary: OwnServer | undefined;
let standby: OwnServer | undefined;
let server: ServerProcess;

describe.skipIf(!available)('PostgreSQL failover under a running tollgate', () => {
  beforeAll(async () => {
    root = postgresTempDir('tollgate-pg-');
    primary = await initPrimary(root);
    await startServer(primary);
    standby = await initStandby(root, primary, 'standby1');
    // Synchronous replication: a commit (a revocation) is acknowledged only once the standby has it.
    configure(primary, { synchronous_standby_names: "'standby1'", synchronous_commit: 'on' });
    reload(primary);
    await startServer(standby);
    const sql = plainSql(`postgres://postgres@127.0.0.1:${primary.port}/postgres`);
    try {
      await until('the standby streaming synchronously', async () => {
        const rows = await sql.unsafe<{ sync_state: string }[]>("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'");
        return rows[0]?.sync_state === 'sync';
      });
    } finally {
      await sql.end();
    }
    const fixture = writeFixture({
      config: `issuer: http://127.0.0.1
listen: { host: 127.0.0.1, port: 0 }
keys: { dir: ./keys }
store: { kind: postgres }
`,
      clients: await serviceAndResourceServer(SVC, RS),
    });
    // The URL, with its password, only in the environment: never in the file.
    server = await startServerProcess(fixture.configFile, {
      TOLLGATE_STORE__URL: `postgres://postgres:${PASSWORD}@127.0.0.1:${primary.port},127.0.0.1:${standby.port}/postgres?target_session_attrs=read-write`,
    });
  }, 120_000);

  afterAll(async () => {
    await server?.stop('SIGKILL');
    for (const s of [primary, standby]) if (s !== undefined) await stopServer(s, 'SIGKILL');
    if (root !== '') removeDir(root);
  });

  const { post } = httpClient(() => server.url);
  const issue = async (): Promise<string> => {
    const res = await post('/oauth2/token', 'svc', SVC, { grant_type: 'client_credentials' });
    expect(res.status).toBe(200);
    return ((await res.json()) as { access_token: string }).access_token;
  };
  const introspect = async (token: string) => (await (await post('/oauth2/introspect', 'rs', RS, { token })).json()) as { active: boolean };
  const readyz = async () => (await fetch(`${server.url}/readyz`)).status;

  async function expectUnavailable(res: Response): Promise<void> {
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.error).toBe('temporarily_unavailable');
    expect(body).not.toHaveProperty('access_token');
    expect(body).not.toHaveProperty('active');
  }

  it('keeps a revocation through kill -9 of the primary and a promotion, answering 503 meanwhile and issuing again without a restart', async () => {
    await until('readiness', async () => (await readyz()) === 200);
    const revoked = await issue();
    const kept = await issue();
    expect((await post('/oauth2/revoke', 'svc', SVC, { token: revoked })).status).toBe(200);
    expect((await introspect(revoked)).active).toBe(false);
    expect((await introspect(kept)).active).toBe(true);

    // The primary crashes: nothing it had not written and replicated survives.
    await stopServer(primary!, 'SIGKILL');
    // The first request to meet the lost server already answers 503; readiness follows.
    await expectUnavailable(await post('/oauth2/token', 'svc', SVC, { grant_type: 'client_credentials' }));
    await until('readyz 503', async () => (await readyz()) === 503);
    await expectUnavailable(await post('/oauth2/introspect', 'rs', RS, { token: kept }));
    await expectUnavailable(await post('/oauth2/introspect', 'rs', RS, { token: revoked }));
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

    await promote(standby!);
    await until('readyz 200 on the promoted standby', async () => (await readyz()) === 200, 20_000);
    expect((await introspect(revoked)).active).toBe(false);
    expect((await introspect(kept)).active).toBe(true);
    const fresh = await issue();
    expect((await introspect(fresh)).active).toBe(true);
    expect(server.proc.exitCode).toBeNull();

    await server.waitForOutput(/"event":"store\.unavailable"/);
    await server.waitForOutput(/"event":"store\.recovered"/);
    expect(server.stdout() + server.stderr()).not.toContain(PASSWORD);
    expect(server.stderr()).not.toMatch(/Unhandled|uncaught/i);
  }, 90_000);

  it('answers 503 rather than hang while the database hangs, and resumes when it answers again', async () => {
    await until('readiness', async () => (await readyz()) === 200);
    const kept = await issue();
    // Every process of the (promoted) server stops answering, its connections left open.
    signalServer(standby!, 'SIGSTOP');
    try {
      // The statement deadline ends the wait: 503, not a request that hangs.
      await expectUnavailable(await post('/oauth2/introspect', 'rs', RS, { token: kept }));
      await until('readyz 503', async () => (await readyz()) === 503);
      await expectUnavailable(await post('/oauth2/token', 'svc', SVC, { grant_type: 'client_credentials' }));
    } finally {
      signalServer(standby!, 'SIGCONT');
    }
    await until('readyz 200 once the database answers', async () => (await readyz()) === 200, 20_000);
    expect((await introspect(kept)).active).toBe(true);
    expect((await introspect(await issue())).active).toBe(true);
  }, 60_000);
});

async function until(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // Not yet.
    }
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
