import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, writeFixture } from '../helpers.js';
import { httpClient, serviceAndResourceServer, startServerProcess, type ServerProcess } from '../server-process.js';
import { freePort, hasRedisServer, requireOrSkip, startRedisServer, stopRedisServer } from './redis-helpers.js';

// A Redis of this file's own, stopped and started again under a running tollgate. The shared
// Redis of the other tests is never touched.
const available = requireOrSkip(hasRedisServer(), 'the redis-server program');
const SVC = 'svc-secret-0123456789abcdefghijklmnopqrstu';
const RS = 'rs-secret-0123456789abcdefghijklmnopqrstuv';

let port: number;
let dataDir: string;
let redis: ChildProcess | undefined;
let server: ServerProcess;

describe.skipIf(!available)('Redis outage under a running tollgate', () => {
  beforeAll(async () => {
    port = await freePort();
    dataDir = tempDir('tollgate-redis-');
    redis = await startRedisServer(port, dataDir);
    const fixture = writeFixture({
      config: `issuer: http://127.0.0.1
listen: { host: 127.0.0.1, port: 0 }
keys: { dir: ./keys }
store: { kind: redis, url: "redis://127.0.0.1:${port}/0", prefix: "tollgate-fault:${randomUUID()}:" }
`,
      clients: await serviceAndResourceServer(SVC, RS),
    });
    server = await startServerProcess(fixture.configFile);
  });

  afterAll(async () => {
    if (redis) await stopRedisServer(redis, 'SIGKILL');
  });

  const { post } = httpClient(() => server.url);
  const issue = async (): Promise<string> => {
    const res = await post('/oauth2/token', 'svc', SVC, { grant_type: 'client_credentials' });
    expect(res.status).toBe(200);
    return ((await res.json()) as { access_token: string }).access_token;
  };
  const introspect = async (token: string) => (await (await post('/oauth2/introspect', 'rs', RS, { token })).json()) as { active: boolean };
  const readyz = async () => (await fetch(`${server.url}/readyz`)).status;

  async function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async function expectUnavailable(res: Response): Promise<void> {
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.error).toBe('temporarily_unavailable');
    expect(body).not.toHaveProperty('access_token');
    expect(body).not.toHaveProperty('active');
  }

  it('answers 503 while Redis is down, keeps every acknowledged revocation, and resumes without a restart', async () => {
    await until('readiness', async () => (await readyz()) === 200);
    const revoked = await issue();
    const kept = await issue();
    expect((await post('/oauth2/revoke', 'svc', SVC, { token: revoked })).status).toBe(200);
    expect((await introspect(revoked)).active).toBe(false);
    expect((await introspect(kept)).active).toBe(true);

    // A crash rather than a clean shutdown: what Redis acknowledged must already be on disk.
    await stopRedisServer(redis!, 'SIGKILL');
    await until('readyz 503', async () => (await readyz()) === 503);
    await expectUnavailable(await post('/oauth2/token', 'svc', SVC, { grant_type: 'client_credentials' }));
    await expectUnavailable(await post('/oauth2/introspect', 'rs', RS, { token: kept }));
    await expectUnavailable(await post('/oauth2/introspect', 'rs', RS, { token: revoked }));
    await expectUnavailable(await post('/oauth2/revoke', 'svc', SVC, { token: kept }));
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect(server.proc.exitCode).toBeNull();

    redis = await startRedisServer(port, dataDir);
    await until('readyz 200 after Redis is back', async () => (await readyz()) === 200);
    expect((await introspect(revoked)).active).toBe(false);
    expect((await introspect(kept)).active).toBe(true);
    const fresh = await issue();
    expect((await introspect(fresh)).active).toBe(true);
    expect(server.proc.exitCode).toBeNull();
    expect(server.stderr()).not.toMatch(/Unhandled|uncaught/i);
  });
});
