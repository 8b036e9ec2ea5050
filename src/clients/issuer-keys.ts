import type { JWK } from 'jose';
import type { JwksFetcher } from './jwks-fetcher.js';
import type { TrustedIssuer } from './registry.js';

export interface IssuerKeysOptions {
  /**
   * A fetched key set is fetched again once it is this old, ms: a key the issuer removes stops
   * working within this time (CONTRACT §6: about a minute).
   */
  keysMaxAgeMs?: number;
  /** A discovered jwks_uri is looked up again once it is this old, ms. */
  discoveryMaxAgeMs?: number;
  /** After a failed discovery, the next one waits this long, ms (a request meanwhile fails at once). */
  discoveryRetryMs?: number;
  now?: () => number;
}

interface Discovered {
  jwksUri: string;
  at: number;
}

/**
 * The verification keys of trusted issuers (CONTRACT §6): inline `jwks`, the `jwks_uri` (for a
 * SPIFFE trust domain, its bundle endpoint), or the jwks_uri that discovery finds from the
 * issuer (OpenID Connect Discovery, then RFC 8414). Every fetch goes through the JwksFetcher, so
 * it is https only, bounded in size and time, served stale while the issuer is unreachable, and
 * refreshed on an unknown kid at most once per cooldown; the fetcher caches per URL, so every
 * client of one issuer shares one set. Nothing is fetched before a token of the issuer is
 * presented: an issuer that cannot be reached never stops the server from starting.
 */
export class IssuerKeys {
  readonly #discovered = new Map<string, Discovered>();
  readonly #failedAt = new Map<string, { at: number; error: Error }>();
  readonly #inFlight = new Map<string, Promise<string>>();
  readonly #keysMaxAgeMs: number;
  readonly #discoveryMaxAgeMs: number;
  readonly #discoveryRetryMs: number;
  readonly #now: () => number;

  constructor(
    private readonly fetcher: JwksFetcher,
    options: IssuerKeysOptions = {},
  ) {
    this.#keysMaxAgeMs = options.keysMaxAgeMs ?? 60_000;
    this.#discoveryMaxAgeMs = options.discoveryMaxAgeMs ?? 3600_000;
    this.#discoveryRetryMs = options.discoveryRetryMs ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** The issuer's public keys, refreshed when `kid` is not among them (and the cooldown allows). */
  async keys(issuer: TrustedIssuer, kid: string | undefined): Promise<readonly JWK[]> {
    if (issuer.jwks !== undefined) return issuer.jwks;
    const uri = issuer.jwksUri ?? (await this.#discover(issuer.issuer!));
    return this.fetcher.keys(uri, kid, this.#keysMaxAgeMs);
  }

  async #discover(issuer: string): Promise<string> {
    const now = this.#now();
    const known = this.#discovered.get(issuer);
    if (known !== undefined && now - known.at < this.#discoveryMaxAgeMs) return known.jwksUri;
    const failed = this.#failedAt.get(issuer);
    if (failed !== undefined && now - failed.at < this.#discoveryRetryMs) {
      if (known !== undefined) return known.jwksUri;
      throw failed.error;
    }
    let running = this.#inFlight.get(issuer);
    if (running === undefined) {
      running = discoverJwksUri(this.fetcher, issuer)
        .then(
          (jwksUri) => {
            this.#discovered.set(issuer, { jwksUri, at: this.#now() });
            this.#failedAt.delete(issuer);
            return jwksUri;
          },
          (error: Error) => {
            this.#failedAt.set(issuer, { at: this.#now(), error });
            throw error;
          },
        )
        .finally(() => this.#inFlight.delete(issuer));
      this.#inFlight.set(issuer, running);
    }
    try {
      return await running;
    } catch (err) {
      // What was discovered before keeps serving while the issuer is briefly unreachable.
      if (known !== undefined) return known.jwksUri;
      throw err;
    }
  }
}

/**
 * The issuer's jwks_uri from its metadata: OpenID Connect Discovery 1.0 §4 (issuer +
 * /.well-known/openid-configuration), else RFC 8414 §3 (/.well-known/oauth-authorization-server
 * inserted before the issuer's path). The document must name exactly this issuer (OIDC
 * Discovery §4.3, RFC 8414 §3.3), or its keys could be anyone's.
 */
export async function discoverJwksUri(fetcher: JwksFetcher, issuer: string): Promise<string> {
  const base = issuer.replace(/\/+$/, '');
  const url = new URL(base);
  const path = url.pathname === '/' ? '' : url.pathname;
  const candidates = [`${base}/.well-known/openid-configuration`, `${url.origin}/.well-known/oauth-authorization-server${path}`];
  const errors: string[] = [];
  for (const candidate of candidates) {
    let doc: Record<string, unknown>;
    try {
      doc = await fetcher.document(candidate, 'discovery');
    } catch (err) {
      errors.push(`${candidate}: ${(err as Error).message}`);
      continue;
    }
    if (doc.issuer !== issuer) throw new Error(`discovery at ${candidate} names another issuer`);
    if (typeof doc.jwks_uri !== 'string' || !/^https:\/\/[^\s#]+$/.test(doc.jwks_uri) || !URL.canParse(doc.jwks_uri)) {
      throw new Error(`discovery at ${candidate} gives no https jwks_uri`);
    }
    return doc.jwks_uri;
  }
  throw new Error(`no discovery document (${errors.join('; ')})`);
}
