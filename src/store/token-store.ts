import type { SigningKeyRecords } from '../shared/signing-key-records.js';

/**
 * What tollgate remembers of an issued access token: enough to answer introspection and
 * revocation, never the token itself (RFC 9700 §4.14: a stolen store must not yield tokens).
 */
export interface TokenRecord {
  readonly jti: string;
  readonly clientId: string;
  /** Space-separated, as in the token; empty when the token has no scope. */
  readonly scope: string;
  readonly aud: readonly string[];
  /** Seconds since the epoch, as in the token. */
  readonly iat: number;
  readonly exp: number;
  /** SHA-256 of the whole compact JWT, base64url: proves a presented token is the one issued. */
  readonly digest: string;
  /** x5t#S256 of the certificate the token is bound to (RFC 8705), if any. */
  readonly cnf?: string;
  /** RFC 7638 thumbprint of the DPoP key the token is bound to (RFC 9449 cnf.jkt), if any. */
  readonly jkt?: string;
  /** When it was revoked, ms since the epoch; absent while it is not. */
  readonly revokedAt?: number;
}

/**
 * The token store, split by role so that each consumer depends on the one it uses and a
 * deployment may one day back each role with its own technology (records in one database,
 * counters in Redis). Adapters: memory (reference, tests), sqlite (default), redis (shared by
 * several instances); each implements every role (TokenStore). Every method that changes state
 * resolves only once the change is durable, as far as the backing server makes it so.
 */

/**
 * State of issued tokens, keyed by jti: what token issuance records, and introspection and
 * revocation read and change.
 */
export interface TokenRecords {
  /** Records a newly issued token. Rejects if it cannot be recorded: the token must then not be handed out. */
  record(token: TokenRecord): Promise<void>;
  /**
   * The record of jti with its revocation applied: `revokedAt` is set when the token itself was
   * revoked or its client's tokens were revoked at or after its iat. Undefined when unknown or purged.
   */
  find(jti: string): Promise<TokenRecord | undefined>;
  /** Revokes one token. Resolves false when jti is unknown. */
  revoke(jti: string, at: number): Promise<boolean>;
  /**
   * Revokes every token of a client issued up to `at` (ms), including ones recorded later by a
   * slower instance. Resolves how many of its tokens still live at `at` this revoked (not
   * revoked before), so an operator sees whether the store held any; undefined where counting
   * would mean reading every token of every client (Redis keeps no index by client).
   */
  revokeClient(clientId: string, at: number): Promise<number | undefined>;
  /** Deletes records whose exp (seconds) is before `now` (ms); returns how many. */
  purgeExpired(now: number): Promise<number>;
}

/** One-time claims, so that a credential meant to be used once cannot be replayed. */
export interface ReplayClaims {
  /**
   * Claims `key` until `expiresAt` (ms): resolves true the first time, false while an earlier
   * claim lasts at `now` (Redis keeps its own time). Used so that a client assertion's jti (RFC 7523 §3 point 7) and a DPoP proof's jti (RFC 9449 §11.1) are accepted once.
   */
  claimOnce(key: string, expiresAt: number, now: number, options?: ClaimOptions): Promise<boolean>;
}

export interface ClaimOptions {
  /**
   * Whether the claim must survive a crash of the machine before the answer (an fsync, where
   * the store would otherwise not make one: SQLite); true by default. Either way it survives a
   * crash of the process.
   */
  fsync?: boolean;
}

/**
 * Fixed-window counters shared by every instance using the store: the failure throttle's.
 * Counters reserved or released in one call carry the same `{…}` part in their keys (a hash
 * tag), which a store spread over several servers (Redis Cluster) uses to keep them together.
 */
export interface FailureCounters {
  /**
   * Adds one to every counter of `limits` if each is below its limit, or to none: atomically,
   * so that no caller on any instance sharing the store comes between the check and the add.
   * A counter lives `windowMs` from its first hit (a fixed window). Resolves the counters after
   * the hit, or, when one is at its limit, which one (its index) and its current value. Used to
   * count failed authentications as they start, so that concurrent attempts cannot all pass.
   */
  reserveHits(limits: readonly CounterLimit[], windowMs: number, now: number): Promise<Reservation>;
  /**
   * Takes back one hit from each counter, when it is still in the window that ends at the
   * `resetAt` its reservation returned: a hit made in a window that has ended is never taken
   * from the next one. Used when an attempt counted as it started turns out to have succeeded.
   */
  releaseHits(hits: readonly ReservedHit[], windowMs: number, now: number): Promise<void>;
  /**
   * The counters' current values, adding nothing (count 0 for a counter that is absent or
   * whose window has ended). Used to refuse an attempt whose check costs little before it is
   * made, without holding a hit while it runs.
   */
  peekCounts(keys: readonly string[], now: number): Promise<Counter[]>;
}

/** The connection behind a store: readiness asks it, shutdown closes it. */
export interface StoreLifecycle {
  /** Rejects when the store cannot serve requests. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A store that does every role, as each of tollgate's adapters does. */
export interface TokenStore extends TokenRecords, ReplayClaims, FailureCounters, SigningKeyRecords, StoreLifecycle {}

/** A failure counter: how many hits in its window, and when the window ends (ms). */
export interface Counter {
  count: number;
  resetAt: number;
}

/** A counter and the most hits its window may hold. */
export interface CounterLimit {
  key: string;
  limit: number;
}

/** What reserveHits did: every counter after its hit, or the first one found at its limit. */
export type Reservation = { granted: true; counters: Counter[] } | { granted: false; full: number; counter: Counter };

/** One hit that reserveHits made, to take back: the counter's key and its window's end (ms). */
export interface ReservedHit {
  key: string;
  resetAt: number;
}

/** A token revoked "before" a time t: issued in a second that began at or before t. */
export function revokedByClient(iat: number, revokedBefore: number | undefined): boolean {
  // iat has whole seconds; a token issued later in the same second as the revocation counts as
  // revoked too, which errs on the side of refusing.
  return revokedBefore !== undefined && iat * 1000 <= revokedBefore;
}

/** The record as find() returns it: with the client-wide revocation applied. */
export function withClientRevocation(record: TokenRecord, revokedBefore: number | undefined): TokenRecord {
  if (record.revokedAt !== undefined || !revokedByClient(record.iat, revokedBefore)) return record;
  return { ...record, revokedAt: revokedBefore };
}
