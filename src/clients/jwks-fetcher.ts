import { get } from 'node:https';
import type { JWK } from 'jose';

export interface JwksFetcherOptions {
  /** Give up on a fetch after this long, ms. */
  timeoutMs?: number;
  /** A JWKS larger than this is refused, bytes. */
  maxBytes?: number;
  /** How long a fetched set is used before it is fetched again, ms. */
  maxAgeMs?: number;
  /** After a fetch, an unknown kid triggers another only once this much time has passed, ms. */
  cooldownMs?: number;
  /** Extra trusted CA certificates (PEM); the system's and NODE_EXTRA_CA_CERTS apply anyway. */
  ca?: string | Buffer;
  now?: () => number;
}

interface Cached {
  keys: readonly JWK[];
  fetchedAt: number;
}

/**
 * Fetches clients' `jwks_uri` (RFC 7591 §2) over HTTPS, with a timeout and a size limit, and
 * caches each set. A kid the cached set lacks triggers a refresh, at most once per cooldown, so
 * a client that rotates its key is followed at once while a stream of bogus kids cannot turn
 * tollgate into a request amplifier.
 */
export class JwksFetcher {
  readonly #cache = new Map<string, Cached>();
  readonly #inFlight = new Map<string, Promise<readonly JWK[]>>();
  readonly #options: Required<Omit<JwksFetcherOptions, 'ca'>> & Pick<JwksFetcherOptions, 'ca'>;

  constructor(options: JwksFetcherOptions = {}) {
    this.#options = {
      timeoutMs: options.timeoutMs ?? 5000,
      maxBytes: options.maxBytes ?? 64 * 1024,
      maxAgeMs: options.maxAgeMs ?? 5 * 60_000,
      cooldownMs: options.cooldownMs ?? 10_000,
      ca: options.ca,
      now: options.now ?? Date.now,
    };
  }

  /** The keys at uri; fetched again when stale, or when `wantKid` is missing and the cooldown allows. */
  async keys(uri: string, wantKid?: string): Promise<readonly JWK[]> {
    const cached = this.#cache.get(uri);
    const now = this.#options.now();
    const stale = cached === undefined || now - cached.fetchedAt >= this.#options.maxAgeMs;
    const missing = wantKid !== undefined && cached !== undefined && !cached.keys.some((k) => k.kid === wantKid);
    if (!stale && !(missing && now - cached.fetchedAt >= this.#options.cooldownMs)) return cached.keys;
    try {
      return await this.#fetchOnce(uri);
    } catch (err) {
      // A set fetched before keeps serving while the client's server is briefly unreachable.
      if (cached !== undefined) return cached.keys;
      throw err;
    }
  }

  #fetchOnce(uri: string): Promise<readonly JWK[]> {
    let running = this.#inFlight.get(uri);
    if (running === undefined) {
      running = this.#fetch(uri).then(
        (keys) => {
          this.#cache.set(uri, { keys, fetchedAt: this.#options.now() });
          return keys;
        },
      ).finally(() => this.#inFlight.delete(uri));
      this.#inFlight.set(uri, running);
    }
    return running;
  }

  #fetch(uri: string): Promise<readonly JWK[]> {
    const { timeoutMs, maxBytes, ca } = this.#options;
    return new Promise((resolve, reject) => {
      const req = get(uri, { timeout: timeoutMs, ...(ca ? { ca } : {}), headers: { accept: 'application/json, application/jwk-set+json' } }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`jwks_uri answered ${res.statusCode}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            req.destroy(new Error(`jwks_uri answered more than ${maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          try {
            resolve(parseJwks(Buffer.concat(chunks).toString('utf8')));
          } catch (err) {
            reject(err);
          }
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`jwks_uri did not answer within ${timeoutMs} ms`)));
      req.on('error', reject);
    });
  }
}

/** A JWK Set with public keys only; anything else is an error. */
export function parseJwks(text: string): readonly JWK[] {
  const value = JSON.parse(text) as { keys?: unknown };
  if (value === null || typeof value !== 'object' || !Array.isArray(value.keys)) throw new Error('jwks_uri did not answer a JWK Set');
  return value.keys.filter((k): k is JWK => k !== null && typeof k === 'object' && typeof (k as JWK).kty === 'string' && (k as JWK).d === undefined);
}
