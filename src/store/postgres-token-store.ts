import { readFileSync } from 'node:fs';
import { checkServerIdentity, type ConnectionOptions } from 'node:tls';
import type { Logger } from 'pino';
import postgres, { type Sql } from 'postgres';
import { ConfigError } from '../shared/config-error.js';
import { MAX_TTL } from '../shared/limits.js';
import { parsePostgresUrl, redactPassword, type PostgresTarget } from '../shared/postgres-url.js';
import { migrate, PostgresSchemaError, POSTGRES_SCHEMA_VERSION, readVersion } from './postgres-schema.js';
import { postgresSigningKeys } from './postgres-signing-keys.js';
import type { Reseal, SigningKeyList, SigningKeyRecord } from '../shared/signing-key-records.js';
import { withClientRevocation, type Counter, type CounterLimit, type Reservation, type ReservedHit, type TokenRecord, type TokenStore } from './token-store.js';

/** Connections per process: enough for pipelined traffic, few enough for many instances on one server. */
const POOL_SIZE = 8;
/** How long one operation may take before the request gets a 503 instead of waiting on. */
const STATEMENT_TIMEOUT_MS = 3000;
/** How long one connection attempt may take, per host, unless the URL's connect_timeout says otherwise. */
const CONNECT_TIMEOUT_S = 3;
/** How long the schema check or migration at start may take, waiting on other instances' included. */
const OPEN_TIMEOUT_MS = 10_000;
/** While the database is unreachable, how often the store tries it again. */
const PROBE_INTERVAL_MS = 500;
/** Rows deleted per purge statement, so a large purge never holds locks or a connection for long. */
const PURGE_BATCH = 1000;

/** A failure of the PostgreSQL store. Its message names the servers but never the password. */
export class PostgresStoreError extends Error {
  override readonly name = 'PostgresStoreError';
}

export interface PostgresTokenStoreOptions {
  /** A libpq connection URL, with one host or several (failover). */
  url: string;
  /** A schema of its own for the tables, created if missing; default: the role's search_path. */
  schema?: string;
  /** Where losing and regaining the database is reported; nothing is logged without it. */
  logger?: Pick<Logger, 'warn' | 'info'>;
  /**
   * For the CLI: the tables must already be there, made by a server of this version; an empty
   * database is refused rather than given tables the servers do not use.
   */
  mustExist?: boolean;
  /** Connections in the pool (default 8). */
  poolSize?: number;
}

interface TokenRow {
  jti: string;
  client_id: string;
  scope: string;
  aud: string;
  iat: string;
  exp: string;
  digest: string;
  cnf: string | null;
  jkt: string | null;
  revoked_at: string | null;
  revoked_before: string | null;
}

const FIND_ONE = `SELECT t.*, r.revoked_before FROM tollgate_tokens t
  LEFT JOIN tollgate_client_revocations r ON r.client_id = t.client_id WHERE t.jti = $1`;
const FIND_MANY = `SELECT t.*, r.revoked_before FROM tollgate_tokens t
  LEFT JOIN tollgate_client_revocations r ON r.client_id = t.client_id
  WHERE t.jti = ANY (ARRAY(SELECT json_array_elements_text($1::json)))`;
const INSERT_MANY = `INSERT INTO tollgate_tokens (jti, client_id, scope, aud, iat, exp, digest, cnf, jkt, revoked_at)
  SELECT jti, client_id, scope, aud, iat, exp, digest, cnf, jkt, revoked_at FROM json_to_recordset($1::json)
    AS r(jti text, client_id text, scope text, aud text, iat bigint, exp bigint, digest text, cnf text, jkt text, revoked_at bigint)
  ON CONFLICT (jti) DO NOTHING RETURNING jti`;
// The count and the revocation in one statement: every part sees the same snapshot, so the
// count is of tokens live and not yet revoked just before this revocation.
const REVOKE_CLIENT = `WITH prev AS (SELECT revoked_before FROM tollgate_client_revocations WHERE client_id = $1),
  up AS (INSERT INTO tollgate_client_revocations (client_id, revoked_before) VALUES ($1, $2::bigint)
         ON CONFLICT (client_id) DO UPDATE SET revoked_before = greatest(tollgate_client_revocations.revoked_before, excluded.revoked_before))
  SELECT count(*) AS n FROM tollgate_tokens t
  WHERE t.client_id = $1 AND t.revoked_at IS NULL AND t.exp * 1000 > $2::bigint AND t.iat * 1000 <= $2::bigint
    AND t.iat * 1000 > coalesce((SELECT revoked_before FROM prev), -1)`;

/**
 * The driver's unsafe() sends a statement unnamed unless told: a Parse and Describe, and a wait
 * for the parameter types, before every Bind, which doubled the round trips of each record and
 * lookup. Named, each connection prepares a statement once and then only binds it.
 */
const PREPARED = { prepare: true } as const;

/** INSERT batches under way at once; records arriving meanwhile wait for the next batch (measured: 1 beats 2). */
const INSERTS_IN_FLIGHT = 1;

/**
 * SELECT batches of lookups under way at once; lookups arriving meanwhile wait and go together
 * into the next one. Idle, a lookup goes out in the turn it arrives; under load, one statement
 * answers many introspections instead of each taking a connection of its own.
 */
const FINDS_IN_FLIGHT = 2;

/**
 * Token state in PostgreSQL, shared by every instance that uses the same database, with the
 * failover of a primary and its standbys: with several hosts in the URL the store uses the
 * writable one and moves to a promoted standby by itself.
 *
 * Every write is committed (and, with synchronous replication, on a standby) before its promise
 * resolves. Records that arrive in one turn of the event loop go in one INSERT; lookups of one
 * turn in one SELECT; statements of different turns share connections, pipelined by the driver.
 *
 * While the database is unreachable or hung, operations fail at once or after
 * STATEMENT_TIMEOUT_MS (503 for the request), and the store tries the database again every
 * PROBE_INTERVAL_MS in the background, so service resumes without a restart.
 */
export class PostgresTokenStore implements TokenStore {
  readonly target: PostgresTarget;
  readonly #options: PostgresTokenStoreOptions;
  readonly #tls: boolean | 'prefer' | 'require' | ConnectionOptions;
  readonly #logger: PostgresTokenStoreOptions['logger'];
  /** One pool per host of the URL, each made when the host is first tried. */
  readonly #pools: (Sql | undefined)[];
  /** The host in use: the first of the URL's that answered as target_session_attrs asks. */
  #active: number | undefined;
  /** Choosing the host and preparing the schema, under way or done; undefined: to be tried again. */
  #opening: Promise<Sql> | undefined;
  /** A schema this tollgate cannot use: every operation fails with it, never retried. */
  #fatal: Error | undefined;
  #down = false;
  #lastError: string | undefined;
  #probe: NodeJS.Timeout | undefined;
  #probing = false;
  #closed = false;
  #pending: { record: TokenRecord; resolve: () => void; reject: (err: unknown) => void }[] = [];
  #pendingFinds: { jti: string; resolve: (record: TokenRecord | undefined) => void; reject: (err: unknown) => void }[] = [];
  /** Batches sent and not yet answered, so close() lets them finish. */
  readonly #inFlight = new Set<Promise<unknown>>();
  // Records of the next millisecond join an INSERT batch: under load a commit then carries
  // several tokens instead of one each (measured: issuance on PostgreSQL 0.77x of SQLite with one
  // INSERT per turn of the event loop, 0.87x so; see bench/RESULTS.md), for at most about a
  // millisecond more per token when idle. Lookups go out in the turn they arrive.
  readonly #inserts = new Batches(INSERTS_IN_FLIGHT, (go) => setTimeout(go, 1), () => this.#pending.length > 0, () => this.#track(this.#flush()));
  readonly #finds = new Batches(FINDS_IN_FLIGHT, setImmediate, () => this.#pendingFinds.length > 0, () => this.#track(this.#flushFinds()));

  constructor(options: PostgresTokenStoreOptions) {
    this.#options = options;
    try {
      this.target = parsePostgresUrl(options.url);
    } catch (err) {
      // The reason never repeats the URL.
      throw ConfigError.single('store.url', (err as Error).message);
    }
    this.#logger = options.logger;
    this.#tls = tlsOptions(this.target);
    this.#pools = this.target.hosts.map(() => undefined);
    // A server prepares the schema at once; the CLI only checks it, when it first needs it.
    if (!options.mustExist) this.#open().catch(() => {});
  }

  /**
   * Resolves once the first attempt to reach the database has ended, whatever its outcome (a
   * database down at start is retried in the background); rejects when the database holds a
   * schema this tollgate must not use, which no retry can mend: serve then refuses to start.
   */
  async untilOpened(): Promise<void> {
    await this.#open().catch(() => {});
    if (this.#fatal !== undefined) throw this.#fatal;
  }

  /**
   * Runs `query` on the server the store would use, without preparing the schema: for `config
   * check`, which must change nothing. Bounded and sanitised like every operation.
   */
  async read<T>(query: (sql: Sql) => Promise<T>): Promise<T> {
    try {
      return await withDeadline(query(await this.#select()), STATEMENT_TIMEOUT_MS);
    } catch (err) {
      throw this.#failed(err);
    }
  }

  /**
   * The driver's pool for one host. Hosts are chosen here rather than by the driver's own
   * multi-host support, which, when every host is down, never fails the waiting query and
   * reconnects in a busy loop (measured: 1.2 s of CPU in 5 s); a single-host pool fails at once.
   */
  #pool(i: number): Sql {
    const existing = this.#pools[i];
    if (existing !== undefined) return existing;
    const t = this.target;
    const host = t.hosts[i]!;
    const connection: Record<string, string> = {
      application_name: t.applicationName,
      // The server gives up on a statement the store has already given up on.
      statement_timeout: String(STATEMENT_TIMEOUT_MS),
      lock_timeout: String(STATEMENT_TIMEOUT_MS),
      idle_in_transaction_session_timeout: String(4 * STATEMENT_TIMEOUT_MS),
      // Each statement is prepared once per connection, but planned at every execution with the
      // table as it is then. A generic plan is kept for the connection's life: made while the
      // table was nearly empty (a fresh database, the first minutes), it read every row for
      // each lookup once the table had grown, until the next ANALYZE (measured: lookups on
      // 30,000 records at half the rate of SQLite's, a million rows read a second). These
      // statements take microseconds to plan, and lookups and records are batched.
      plan_cache_mode: 'force_custom_plan',
    };
    if (this.#options.schema !== undefined) connection.search_path = `"${this.#options.schema.replaceAll('"', '""')}"`;
    const sql = postgres({
      host: host.host,
      port: host.port,
      database: t.database,
      user: t.user,
      ...(t.password === undefined ? {} : { pass: t.password }),
      ssl: forHost(this.#tls, host.host),
      max: this.#options.poolSize ?? POOL_SIZE,
      connect_timeout: t.connectTimeout ?? CONNECT_TIMEOUT_S,
      // Idle connections are closed after a while, so a pool made during a burst shrinks again.
      idle_timeout: 60,
      // The store's own probe paces the attempts while the database is down.
      backoff: (attempt: number) => Math.min(0.05 * attempt, 0.5),
      keep_alive: 30,
      // Only text, bigint and json travel here: no need to fetch the server's array types.
      fetch_types: false,
      prepare: true,
      onnotice: () => {},
      connection,
      types: {},
    });
    this.#pools[i] = sql;
    return sql;
  }

  /**
   * The pool of the server to use: every host of the URL is asked at once, and the first in the
   * URL's order that answers as target_session_attrs asks wins, as libpq would choose (read-write:
   * transaction_read_only is off; primary: not in recovery; any: the first that answers).
   */
  async #select(): Promise<Sql> {
    // A probe still running when the store closes must not open connections again.
    if (this.#closed) throw this.#error('the store is closed');
    if (this.#active !== undefined) return this.#pool(this.#active);
    const t = this.target;
    const connectMs = (t.connectTimeout ?? CONNECT_TIMEOUT_S) * 1000 + STATEMENT_TIMEOUT_MS;
    const verdicts = await Promise.all(
      t.hosts.map(async (_, i): Promise<string | undefined> => {
        try {
          const [row] = await withDeadline(
            this.#pool(i).unsafe<{ ro: string; rec: boolean }[]>("SELECT current_setting('transaction_read_only') AS ro, pg_is_in_recovery() AS rec"),
            connectMs,
          );
          if (t.targetSessionAttrs === 'read-write' && row?.ro !== 'off') return 'read-only';
          if (t.targetSessionAttrs === 'primary' && row?.rec !== false) return 'a standby';
          return undefined;
        } catch (err) {
          return redactPassword(describeError(err), t.password);
        }
      }),
    );
    const chosen = verdicts.indexOf(undefined);
    // Connections to the hosts not chosen are not kept: the next choice asks them anew.
    for (const [i, pool] of this.#pools.entries()) {
      if (i === chosen || pool === undefined) continue;
      this.#pools[i] = undefined;
      void pool.end({ timeout: 0 }).catch(() => {});
    }
    if (chosen === -1) {
      const reasons = t.hosts.length === 1 ? verdicts[0]! : t.hosts.map((h, i) => `${h.host}:${h.port} ${verdicts[i]}`).join('; ');
      throw new NoServer(t.hosts.length === 1 ? reasons : `no server to use (target_session_attrs=${t.targetSessionAttrs}): ${reasons}`);
    }
    this.#active = chosen;
    return this.#pool(chosen);
  }

  /**
   * Chooses the server and checks the schema, or (unless mustExist) creates or migrates it;
   * shared by concurrent callers, and done anew after the store loses its server.
   */
  #open(): Promise<Sql> {
    if (this.#opening !== undefined) return this.#opening;
    let opening: Promise<Sql> | undefined;
    opening = (async () => {
      try {
        const sql = await this.#select();
        await withDeadline<unknown>(this.#options.mustExist ? this.#checkExisting(sql) : migrate(sql, this.#options.schema), OPEN_TIMEOUT_MS);
        return sql;
      } catch (err) {
        if (err instanceof PostgresSchemaError) {
          this.#fatal = new PostgresStoreError(`${this.target.display}: ${err.message}`);
          throw this.#fatal;
        }
        if (this.#opening === opening) this.#opening = undefined;
        throw this.#failed(err);
      }
    })();
    this.#opening = opening;
    return opening;
  }

  async #checkExisting(sql: Sql): Promise<void> {
    const version = await readVersion(sql);
    if (version === 0) throw new PostgresSchemaError('no tollgate tables in this database (a server creates them on its first start)');
    if (version > POSTGRES_SCHEMA_VERSION) {
      throw new PostgresSchemaError(`the token store has schema version ${version}, newer than this tollgate knows (${POSTGRES_SCHEMA_VERSION}); upgrade tollgate`);
    }
    if (version < POSTGRES_SCHEMA_VERSION) {
      throw new PostgresSchemaError(`the token store has schema version ${version}, older than this tollgate's (${POSTGRES_SCHEMA_VERSION}); start a server of this version first, which migrates it`);
    }
  }

  /**
   * Runs one operation: after the schema is ready, failing at once while the database is known
   * to be down, within STATEMENT_TIMEOUT_MS, and with an error that never carries the password.
   */
  async #run<T>(op: (sql: Sql) => Promise<T>): Promise<T> {
    if (this.#closed) throw this.#error('the store is closed');
    if (this.#fatal !== undefined) throw this.#fatal;
    if (this.#down) throw this.#error(`not connected${this.#lastError === undefined ? '' : ` (${this.#lastError})`}`);
    const sql = await this.#open();
    try {
      return await withDeadline(op(sql), STATEMENT_TIMEOUT_MS);
    } catch (err) {
      throw this.#failed(err);
    }
  }

  /** The error to give a caller; a failure of the connection also marks the store down. */
  #failed(err: unknown): PostgresStoreError {
    if (err instanceof PostgresStoreError) return err;
    const message = redactPassword(describeError(err), this.target.password);
    if (isConnectionFailure(err)) this.#markDown(message);
    return this.#error(message);
  }

  #error(reason: string): PostgresStoreError {
    return new PostgresStoreError(`${this.target.display}: ${reason}`);
  }

  /**
   * The server is lost (down, hung, or no longer accepting writes: a demoted primary): requests
   * fail at once, and a probe chooses a server anew until one answers.
   */
  #markDown(reason: string): void {
    this.#lastError = reason;
    this.#active = undefined;
    this.#opening = undefined;
    if (this.#down || this.#closed) return;
    this.#down = true;
    // Reported once per outage, not once per attempt.
    this.#logger?.warn(
      { event: 'store.unavailable', store: this.target.display, reason },
      'token store unreachable: token, introspection and revocation answer 503 until it is back',
    );
    this.#probe = setInterval(() => void this.#tryAgain(), PROBE_INTERVAL_MS);
    this.#probe.unref();
  }

  async #tryAgain(): Promise<void> {
    if (this.#probing || this.#closed) return;
    this.#probing = true;
    try {
      await this.#open();
    } catch {
      // #failed noted why; the next probe tries again.
      return;
    } finally {
      this.#probing = false;
    }
    clearInterval(this.#probe);
    this.#probe = undefined;
    this.#down = false;
    this.#lastError = undefined;
    const host = this.target.hosts[this.#active ?? 0]!;
    this.#logger?.info({ event: 'store.recovered', store: this.target.display, host: `${host.host}:${host.port}` }, 'token store reachable again');
  }

  /**
   * Group commit: records are written by one INSERT per batch, and each caller's promise
   * resolves once its batch has committed. A batch gathers the records of about a millisecond,
   * and while INSERTS_IN_FLIGHT batches are under way new records wait and go together into the
   * next one, so that the commits (each a WAL flush) follow the database's pace rather than the
   * rate of tokens: one INSERT per turn of the event loop sent a commit for almost every token
   * under load. A duplicate jti fails only its own caller.
   */
  record(t: TokenRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ record: t, resolve, reject });
      this.#inserts.schedule();
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#pending;
    this.#pending = [];
    const rows = batch.map(({ record: t }) => ({
      jti: t.jti,
      client_id: t.clientId,
      scope: t.scope,
      aud: JSON.stringify(t.aud),
      iat: t.iat,
      exp: t.exp,
      digest: t.digest,
      cnf: t.cnf ?? null,
      jkt: t.jkt ?? null,
      revoked_at: t.revokedAt ?? null,
    }));
    let inserted: { jti: string }[];
    try {
      inserted = await this.#run((sql) => sql.unsafe<{ jti: string }[]>(INSERT_MANY, [json(rows)], PREPARED));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    const fresh = new Set(inserted.map((r) => r.jti));
    for (const p of batch) {
      // The first caller of a jti new to the table owns it; any other is a duplicate.
      if (fresh.delete(p.record.jti)) p.resolve();
      else p.reject(this.#error('duplicate jti: a token with this jti is already recorded'));
    }
  }

  /**
   * Lookups that arrive in the same turn of the event loop share one SELECT, and while
   * FINDS_IN_FLIGHT of those are under way, the lookups that arrive wait and share the next.
   */
  find(jti: string): Promise<TokenRecord | undefined> {
    return new Promise((resolve, reject) => {
      this.#pendingFinds.push({ jti, resolve, reject });
      this.#finds.schedule();
    });
  }

  async #flushFinds(): Promise<void> {
    const batch = this.#pendingFinds;
    this.#pendingFinds = [];
    let rows: TokenRow[];
    try {
      rows =
        batch.length === 1
          ? await this.#run((sql) => sql.unsafe<TokenRow[]>(FIND_ONE, [batch[0]!.jti], PREPARED))
          : await this.#run((sql) => sql.unsafe<TokenRow[]>(FIND_MANY, [json([...new Set(batch.map((p) => p.jti))])], PREPARED));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    const byJti = new Map(rows.map((r) => [r.jti, r]));
    for (const p of batch) {
      // A row that cannot be read fails its own lookup, not the others.
      try {
        p.resolve(toRecord(byJti.get(p.jti)));
      } catch (err) {
        p.reject(err);
      }
    }
  }

  #track(work: Promise<void>): Promise<void> {
    this.#inFlight.add(work);
    void work.finally(() => this.#inFlight.delete(work));
    return work;
  }

  async revoke(jti: string, at: number): Promise<boolean> {
    const result = await this.#run((sql) => sql.unsafe('UPDATE tollgate_tokens SET revoked_at = coalesce(revoked_at, $1::bigint) WHERE jti = $2', [at, jti], PREPARED));
    return result.count > 0;
  }

  async revokeClient(clientId: string, at: number): Promise<number> {
    const [row] = await this.#run((sql) => sql.unsafe<{ n: string }[]>(REVOKE_CLIENT, [clientId, at], PREPARED));
    return Number(row?.n ?? 0);
  }

  /**
   * Deletes expired records PURGE_BATCH rows at a time, each batch its own short statement
   * that skips rows another instance's purge holds: several instances may purge at once, and
   * requests never wait behind a purge.
   */
  async purgeExpired(now: number): Promise<number> {
    const total = await this.#deleteInBatches('tollgate_tokens', 'exp < $1::bigint', Math.floor(now / 1000));
    // A client-wide revocation older than the longest token lifetime can no longer match a live token.
    await this.#deleteInBatches('tollgate_client_revocations', 'revoked_before < $1::bigint', now - MAX_TTL * 1000);
    await this.#deleteInBatches('tollgate_claims', 'expires_at < $1::bigint', now);
    await this.#deleteInBatches('tollgate_counters', 'reset_at <= $1::bigint', now);
    return total;
  }

  async #deleteInBatches(table: string, condition: string, bound: number): Promise<number> {
    const statement = `DELETE FROM ${table} WHERE ctid = ANY (ARRAY(SELECT ctid FROM ${table} WHERE ${condition} LIMIT ${PURGE_BATCH} FOR UPDATE SKIP LOCKED))`;
    let total = 0;
    for (;;) {
      const { count } = await this.#run((sql) => sql.unsafe(statement, [bound], PREPARED));
      total += count;
      if (count < PURGE_BATCH) return total;
    }
  }

  async claimOnce(key: string, expiresAt: number, now: number): Promise<boolean> {
    const result = await this.#run((sql) =>
      sql.unsafe(
        `INSERT INTO tollgate_claims AS c (key, expires_at) VALUES ($1, $2::bigint)
         ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE c.expires_at <= $3::bigint`,
        [key, expiresAt, now],
        PREPARED,
      ),
    );
    return result.count > 0;
  }

  async reserveHits(limits: readonly CounterLimit[], windowMs: number, now: number): Promise<Reservation> {
    if (limits.length === 0) return { granted: true, counters: [] };
    const rows = await this.#run((sql) =>
      sql.unsafe<{ granted: boolean; idx: number; count: string; reset_at: string }[]>(
        `SELECT * FROM tollgate_reserve_hits(ARRAY(SELECT json_array_elements_text($1::json)),
           ARRAY(SELECT json_array_elements_text($2::json)::bigint), $3::bigint, $4::bigint)`,
        [json(limits.map((l) => l.key)), json(limits.map((l) => l.limit)), windowMs, now],
        PREPARED,
      ),
    );
    const first = rows[0];
    if (first !== undefined && !first.granted) {
      return { granted: false, full: first.idx, counter: { count: Number(first.count), resetAt: Number(first.reset_at) } };
    }
    return { granted: true, counters: rows.map((r) => ({ count: Number(r.count), resetAt: Number(r.reset_at) })) };
  }

  async peekCounts(keys: readonly string[], now: number): Promise<Counter[]> {
    if (keys.length === 0) return [];
    const rows = await this.#run((sql) =>
      sql.unsafe<{ key: string; count: string; reset_at: string }[]>(
        'SELECT key, count, reset_at FROM tollgate_counters WHERE key = ANY (ARRAY(SELECT json_array_elements_text($1::json)))',
        [json(keys)],
        PREPARED,
      ),
    );
    const byKey = new Map(rows.map((r) => [r.key, r]));
    return keys.map((key) => {
      const row = byKey.get(key);
      return row !== undefined && Number(row.reset_at) > now ? { count: Number(row.count), resetAt: Number(row.reset_at) } : { count: 0, resetAt: 0 };
    });
  }

  async releaseHits(hits: readonly ReservedHit[]): Promise<void> {
    if (hits.length === 0) return;
    await this.#run((sql) =>
      sql.unsafe(
        `UPDATE tollgate_counters c SET count = c.count - 1
         FROM json_to_recordset($1::json) AS h(key text, reset_at bigint)
         WHERE c.key = h.key AND c.reset_at = h.reset_at AND c.count > 0`,
        [json(hits.map((h) => ({ key: h.key, reset_at: h.resetAt })))],
        PREPARED,
      ),
    );
  }

  async listSigningKeys(): Promise<SigningKeyList> {
    return this.#run((sql) => postgresSigningKeys.list(sql));
  }

  async signingKeyGeneration(): Promise<number> {
    return this.#run((sql) => postgresSigningKeys.generation(sql));
  }

  async addSigningKey(record: SigningKeyRecord, options: { onlyIfNone?: boolean } = {}): Promise<boolean> {
    return this.#run((sql) => postgresSigningKeys.add(sql, record, options.onlyIfNone === true));
  }

  async removeSigningKey(kid: string): Promise<boolean> {
    return this.#run((sql) => postgresSigningKeys.remove(sql, kid));
  }

  async resealSigningKeys(generation: number, reseals: readonly Reseal[]): Promise<boolean> {
    return this.#run((sql) => postgresSigningKeys.reseal(sql, generation, reseals));
  }

  async ping(): Promise<void> {
    await this.#run((sql) => sql.unsafe('SELECT 1'));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // Lookups and records asked before close are still answered.
    if (this.#pending.length > 0) this.#track(this.#flush());
    if (this.#pendingFinds.length > 0) this.#track(this.#flushFinds());
    await Promise.allSettled([...this.#inFlight]);
    this.#closed = true;
    clearInterval(this.#probe);
    await Promise.all(this.#pools.map((pool) => pool?.end({ timeout: 1 }).catch(() => {})));
  }
}

/** The driver's TLS setting for libpq's sslmode and certificate files. */
function tlsOptions(t: PostgresTarget): boolean | 'prefer' | 'require' | ConnectionOptions {
  const read = (name: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw ConfigError.single(file, `cannot read the store's ${name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'store.url');
    }
  };
  const client = t.sslcert === undefined ? {} : { cert: read('sslcert', t.sslcert), key: read('sslkey', t.sslkey!) };
  const ca = t.sslrootcert === undefined || t.sslrootcert === 'system' ? {} : { ca: read('sslrootcert', t.sslrootcert) };
  // libpq: require with a root certificate file given checks the chain, as verify-ca.
  const mode = t.sslmode === 'require' && t.sslrootcert !== undefined ? 'verify-ca' : t.sslmode;
  switch (mode) {
    case 'disable':
      return false;
    case 'allow':
    case 'prefer':
      return t.sslcert === undefined ? 'prefer' : { rejectUnauthorized: false, ...client };
    case 'require':
      return t.sslcert === undefined ? 'require' : { rejectUnauthorized: false, ...client };
    case 'verify-ca':
      // The chain is checked, the host name is not.
      return { rejectUnauthorized: true, ...ca, ...client, checkServerIdentity: () => undefined };
    case 'verify-full':
      // The host name is checked per host (forHost).
      return { rejectUnauthorized: true, ...ca, ...client };
  }
}

/**
 * The TLS setting for one host. The driver hands Node an open socket and no host name, so Node
 * would check the certificate against "localhost": verify-full checks it against the host of
 * the URL instead, an IP address against the certificate's IP addresses.
 */
function forHost(tls: boolean | 'prefer' | 'require' | ConnectionOptions, host: string): boolean | 'prefer' | 'require' | ConnectionOptions {
  if (typeof tls !== 'object' || tls.checkServerIdentity !== undefined) return tls;
  return { ...tls, checkServerIdentity: (_name, cert) => checkServerIdentity(host, cert) };
}

/** SQLSTATEs and driver codes that mean the connection, not the statement, failed. */
function isConnectionFailure(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (err instanceof DeadlineExceeded || err instanceof NoServer) return true;
  if (typeof code !== 'string') return true;
  if (/^[0-9A-Z]{5}$/.test(code)) return code.startsWith('08') || code.startsWith('57P') || code === '53300' || code === '25006' || code === '28000' || code === '28P01';
  // The driver's own (CONNECTION_CLOSED, CONNECT_TIMEOUT, ECONNREFUSED...) are all about the connection.
  return true;
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  // The driver's connection errors read "write CONNECT_TIMEOUT host:port".
  const message = err.message.replace(/^write /, '');
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? `${message} (SQLSTATE ${code})` : message;
}

/**
 * A value for a `$n::json` parameter: the driver serialises it (JSON.stringify) once it knows
 * the parameter's type, so it is passed as it is, not as a string (which would arrive as a JSON string).
 */
function json(value: unknown): never {
  return value as never;
}

/** No host of the URL could be used. */
class NoServer extends Error {
  override readonly name = 'NoServer';
}

class DeadlineExceeded extends Error {
  override readonly name = 'DeadlineExceeded';
}

/** `work`, or a rejection once `ms` have passed without it settling. */
function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded(`no answer within ${ms} ms`)), ms);
  });
  // A late failure of the abandoned work must not be an unhandled rejection.
  work.catch(() => {});
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

function toRecord(row: TokenRow | undefined): TokenRecord | undefined {
  if (row === undefined) return undefined;
  const record: TokenRecord = {
    jti: row.jti,
    clientId: row.client_id,
    scope: row.scope,
    aud: JSON.parse(row.aud) as string[],
    iat: Number(row.iat),
    exp: Number(row.exp),
    digest: row.digest,
    ...(row.cnf === null ? {} : { cnf: row.cnf }),
    ...(row.jkt === null ? {} : { jkt: row.jkt }),
    ...(row.revoked_at === null ? {} : { revokedAt: Number(row.revoked_at) }),
  };
  return withClientRevocation(record, row.revoked_before === null ? undefined : Number(row.revoked_before));
}

/**
 * Batches of work of one kind: `run` sends what is waiting (`due`), after `wait`, with at most
 * `limit` batches under way; what arrives meanwhile goes in the next batch, sent as one ends.
 */
class Batches {
  #running = 0;
  #scheduled = false;

  constructor(
    private readonly limit: number,
    private readonly wait: (go: () => void) => unknown,
    private readonly due: () => boolean,
    private readonly run: () => Promise<void>,
  ) {}

  schedule(): void {
    if (this.#scheduled || this.#running >= this.limit || !this.due()) return;
    this.#scheduled = true;
    this.wait(() => {
      this.#scheduled = false;
      if (this.#running >= this.limit || !this.due()) return;
      this.#running++;
      void this.run().finally(() => {
        this.#running--;
        this.schedule();
      });
    });
  }
}
