import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRedisUrl } from '../../src/shared/redis-url.js';
import { basic, tempDir, writeFixture } from '../helpers.js';
import { nginxBinary, startNginx, type NginxProcess } from '../nginx-process.js';
import { CLI, serviceAndResourceServer, startServerProcess, type ServerProcess } from '../server-process.js';
import { plainSql, POSTGRES_URL, requirePostgres } from '../store/postgres-helpers.js';
import { deleteKeys, REDIS_URL, redisAnswers, requireOrSkip, testPrefix } from '../store/redis-helpers.js';

// A fleet as it runs in production: three tollgate processes sharing one store and one set of
// signing keys, behind a real load balancer (nginx) that the clients and the resource server
// talk to. Under a bounded load of token requests, JWKS checks and introspections, the keys are
// rotated and one instance is killed with SIGKILL: no token may fail validation, no token answered
// 200 may be lost, no revocation answered 200 may be undone.

const ISSUER = 'https://auth.test';
const SVC = 'svc-secret-0123456789abcdefghijklmnopqrstu';
const RS = 'rs-secret-0123456789abcdefghijklmnopqrstuv';
/** How long a new key is published before it signs: above the resource server's JWKS cache below. */
const PUBLISH_BEFORE_USE_S = 8;
/** The resource server's JWKS cache: jose refetches after this long, or at once for an unknown kid. */
const JWKS_CACHE_MS = 2000;
const CONCURRENCY = 4;
/**
 * A bound on each load phase, whatever happens: far above what a phase needs on a slow machine
 * (a loop step is two or three requests), so that the deadlines below, not this bound, end a
 * phase that takes too long.
 */
const MAX_REQUESTS = 30_000;

const hasNginx = requireOrSkip(nginxBinary() !== undefined, 'nginx (apt-get install nginx-light)');
const hasRedis = requireOrSkip(await redisAnswers(), `Redis at ${parseRedisUrl(REDIS_URL).display}`);
const hasPostgres = requirePostgres();

const exec = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until check() is true, for at most `ms`; a "within N seconds" wait, never a timed assertion. */
async function within(ms: number, what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`not within ${ms / 1000} s: ${what}`);
    await sleep(100);
  }
}

interface Store {
  name: string;
  enabled: boolean;
  /** The store: settings, for a variant of its own; made before the instances start. */
  setup(shared: string, id: string): Promise<string>;
  teardown(id: string): Promise<void>;
}

const PREFIX = testPrefix();
const pgDatabase = (id: string) => `${new URL(POSTGRES_URL).pathname.slice(1)}_fleet_${id}`;

const STORES: Store[] = [
  {
    name: 'one SQLite file',
    enabled: true,
    setup: async (shared) => `{ kind: sqlite, path: ${join(shared, 'tollgate.db')} }`,
    teardown: async () => {},
  },
  {
    name: 'Redis',
    enabled: hasRedis,
    setup: async (_shared, id) => `{ kind: redis, url: "${REDIS_URL}", prefix: "${PREFIX}${id}:" }`,
    teardown: (id) => deleteKeys(`${PREFIX}${id}:`),
  },
  {
    name: 'PostgreSQL',
    enabled: hasPostgres,
    setup: async (_shared, id) => {
      const admin = plainSql();
      try {
        await admin.unsafe(`CREATE DATABASE ${pgDatabase(id)}`);
      } finally {
        await admin.end();
      }
      const url = new URL(POSTGRES_URL);
      url.pathname = `/${pgDatabase(id)}`;
      return `{ kind: postgres, url: "${url}" }`;
    },
    teardown: async (id) => {
      const admin = plainSql();
      try {
        await admin.unsafe(`DROP DATABASE IF EXISTS ${pgDatabase(id)} WITH (FORCE)`);
      } finally {
        await admin.end();
      }
    },
  },
];

/** Where the instances' signing keys live: one folder they share, or the store itself. */
type KeySource = 'dir' | 'store';

function keysConfig(source: KeySource, shared: string): string {
  if (source === 'dir') return `{ dir: ${join(shared, 'keys')}, publish_before_use: ${PUBLISH_BEFORE_USE_S}s }`;
  const kek = join(shared, 'kek');
  writeFileSync(kek, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  return `{ source: store, encryption_key_file: ${kek}, publish_before_use: ${PUBLISH_BEFORE_USE_S}s }`;
}

/**
 * A shared key folder with the SQLite store (a fleet on one machine: one file, one folder), and
 * keys in the store with every store. A key folder beside Redis or PostgreSQL behaves as beside
 * SQLite: the folder, not the store, carries the keys.
 */
const VARIANTS = STORES.filter((s) => s.enabled).flatMap((store) =>
  (store.name === 'one SQLite file' ? (['dir', 'store'] as const) : (['store'] as const)).map((keys: KeySource) => ({
    store,
    keys,
    id: `${store.name.replace(/\W+/g, '_').toLowerCase()}_${keys}`,
  })),
);

/** A client of the fleet: form POSTs through the balancer, retrying what failed on the way. */
class FleetClient {
  /** Attempts that failed (network error or 5xx), with when they were sent. */
  readonly failedAttempts: { path: string; status: number | string; upstream: string }[] = [];
  /** Requests sent and not yet answered, across every worker. */
  inFlight = 0;
  /** Answers per instance ("127.0.0.1:PORT"), from the balancer's X-Upstream header. */
  readonly servedBy = new Map<string, number>();

  constructor(readonly url: string) {}

  /** One request, retried (at most 5 attempts) while it fails with a network error or a 5xx. */
  async post(path: string, user: string, pass: string, params: Record<string, string>): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      this.inFlight++;
      let res: Response | undefined;
      let failure: number | string;
      try {
        res = await fetch(`${this.url}${path}`, {
          method: 'POST',
          headers: { authorization: basic(user, pass), 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(params),
        });
        failure = res.status;
      } catch (err) {
        failure = (err as Error).message;
      } finally {
        this.inFlight--;
      }
      const upstream = res?.headers.get('x-upstream') ?? '';
      if (res !== undefined && res.status < 500) {
        this.servedBy.set(upstream, (this.servedBy.get(upstream) ?? 0) + 1);
        return res;
      }
      await res?.body?.cancel();
      this.failedAttempts.push({ path, status: failure, upstream });
      if (attempt === 5) throw new Error(`${path} failed 5 times, last with ${failure}`);
      await sleep(100);
    }
  }

  async issue(): Promise<{ status: number; token?: string }> {
    const res = await this.post('/oauth2/token', 'svc', SVC, { grant_type: 'client_credentials' });
    const body = (await res.json()) as { access_token?: string };
    return res.status === 200 ? { status: 200, token: body.access_token! } : { status: res.status };
  }

  async active(token: string): Promise<boolean> {
    return ((await (await this.post('/oauth2/introspect', 'rs', RS, { token })).json()) as { active: boolean }).active;
  }

  async revoke(token: string): Promise<number> {
    const res = await this.post('/oauth2/revoke', 'svc', SVC, { token });
    await res.body?.cancel();
    return res.status;
  }
}

/** Runs `worker` on CONCURRENCY loops until stop() is called or MAX_REQUESTS are done. */
function load(worker: () => Promise<void>): { stop: () => Promise<void>; count: () => number } {
  let stopped = false;
  let done = 0;
  const loops = Array.from({ length: CONCURRENCY }, async () => {
    while (!stopped && done < MAX_REQUESTS) {
      await worker();
      done++;
    }
  });
  return {
    count: () => done,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

const kidsOf = async (base: string): Promise<string[]> =>
  (((await (await fetch(`${base}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid)).sort();

describe.skipIf(!hasNginx).each(VARIANTS)('a fleet of three behind nginx: $store.name, keys in $keys', ({ store, keys, id }) => {
  let configFile: string;
  let instances: ServerProcess[] = [];
  let nginx: NginxProcess;
  let client: FleetClient;

  beforeAll(async () => {
    const shared = tempDir('tollgate-fleet-');
    const fixture = writeFixture({
      config: `issuer: ${ISSUER}
listen: { host: 127.0.0.1, port: 0 }
trust_proxy: [127.0.0.1]
keys: ${keysConfig(keys, shared)}
store: ${await store.setup(shared, id)}
metadata: { max_age: 0 }
`,
      clients: await serviceAndResourceServer(SVC, RS),
    });
    configFile = fixture.configFile;
    if (keys === 'store') {
      // All at once against an empty store: between them they make exactly one key.
      instances = await Promise.all([startServerProcess(configFile), startServerProcess(configFile), startServerProcess(configFile)]);
    } else {
      // The first start makes the key in the shared folder; the others find it.
      instances = [await startServerProcess(configFile)];
      instances.push(...(await Promise.all([startServerProcess(configFile), startServerProcess(configFile)])));
    }
    nginx = await startNginx(instances.map((i) => Number(new URL(i.url).port)));
    client = new FleetClient(nginx.url);
  }, 60_000);

  afterAll(async () => {
    await nginx?.stop();
    for (const i of instances) await i.stop('SIGKILL');
    await store.teardown(id);
  });

  it('rotates keys under load: every instance publishes the new key within seconds, and no token fails validation', async () => {
    const before = await kidsOf(instances[0]!.url);
    expect(before).toHaveLength(1);
    for (const i of instances) expect(await kidsOf(i.url)).toEqual(before);
    // The resource server: JWKS through the balancer, cached as a real one would.
    const jwks = createRemoteJWKSet(new URL(`${nginx.url}/.well-known/jwks.json`), { cacheMaxAge: JWKS_CACHE_MS, cooldownDuration: 1000 });
    const kids = new Map<string, number>();
    const problems: string[] = [];
    const traffic = load(async () => {
      const { status, token } = await client.issue();
      if (token === undefined) {
        problems.push(`token request answered ${status}`);
        return;
      }
      try {
        await jwtVerify(token, jwks, { issuer: ISSUER, typ: 'at+jwt' });
      } catch (err) {
        problems.push(`kid ${decodeProtectedHeader(token).kid}: ${(err as Error).message}`);
      }
      const kid = decodeProtectedHeader(token).kid!;
      kids.set(kid, (kids.get(kid) ?? 0) + 1);
      if (!(await client.active(token))) problems.push(`kid ${kid}: introspection says inactive`);
    });
    try {
      await within(30_000, 'load under way', () => traffic.count() >= 20);
      const { stdout } = await exec(process.execPath, [CLI, 'keys', 'rotate', '--config', configFile]);
      const kid = stdout.trim();
      expect(before).not.toContain(kid);
      // Every instance serves the same JWKS, the new key in it.
      await within(15_000, `every instance publishes ${kid}`, async () => {
        const sets = await Promise.all(instances.map((i) => kidsOf(i.url)));
        return sets.every((s) => s.includes(kid) && JSON.stringify(s) === JSON.stringify(sets[0]));
      });
      // Then every instance signs with it, and the load goes on across the switch.
      await within((PUBLISH_BEFORE_USE_S + 20) * 1000, `tokens signed with ${kid}`, () => (kids.get(kid) ?? 0) >= 40).catch((err: Error) => {
        // Say what the load did meanwhile, so that a stall and a key that never signs tell apart.
        const bound = traffic.count() >= MAX_REQUESTS ? ', the load reached its bound' : '';
        throw new Error(`${err.message} (${traffic.count()} loop steps${bound}, tokens by kid ${JSON.stringify(Object.fromEntries(kids))}, first problems ${JSON.stringify(problems.slice(0, 3))})`);
      });
    } finally {
      await traffic.stop();
    }
    expect(problems).toEqual([]);
    expect([...kids.keys()].length).toBeGreaterThanOrEqual(2);
    expect(client.failedAttempts).toEqual([]);
    // The balancer spread the load over all three.
    expect(client.servedBy.size).toBe(3);
  }, 120_000);

  it('loses no token and no revocation when an instance is killed with SIGKILL under load', async () => {
    const issued: string[] = [];
    const revoked: string[] = [];
    const failedBefore = client.failedAttempts.length;
    let n = 0;
    const traffic = load(async () => {
      const { status, token } = await client.issue();
      if (token === undefined) throw new Error(`token request answered ${status}`);
      issued.push(token);
      // Every third token is revoked at once.
      if (n++ % 3 === 0) {
        const answer = await client.revoke(token);
        if (answer === 200) revoked.push(token);
      }
    });
    const victim = instances[1]!;
    const victimAddress = new URL(victim.url).host;
    let inFlightAtKill = 0;
    let logBeforeKill = 0;
    try {
      await within(30_000, 'load under way', () => issued.length >= 30);
      const servedBeforeKill = client.servedBy.get(victimAddress) ?? 0;
      expect(servedBeforeKill).toBeGreaterThan(0);
      inFlightAtKill = client.inFlight;
      logBeforeKill = nginx.errorLog().length;
      expect(await victim.stop('SIGKILL')).toBe('SIGKILL');
      const atKill = issued.length;
      await within(30_000, 'load going on after the kill', () => issued.length >= atKill + 60);
    } finally {
      await traffic.stop();
    }
    // The requests the instance held when it died: nginx logs each, the connection reset or
    // closed under it (a refused connection afterwards was never in flight there).
    const heldByVictim = new Set(
      nginx
        .errorLog()
        .slice(logBeforeKill)
        .split('\n')
        .filter((line) => line.includes('[error]') && line.includes(`upstream: "http://${victimAddress}/`) && !line.includes('connect() failed'))
        .map((line) => /#\d+: \*(\d+) /.exec(line)?.[1] ?? line),
    );
    // The failures the clients saw (each then retried) are at most those requests, and at most
    // what the clients had in flight; nginx resends them to another instance itself.
    const failed = client.failedAttempts.slice(failedBefore);
    expect(failed.length, JSON.stringify(failed)).toBeLessThanOrEqual(Math.min(heldByVictim.size, inFlightAtKill));
    expect(revoked.length).toBeGreaterThan(0);
    // Every token answered 200 is known to the fleet; every revocation answered 200 holds.
    const survivors = instances.filter((i) => i !== victim);
    const revokedSet = new Set(revoked);
    const wrong: string[] = [];
    for (const [index, token] of issued.entries()) {
      const active = await client.active(token);
      if (active === revokedSet.has(token)) wrong.push(`token ${index}: active ${active}, revoked ${revokedSet.has(token)}`);
    }
    expect(wrong).toEqual([]);
    // And at each surviving instance, not only through the balancer.
    for (const i of survivors) {
      const direct = new FleetClient(i.url);
      for (const token of revoked.slice(0, 20)) expect(await direct.active(token)).toBe(false);
      for (const token of issued.filter((t) => !revokedSet.has(t)).slice(0, 20)) expect(await direct.active(token)).toBe(true);
    }
  }, 120_000);
});
