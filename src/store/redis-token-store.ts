import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { MAX_TTL } from '../shared/limits.js';
import { TOKEN_SCRIPTS, type TokenScripts } from './redis-scripts.js';
import { parseRedisUrl, type RedisTarget } from '../shared/redis-url.js';
import { withClientRevocation, type Counter, type CounterLimit, type Reservation, type ReservedHit, type TokenRecord, type TokenStore } from './token-store.js';

/** How long one command may take before the request gets a 503 instead of waiting on. */
const COMMAND_TIMEOUT_MS = 2000;
/** How long one connection attempt may take, the first one included. */
const CONNECT_TIMEOUT_MS = 2000;
/** The longest pause between reconnection attempts, so service resumes within seconds. */
const MAX_RECONNECT_DELAY_MS = 2000;

/** A failure of the Redis store. Its message names the server but never its credentials. */
export class RedisStoreError extends Error {
  override readonly name = 'RedisStoreError';
}

export interface RedisTokenStoreOptions {
  /** redis:// or rediss:// URL of a single Redis server, with optional password and db number. */
  url: string;
  /** Put before every key, so several deployments can share one server. */
  prefix: string;
  /** Where losing and regaining the connection is reported; nothing is logged without it. */
  logger?: Pick<Logger, 'warn' | 'info'>;
}

/**
 * Token state in Redis, shared by every instance that uses the same server and prefix.
 *
 * Keys: `<prefix>token:<jti>` is a hash holding the record, expiring at the token's exp, so
 * Redis itself forgets expired tokens. `<prefix>client-revoked:<clientId>` holds the time (ms)
 * before which every token of the client is revoked, kept for MAX_TTL past it: no token issued
 * before it can outlive that. Revoking a client is one write, and each later lookup reads one
 * more key in the same script, whatever the number of tokens.
 *
 * Commands fail at once while Redis is unreachable, and the client keeps reconnecting in the
 * background, so requests get 503 during an outage and service resumes without a restart.
 */
export class RedisTokenStore implements TokenStore {
  readonly target: RedisTarget;
  readonly #prefix: string;
  readonly #client: Redis & TokenScripts;
  readonly #logger: RedisTokenStoreOptions['logger'];
  /** Until the first connection attempt ends, commands wait for it instead of failing. */
  #firstAttempt: Promise<void> | undefined;
  #lastError: string | undefined;
  #down = false;
  /** The server refused the db number of the URL on this connection. */
  #selectFailed = false;

  constructor(options: RedisTokenStoreOptions) {
    this.target = parseRedisUrl(options.url);
    this.#prefix = options.prefix;
    this.#logger = options.logger;
    const { host, port, db, tls, username, password } = this.target;
    // Options are given as an object, never as the URL, so nothing in the URL can override them.
    this.#client = new Redis({
      host,
      port,
      db,
      ...(username === undefined ? {} : { username }),
      ...(password === undefined ? {} : { password }),
      ...(tls ? { tls: {} } : {}),
      connectionName: 'tollgate',
      // Commands issued in the same turn of the event loop go out in one write and come back in
      // one read: under load this is most of the cost of a round trip (measured: introspection
      // on Redis went from about 4,500 to 7,000 requests/s).
      enableAutoPipelining: true,
      // RESP2 is spoken by every Redis and proxy; nothing here needs RESP3.
      protocol: 2,
      // Fail fast: no queue of commands waiting for a connection that may not come back, no
      // command resent later on a new connection, and a bound on every command.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: CONNECT_TIMEOUT_MS,
      // How long a closing socket may linger before it is destroyed; the 2 s default also holds
      // up the exit of a CLI command whose connection had already failed.
      disconnectTimeout: 500,
      // Reconnect forever, backing off to at most 2 s between attempts.
      retryStrategy: (attempt) => Math.min(100 * attempt, MAX_RECONNECT_DELAY_MS),
      scripts: TOKEN_SCRIPTS,
    }) as Redis & TokenScripts;

    this.#client.on('connect', () => {
      this.#selectFailed = false;
    });
    this.#client.on('error', (err: Error) => this.#onError(err));
    this.#client.on('ready', () => this.#onReady());
    this.#firstAttempt = new Promise((resolve) => {
      const settle = (): void => {
        this.#client.off('ready', settle);
        this.#client.off('close', settle);
        this.#firstAttempt = undefined;
        resolve();
      };
      this.#client.on('ready', settle);
      this.#client.on('close', settle);
      // A server that accepts the connection but is still loading its data is not waited for long.
      setTimeout(settle, CONNECT_TIMEOUT_MS).unref();
    });
  }

  async record(t: TokenRecord): Promise<void> {
    const fields = ['clientId', t.clientId, 'scope', t.scope, 'aud', JSON.stringify(t.aud), 'iat', String(t.iat), 'exp', String(t.exp), 'digest', t.digest];
    if (t.revokedAt !== undefined) fields.push('revokedAt', String(t.revokedAt));
    if (t.cnf !== undefined) fields.push('cnf', t.cnf);
    if (t.jkt !== undefined) fields.push('jkt', t.jkt);
    const created = await this.#run(() => this.#client.tollgateRecord(this.#tokenKey(t.jti), String(t.exp * 1000), ...fields));
    if (created !== 1) throw this.#error('duplicate jti: a token with this jti is already recorded');
  }

  async find(jti: string): Promise<TokenRecord | undefined> {
    const r = await this.#run(() => this.#client.tollgateFind(this.#tokenKey(jti), `${this.#prefix}client-revoked:`));
    if (r === null) return undefined;
    const [clientId, scope, aud, iat, exp, digest, revokedAt, cnf, jkt, revokedBefore] = r;
    const record: TokenRecord = {
      jti,
      clientId: clientId!,
      scope: scope ?? '',
      aud: JSON.parse(aud ?? '[]') as string[],
      iat: Number(iat),
      exp: Number(exp),
      digest: digest ?? '',
      ...(cnf == null ? {} : { cnf }),
      ...(jkt == null ? {} : { jkt }),
      ...(revokedAt == null ? {} : { revokedAt: Number(revokedAt) }),
    };
    return withClientRevocation(record, revokedBefore == null ? undefined : Number(revokedBefore));
  }

  async revoke(jti: string, at: number): Promise<boolean> {
    return (await this.#run(() => this.#client.tollgateRevoke(this.#tokenKey(jti), String(at)))) === 1;
  }

  async revokeClient(clientId: string, at: number): Promise<undefined> {
    const key = `${this.#prefix}client-revoked:${clientId}`;
    await this.#run(() => this.#client.tollgateRevokeClient(key, String(at), String(at + MAX_TTL * 1000)));
    // One write, whatever the number of tokens: counting them would mean reading all of them.
    return undefined;
  }

  async purgeExpired(): Promise<number> {
    // Every record expires in Redis at its token's exp: nothing is left to sweep.
    return 0;
  }

  async claimOnce(key: string, expiresAt: number): Promise<boolean> {
    // Redis expires the claim by its own clock.
    const set = await this.#run(() => this.#client.set(`${this.#prefix}claim:${key}`, '1', 'PXAT', expiresAt, 'NX'));
    return set === 'OK';
  }

  async reserveHits(limits: readonly CounterLimit[], windowMs: number, now: number): Promise<Reservation> {
    const keys = limits.map(({ key }) => this.#counterKey(key));
    const reply = await this.#run(() => this.#client.tollgateReserveHits(keys.length, ...keys, String(windowMs), ...limits.map(({ limit }) => String(limit))));
    // Redis keeps the windows by its own clock; resetAt is their end by the caller's.
    if (reply[0] !== 1) return { granted: false, full: reply[1]!, counter: { count: reply[2]!, resetAt: now + reply[3]! } };
    return { granted: true, counters: limits.map((_, i) => ({ count: reply[1 + 2 * i]!, resetAt: now + reply[2 + 2 * i]! })) };
  }

  async peekCounts(keys: readonly string[], now: number): Promise<Counter[]> {
    if (keys.length === 0) return [];
    const pipeline = this.#client.pipeline();
    for (const key of keys) pipeline.get(this.#counterKey(key)).pttl(this.#counterKey(key));
    const replies = await this.#run(() => pipeline.exec());
    // Redis keeps the windows by its own clock; resetAt is their end by the caller's.
    return keys.map((_, i) => {
      const count = Number(replies?.[2 * i]?.[1] ?? 0);
      const ttl = Number(replies?.[2 * i + 1]?.[1] ?? -2);
      return count > 0 && ttl > 0 ? { count, resetAt: now + ttl } : { count: 0, resetAt: 0 };
    });
  }

  async releaseHits(hits: readonly ReservedHit[], windowMs: number, now: number): Promise<void> {
    if (hits.length === 0) return;
    const keys = hits.map(({ key }) => this.#counterKey(key));
    await this.#run(() => this.#client.tollgateReleaseHits(keys.length, ...keys, String(windowMs), ...hits.map(({ resetAt }) => String(resetAt - now))));
  }

  async ping(): Promise<void> {
    await this.#run(() => this.#client.ping());
  }

  async close(): Promise<void> {
    if (this.#client.status === 'ready') {
      try {
        await this.#client.quit();
        return;
      } catch {
        // Fall through to dropping the connection.
      }
    }
    this.#client.disconnect();
  }

  #counterKey(key: string): string {
    return `${this.#prefix}count:${key}`;
  }

  #tokenKey(jti: string): string {
    return `${this.#prefix}token:${jti}`;
  }

  async #run<T>(command: () => Promise<T>): Promise<T> {
    // At start (and in the CLI) the first connection is still being made: wait for it rather
    // than refuse the first requests. Later outages fail at once.
    if (this.#firstAttempt !== undefined) await this.#firstAttempt;
    if (this.#client.status !== 'ready' || this.#selectFailed) {
      const reason = this.#lastError === undefined ? '' : ` (${this.#lastError})`;
      throw this.#error(this.#selectFailed ? `cannot select database ${this.target.db}${reason}` : `not connected${reason}`);
    }
    try {
      return await command();
    } catch (err) {
      // A new error carrying only the message: ioredis errors hold the command and its
      // arguments (an AUTH carries the password), which must not reach a log.
      throw this.#error(this.#redact((err as Error).message));
    }
  }

  #error(reason: string): RedisStoreError {
    return new RedisStoreError(`${this.target.display}: ${reason}`);
  }

  /** The message with every form of the password taken out, however unlikely its presence. */
  #redact(message: string): string {
    const { password } = this.target;
    if (password === undefined || password === '') return message;
    let out = message;
    for (const form of new Set([password, encodeURIComponent(password)])) out = out.split(form).join('***');
    return out;
  }

  #onError(err: Error): void {
    this.#lastError = this.#redact(err.message);
    // ioredis reports a refused SELECT and carries on in database 0, where this store must not write.
    if ((err as { command?: { name?: string } }).command?.name === 'select') this.#selectFailed = true;
    if (this.#down) return;
    this.#down = true;
    // Reported once per outage, not once per reconnection attempt.
    this.#logger?.warn(
      { event: 'store.unavailable', store: this.target.display, reason: this.#lastError },
      'token store unreachable: token, introspection and revocation answer 503 until it is back',
    );
  }

  #onReady(): void {
    if (this.#selectFailed) return;
    this.#lastError = undefined;
    if (!this.#down) return;
    this.#down = false;
    this.#logger?.info({ event: 'store.recovered', store: this.target.display }, 'token store reachable again');
  }
}
