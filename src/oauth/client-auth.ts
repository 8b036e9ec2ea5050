import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { ClientRegistry } from '../clients/registry.js';
import { JWT_BEARER_ASSERTION } from './client-assertion.js';
import type {
  AuthenticatedClient,
  ClientAuthDeps,
  ClientAuthenticator,
  ClientAuthRequest,
  CredentialsOf,
  PresentedCredentials,
  PresentedMethod,
} from './client-auth/authenticator.js';
import { clientSecret } from './client-auth/client-secret.js';
import { federatedJwt } from './client-auth/federated-jwt.js';
import { spiffeJwt } from './client-auth/spiffe-jwt.js';
import { privateKeyJwt } from './client-auth/private-key-jwt.js';
import { tlsClientAuth } from './client-auth/tls-client-auth.js';
import { InvalidClient, InvalidRequest } from './errors.js';
import { JWT_SPIFFE_ASSERTION } from './federated-assertion.js';
import { isClientId } from '../shared/syntax.js';

// The public face of client authentication: the routes and the token operation use these.
export type { AuthenticatedClient, ClientAuthDeps, ClientAuthRequest, PresentedCertificate, PresentedCredentials } from './client-auth/authenticator.js';

/**
 * One authenticator per form of credentials, each in its own file under client-auth/. A new
 * method is a new file, its credentials in extractCredentials, and a row here; the compiler
 * refuses a form of credentials that has no row.
 */
const AUTHENTICATORS: { readonly [M in PresentedMethod]: ClientAuthenticator<CredentialsOf<M>> } = {
  client_secret_basic: clientSecret,
  client_secret_post: clientSecret,
  private_key_jwt: privateKeyJwt,
  mtls: tlsClientAuth,
  federated_jwt: federatedJwt,
  spiffe_jwt: spiffeJwt,
};

/**
 * Authenticates the client with the one method its request uses, or throws InvalidClient whose
 * `reason` (log-only) says why.
 */
export async function authenticateClient(request: ClientAuthRequest, deps: ClientAuthDeps): Promise<AuthenticatedClient> {
  const credentials = extractCredentials(request);
  // The row is the one for credentials.method, which TypeScript cannot follow through the union.
  const authenticator = AUTHENTICATORS[credentials.method] as ClientAuthenticator;
  return authenticator.authenticate(credentials, request, deps);
}

/**
 * Finds the credentials in a request: HTTP Basic (client_secret_basic), client_id and
 * client_secret in the body (client_secret_post), a JWT client assertion (private_key_jwt, or
 * federated_jwt when the assertion is a trusted issuer's token for the client_id in the body),
 * a JWT-SVID (spiffe_jwt), or a client_id with a client certificate (RFC 8705). RFC 6749
 * §2.3.1: a client "MUST NOT use more than one authentication method in each request".
 */
export function extractCredentials(req: Pick<ClientAuthRequest, 'authorization' | 'params' | 'certificate'>): PresentedCredentials {
  const bodyId = req.params.get('client_id');
  const bodySecret = req.params.get('client_secret');
  const assertion = req.params.get('client_assertion');
  const assertionType = req.params.get('client_assertion_type');
  const methods = [req.authorization !== undefined, bodySecret !== undefined, assertion !== undefined || assertionType !== undefined];
  if (methods.filter(Boolean).length > 1) throw new InvalidRequest('use one client authentication method per request');
  if (req.authorization !== undefined) {
    const basic = parseBasic(req.authorization);
    // A client_id in the body beside Basic is allowed by RFC 6749 §3.2.1 when it names the same client.
    if (bodyId !== undefined && bodyId !== basic.clientId) {
      throw new InvalidRequest('client_id in the body does not match the Authorization header');
    }
    return { method: 'client_secret_basic', ...basic };
  }
  if (assertion !== undefined || assertionType !== undefined) {
    if (assertionType !== JWT_BEARER_ASSERTION && assertionType !== JWT_SPIFFE_ASSERTION) throw new InvalidClient('assertion_type', bodyId);
    if (assertion === undefined) throw new InvalidClient('no_assertion', bodyId);
    // A JWT-SVID names its client by its SPIFFE ID when the body has no client_id.
    if (assertionType === JWT_SPIFFE_ASSERTION) return { method: 'spiffe_jwt', clientId: bodyId, assertion };
    // The assertion names its client (RFC 7523 §3: sub); it is verified once the client is known.
    let claims: { iss?: unknown; sub?: unknown };
    try {
      claims = decodeJwt(assertion);
    } catch {
      throw new InvalidClient('assertion_malformed', bodyId);
    }
    if (typeof claims.sub !== 'string' || claims.sub === '') throw new InvalidClient('assertion_malformed', bodyId);
    // A client's own assertion has iss = sub = client_id (RFC 7523 §3); a trusted issuer's token
    // names the workload in sub, and the client only by the client_id in the body (CONTRACT §6).
    if (bodyId !== undefined && (claims.iss !== bodyId || claims.sub !== bodyId)) return { method: 'federated_jwt', clientId: bodyId, assertion };
    return { method: 'private_key_jwt', clientId: claims.sub, assertion };
  }
  if (bodyId === undefined && bodySecret === undefined) throw new InvalidClient('no_credentials');
  if (bodyId === undefined) throw new InvalidClient('no_client_id');
  if (bodySecret === undefined) {
    // RFC 8705 §2: a client authenticating with its certificate names itself with client_id.
    if (req.certificate !== undefined) return { method: 'mtls', clientId: bodyId, certificate: req.certificate };
    throw new InvalidClient('no_client_secret', bodyId);
  }
  return { method: 'client_secret_post', clientId: bodyId, secret: bodySecret };
}

/** RFC 6749 §2.3.1 / RFC 7617: base64 of form-urlencoded id ":" form-urlencoded secret. */
function parseBasic(header: string): { clientId: string; secret: string } {
  const m = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
  if (m === null) throw new InvalidClient(/^Basic\b/i.test(header) ? 'malformed_basic' : 'unsupported_auth_scheme');
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new InvalidClient('malformed_basic');
  const clientId = formDecode(decoded.slice(0, colon));
  const secret = formDecode(decoded.slice(colon + 1));
  if (clientId === undefined || secret === undefined) throw new InvalidClient('malformed_basic');
  if (clientId === '') throw new InvalidClient('no_client_id');
  if (secret === '') throw new InvalidClient('no_client_secret', clientId);
  return { clientId, secret };
}

function formDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/**
 * How a presented client_id may appear in a log line: as itself when it names a registered
 * client, else only as a short SHA-256 fingerprint, since an unknown "client_id" may be a secret
 * pasted into the wrong field. The fingerprint still lets an operator see repeated attempts.
 */
export function logId(registry: ClientRegistry, presentedId: string | undefined): { client_id?: string; client_id_sha256?: string } {
  if (presentedId === undefined) return {};
  if (isClientId(presentedId) && registry.get(presentedId) !== undefined) return { client_id: presentedId };
  return { client_id_sha256: createHash('sha256').update(presentedId).digest('hex').slice(0, 16) };
}
