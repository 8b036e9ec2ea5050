import { availableParallelism } from 'node:os';
import type { ClientSecret } from '../clients/registry.js';
import { Limiter } from './limiter.js';
import { getDummyHash, verifySecret } from './secrets.js';
import { VerifiedCredentials } from './verified-credentials.js';

/**
 * Checks presented secrets against a client's live argon2id hashes: recently verified pairs
 * from the VerifiedCredentials cache, everything else through argon2 with bounded concurrency.
 */
export class SecretVerifier {
  readonly cache: VerifiedCredentials;
  readonly #limiter: Limiter;

  constructor(options: { cache?: VerifiedCredentials; limiter?: Limiter } = {}) {
    this.cache = options.cache ?? new VerifiedCredentials();
    // argon2 shares libuv's pool (4 threads) with token signing: leave signing half of it, and
    // bound the queue so a flood of wrong secrets is refused instead of piling up.
    this.#limiter = options.limiter ?? new Limiter(Math.max(1, Math.min(2, availableParallelism() - 1)), 256);
  }

  /**
   * The live secret that `secret` matches, or undefined. With no live secret (unknown client,
   * all expired) a dummy hash is verified instead, so that path costs what a wrong secret costs.
   * Rejects with QueueFull when too many verifications are waiting.
   */
  async check(clientId: string, secret: string, live: readonly ClientSecret[], now: number): Promise<ClientSecret | undefined> {
    if (live.length === 0) {
      const dummy = await getDummyHash();
      await this.#limiter.run(() => verifySecret(dummy, secret));
      return undefined;
    }
    const cached = this.cache.lookup(clientId, secret, live, now);
    if (cached !== undefined) return cached;
    for (const s of live) {
      if (await this.#limiter.run(() => verifySecret(s.hash, secret))) {
        this.cache.remember(clientId, secret, s, now);
        return s;
      }
    }
    return undefined;
  }
}
