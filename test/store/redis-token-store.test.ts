import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_TTL } from '../../src/shared/limits.js';
import { RedisTokenStore } from '../../src/store/redis-token-store.js';
import { parseRedisUrl } from '../../src/shared/redis-url.js';
import type { TokenStore } from '../../src/store/token-store.js';
import { failureCountersContract } from './contract/failure-counters.js';
import { replayClaimsContract } from './contract/replay-claims.js';
import { signingKeyRecordsContract } from './contract/signing-key-records.js';
import { storeLifecycleContract } from './contract/store-lifecycle.js';
import { makeRecord, tokenRecordsContract } from './contract/token-records.js';
import { deleteKeys, freePort, plainClient, REDIS_DB, REDIS_URL, redisAnswers, requireOrSkip, testPrefix } from './redis-helpers.js';

const available = requireOrSkip(await redisAnswers(), `Redis at ${parseRedisUrl(REDIS_URL).display}`);
const PREFIX = testPrefix();
const opened: TokenStore[] = [];
const prefixOf = new Map<TokenStore, string>();

function openStore(prefix: string, url = REDIS_URL, logger?: { warn: (o: object, m: string) => void; info: (o: object, m: string) => void }): RedisTokenStore {
  const store = new RedisTokenStore({ url, prefix, ...(logger ? { logger: logger as never } : {}) });
  opened.push(store);
  prefixOf.set(store, prefix);
  return store;
}

afterAll(async () => {
  for (const store of opened) await store.close();
  if (available) await deleteKeys(PREFIX);
});

describe.skipIf(!available)('RedisTokenStore', () => {
  let n = 0;
  const open = async (): Promise<RedisTokenStore> => openStore(`${PREFIX}contract-${n++}:`);
  // Another instance on the same server and prefix, as a second tollgate process would be.
  const reopen = async (store: RedisTokenStore): Promise<RedisTokenStore> => openStore(prefixOf.get(store)!);
  tokenRecordsContract('redis', open, reopen, { expiresItself: true, uncountedClientRevocation: true });
  replayClaimsContract('redis', open);
  failureCountersContract('redis', open, reopen, { expiresItself: true });
  storeLifecycleContract('redis', open);
  signingKeyRecordsContract('redis', open, reopen);

  it('keeps a record in Redis exactly until the token expires', async () => {
    const prefix = `${PREFIX}ttl:`;
    const store = openStore(prefix);
    const now = Math.floor(Date.now() / 1000);
    const rec = makeRecord({ iat: now, exp: now + 900 });
    await store.record(rec);
    const redis = plainClient();
    await redis.connect();
    try {
      const pttl = await redis.pttl(`${prefix}token:${rec.jti}`);
      const expected = rec.exp * 1000 - Date.now();
      expect(Math.abs(pttl - expected)).toBeLessThan(2000);
      expect(await redis.hget(`${prefix}token:${rec.jti}`, 'digest')).toBe(rec.digest);
    } finally {
      redis.disconnect();
    }
  });

  it('answers a burst of commands sent in one turn, also after Redis has forgotten its scripts', async () => {
    const store = openStore(`${PREFIX}burst:`);
    const now = Math.floor(Date.now() / 1000);
    const first = Array.from({ length: 50 }, () => makeRecord({ iat: now }));
    // Issued together, these travel as one pipeline; each answer must reach its own caller.
    await Promise.all(first.map((r) => store.record(r)));
    const found = await Promise.all(first.map((r) => store.find(r.jti)));
    expect(found.map((r) => r?.digest)).toEqual(first.map((r) => r.digest));

    // A restarted or flushed server no longer knows the Lua scripts: they are loaded again.
    const redis = plainClient();
    await redis.connect();
    try {
      await redis.script('FLUSH');
    } finally {
      redis.disconnect();
    }
    const second = Array.from({ length: 20 }, () => makeRecord({ iat: now }));
    const [recorded, refound, duplicate] = await Promise.all([
      Promise.all(second.map((r) => store.record(r))),
      Promise.all(first.slice(0, 20).map((r) => store.find(r.jti))),
      store.record(first[0]!).then(
        () => 'recorded',
        (err: Error) => err.message,
      ),
    ]);
    expect(recorded).toHaveLength(20);
    expect(refound.map((r) => r?.jti)).toEqual(first.slice(0, 20).map((r) => r.jti));
    expect(duplicate).toMatch(/duplicate jti/);
    expect((await store.find(second[19]!.jti))?.digest).toBe(second[19]!.digest);
  });

  it('revokes a client with one write to one key, however many tokens it holds', async () => {
    const prefix = `${PREFIX}o1:`;
    const store = openStore(prefix);
    const now = Math.floor(Date.now() / 1000);
    const records = Array.from({ length: 300 }, () => makeRecord({ iat: now, clientId: 'busy' }));
    await Promise.all(records.map((r) => store.record(r)));

    // MONITOR shows every command the server runs, those inside scripts included.
    const watcher = plainClient();
    await watcher.connect();
    const monitor = await watcher.monitor();
    const seen: string[][] = [];
    const marker = `end-of-${randomUUID()}`;
    const done = new Promise<void>((resolve) => {
      monitor.on('monitor', (_time: string, args: string[]) => {
        if (args.includes(marker)) resolve();
        else if (args.some((a) => a.includes(prefix))) seen.push(args);
      });
    });
    const other = plainClient();
    await other.connect();
    try {
      await store.revokeClient('busy', Date.now());
      // Commands appear in MONITOR in the order they ran: once the marker shows, all have.
      await other.echo(marker);
      await done;
    } finally {
      monitor.disconnect();
      watcher.disconnect();
      other.disconnect();
    }
    const key = `${prefix}client-revoked:busy`;
    const touched = new Set(seen.flatMap((args) => args.filter((a) => a.startsWith(prefix))));
    expect([...touched]).toEqual([key]);
    const names = seen.map((args) => args[0]!.toLowerCase());
    expect(names.filter((c) => c === 'scan' || c === 'keys')).toEqual([]);
    expect(seen.length).toBeLessThanOrEqual(5);
    expect((await store.find(records[299]!.jti))?.revokedAt).toBeDefined();
  });

  it('keeps a client revocation only as long as a token issued before it can live', async () => {
    const prefix = `${PREFIX}rc:`;
    const store = openStore(prefix);
    const at = Date.now();
    await store.revokeClient('svc', at);
    const redis = plainClient();
    await redis.connect();
    try {
      expect(await redis.get(`${prefix}client-revoked:svc`)).toBe(String(at));
      const pttl = await redis.pttl(`${prefix}client-revoked:svc`);
      expect(Math.abs(pttl - (at + MAX_TTL * 1000 - Date.now()))).toBeLessThan(2000);
    } finally {
      redis.disconnect();
    }
  });

  it('shows a revocation made through one instance to another at once', async () => {
    const prefix = `${PREFIX}shared:`;
    const a = openStore(prefix);
    const b = openStore(prefix);
    const now = Math.floor(Date.now() / 1000);
    const rec = makeRecord({ iat: now });
    await a.record(rec);
    expect((await b.find(rec.jti))?.revokedAt).toBeUndefined();
    await a.revoke(rec.jti, Date.now());
    expect((await b.find(rec.jti))?.revokedAt).toBeDefined();
    await expect(b.record(rec)).rejects.toThrow(/duplicate jti/);
  });

  it('shares a store with the previous version: same keys, its 32-character jtis read and revoked', async () => {
    const prefix = `${PREFIX}upgrade:`;
    const now = Math.floor(Date.now() / 1000);
    const redis = plainClient();
    await redis.connect();
    try {
      // What the previous version wrote: a record under a jti without a tag, and a client revocation.
      const oldJti = `0${'x'.repeat(7)}${randomUUID().replaceAll('-', '').slice(0, 24)}`;
      const fields = { clientId: 'legacy', scope: 'read', aud: '["https://api.test"]', iat: String(now - 10), exp: String(now + 600), digest: 'd1' };
      await redis.hset(`${prefix}token:${oldJti}`, fields);
      await redis.pexpireat(`${prefix}token:${oldJti}`, (now + 600) * 1000);
      const older = `1${'y'.repeat(7)}${randomUUID().replaceAll('-', '').slice(0, 24)}`;
      await redis.hset(`${prefix}token:${older}`, { ...fields, clientId: 'gone', digest: 'd2' });
      await redis.set(`${prefix}client-revoked:gone`, String(now * 1000));

      const store = openStore(prefix);
      expect(await store.find(oldJti)).toMatchObject({ jti: oldJti, clientId: 'legacy', digest: 'd1' });
      expect((await store.find(older))?.revokedAt).toBe(now * 1000);
      expect(await store.revoke(oldJti, now * 1000)).toBe(true);
      expect(await redis.hget(`${prefix}token:${oldJti}`, 'revokedAt')).toBe(String(now * 1000));

      // What this version writes is where the previous one looks, so both can run side by side.
      const rec = makeRecord({ iat: now, clientId: 'legacy' });
      await store.record(rec);
      expect(await redis.hget(`${prefix}token:${rec.jti}`, 'digest')).toBe(rec.digest);
      await store.revokeClient('legacy', (now + 1) * 1000);
      expect(await redis.get(`${prefix}client-revoked:legacy`)).toBe(String((now + 1) * 1000));
    } finally {
      redis.disconnect();
    }
  });

  it('uses the database number in the URL', async () => {
    const prefix = `${PREFIX}db:`;
    const url = new URL(REDIS_URL);
    // Another database than the run's, where only this key of the run's own goes, and is deleted.
    url.pathname = REDIS_DB === 3 ? '/4' : '/3';
    const store = openStore(prefix, url.toString());
    const now = Math.floor(Date.now() / 1000);
    const rec = makeRecord({ iat: now });
    await store.record(rec);
    const named = plainClient(url.toString());
    const runs = plainClient();
    await named.connect();
    await runs.connect();
    try {
      expect(await named.exists(`${prefix}token:${rec.jti}`)).toBe(1);
      expect(await runs.exists(`${prefix}token:${rec.jti}`)).toBe(0);
      await named.del(`${prefix}token:${rec.jti}`);
    } finally {
      named.disconnect();
      runs.disconnect();
    }
  });

  it('refuses to work when the server has no such database, rather than write to database 0', async () => {
    const url = new URL(REDIS_URL);
    url.pathname = '/99999';
    const store = openStore(`${PREFIX}nodb:`, url.toString());
    await expect(store.ping()).rejects.toThrow(/cannot select database 99999/);
    await expect(store.record(makeRecord({ iat: Math.floor(Date.now() / 1000) }))).rejects.toThrow(/cannot select database/);
  });

  it('fails at once, naming the server but never the password, when Redis is unreachable', async () => {
    const port = await freePort();
    const lines: string[] = [];
    const logger = { warn: (o: object, m: string) => lines.push(JSON.stringify(o) + m), info: (o: object, m: string) => lines.push(JSON.stringify(o) + m) };
    const store = openStore(`${PREFIX}down:`, `redis://tollgate:s3cr%3Et-pa55@127.0.0.1:${port}/0`, logger);
    const err = await store.ping().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(new RegExp(`^redis://127\\.0\\.0\\.1:${port}/0: not connected`));
    expect(err?.message).not.toMatch(/s3cr|pa55/);
    // Later calls fail without waiting at all: before the event loop gets to any I/O or timer.
    const settled = store.record(makeRecord({ iat: Math.floor(Date.now() / 1000) })).then(
      () => 'recorded',
      (e: unknown) => (e as Error).message,
    );
    const nextTurn = new Promise<string>((resolve) => setImmediate(() => resolve('still waiting after a turn of the event loop')));
    expect(await Promise.race([settled, nextTurn])).toMatch(/not connected/);
    expect(lines.join('\n')).toMatch(/store\.unavailable/);
    expect(lines.join('\n')).not.toMatch(/s3cr|pa55/);
  });

  it('never repeats the password when the server refuses it', async () => {
    const url = new URL(REDIS_URL);
    url.username = 'tollgate-nobody';
    url.password = 'wr0ng-pa55word';
    const store = openStore(`${PREFIX}auth:`, url.toString());
    const err = await store.ping().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toContain(`${url.hostname}:${url.port || 6379}`);
    expect(err!.message).not.toContain('wr0ng');
  });
});
