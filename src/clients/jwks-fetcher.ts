import { get } from 'node:https';
import type { JWK } from 'jose';

export interface JwksFetcherOptions {
  /** Give up on a fetch that has not been answered in full (body included) after this long, ms. */
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

  /**
   * The keys at uri; fetched again when stale (older than `maxAgeMs`, the fetcher's own unless
   * given), or when `wantKid` is missing and the cooldown allows.
   */
  async keys(uri: string, wantKid?: string, maxAgeMs = this.#options.maxAgeMs): Promise<readonly JWK[]> {
    const cached = this.#cache.get(uri);
    const now = this.#options.now();
    const stale = cached === undefined || now - cached.fetchedAt >= maxAgeMs;
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
      running = this.#fetch(uri, 'jwks_uri').then(parseJwks).then(
        (keys) => {
          this.#cache.set(uri, { keys, fetchedAt: this.#options.now() });
          return keys;
        },
      ).finally(() => this.#inFlight.delete(uri));
      this.#inFlight.set(uri, running);
    }
    return running;
  }

  /**
   * A JSON object at uri (a discovery document), fetched with the same bounds as a JWK Set and
   * not cached: the caller keeps what it needs of it. `what` names it in errors.
   */
  async document(uri: string, what: string): Promise<Record<string, unknown>> {
    const text = await this.#fetch(uri, what);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new Error(`${what} did not answer JSON`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${what} did not answer a JSON object`);
    return value as Record<string, unknown>;
  }

  /**
   * One GET of uri, its body as text. The deadline covers the whole exchange, body included: a
   * server that sends a valid set one byte at a time must not hold token requests for minutes
   * (an idle timeout alone would let it). `what` names the URL's role in errors.
   */
  #fetch(uri: string, what: string): Promise<string> {
    if (!uri.startsWith('https://')) return Promise.reject(new Error(`${what} is not an https URL`));
    const { timeoutMs, maxBytes, ca } = this.#options;
    return new Promise((resolve, reject) => {
      const req = get(uri, { ...(ca ? { ca } : {}), headers: { accept: 'application/json, application/jwk-set+json' } }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          req.destroy(new Error(`${what} answered ${res.statusCode}`));
          return;
        }
        if (Number(res.headers['content-length'] ?? 0) > maxBytes) {
          req.destroy(new Error(`${what} answered more than ${maxBytes} bytes`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            req.destroy(new Error(`${what} answered more than ${maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          clearTimeout(deadline);
          try {
            resolve(Buffer.concat(chunks).toString('utf8'));
          } catch (err) {
            reject(err);
          }
        });
        res.on('error', fail);
      });
      const deadline = setTimeout(() => req.destroy(new Error(`${what} did not answer in full within ${timeoutMs} ms`)), timeoutMs);
      deadline.unref();
      function fail(err: Error): void {
        clearTimeout(deadline);
        reject(err);
      }
      req.on('error', fail);
    });
  }
}

/** A JWK Set with public keys only; anything else is an error. */
export function parseJwks(text: string): readonly JWK[] {
  let value: { keys?: unknown };
  try {
    value = JSON.parse(text) as { keys?: unknown };
  } catch {
    // JSON.parse quotes the text it failed on; what a client's server sent stays out of the log.
    throw new Error('jwks_uri did not answer JSON');
  }
  if (value === null || typeof value !== 'object' || !Array.isArray(value.keys)) throw new Error('jwks_uri did not answer a JWK Set');
  return value.keys.filter((k): k is JWK => k !== null && typeof k === 'object' && typeof (k as JWK).kty === 'string' && (k as JWK).d === undefined);
}
