import { availableParallelism } from 'node:os';
import type { ClientSecret } from '../clients/registry.js';
import { DummyHash } from './dummy-hash.js';
import { Limiter, QueueFull } from './limiter.js';
import { verifySecret } from './secrets.js';
import { VerifiedCredentials } from './verified-credentials.js';

/**
 * Checks presented secrets against a client's live argon2id hashes: recently verified pairs
 * from the VerifiedCredentials cache, everything else through argon2 with bounded concurrency.
 */
export class SecretVerifier {
  readonly cache: VerifiedCredentials;
  /** What a secret is verified against when the client has no live secret. */
  readonly dummy: DummyHash;
  readonly #limiter: Limiter;
  /** Verifications under way, by client and secret: a burst of one client's requests shares one. */
  readonly #inFlight = new Map<string, Promise<ClientSecret | undefined>>();

  readonly #observe: (seconds: number) => void;
  readonly #queueFull: () => void;

  constructor(
    options: {
      cache?: VerifiedCredentials;
      limiter?: Limiter;
      dummy?: DummyHash;
      /** Called with the time of each verification, queueing included. */
      observe?: (seconds: number) => void;
      /** Called for each verification refused because the queue was full (not a verification). */
      queueFull?: () => void;
    } = {},
  ) {
    this.cache = options.cache ?? new VerifiedCredentials();
    this.dummy = options.dummy ?? new DummyHash();
    this.#observe = options.observe ?? (() => {});
    this.#queueFull = options.queueFull ?? (() => {});
    // argon2 shares libuv's pool (4 threads) with token signing: leave signing half of it, and
    // bound the queue so a flood of wrong secrets is refused instead of piling up.
    this.#limiter = options.limiter ?? new Limiter(Math.max(1, Math.min(2, availableParallelism() - 1)), 256);
  }

  /**
   * The live secret that `secret` matches, or undefined. With no live secret (unknown client,
   * all expired) a dummy hash is verified instead, so that path costs what a wrong secret costs.
   * Rejects with QueueFull when too many verifications are waiting, and with whatever
   * `beforeArgon2` throws (a throttle) before argon2 would run.
   */
  async check(
    clientId: string,
    secret: string,
    live: readonly ClientSecret[],
    now: number,
    beforeArgon2?: () => Promise<void>,
  ): Promise<ClientSecret | undefined> {
    const cached = live.length === 0 ? undefined : this.cache.lookup(clientId, secret, live, now);
    if (cached !== undefined) return cached;
    // Throttling runs here: after the free check, before any argon2 work.
    let refused: { error: unknown } | undefined;
    try {
      await beforeArgon2?.();
    } catch (error) {
      refused = { error };
    }
    // A service that starts up opens many connections at once, all with the same credentials:
    // verify them once, not once per connection. Unknown clients share a verification in the
    // same way, so a burst costs the same whether or not the client exists. Sharing costs no
    // argon2 work, so a request the throttle refused may share one too: it passes if the
    // credentials are right, and gets the refusal if not.
    const key = this.cache.keyOf(clientId, secret);
    const running = this.#inFlight.get(key);
    if (running !== undefined) {
      const result = await running;
      if (result === undefined && refused !== undefined) throw refused.error;
      return result;
    }
    if (refused !== undefined) {
      // The verification it could have shared may have ended while the throttle was asked.
      const verified = live.length === 0 ? undefined : this.cache.lookup(clientId, secret, live, now);
      if (verified !== undefined) return verified;
      throw refused.error;
    }
    const verification = this.#verify(clientId, secret, live, now).finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, verification);
    return verification;
  }

  async #verify(clientId: string, secret: string, live: readonly ClientSecret[], now: number): Promise<ClientSecret | undefined> {
    if (live.length === 0) {
      const dummy = await this.dummy.get();
      await this.#argon2(dummy, secret);
      return undefined;
    }
    for (const s of live) {
      if (await this.#argon2(s.hash, secret)) {
        this.cache.remember(clientId, secret, s, now);
        return s;
      }
    }
    return undefined;
  }

  async #argon2(hash: string, secret: string): Promise<boolean> {
    const start = process.hrtime.bigint();
    let verified: boolean;
    try {
      verified = await this.#limiter.run(() => verifySecret(hash, secret));
    } catch (err) {
      // Refused without running: counted apart, not as a (very fast) verification.
      if (err instanceof QueueFull) this.#queueFull();
      throw err;
    }
    this.#observe(Number(process.hrtime.bigint() - start) / 1e9);
    return verified;
  }
}
