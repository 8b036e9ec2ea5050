import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStoreError, PostgresTokenStore } from '../../src/store/postgres-token-store.js';
import { POSTGRES_SCHEMA_VERSION } from '../../src/store/postgres-schema.js';
import { failureCountersContract } from './contract/failure-counters.js';
import { replayClaimsContract } from './contract/replay-claims.js';
import { signingKeyRecordsContract } from './contract/signing-key-records.js';
import { storeLifecycleContract } from './contract/store-lifecycle.js';
import { makeRecord, tokenRecordsContract } from './contract/token-records.js';
import { freePort, plainSql, POSTGRES_URL, requirePostgres, testSchema } from './postgres-helpers.js';

const available = requirePostgres();
const opened: PostgresTokenStore[] = [];
const schemaOf = new Map<PostgresTokenStore, string>();

function openStore(schema: string, options: { url?: string; mustExist?: boolean; logger?: { warn: (o: object, m: string) => void; info: (o: object, m: string) => void } } = {}): PostgresTokenStore {
  const store = new PostgresTokenStore({
    url: options.url ?? POSTGRES_URL,
    schema,
    ...(options.mustExist === undefined ? {} : { mustExist: options.mustExist }),
    ...(options.logger === undefined ? {} : { logger: options.logger as never }),
  });
  opened.push(store);
  schemaOf.set(store, schema);
  return store;
}

afterAll(async () => {
  for (const store of opened) await store.close();
});

describe.skipIf(!available)('PostgresTokenStore', () => {
  // Each store of the contract suites gets a schema of its own in the run's database: fresh and empty.
  const open = async (): Promise<PostgresTokenStore> => openStore(testSchema());
  // Another instance on the same tables, as a second tollgate process would be.
  const reopen = async (store: PostgresTokenStore): Promise<PostgresTokenStore> => openStore(schemaOf.get(store)!);
  tokenRecordsContract('postgres', open, reopen);
  replayClaimsContract('postgres', open);
  failureCountersContract('postgres', open, reopen);
  storeLifecycleContract('postgres', open);
  signingKeyRecordsContract('postgres', open, reopen);

  it('writes the records of one event-loop turn with one INSERT statement, each caller answered', async () => {
    const schema = testSchema();
    const store = openStore(schema);
    await store.untilOpened();
    const sql = plainSql(POSTGRES_URL, schema);
    try {
      // A statement-level trigger counts INSERT statements on the table, however many rows each has.
      await sql.unsafe(`CREATE TABLE insert_statements (rows integer);
        CREATE FUNCTION count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN INSERT INTO insert_statements SELECT count(*) FROM new_rows; RETURN NULL; END $$;
        CREATE TRIGGER count_insert AFTER INSERT ON tollgate_tokens REFERENCING NEW TABLE AS new_rows
          FOR EACH STATEMENT EXECUTE FUNCTION count_insert();`);
      const now = Math.floor(Date.now() / 1000);
      const records = Array.from({ length: 200 }, () => makeRecord({ iat: now }));
      await Promise.all(records.map((r) => store.record(r)));
      const statements = await sql.unsafe<{ rows: number }[]>('SELECT rows FROM insert_statements');
      expect(statements).toEqual([{ rows: 200 }]);
      const found = await Promise.all(records.map((r) => store.find(r.jti)));
      expect(found.map((r) => r?.digest)).toEqual(records.map((r) => r.digest));
    } finally {
      await sql.end();
    }
  });

  it('keeps at most two lookup statements under way: lookups that arrive meanwhile wait and share the next', async () => {
    const schema = testSchema();
    const store = openStore(schema);
    await store.untilOpened();
    const records = Array.from({ length: 60 }, () => makeRecord({ iat: Math.floor(Date.now() / 1000) }));
    await Promise.all(records.map((r) => store.record(r)));
    const locker = plainSql(POSTGRES_URL, schema);
    const watcher = plainSql(POSTGRES_URL);
    await watcher.unsafe('SELECT 1');
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    try {
      // The table held by another session: every SELECT of the store waits on it, as on a slow
      // server (for less than the store's lock_timeout).
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const held = locker.begin(async (tx) => {
        await tx.unsafe('LOCK TABLE tollgate_tokens IN ACCESS EXCLUSIVE MODE');
        locked();
        await released;
      });
      await isLocked;
      const lookups: Promise<unknown>[] = [];
      // Lookups over several turns of the event loop, each turn a batch of its own if nothing limited them.
      for (const r of records) {
        lookups.push(store.find(r.jti));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await new Promise((r) => setTimeout(r, 200));
      // The sessions waiting for this schema's table (other test files use tables of their own),
      // asked again for a while on a slow machine, well within the store's 3 s lock_timeout.
      const waitingNow = async () =>
        Number((await watcher.unsafe<{ n: string }[]>('SELECT count(DISTINCT pid) AS n FROM pg_locks WHERE relation = $1::regclass AND NOT granted', [`"${schema}".tollgate_tokens`]))[0]!.n);
      let waiting = await waitingNow();
      for (let i = 0; i < 15 && waiting < 2; i++) {
        await new Promise((r) => setTimeout(r, 100));
        waiting = await waitingNow();
      }
      expect(waiting).toBe(2);
      release();
      await held;
      // Once the table is free, every lookup is answered with its own record.
      const found = (await Promise.all(lookups)) as { digest: string }[];
      expect(found.map((r) => r.digest)).toEqual(records.map((r) => r.digest));
    } finally {
      release();
      await locker.end();
      await watcher.end();
    }
  });

  it('looks tokens up by index once the table has grown, whatever plan it had when it was nearly empty', async () => {
    const schema = testSchema();
    const store = openStore(schema);
    await store.untilOpened();
    const now = Math.floor(Date.now() / 1000);
    const records = Array.from({ length: 4 }, () => makeRecord({ iat: now }));
    await Promise.all(records.map((r) => store.record(r)));
    const lookUpPair = () => Promise.all([store.find(records[0]!.jti), store.find(records[1]!.jti)]);
    // Eight statements on a table of four rows: the database keeps a plan for the connection.
    for (let i = 0; i < 8; i++) await lookUpPair();
    const sql = plainSql(POSTGRES_URL, schema);
    try {
      // The table grows, as a fresh deployment's does, with no ANALYZE since.
      await sql.unsafe(`INSERT INTO tollgate_tokens (jti, client_id, scope, aud, iat, exp, digest)
        SELECT 'grown-' || g, 'svc', '', '[]', ${now}, ${now + 3600}, 'd' FROM generate_series(1, 20000) g`);
      for (let i = 0; i < 30; i++) expect((await lookUpPair()).map((r) => r?.digest)).toEqual([records[0]!.digest, records[1]!.digest]);
      await store.close();
      // The store's connections have ended; their counts reach the statistics as they exit.
      const scans = async () =>
        (await sql.unsafe<{ seq: string; idx: string }[]>(`SELECT pg_stat_clear_snapshot(), seq_scan AS seq, coalesce(idx_scan, 0) AS idx FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'tollgate_tokens'`, [schema]))[0]!;
      let seen = await scans();
      for (let i = 0; i < 50 && Number(seen.seq) + Number(seen.idx) < 38; i++) {
        await new Promise((r) => setTimeout(r, 100));
        seen = await scans();
      }
      expect(Number(seen.seq) + Number(seen.idx)).toBeGreaterThanOrEqual(38);
      // Not one full read of 20,000 rows per lookup: the 30 lookups after the growth use the index.
      expect(Number(seen.seq)).toBeLessThan(30);
    } finally {
      await sql.end();
    }
  });

  it('keeps a revocation made through one instance visible to another at once, and every record across a reopen', async () => {
    const schema = testSchema();
    const a = openStore(schema);
    const b = openStore(schema);
    const now = Math.floor(Date.now() / 1000);
    const rec = makeRecord({ iat: now });
    await a.record(rec);
    expect((await b.find(rec.jti))?.revokedAt).toBeUndefined();
    expect(await a.revoke(rec.jti, Date.now())).toBe(true);
    expect((await b.find(rec.jti))?.revokedAt).toBeDefined();
    await expect(b.record(rec)).rejects.toThrow(/duplicate jti/);
    await a.close();
    const c = openStore(schema);
    expect((await c.find(rec.jti))?.revokedAt).toBeDefined();
  });

  it('creates the schema once when several instances start at once on an empty database', async () => {
    const schema = testSchema();
    const stores = Array.from({ length: 6 }, () => openStore(schema));
    // Every instance prepares the tables as it starts; all must come up, none may fail or double them.
    await Promise.all(stores.map((s) => s.untilOpened()));
    await Promise.all(stores.map((s) => s.ping()));
    const now = Math.floor(Date.now() / 1000);
    const records = stores.map(() => makeRecord({ iat: now }));
    await Promise.all(stores.map((s, i) => s.record(records[i]!)));
    expect((await stores[5]!.find(records[0]!.jti))?.jti).toBe(records[0]!.jti);
    const sql = plainSql(POSTGRES_URL, schema);
    try {
      const rows = await sql.unsafe<{ version: number }[]>('SELECT version FROM tollgate_schema');
      expect(rows).toEqual([{ version: POSTGRES_SCHEMA_VERSION }]);
    } finally {
      await sql.end();
    }
  });

  it('refuses a schema written by a newer tollgate, never misreading it', async () => {
    const schema = testSchema();
    await openStore(schema).untilOpened();
    const sql = plainSql(POSTGRES_URL, schema);
    try {
      await sql.unsafe('UPDATE tollgate_schema SET version = 99');
    } finally {
      await sql.end();
    }
    const newer = openStore(schema);
    await expect(newer.untilOpened()).rejects.toThrow(/schema version 99, newer than this tollgate knows \(\d+\); upgrade tollgate/);
    await expect(newer.find('x')).rejects.toThrow(/newer than this tollgate knows/);
    await expect(newer.ping()).rejects.toBeInstanceOf(PostgresStoreError);
  });

  it('for the CLI, refuses a database with no tollgate tables instead of creating them', async () => {
    const store = openStore(testSchema(), { mustExist: true });
    await expect(store.revoke('x', Date.now())).rejects.toThrow(/no tollgate tables in this database/);
  });

  it('purges expired records in batches, sparing live ones and records another instance still reads', async () => {
    const store = openStore(testSchema());
    const now = Math.floor(Date.now() / 1000);
    const expired = Array.from({ length: 2500 }, () => makeRecord({ iat: now - 2000, exp: now - 1000 }));
    const live = Array.from({ length: 10 }, () => makeRecord({ iat: now }));
    await Promise.all([...expired, ...live].map((r) => store.record(r)));
    expect(await store.purgeExpired(Date.now())).toBe(2500);
    expect((await Promise.all(live.map((r) => store.find(r.jti)))).every((r) => r !== undefined)).toBe(true);
    expect(await store.find(expired[0]!.jti)).toBeUndefined();
  });

  it('fails at once, naming the servers but never the password, when the database is unreachable, and logs the outage once', async () => {
    const port = await freePort();
    const lines: string[] = [];
    const logger = { warn: (o: object, m: string) => lines.push(JSON.stringify(o) + m), info: (o: object, m: string) => lines.push(JSON.stringify(o) + m) };
    const store = openStore(testSchema(), { url: `postgres://tollgate:s3cr%3Et-pa55@127.0.0.1:${port},127.0.0.1:${port + 1}/tollgate?target_session_attrs=read-write`, logger });
    const err = await store.ping().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(PostgresStoreError);
    expect(err?.message).toMatch(new RegExp(`^postgres://tollgate@127\\.0\\.0\\.1:${port},127\\.0\\.0\\.1:${port + 1}/tollgate: `));
    const again = await store.record(makeRecord({ iat: Math.floor(Date.now() / 1000) })).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(again?.message).toMatch(/not connected/);
    expect(lines.filter((l) => l.includes('store.unavailable'))).toHaveLength(1);
    for (const text of [err?.message, again?.message, err?.stack, ...lines]) expect(text).not.toMatch(/s3cr|pa55/);
  });

  it('refuses a wrong password with an error that does not repeat it', async () => {
    // Trust auth accepts any password on this server; a role that does not exist is refused instead.
    const url = new URL(POSTGRES_URL);
    url.username = 'no_such_role';
    url.password = 'hunter2-secret';
    const store = openStore(testSchema(), { url: url.toString() });
    const err = await store.ping().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/role "no_such_role" does not exist/);
    expect(JSON.stringify(err, Object.getOwnPropertyNames(err))).not.toMatch(/hunter2/);
  });
});
