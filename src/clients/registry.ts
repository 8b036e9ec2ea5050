import type { BlockList } from 'node:net';
import type { JWK } from 'jose';
import type { DistinguishedName } from './distinguished-name.js';

/** Client authentication methods tollgate implements (RFC 8414 / RFC 7591 names). */
export const SECRET_AUTH_METHODS = ['client_secret_basic', 'client_secret_post'] as const;
/** RFC 8705 §2: mutual TLS, with a CA-issued certificate or a self-signed one. */
export const TLS_AUTH_METHODS = ['tls_client_auth', 'self_signed_tls_client_auth'] as const;
/** CONTRACT §6: a token from a trusted issuer (workload identity federation), a SPIFFE JWT-SVID. */
export const FEDERATED_AUTH_METHODS = ['federated_jwt', 'spiffe_jwt'] as const;
export const AUTH_METHODS = [...SECRET_AUTH_METHODS, 'private_key_jwt', ...TLS_AUTH_METHODS, ...FEDERATED_AUTH_METHODS] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

export interface ClientSecret {
  /** argon2id PHC string. */
  readonly hash: string;
  /** After this instant (ms since epoch) the secret no longer authenticates. */
  readonly expiresAt?: number;
}

/** One registered client, validated and ready for policy decisions. */
export interface Client {
  readonly clientId: string;
  readonly secrets: readonly ClientSecret[];
  readonly authMethods: readonly AuthMethod[];
  readonly scopes: readonly string[];
  /** Granted when the request names no scope. */
  readonly defaultScopes: readonly string[];
  /** Audiences the client may ask for; empty means the server-wide `tokens.audience`. */
  readonly audiences: readonly string[];
  readonly tokenTtl?: number;
  readonly introspect: boolean;
  /** Public keys for private_key_jwt and self_signed_tls_client_auth (RFC 7591 `jwks`). */
  readonly jwks?: readonly JWK[];
  /** Where its public keys are published (RFC 7591 `jwks_uri`). */
  readonly jwksUri?: string;
  /** What its certificate must show for tls_client_auth (RFC 8705 §2.1.2): one of these. */
  readonly tlsSubject?: TlsSubject;
  /** federated_jwt: the trusted issuer (its `name`) and the `sub` its tokens name this client by. */
  readonly federatedIdentity?: FederatedIdentity;
  /** spiffe_jwt: the SPIFFE ID its JWT-SVIDs carry as `sub` (the entry's spiffe_id, else its client_id). */
  readonly spiffeId?: string;
  /** Source-address allowlist, when the entry has `allowed_ips`. */
  readonly allowedIps?: BlockList;
  readonly disabled: boolean;
  /** RFC 9449 §5.2 `dpop_bound_access_tokens`: every token request must carry a DPoP proof. */
  readonly dpopBoundAccessTokens?: boolean;
}

export type TlsSubject =
  | { kind: 'subject_dn'; value: string; dn: DistinguishedName }
  | { kind: 'san_dns' | 'san_uri' | 'san_ip' | 'san_email'; value: string };

export interface FederatedIdentity {
  /** The `name` of an entry of trusted_issuers. */
  readonly issuer: string;
  /** The exact `sub` of the issuer's tokens for this workload. */
  readonly subject: string;
  /** Further claims the token must carry with exactly these values (a CI token's repository_id…). */
  readonly claims?: Readonly<Record<string, string>>;
}

/**
 * An issuer whose tokens authenticate clients (CONTRACT §6): an OpenID Connect / OAuth issuer
 * (Kubernetes, a CI system) or a SPIFFE trust domain. Its keys are inline, at a jwks_uri (a
 * SPIFFE bundle endpoint for a trust domain), or found by discovery from the issuer.
 */
export interface TrustedIssuer {
  readonly name: string;
  /** The exact `iss` of its tokens; for a SPIFFE trust domain optional (JWT-SVIDs may omit iss). */
  readonly issuer?: string;
  /** The SPIFFE trust domain (example.org) whose JWT-SVIDs it verifies. */
  readonly spiffeTrustDomain?: string;
  readonly jwks?: readonly JWK[];
  readonly jwksUri?: string;
  /** Seconds; a token whose exp - iat is longer is refused. */
  readonly maxLifetime: number;
}

/** The set of registered clients, looked up by client_id on every request. */
export interface ClientRegistry {
  get(clientId: string): Client | undefined;
  all(): readonly Client[];
  /** The spiffe_jwt client whose SPIFFE ID this is. */
  bySpiffeId(spiffeId: string): Client | undefined;
  /** The trusted issuer of that name (CONTRACT §6). */
  trustedIssuer(name: string): TrustedIssuer | undefined;
  trustedIssuers(): readonly TrustedIssuer[];
  /** When this version of the registry was loaded, ms since the epoch. */
  loadedAt(): number;
}

/** A registry whose clients are fixed at construction. */
export class StaticClientRegistry implements ClientRegistry {
  readonly #byId: ReadonlyMap<string, Client>;
  readonly #bySpiffeId: ReadonlyMap<string, Client>;
  readonly #issuers: ReadonlyMap<string, TrustedIssuer>;
  readonly #loadedAt = Date.now();

  constructor(clients: readonly Client[], trustedIssuers: readonly TrustedIssuer[] = []) {
    this.#byId = new Map(clients.map((c) => [c.clientId, c]));
    this.#bySpiffeId = new Map(clients.flatMap((c) => (c.spiffeId === undefined ? [] : [[c.spiffeId, c] as const])));
    this.#issuers = new Map(trustedIssuers.map((i) => [i.name, i]));
  }

  bySpiffeId(spiffeId: string): Client | undefined {
    return this.#bySpiffeId.get(spiffeId);
  }

  trustedIssuer(name: string): TrustedIssuer | undefined {
    return this.#issuers.get(name);
  }

  trustedIssuers(): readonly TrustedIssuer[] {
    return [...this.#issuers.values()];
  }

  loadedAt(): number {
    return this.#loadedAt;
  }

  get(clientId: string): Client | undefined {
    return this.#byId.get(clientId);
  }

  all(): readonly Client[] {
    return [...this.#byId.values()];
  }
}

/** Every scope any client may hold, sorted: the metadata's scopes_supported. */
export function allScopes(registry: ClientRegistry): string[] {
  return [...new Set(registry.all().flatMap((c) => c.scopes))].sort();
}
