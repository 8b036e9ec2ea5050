import { Cluster, Redis, type ChainableCommander, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { MAX_TTL } from '../shared/limits.js';
import { TOKEN_SCRIPTS, type TokenScripts } from './redis-scripts.js';
import { parseRedisNode, parseRedisUrl } from '../shared/redis-url.js';
import { clientTag, jtiTag } from './token-slot.js';
import type { Reseal, SigningKeyList, SigningKeyRecord } from '../shared/signing-key-records.js';
import { withClientRevocation, type Counter, type CounterLimit, type Reservation, type ReservedHit, type TokenRecord, type TokenStore } from './token-store.js';

/** How long one command may take before the request gets a 503 instead of waiting on. */
const COMMAND_TIMEOUT_MS = 2000;
/** How long one connection attempt may take, the first one included. */
const CONNECT_TIMEOUT_MS = 2000;
/** The longest pause between reconnection attempts, so service resumes within seconds. */
const MAX_RECONNECT_DELAY_MS = 2000;
/** How long no cluster node may have failed before an outage is reported over. */
const NODE_QUIET_MS = 5000;
/** How long a revocation waits for store.min_replicas replicas to acknowledge it (WAIT). */
export const REPLICA_WAIT_MS = 1000;

/** A failure of the Redis store. Its message names the server but never its credentials. */
export class RedisStoreError extends Error {
  override readonly name = 'RedisStoreError';
}

export interface RedisTokenStoreOptions {
  /** redis:// or rediss:// URL of a single Redis server, with optional password and db number. */
  url?: string | undefined;
  /**
   * Redis Sentinel: the name the sentinels monitor the primary under, some sentinels (host:port),
   * and the sentinels' own credentials if they require one.
   */
  sentinel?: { readonly master: string; readonly nodes: readonly string[]; readonly username?: string | undefined; readonly password?: string | undefined } | undefined;
  /** Redis Cluster: some of its nodes (host:port). */
  cluster?: { readonly nodes: readonly string[] } | undefined;
  /** With sentinel or cluster: the data servers' ACL user and password, and TLS to every server. */
  username?: string | undefined;
  password?: string | undefined;
  tls?: boolean | undefined;
  /** A revocation resolves only once this many replicas acknowledged it (WAIT); 0: at once. */
  minReplicas?: number | undefined;
  /** Put before every key, so several deployments can share one server. */
  prefix: string;
  /** Where losing and regaining the connection is reported; nothing is logged without it. */
  logger?: Pick<Logger, 'warn' | 'info'> | undefined;
}

type Client = (Redis | Cluster) & TokenScripts;

/**
 * Token state in Redis, shared by every instance that uses the same servers and prefix: one
 * server (store.url), a primary found through Sentinel, or a Redis Cluster.
 *
 * Keys, one server or Sentinel: `<prefix>token:<jti>` is a hash holding the record, expiring at
 * the token's exp, so Redis itself forgets expired tokens. `<prefix>client-revoked:<clientId>`
 * holds the time (ms) before which every token of the client is revoked, kept for MAX_TTL past
 * it: no token issued before it can outlive that. Revoking a client is one write, and each later
 * lookup reads one more key in the same script, whatever the number of tokens.
 *
 * Keys, Cluster: under the client's hash tag (token-slot.ts), which the jti carries:
 * `<prefix>{<tag>}:token:<jti>` as above, and `<prefix>{<tag>}:client-revoked`, a hash of the
 * revocation times of the clients with that tag. A lookup, a record and a revocation each
 * touch one slot, the lookup is still one round trip, and its script names both its keys.
 *
 * With minReplicas, a revocation is sent on a connection of its own followed by WAIT, so that a
 * replica that is slow or gone holds up revocations only, never the other requests.
 *
 * Commands fail at once while Redis is unreachable, and the client keeps reconnecting (and
 * following failovers) in the background, so requests get 503 during an outage or a failover
 * and service resumes without a restart.
 */
export class RedisTokenStore implements TokenStore {
  /** Where the store connects, without credentials: safe for messages and logs. */
  readonly display: string;
  readonly #prefix: string;
  readonly #clustered: boolean;
  readonly #db: number;
  /** Every password the store was given: taken out of any message, however unlikely their presence. */
  readonly #passwords: string[];
  readonly #minReplicas: number;
  readonly #client: Client;
  /** With minReplicas: the connection revocations and their WAIT go through. */
  readonly #durable: Client | undefined;
  readonly #logger: RedisTokenStoreOptions['logger'];
  /** Until the first connection attempt ends, commands wait for it instead of failing. */
  #firstAttempt: Promise<void> | undefined;
  #lastError: string | undefined;
  #down = false;
  /** When a cluster node last failed (ms). */
  #lastNodeError = 0;
  /** The server refused the db number of the URL on this connection. */
  #selectFailed = false;

  constructor(options: RedisTokenStoreOptions) {
    const modes = [options.url, options.sentinel, options.cluster].filter((m) => m !== undefined).length;
    if (modes !== 1) throw new TypeError('a Redis store needs exactly one of url, sentinel, cluster');
    this.#prefix = options.prefix;
    this.#logger = options.logger;
    this.#minReplicas = options.minReplicas ?? 0;
    this.#clustered = options.cluster !== undefined;
    const connect = this.#connector(options);
    this.display = connect.display;
    this.#db = connect.db;
    this.#passwords = [connect.password, options.sentinel?.password].filter((p): p is string => p !== undefined && p !== '');
    this.#client = connect();
    this.#durable = this.#minReplicas > 0 ? connect() : undefined;
    // The second connection's troubles are the first's: reported through it, not twice.
    this.#durable?.on('error', () => {});

    this.#client.on('connect', () => {
      this.#selectFailed = false;
    });
    this.#client.on('error', (err: Error) => this.#onError(err));
    this.#client.on('ready', () => this.#onReady());
    // A cluster stays ready while one of its nodes fails: that node's errors come apart, and the
    // outage is over once commands succeed with no node failing for a while.
    this.#client.on('node error', (err: Error) => {
      this.#lastNodeError = Date.now();
      this.#onError(err);
    });
    this.#firstAttempt = Promise.all([this.#client, ...(this.#durable ? [this.#durable] : [])].map(firstAttempt)).then(() => {
      this.#firstAttempt = undefined;
    });
  }

  /** A function that opens one connection (or cluster client) as options say, and what to call it. */
  #connector(options: RedisTokenStoreOptions): (() => Client) & { display: string; db: number; password: string | undefined } {
    const common = {
      connectionName: 'tollgate',
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
      retryStrategy: (attempt: number) => Math.min(100 * attempt, MAX_RECONNECT_DELAY_MS),
    } satisfies RedisOptions;
    const credentials = {
      ...(options.username === undefined ? {} : { username: options.username }),
      ...(options.password === undefined ? {} : { password: options.password }),
      ...(options.tls === true ? { tls: {} } : {}),
    };
    if (options.url !== undefined) {
      const target = parseRedisUrl(options.url);
      const { host, port, db, tls, username, password } = target;
      // Options are given as an object, never as the URL, so nothing in the URL can override them.
      const open = (): Client =>
        new Redis({
          host,
          port,
          db,
          ...(username === undefined ? {} : { username }),
          ...(password === undefined ? {} : { password }),
          ...(tls ? { tls: {} } : {}),
          ...common,
          // Commands issued in the same turn of the event loop go out in one write and come back in
          // one read: under load this is most of the cost of a round trip (measured: introspection
          // on Redis went from about 4,500 to 7,000 requests/s).
          enableAutoPipelining: true,
          scripts: TOKEN_SCRIPTS,
        }) as Client;
      return Object.assign(open, { display: target.display, db, password });
    }
    if (options.sentinel !== undefined) {
      const { master, nodes, username: sentinelUsername, password: sentinelPassword } = options.sentinel;
      const open = (): Client =>
        new Redis({
          sentinels: nodes.map((n) => parseRedisNode(n)),
          name: master,
          role: 'master',
          ...(sentinelUsername === undefined ? {} : { sentinelUsername }),
          ...(sentinelPassword === undefined ? {} : { sentinelPassword }),
          ...credentials,
          ...(options.tls === true ? { enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
          ...common,
          enableAutoPipelining: true,
          scripts: TOKEN_SCRIPTS,
          // Told by the sentinels of a failover at once rather than when the old primary fails.
          failoverDetector: true,
          sentinelRetryStrategy: (attempt: number) => Math.min(100 * attempt, MAX_RECONNECT_DELAY_MS),
          // A primary demoted to a replica refuses writes: look for the new one.
          reconnectOnError: (err: Error) => err.message.startsWith('READONLY'),
        }) as Client;
      return Object.assign(open, { display: describeRedis(options), db: 0, password: options.password });
    }
    const nodes = options.cluster!.nodes;
    const clusterOptions: ClusterOptions = {
      redisOptions: { ...common, ...credentials },
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      scripts: TOKEN_SCRIPTS,
      // Reads from masters only: a replica may not have the latest revocation yet.
      scaleReads: 'master',
      clusterRetryStrategy: (attempt: number) => Math.min(100 * attempt, MAX_RECONNECT_DELAY_MS),
      // MOVED and ASK during a resharding are followed; a command still misrouted after these fails.
      maxRedirections: 16,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
      slotsRefreshInterval: 5000,
    };
    const open = (): Client => new Cluster(nodes.map((n) => parseRedisNode(n)), clusterOptions) as Client;
    return Object.assign(open, { display: describeRedis(options), db: 0, password: options.password });
  }

  async record(t: TokenRecord): Promise<void> {
    const fields = ['clientId', t.clientId, 'scope', t.scope, 'aud', JSON.stringify(t.aud), 'iat', String(t.iat), 'exp', String(t.exp), 'digest', t.digest];
    if (t.revokedAt !== undefined) fields.push('revokedAt', String(t.revokedAt));
    if (t.cnf !== undefined) fields.push('cnf', t.cnf);
    if (t.jkt !== undefined) fields.push('jkt', t.jkt);
    const key = this.#tokenKey(t.jti);
    // In a cluster the record must sit beside its client's revocation, where the jti says.
    if (key === undefined || (this.#clustered && jtiTag(t.jti) !== clientTag(t.clientId))) {
      throw this.#error("the jti does not carry its client's tag: it was not issued by this tollgate");
    }
    const created = await this.#run(() => this.#client.tollgateRecord(key, String(t.exp * 1000), ...fields));
    if (created !== 1) throw this.#error('duplicate jti: a token with this jti is already recorded');
  }

  async find(jti: string): Promise<TokenRecord | undefined> {
    const key = this.#tokenKey(jti);
    if (key === undefined) return undefined;
    const r = await this.#run(() =>
      this.#clustered ? this.#client.tollgateFindTagged(key, this.#revokedClientsKey(jtiTag(jti)!)) : this.#client.tollgateFind(key, `${this.#prefix}client-revoked:`),
    );
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
    const key = this.#tokenKey(jti);
    if (key === undefined) return false;
    if (this.#durable === undefined) return (await this.#run(() => this.#client.tollgateRevoke(key, String(at)))) === 1;
    return (await this.#durably('revocation', (p) => (p as ChainableCommander & TokenScripts).tollgateRevoke(key, String(at)))) === 1;
  }

  async revokeClient(clientId: string, at: number): Promise<undefined> {
    const args = [String(at), String(at + MAX_TTL * 1000)] as const;
    const write = (client: Client | ChainableCommander) => {
      const c = client as (Client | ChainableCommander) & TokenScripts;
      return this.#clustered
        ? c.tollgateRevokeClientTagged(this.#revokedClientsKey(clientTag(clientId)), clientId, ...args)
        : c.tollgateRevokeClient(`${this.#prefix}client-revoked:${clientId}`, ...args);
    };
    if (this.#durable === undefined) await this.#run(() => write(this.#client));
    else await this.#durably('client revocation', write);
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
    // Separate commands, which auto-pipelining sends together: in a cluster the keys may live
    // on several servers, which one pipeline could not reach.
    const replies = await this.#run(() =>
      Promise.all(keys.map(async (key) => [await this.#client.get(this.#counterKey(key)), await this.#client.pttl(this.#counterKey(key))] as const)),
    );
    // Redis keeps the windows by its own clock; resetAt is their end by the caller's.
    return replies.map(([value, pttl]) => {
      const count = Number(value ?? 0);
      return count > 0 && pttl > 0 ? { count, resetAt: now + pttl } : { count: 0, resetAt: 0 };
    });
  }

  async releaseHits(hits: readonly ReservedHit[], windowMs: number, now: number): Promise<void> {
    if (hits.length === 0) return;
    const keys = hits.map(({ key }) => this.#counterKey(key));
    await this.#run(() => this.#client.tollgateReleaseHits(keys.length, ...keys, String(windowMs), ...hits.map(({ resetAt }) => String(resetAt - now))));
  }

  async listSigningKeys(): Promise<SigningKeyList> {
    const [generation, flat] = await this.#run(() => this.#client.tollgateListSigningKeys(...this.#signingKeyKeys()));
    const keys: SigningKeyRecord[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) keys.push(JSON.parse(flat[i + 1]!) as SigningKeyRecord);
    keys.sort((a, b) => a.createdAt - b.createdAt || a.kid.localeCompare(b.kid));
    return { generation: Number(generation), keys };
  }

  async signingKeyGeneration(): Promise<number> {
    return Number((await this.#run(() => this.#client.get(this.#signingKeyKeys()[1]))) ?? 0);
  }

  async addSigningKey(record: SigningKeyRecord, options: { onlyIfNone?: boolean } = {}): Promise<boolean> {
    const args = [...this.#signingKeyKeys(), record.kid, JSON.stringify(record), options.onlyIfNone === true ? '1' : '0'] as const;
    return (await this.#writeKeys('signing key', (c) => c.tollgateAddSigningKey(...args))) === 1;
  }

  async removeSigningKey(kid: string): Promise<boolean> {
    return (await this.#writeKeys('signing key removal', (c) => c.tollgateRemoveSigningKey(...this.#signingKeyKeys(), kid))) === 1;
  }

  async resealSigningKeys(generation: number, reseals: readonly Reseal[]): Promise<boolean> {
    // The records are whole JSON values: the new ones are made here from a read at the same
    // generation, and the script writes them only if the generation has not moved since.
    const current = await this.listSigningKeys();
    if (current.generation !== generation) return false;
    const byKid = new Map(reseals.map((r) => [r.kid, r]));
    const args = current.keys.flatMap((k) => {
      const r = byKid.get(k.kid);
      return r === undefined ? [] : [k.kid, JSON.stringify({ ...k, sealed: r.sealed, kekId: r.kekId })];
    });
    return (await this.#writeKeys('key re-seal', (c) => c.tollgateResealSigningKeys(...this.#signingKeyKeys(), String(generation), ...args))) === 1;
  }

  /** The records' hash and the generation, under one hash tag: one slot in a cluster. */
  #signingKeyKeys(): [string, string] {
    return [`${this.#prefix}{signing-keys}:records`, `${this.#prefix}{signing-keys}:generation`];
  }

  /** A change of the signing keys: acknowledged by store.min_replicas replicas, as revocations are. */
  async #writeKeys(what: string, write: (client: (Client | ChainableCommander) & TokenScripts) => Promise<number> | unknown): Promise<number> {
    if (this.#durable === undefined) return (await this.#run(() => write(this.#client) as Promise<number>)) as number;
    return Number(await this.#durably(what, (p) => write(p as ChainableCommander & TokenScripts)));
  }

  async ping(): Promise<void> {
    if (this.#client instanceof Cluster) {
      // Every master: a cluster with one of them unreachable cannot serve every token.
      const cluster = this.#client;
      await this.#run(async () => {
        const masters = cluster.nodes('master');
        if (masters.length === 0) throw new Error('no master known');
        await Promise.all(masters.map((node) => node.ping()));
      });
      return;
    }
    await this.#run(() => this.#client.ping());
  }

  async close(): Promise<void> {
    await Promise.all([this.#client, ...(this.#durable ? [this.#durable] : [])].map(closeClient));
  }

  #counterKey(key: string): string {
    return `${this.#prefix}count:${key}`;
  }

  /** The key of a token's record; undefined for a jti without a tag in a cluster, where it cannot be. */
  #tokenKey(jti: string): string | undefined {
    if (!this.#clustered) return `${this.#prefix}token:${jti}`;
    const tag = jtiTag(jti);
    return tag === undefined ? undefined : `${this.#prefix}{${tag}}:token:${jti}`;
  }

  /** Cluster: the hash of the revocation times of the clients whose tag is tag. */
  #revokedClientsKey(tag: string): string {
    return `${this.#prefix}{${tag}}:client-revoked`;
  }

  /**
   * Runs a write on the revocations' connection, then WAIT: resolves its reply once
   * minReplicas replicas have acknowledged it, rejects when fewer did within REPLICA_WAIT_MS.
   * The write stays done either way; revoking again is harmless.
   */
  async #durably(what: string, write: (pipeline: ChainableCommander) => unknown): Promise<unknown> {
    const durable = this.#durable!;
    const replies = await this.#run(async () => {
      if (durable.status !== 'ready') throw new Error('not connected');
      const pipeline = durable.pipeline();
      write(pipeline);
      pipeline.wait(this.#minReplicas, REPLICA_WAIT_MS);
      return pipeline.exec();
    });
    const [written, waited] = replies ?? [];
    const failed = written?.[0] ?? waited?.[0];
    if (failed) throw this.#error(this.#redact(failed.message));
    const acknowledged = Number(waited?.[1]);
    if (!(acknowledged >= this.#minReplicas)) {
      throw this.#error(
        `the ${what} is done on the primary, but ${acknowledged} of the ${this.#minReplicas} replicas store.min_replicas asks for acknowledged it within ${REPLICA_WAIT_MS} ms: not reported done`,
      );
    }
    return written?.[1];
  }

  async #run<T>(command: () => Promise<T>): Promise<T> {
    // At start (and in the CLI) the first connection is still being made: wait for it rather
    // than refuse the first requests. Later outages fail at once.
    if (this.#firstAttempt !== undefined) await this.#firstAttempt;
    if (this.#client.status !== 'ready' || this.#selectFailed) {
      const reason = this.#lastError === undefined ? '' : ` (${this.#lastError})`;
      throw this.#error(this.#selectFailed ? `cannot select database ${this.#db}${reason}` : `not connected${reason}`);
    }
    try {
      const result = await command();
      if (this.#down && this.#clustered && Date.now() - this.#lastNodeError > NODE_QUIET_MS) this.#onReady();
      return result;
    } catch (err) {
      // A new error carrying only the message: ioredis errors hold the command and its
      // arguments (an AUTH carries the password), which must not reach a log.
      throw this.#error(this.#redact((err as Error).message));
    }
  }

  #error(reason: string): RedisStoreError {
    return new RedisStoreError(`${this.display}: ${reason}`);
  }

  /** The message with every form of the password taken out, however unlikely its presence. */
  #redact(message: string): string {
    let out = message;
    for (const password of this.#passwords) {
      for (const form of new Set([password, encodeURIComponent(password)])) out = out.split(form).join('***');
    }
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
      { event: 'store.unavailable', store: this.display, reason: this.#lastError },
      'token store unreachable: token, introspection and revocation answer 503 until it is back',
    );
  }

  #onReady(): void {
    if (this.#selectFailed) return;
    this.#lastError = undefined;
    if (!this.#down) return;
    this.#down = false;
    this.#logger?.info({ event: 'store.recovered', store: this.display }, 'token store reachable again');
  }
}

/**
 * The servers a store with these options reaches, without credentials: `redis://host:port/db`,
 * `redis-sentinel://host:port,…/master` or `redis-cluster://host:port,…` (rediss… with TLS).
 */
export function describeRedis(options: Pick<RedisTokenStoreOptions, 'url' | 'sentinel' | 'cluster' | 'tls'>): string {
  if (options.url !== undefined) return parseRedisUrl(options.url).display;
  const scheme = options.tls === true ? 'rediss' : 'redis';
  if (options.sentinel !== undefined) return `${scheme}-sentinel://${options.sentinel.nodes.join(',')}/${options.sentinel.master}`;
  return `${scheme}-cluster://${options.cluster?.nodes.join(',') ?? ''}`;
}

/** Resolves once a client's first connection attempt has ended, however it ended. */
function firstAttempt(client: Client): Promise<void> {
  return new Promise((resolve) => {
    const settle = (): void => {
      client.off('ready', settle);
      client.off('close', settle);
      resolve();
    };
    client.on('ready', settle);
    client.on('close', settle);
    // A server that accepts the connection but is still loading its data is not waited for long.
    setTimeout(settle, CONNECT_TIMEOUT_MS).unref();
  });
}

async function closeClient(client: Client): Promise<void> {
  if (client.status === 'ready') {
    try {
      await client.quit();
      return;
    } catch {
      // Fall through to dropping the connection.
    }
  }
  client.disconnect();
}
