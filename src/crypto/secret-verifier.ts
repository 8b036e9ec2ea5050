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
   * The live secret that `secret` matches, or undefined: the cache, else argon2. With no live
   * secret (unknown client, all expired) a dummy hash is verified instead, so that path costs
   * what a wrong secret costs. Rejects with QueueFull when too many verifications are waiting.
   * Client authentication runs these steps one by one, with its throttle between the cache and
   * argon2 (see oauth/client-auth/client-secret.ts).
   */
  async check(clientId: string, secret: string, live: readonly ClientSecret[], now: number): Promise<ClientSecret | undefined> {
    return this.cached(clientId, secret, live, now) ?? this.verify(clientId, secret, live, now);
  }

  /** The step that costs nothing: the live secret this pair was recently verified against. */
  cached(clientId: string, secret: string, live: readonly ClientSecret[], now: number): ClientSecret | undefined {
    return live.length === 0 ? undefined : this.cache.lookup(clientId, secret, live, now);
  }

  /**
   * The argon2 step: the live secret `secret` matches, or undefined. A verification of the same
   * pair already under way is shared rather than repeated: a service that starts up opens many
   * connections at once, all with the same credentials. Unknown clients share a verification in
   * the same way, so a burst costs the same whether or not the client exists.
   */
  verify(clientId: string, secret: string, live: readonly ClientSecret[], now: number): Promise<ClientSecret | undefined> {
    const key = this.cache.keyOf(clientId, secret);
    const running = this.#inFlight.get(key);
    if (running !== undefined) return running;
    const verification = this.#verify(clientId, secret, live, now).finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, verification);
    return verification;
  }

  /**
   * What can be known of the pair without starting argon2: the result of a verification of it
   * under way, else the cache (a verification may have ended since `cached` was asked). For an
   * attempt the throttle refused: sharing costs no argon2 work, so it may still pass.
   */
  async verifyIfShared(clientId: string, secret: string, live: readonly ClientSecret[], now: number): Promise<ClientSecret | undefined> {
    const running = this.#inFlight.get(this.cache.keyOf(clientId, secret));
    if (running !== undefined) return running;
    return this.cached(clientId, secret, live, now);
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
