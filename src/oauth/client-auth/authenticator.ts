import type { X509Certificate } from 'node:crypto';
import type { Clock } from '../../shared/clock.js';
import type { AuthMethod, Client, ClientRegistry } from '../../clients/registry.js';
import type { SecretVerifier } from '../../crypto/secret-verifier.js';
import type { ClientAssertionDeps } from '../client-assertion.js';
import type { FederatedAssertionDeps } from '../federated-assertion.js';
import type { Params } from '../params.js';
import type { FailureThrottle } from '../throttle.js';

// What every client authentication method shares: the request it reads, the parts it may use,
// what it answers, and the one interface each method implements. A method is a file in this
// folder exporting a ClientAuthenticator, and a row in client-auth.ts's table, keyed by the
// form of credentials (PresentedCredentials['method']) it checks.

/** A client certificate from the TLS connection or from a trusted proxy. */
export interface PresentedCertificate {
  cert: X509Certificate;
  /** It chains to a configured client CA (checked by the TLS stack, or by tollgate for a proxy's header). */
  chainVerified: boolean;
}

/**
 * What a request presents to prove which client it is, as credential extraction found it.
 * `method` names the form of the proof, which selects the authenticator: `mtls` is a
 * certificate with a client_id, which tls_client_auth or self_signed_tls_client_auth may accept.
 */
export type PresentedCredentials =
  | { method: 'client_secret_basic' | 'client_secret_post'; clientId: string; secret: string }
  | { method: 'private_key_jwt'; clientId: string; assertion: string }
  | { method: 'federated_jwt'; clientId: string; assertion: string }
  | { method: 'spiffe_jwt'; clientId: string | undefined; assertion: string }
  | { method: 'mtls'; clientId: string; certificate: PresentedCertificate };

export type PresentedMethod = PresentedCredentials['method'];

/** The credentials of one form. */
export type CredentialsOf<M extends PresentedMethod> = Extract<PresentedCredentials, { method: M }>;

export interface ClientAuthRequest {
  authorization: string | undefined;
  params: Params;
  /** The request's source address, for `allowed_ips` and the failure throttle. */
  ip: string;
  /** The client certificate, when the connection (or a trusted proxy) carries one. */
  certificate?: PresentedCertificate;
}

export interface ClientAuthDeps {
  registry: ClientRegistry;
  clock: Clock;
  verifier: SecretVerifier;
  /** Limits failed authentication; none when omitted. */
  throttle?: FailureThrottle;
  /** What private_key_jwt needs; the method is refused when omitted. */
  assertions?: Omit<ClientAssertionDeps, 'clock'>;
  /** What federated_jwt and spiffe_jwt need; both are refused when omitted. */
  federation?: Omit<FederatedAssertionDeps, 'clock'>;
}

/** An authenticated client, how it proved itself, and the certificate it used, if any. */
export interface AuthenticatedClient {
  client: Client;
  method: AuthMethod;
  /** RFC 8705 §3.1 x5t#S256 of the client certificate, for tokens bound to it. */
  certificateThumbprint?: string;
  /** federated_jwt, spiffe_jwt: the trusted issuer (its name) and the workload identity it vouched for. */
  federated?: { issuer: string; subject: string };
}

/**
 * One way of proving a client's identity. `authenticate` answers the client, or throws
 * InvalidClient whose `reason` (log-only) says why; it applies the failure throttle itself,
 * because what a failed attempt costs, and so when it is counted, depends on the method.
 */
export interface ClientAuthenticator<C extends PresentedCredentials = PresentedCredentials> {
  authenticate(
    credentials: C,
    request: ClientAuthRequest,
    deps: ClientAuthDeps,
  ): Promise<AuthenticatedClient>;
}
