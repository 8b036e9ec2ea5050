import { createHash } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import type { Counter, CounterLimit, FailureCounters, Reservation, ReservedHit } from '../store/token-store.js';
import { TooManyRequests } from './errors.js';
import { guardStore } from './store-guard.js';

/** How long an attempt refused by counts held by attempts under way waits for them, at most (ms). */
const HELD_WAIT_MS = 2_000;
/** How often such an attempt looks at the count again (ms). */
const HELD_POLL_MS = 50;
/** The limit of a counter that only counts: attempts under way. */
const NO_LIMIT = 1_000_000_000;

export interface ThrottlePolicy {
  windowMs: number;
  /** Failed authentications of one client_id from one address per window. */
  clientFailures: number;
  /** Failed authentications from one address per window, whatever the client_id. */
  addressFailures: number;
}

/**
 * Limits failed client authentication (RFC 6749 §2.3.1, RFC 9700 §4.x brute force): counted in
 * the token store, so every instance sharing it shares the counts. A client_id is counted per
 * source address: a flood aimed at one client from one place does not lock that client out of
 * its other addresses.
 *
 * A secret's attempt counts as a failure from the moment it starts, before any argon2 work is
 * spent on it, and gives its count back only once it has succeeded (begin). Counting failures
 * only once they were known let every attempt of a concurrent burst through: 200 wrong secrets
 * sent at once all reached argon2 against a limit of 10. Now at most the limit of attempts per
 * window reaches argon2, across every instance, whatever their timing. Checks that cost little
 * (client assertions, certificates) are refused once a count is spent and counted when they
 * fail (check, recordFailure).
 */
export class FailureThrottle {
  constructor(
    private readonly store: FailureCounters,
    private readonly policy: ThrottlePolicy,
    private readonly clock: Clock,
  ) {}

  /**
   * Counts one secret's attempt of this client_id from this address as a failure until it is
   * released; throws TooManyRequests, counting nothing, when either count is spent.
   *
   * For a registered client_id only the client's count is held while argon2 runs; the address
   * is checked, and counted once the attempt has failed (ThrottledAttempt.failed). Holding the
   * address's count too refused correct secrets: 120 registered services behind one NAT
   * address, authenticating at once after a registry reload had emptied the verified-secret
   * cache, got 20 refusals from a limit of 100 although none had failed. argon2 work for
   * registered ids stays bounded by clientFailures per client; for unknown ids, which anyone
   * can make up in any number, the address's count is held from the start.
   */
  async begin(clientId: string, ip: string, registered: boolean): Promise<ThrottledAttempt> {
    const now = this.clock.now();
    const client = { key: clientKey(clientId, ip), limit: this.policy.clientFailures };
    const address = { key: addressKey(ip), limit: this.policy.addressFailures };
    if (registered) {
      const [spent] = await guardStore('throttle', () => this.store.peekCounts([address.key], now));
      if (spent!.count >= address.limit) throw tooMany(spent!.resetAt, now, 'address');
    }
    if (!registered) {
      const reservation = await guardStore('throttle', () => this.store.reserveHits([client, address], this.policy.windowMs, now));
      if (!reservation.granted) throw tooMany(reservation.counter.resetAt, now, reservation.full === 0 ? 'client' : 'address');
      const hits = hitsOf([client, address], reservation.counters);
      return new ThrottledAttempt(() => this.store.releaseHits(hits, this.policy.windowMs, this.clock.now()), async () => {});
    }
    const limits: [CounterLimit, CounterLimit] = [client, { key: heldKey(clientId, ip), limit: NO_LIMIT }];
    const reservation = await this.#reserveWaitingForHeld(limits);
    if (!reservation.granted) throw tooMany(reservation.counter.resetAt, now, 'client');
    const [clientHit, heldHit] = hitsOf(limits, reservation.counters);
    return new ThrottledAttempt(
      () => this.store.releaseHits([clientHit!, heldHit!], this.policy.windowMs, this.clock.now()),
      async () => {
        await this.store.releaseHits([heldHit!], this.policy.windowMs, this.clock.now());
        await this.store.reserveHits([address], this.policy.windowMs, this.clock.now());
      },
    );
  }

  /**
   * Reserves a hit on a registered client's count and on its count of attempts under way. The
   * count may be spent by attempts that are only under way, not failed: instances of one
   * service behind one address asking at once, spread over several tollgate instances whose
   * argon2 checks cannot be shared. Refusing them would answer 429 for failures that never
   * happened, so an attempt refused while others are under way waits for them to end, for at
   * most HELD_WAIT_MS; when none is under way the count is made of failures, and the refusal
   * stands at once.
   */
  async #reserveWaitingForHeld(limits: readonly [CounterLimit, CounterLimit]): Promise<Reservation> {
    for (let looks = 0; ; looks++) {
      const reservation = await guardStore('throttle', () => this.store.reserveHits(limits, this.policy.windowMs, this.clock.now()));
      if (reservation.granted || looks * HELD_POLL_MS >= HELD_WAIT_MS) return reservation;
      const [count, held] = await guardStore('throttle', () => this.store.peekCounts([limits[0].key, limits[1].key], this.clock.now()));
      // The attempts that held the count may have ended between the two looks: try again at once.
      if (count!.count < limits[0].limit) continue;
      if (held!.count === 0) return reservation;
      await new Promise((resolve) => setTimeout(resolve, HELD_POLL_MS));
    }
  }

  /**
   * For attempts whose check costs little (a signature, a certificate match): throws
   * TooManyRequests when either count is spent, and counts nothing. Such an attempt is counted
   * only once it has failed (recordFailure), so that a fleet of instances of one client behind
   * one address, all authenticating at the same moment, is not refused for attempts that were
   * merely under way: holding a hit for each would let only `clientFailures` of them through.
   */
  async check(clientId: string, ip: string): Promise<void> {
    const now = this.clock.now();
    const [client, address] = await guardStore('throttle', () => this.store.peekCounts([clientKey(clientId, ip), addressKey(ip)], now));
    if (client!.count >= this.policy.clientFailures) throw tooMany(client!.resetAt, now, 'client');
    if (address!.count >= this.policy.addressFailures) throw tooMany(address!.resetAt, now, 'address');
  }

  /**
   * Counts one failed attempt of a cheap check. A counter already at its limit is not raised
   * further (a burst that passed check() together may fail together); the failure is answered
   * as it is either way.
   */
  async recordFailure(clientId: string, ip: string): Promise<void> {
    const now = this.clock.now();
    const limits = [
      { key: clientKey(clientId, ip), limit: this.policy.clientFailures },
      { key: addressKey(ip), limit: this.policy.addressFailures },
    ];
    await guardStore('throttle', () => this.store.reserveHits(limits, this.policy.windowMs, now));
  }
}

/** An attempt counted as a failure: it stays counted unless released. */
export class ThrottledAttempt {
  #release: (() => Promise<void>) | undefined;
  #failed: (() => Promise<void>) | undefined;

  constructor(release: () => Promise<void>, failed: () => Promise<void>) {
    this.#release = release;
    this.#failed = failed;
  }

  /**
   * Settles the attempt as a failure: it stays counted, and counts what was only checked at
   * its start (the address, for a registered client). A store that fails here answers 503.
   */
  async failed(): Promise<void> {
    const failed = this.#failed;
    this.#failed = undefined;
    this.#release = undefined;
    await guardStore('throttle', () => failed?.() ?? Promise.resolve());
  }

  /**
   * Gives the count back: the attempt succeeded, or never reached the check it was counted for
   * (the argon2 queue was full, the store failed). Releasing twice gives back once. A release
   * the store fails leaves one failure counted too many until the window ends, which must not
   * fail a request that has authenticated.
   */
  async release(): Promise<void> {
    const release = this.#release;
    this.#release = undefined;
    this.#failed = undefined;
    await release?.().catch(() => {});
  }
}

function tooMany(resetAt: number, now: number, scope: 'client' | 'address'): TooManyRequests {
  return new TooManyRequests(Math.max(1, Math.ceil((resetAt - now) / 1000)), scope);
}

// Client ids are hashed: a presented id can be anything up to the parameter limit, and is not
// necessarily a registered one.
// The address in braces is the counters' hash tag: the two counters of one attempt are reserved
// together, and in Redis Cluster they must live in one slot (see FailureCounters).
function clientKey(clientId: string, ip: string): string {
  return `authfail:client:${createHash('sha256').update(clientId).digest('base64url')}:{${ip}}`;
}

/** Attempts of a registered client from one address whose argon2 check is under way. */
function heldKey(clientId: string, ip: string): string {
  return `authfail:held:${createHash('sha256').update(clientId).digest('base64url')}:{${ip}}`;
}

function hitsOf(limits: readonly CounterLimit[], counters: readonly Counter[]): ReservedHit[] {
  return limits.map(({ key }, i) => ({ key, resetAt: counters[i]!.resetAt }));
}

function addressKey(ip: string): string {
  return `authfail:addr:{${ip}}`;
}
