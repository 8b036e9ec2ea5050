import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError } from '../shared/config-error.js';
import { MAX_TTL } from '../shared/limits.js';
import type { Reseal, SigningKeyList, SigningKeyRecord } from '../shared/signing-key-records.js';
import { SIGNING_KEYS_MIGRATION, SqliteSigningKeys } from './sqlite-signing-keys.js';
import { withClientRevocation, type ClaimOptions, type Counter, type CounterLimit, type Reservation, type ReservedHit, type TokenRecord, type TokenStore } from './token-store.js';

/**
 * Schema migrations, applied in order on open; PRAGMA user_version holds how many ran. Append
 * only: a released migration is never edited.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE tokens (
     jti        TEXT PRIMARY KEY,
     client_id  TEXT NOT NULL,
     scope      TEXT NOT NULL,
     aud        TEXT NOT NULL,          -- JSON array
     iat        INTEGER NOT NULL,       -- seconds
     exp        INTEGER NOT NULL,       -- seconds
     digest     TEXT NOT NULL,          -- SHA-256 of the compact JWT, base64url
     revoked_at INTEGER                 -- ms, NULL while active
   ) WITHOUT ROWID;
   CREATE INDEX tokens_exp ON tokens (exp);
   CREATE TABLE client_revocations (
     client_id      TEXT PRIMARY KEY,
     revoked_before INTEGER NOT NULL    -- ms: tokens with iat at or before it are revoked
   ) WITHOUT ROWID;`,
  `CREATE TABLE claims (
     key        TEXT PRIMARY KEY,       -- e.g. a client assertion's client and jti
     expires_at INTEGER NOT NULL        -- ms
   ) WITHOUT ROWID;
   CREATE TABLE counters (
     key      TEXT PRIMARY KEY,         -- e.g. a client and source address
     count    INTEGER NOT NULL,
     reset_at INTEGER NOT NULL          -- ms: the end of its window
   ) WITHOUT ROWID;`,
  `ALTER TABLE tokens ADD COLUMN cnf TEXT;  -- x5t#S256 of a bound certificate (RFC 8705)`,
  `ALTER TABLE tokens ADD COLUMN jkt TEXT;  -- thumbprint of a bound DPoP key (RFC 9449)`,
  SIGNING_KEYS_MIGRATION,
];

/** The schema version (PRAGMA user_version) this tollgate writes and reads. */
export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length;

/** Rows deleted per purge statement, so a large purge never blocks requests for long. */
const PURGE_BATCH = 1000;

interface TokenRow {
  jti: string;
  client_id: string;
  scope: string;
  aud: string;
  iat: number;
  exp: number;
  digest: string;
  revoked_at: number | null;
  cnf: string | null;
  jkt: string | null;
  revoked_before: number | null;
}

/**
 * Token state in one SQLite file (WAL mode), shared safely by every process on the machine.
 * Writes are committed before the promise resolves; revocations are also fsynced
 * (synchronous=FULL), so an acknowledged revocation survives a crash of the machine too.
 */
export class SqliteTokenStore implements TokenStore {
  readonly #db: Database.Database;
  readonly #signingKeys: SqliteSigningKeys;
  readonly #insert: Database.Statement;
  readonly #find: Database.Statement<[string], TokenRow>;
  readonly #revoke: Database.Statement;
  readonly #revokeClient: Database.Statement;
  readonly #revokeClientCounted: (clientId: string, at: number) => number;
  readonly #purge: Database.Statement;
  readonly #purgeRevocations: Database.Statement;
  readonly #insertMany: (records: readonly TokenRecord[]) => void;
  readonly #claim: (key: string, expiresAt: number, now: number) => boolean;
  readonly #reserve: Database.Transaction<(limits: readonly CounterLimit[], windowMs: number, now: number) => Reservation>;
  readonly #release: Database.Transaction<(hits: readonly ReservedHit[]) => void>;
  readonly #peek: Database.Statement<[string], { count: number; reset_at: number }>;
  readonly #purgeClaims: Database.Statement<[number]>;
  readonly #purgeCounters: Database.Statement<[number]>;
  /** Records waiting for the next group commit, with their callers' promises. */
  #pending: { record: TokenRecord; resolve: () => void; reject: (err: unknown) => void }[] = [];
  readonly #findMany: (jtis: readonly string[]) => (TokenRow | undefined)[];
  /** Lookups waiting for the next shared read transaction, with their callers' promises. */
  #pendingFinds: { jti: string; resolve: (record: TokenRecord | undefined) => void; reject: (err: unknown) => void }[] = [];

  /**
   * With `mustExist`, a missing file, or one no tollgate has prepared, is refused rather than
   * created: the CLI must change the store the servers use, not start an empty one of its own.
   */
  constructor(
    readonly path: string,
    options: { mustExist?: boolean } = {},
  ) {
    this.#db = openDatabase(path, options.mustExist ?? false);
    this.#signingKeys = new SqliteSigningKeys(this.#db);
    this.#insert = this.#db.prepare(
      'INSERT INTO tokens (jti, client_id, scope, aud, iat, exp, digest, revoked_at, cnf, jkt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.#find = this.#db.prepare<[string], TokenRow>(
      `SELECT t.*, r.revoked_before FROM tokens t LEFT JOIN client_revocations r ON r.client_id = t.client_id WHERE t.jti = ?`,
    );
    this.#revoke = this.#db.prepare('UPDATE tokens SET revoked_at = coalesce(revoked_at, ?) WHERE jti = ?');
    this.#revokeClient = this.#db.prepare(
      `INSERT INTO client_revocations (client_id, revoked_before) VALUES (?, ?)
       ON CONFLICT (client_id) DO UPDATE SET revoked_before = max(revoked_before, excluded.revoked_before)`,
    );
    // Counted in the same transaction as the revocation: the tokens it turns from live to revoked.
    const countRevocable = this.#db.prepare<[{ clientId: string; at: number }], { n: number }>(
      `SELECT count(*) AS n FROM tokens t LEFT JOIN client_revocations r ON r.client_id = t.client_id
       WHERE t.client_id = @clientId AND t.revoked_at IS NULL AND t.exp * 1000 > @at AND t.iat * 1000 <= @at
         AND (r.revoked_before IS NULL OR t.iat * 1000 > r.revoked_before)`,
    );
    this.#revokeClientCounted = this.#db.transaction((clientId: string, at: number) => {
      const { n } = countRevocable.get({ clientId, at })!;
      this.#revokeClient.run(clientId, at);
      return n;
    });
    this.#purge = this.#db.prepare(`DELETE FROM tokens WHERE jti IN (SELECT jti FROM tokens WHERE exp < ? LIMIT ${PURGE_BATCH})`);
    this.#purgeRevocations = this.#db.prepare('DELETE FROM client_revocations WHERE revoked_before < ?');
    // One read transaction for many lookups: its locks are taken and released once, not per row.
    this.#findMany = this.#db.transaction((jtis: readonly string[]) => jtis.map((jti) => this.#find.get(jti)));
    this.#insertMany = this.#db.transaction((records: readonly TokenRecord[]) => {
      for (const t of records) this.#insertOne(t);
    });
    const claimInsert = this.#db.prepare<[string, number, number]>(
      `INSERT INTO claims (key, expires_at) VALUES (?, ?)
       ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE claims.expires_at <= ?`,
    );
    this.#claim = (key, expiresAt, now) => claimInsert.run(key, expiresAt, now).changes > 0;
    const hit = this.#db.prepare<[{ key: string; now: number; window: number }], Counter>(
      `INSERT INTO counters (key, count, reset_at) VALUES (@key, 1, @now + @window)
       ON CONFLICT (key) DO UPDATE SET
         count = CASE WHEN counters.reset_at > @now THEN counters.count + 1 ELSE 1 END,
         reset_at = CASE WHEN counters.reset_at > @now THEN counters.reset_at ELSE @now + @window END
       RETURNING count, reset_at AS resetAt`,
    );
    const peek = this.#db.prepare<[string], { count: number; reset_at: number }>('SELECT count, reset_at FROM counters WHERE key = ?');
    this.#peek = peek;
    // Run with .immediate(): the write lock is taken before the counts are read, so another
    // process cannot read the same counts between this check and this add.
    this.#reserve = this.#db.transaction((limits: readonly CounterLimit[], windowMs: number, now: number): Reservation => {
      for (const [i, { key, limit }] of limits.entries()) {
        const row = peek.get(key);
        const counter = row !== undefined && row.reset_at > now ? { count: row.count, resetAt: row.reset_at } : { count: 0, resetAt: 0 };
        if (counter.count >= limit) return { granted: false, full: i, counter };
      }
      return { granted: true, counters: limits.map(({ key }) => hit.get({ key, now, window: windowMs })!) };
    });
    const unhit = this.#db.prepare<[string, number]>('UPDATE counters SET count = count - 1 WHERE key = ? AND reset_at = ? AND count > 0');
    this.#release = this.#db.transaction((hits: readonly ReservedHit[]) => {
      for (const { key, resetAt } of hits) unhit.run(key, resetAt);
    });
    this.#purgeClaims = this.#db.prepare<[number]>('DELETE FROM claims WHERE expires_at < ?');
    this.#purgeCounters = this.#db.prepare<[number]>('DELETE FROM counters WHERE reset_at <= ?');
  }

  /**
   * Group commit: records that arrive in the same turn of the event loop are written in one
   * transaction, and each caller's promise resolves once that transaction has committed. Under
   * load this turns hundreds of commits a second into a few dozen.
   */
  record(t: TokenRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#pending.length === 0) setImmediate(() => this.#flush());
      this.#pending.push({ record: t, resolve, reject });
    });
  }

  #flush(): void {
    const batch = this.#pending;
    this.#pending = [];
    try {
      this.#insertMany(batch.map((p) => p.record));
      for (const p of batch) p.resolve();
    } catch {
      // One bad record (a duplicate jti) must not fail its neighbours: retry one by one.
      for (const p of batch) {
        try {
          this.#insertOne(p.record);
          p.resolve();
        } catch (err) {
          p.reject(err);
        }
      }
    }
  }

  #insertOne(t: TokenRecord): void {
    this.#insert.run(t.jti, t.clientId, t.scope, JSON.stringify(t.aud), t.iat, t.exp, t.digest, t.revokedAt ?? null, t.cnf ?? null, t.jkt ?? null);
  }

  /**
   * Lookups that arrive in the same turn of the event loop share one read transaction, as
   * records share one write transaction: under load, many introspections land in one turn.
   */
  find(jti: string): Promise<TokenRecord | undefined> {
    return new Promise((resolve, reject) => {
      if (this.#pendingFinds.length === 0) setImmediate(() => this.#flushFinds());
      this.#pendingFinds.push({ jti, resolve, reject });
    });
  }

  #flushFinds(): void {
    const batch = this.#pendingFinds;
    this.#pendingFinds = [];
    let rows: (TokenRow | undefined)[];
    try {
      rows = batch.length === 1 ? [this.#find.get(batch[0]!.jti)] : this.#findMany(batch.map((p) => p.jti));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => {
      // A row that cannot be read fails its own lookup, not the others, and never the process.
      try {
        p.resolve(toRecord(rows[i]));
      } catch (err) {
        p.reject(err);
      }
    });
  }

  async revoke(jti: string, at: number): Promise<boolean> {
    return this.#durably(() => this.#revoke.run(at, jti).changes > 0);
  }

  async revokeClient(clientId: string, at: number): Promise<number> {
    return this.#durably(() => this.#revokeClientCounted(clientId, at));
  }

  async purgeExpired(now: number): Promise<number> {
    const before = Math.floor(now / 1000);
    let total = 0;
    for (;;) {
      const { changes } = this.#purge.run(before);
      total += changes;
      if (changes < PURGE_BATCH) break;
      // Let requests waiting on the event loop run between batches.
      await new Promise((resolve) => setImmediate(resolve));
    }
    // A client-wide revocation older than the longest token lifetime can no longer match a live token.
    this.#purgeRevocations.run(now - MAX_TTL * 1000);
    this.#purgeClaims.run(now);
    this.#purgeCounters.run(now);
    return total;
  }

  async claimOnce(key: string, expiresAt: number, now: number, options: ClaimOptions = {}): Promise<boolean> {
    // Durable before the answer: a crash must not let an assertion be used twice.
    if (options.fsync === false) return this.#claim(key, expiresAt, now);
    return this.#durably(() => this.#claim(key, expiresAt, now));
  }

  async reserveHits(limits: readonly CounterLimit[], windowMs: number, now: number): Promise<Reservation> {
    return this.#reserve.immediate(limits, windowMs, now);
  }

  async peekCounts(keys: readonly string[], now: number): Promise<Counter[]> {
    return keys.map((key) => {
      const row = this.#peek.get(key);
      return row !== undefined && row.reset_at > now ? { count: row.count, resetAt: row.reset_at } : { count: 0, resetAt: 0 };
    });
  }

  async releaseHits(hits: readonly ReservedHit[]): Promise<void> {
    this.#release.immediate(hits);
  }

  async listSigningKeys(): Promise<SigningKeyList> {
    return whileBusy(() => this.#signingKeys.list());
  }

  async signingKeyGeneration(): Promise<number> {
    return whileBusy(() => this.#signingKeys.generation());
  }

  async addSigningKey(record: SigningKeyRecord, options: { onlyIfNone?: boolean } = {}): Promise<boolean> {
    return whileBusy(() => this.#signingKeys.add(record, options.onlyIfNone === true));
  }

  async removeSigningKey(kid: string): Promise<boolean> {
    return whileBusy(() => this.#signingKeys.remove(kid));
  }

  async resealSigningKeys(generation: number, reseals: readonly Reseal[]): Promise<boolean> {
    return whileBusy(() => this.#signingKeys.reseal(generation, reseals));
  }

  async ping(): Promise<void> {
    this.#db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.#pending.length > 0) this.#flush();
    if (this.#pendingFinds.length > 0) this.#flushFinds();
    if (this.#db.open) this.#db.close();
  }

  /** Runs a write with a full fsync of the WAL before it returns. */
  #durably<T>(write: () => T): T {
    this.#db.pragma('synchronous = FULL');
    try {
      return write();
    } finally {
      this.#db.pragma('synchronous = NORMAL');
    }
  }
}

function toRecord(row: TokenRow | undefined): TokenRecord | undefined {
  if (row === undefined) return undefined;
  const record: TokenRecord = {
    jti: row.jti,
    clientId: row.client_id,
    scope: row.scope,
    aud: JSON.parse(row.aud) as string[],
    iat: row.iat,
    exp: row.exp,
    digest: row.digest,
    ...(row.cnf === null ? {} : { cnf: row.cnf }),
    ...(row.jkt === null ? {} : { jkt: row.jkt }),
    ...(row.revoked_at === null ? {} : { revokedAt: row.revoked_at }),
  };
  return withClientRevocation(record, row.revoked_before ?? undefined);
}

/** How long a statement waits for a lock another process holds before it fails with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5_000;

/**
 * Runs `step` again while it fails with SQLITE_BUSY, for up to BUSY_TIMEOUT_MS. Switching a new
 * file to WAL needs it: when the workers of `serve --workers N` open the file at the same moment,
 * each reads it and then asks for the write lock, and SQLite answers all but one at once with
 * SQLITE_BUSY instead of waiting, since waiting could deadlock. The one that wins converts the
 * file; the others then find it in WAL mode. Runs only at start, so the sleep may block.
 */
function whileBusy<T>(step: () => T): T {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      return step();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code !== 'string' || !code.startsWith('SQLITE_BUSY') || Date.now() >= deadline) throw err;
      Atomics.wait(pause, 0, 0, 10 + Math.random() * 40);
    }
  }
}

function openDatabase(path: string, mustExist: boolean): Database.Database {
  if (mustExist && !existsSync(path)) {
    throw ConfigError.single(path, 'no token store here: the file does not exist (a server creates it on its first start)');
  }
  let db: Database.Database | undefined;
  try {
    if (!mustExist) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // A statement waits up to BUSY_TIMEOUT_MS for a lock another process holds (busy_timeout).
    const opened = new Database(path, { timeout: BUSY_TIMEOUT_MS, fileMustExist: mustExist });
    db = opened;
    if (mustExist && opened.pragma('user_version', { simple: true }) === 0) {
      opened.close();
      db = undefined;
      throw ConfigError.single(path, 'not a token store: no tollgate server has used this file');
    }
    whileBusy(() => opened.pragma('journal_mode = WAL'));
    // NORMAL in WAL mode loses nothing when the process dies, only on power loss; revocations
    // switch to FULL for their own commit.
    db.pragma('synchronous = NORMAL');
  } catch (err) {
    db?.close();
    if (err instanceof ConfigError) throw err;
    throw ConfigError.single(path, `cannot open the token store: ${(err as Error).message}`);
  }
  migrate(db, path);
  return db;
}

function migrate(db: Database.Database, path: string): void {
  // One process migrates at a time; the others wait on the lock and then see the new version.
  const run = db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw ConfigError.single(path, `the token store has schema version ${version}, newer than this tollgate knows (${MIGRATIONS.length}); upgrade tollgate`);
    }
    for (let v = version; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  });
  try {
    run.immediate();
  } catch (err) {
    db.close();
    if (err instanceof ConfigError) throw err;
    throw ConfigError.single(path, `cannot prepare the token store: ${(err as Error).message}`);
  }
}
