import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readKek, type Kek } from '../../src/keys/key-encryption.js';
import { StoreKeySet, type StoreKeySetEvent } from '../../src/keys/store-key-set.js';
import { PostgresTokenStore } from '../../src/store/postgres-token-store.js';
import { RedisTokenStore } from '../../src/store/redis-token-store.js';
import type { TokenStore } from '../../src/store/token-store.js';
import { tempDir } from '../helpers.js';
import { plainSql, POSTGRES_URL, requirePostgres, testSchema } from '../store/postgres-helpers.js';
import { deleteKeys, freePort, hasRedisServer, plainClient, REDIS_URL, redisAnswers, requireOrSkip, startRedisServer, stopRedisServer, testPrefix } from '../store/redis-helpers.js';

// StoreKeySet on the servers a fleet shares: instances racing at first start, a rotation seen by
// another instance, and what the server itself holds.
const redis = requireOrSkip(await redisAnswers(), 'Redis');
const pg = requirePostgres();
const PREFIX = testPrefix();
const opened: TokenStore[] = [];
afterAll(async () => {
  for (const s of opened) await s.close();
  if (redis) await deleteKeys(PREFIX);
});

function kek(): Kek {
  const file = join(tempDir(), 'kek');
  writeFileSync(file, randomBytes(32).toString('base64'));
  return readKek(file);
}

function track<S extends TokenStore>(store: S): S {
  opened.push(store);
  return store;
}

/** A fresh place on the server: instances of a store there, and a raw look at its key records. */
interface Place {
  connect(): TokenStore;
  raw(): Promise<string>;
}

const stores: [string, boolean, () => Place][] = [
  [
    'Redis',
    redis,
    () => {
      const prefix = `${PREFIX}${randomBytes(4).toString('hex')}:`;
      return {
        connect: () => track(new RedisTokenStore({ url: REDIS_URL, prefix })),
        raw: async () => {
          const client = plainClient();
          await client.connect();
          try {
            return JSON.stringify(await client.hgetall(`${prefix}{signing-keys}:records`));
          } finally {
            client.disconnect();
          }
        },
      };
    },
  ],
  [
    'PostgreSQL',
    pg,
    () => {
      const schema = testSchema();
      return {
        connect: () => track(new PostgresTokenStore({ url: POSTGRES_URL, schema, poolSize: 2 })),
        raw: async () => {
          const sql = plainSql(POSTGRES_URL, schema);
          try {
            return JSON.stringify(await sql.unsafe('SELECT * FROM tollgate_signing_keys'));
          } finally {
            await sql.end();
          }
        },
      };
    },
  ],
];

describe.each(stores)('StoreKeySet on %s', (_name, available, place) => {
  it.skipIf(!available)('makes one first key between six instances starting at once, and brings a rotation to all', async () => {
    const { connect } = place();
    const key = kek();
    const sets = await Promise.all(Array.from({ length: 6 }, () => StoreKeySet.open(connect(), { keks: [key], generateIfEmpty: true, algorithm: 'ES256' })));
    const first = sets[0]!.jwks();
    expect(first.keys).toHaveLength(1);
    for (const s of sets) expect(s.jwks()).toEqual(first);
    const { kid } = await sets[0]!.rotate();
    for (const s of sets) {
      await s.refresh();
      expect(s.jwks().keys.map((k) => k.kid)).toEqual([kid, first.keys[0]!.kid]);
    }
  });

  it.skipIf(!available)('holds no private key in clear on the server', async () => {
    const at = place();
    const set = await StoreKeySet.open(at.connect(), { keks: [kek()], generateIfEmpty: true, algorithm: 'RS256' });
    const jwk = set.keys()[0]!.privateKey.export({ format: 'jwk' });
    const der = set.keys()[0]!.privateKey.export({ type: 'pkcs8', format: 'der' });
    const raw = await at.raw();
    expect(raw).toContain(set.signingKey().kid);
    expect(raw).not.toContain(jwk.d!);
    expect(raw).not.toContain(der.toString('base64').slice(60, 140));
    expect(raw).not.toMatch(/PRIVATE KEY/);
  });
});

describe('signing key changes with store.min_replicas', () => {
  it.skipIf(!redis)('are not reported done until the replicas have them: a server with no replica refuses, naming the replicas', async () => {
    const store = track(new RedisTokenStore({ url: REDIS_URL, prefix: `${PREFIX}replicas:`, minReplicas: 1 }));
    const err = await StoreKeySet.open(store, { keks: [kek()], generateIfEmpty: true, algorithm: 'ES256' }).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/the signing key is done on the primary, but 0 of the 1 replicas store\.min_replicas asks for acknowledged it/);
  });
});

describe('a Redis of its own going away under running instances', () => {
  it.skipIf(!hasRedisServer())('keeps the keys through the outage, says so once, follows a rotation once back, and refuses a store that came back empty', async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}/0`;
    const data = tempDir();
    let server = await startRedisServer(port, data);
    try {
      const key = kek();
      const set = await StoreKeySet.open(track(new RedisTokenStore({ url, prefix: 't:' })), { keks: [key], generateIfEmpty: true, algorithm: 'ES256' });
      const jwks = set.jwks();
      const events: StoreKeySetEvent[] = [];
      await stopRedisServer(server);
      await set.refresh((e) => events.push(e));
      await set.refresh((e) => events.push(e));
      expect(events).toEqual([{ type: 'unreachable', reason: expect.stringContaining(`127.0.0.1:${port}`) }]);
      expect(set.jwks()).toBe(jwks);
      await verifiesWith(set);

      // Back, with its data (append-only file): the instance reconnects and reports it.
      server = await startRedisServer(port, data);
      await until(async () => {
        await set.refresh((e) => events.push(e));
        return events.some((e) => e.type === 'reachable');
      });
      expect(events.filter((e) => e.type === 'unreachable')).toHaveLength(1);
      const other = await StoreKeySet.open(track(new RedisTokenStore({ url, prefix: 't:' })), { keks: [key], generateIfEmpty: false });
      const { kid } = await other.rotate('ES256');
      await set.refresh((e) => events.push(e));
      expect(set.jwks().keys.map((k) => k.kid)).toContain(kid);

      // Back without its data: no key to take, so the keys in use stay.
      await stopRedisServer(server);
      server = await startRedisServer(port, tempDir());
      const before = set.jwks();
      const after: StoreKeySetEvent[] = [];
      await until(async () => {
        await set.refresh((e) => after.push(e));
        return after.some((e) => e.type === 'rejected');
      });
      expect(after.find((e) => e.type === 'rejected')).toEqual({ type: 'rejected', problem: expect.objectContaining({ message: expect.stringMatching(/holds no signing keys/) }) });
      expect(set.jwks()).toBe(before);
    } finally {
      await stopRedisServer(server);
    }
  });
});

/** Waits for a condition the store's reconnection makes true, trying every 100 ms for at most 20 s. */
async function until(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('the condition never held');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function verifiesWith(set: StoreKeySet): Promise<void> {
  const { SignJWT, compactVerify, createLocalJWKSet } = await import('jose');
  const signing = set.signingKey();
  const jwt = await new SignJWT({}).setProtectedHeader({ alg: signing.alg, kid: signing.kid }).sign(signing.key);
  await compactVerify(jwt, createLocalJWKSet({ keys: [...set.jwks().keys] as never }));
}
