import { createHash, type X509Certificate } from 'node:crypto';
import { listHas } from '../address-list.js';
import { decodeJwt } from 'jose';
import type { Clock } from '../clock.js';
import type { AuthMethod, Client, ClientRegistry } from '../clients/registry.js';
import { certificateKeyRegistered, certificateMatches } from './certificate-match.js';
import { QueueFull } from '../crypto/limiter.js';
import type { SecretVerifier } from '../crypto/secret-verifier.js';
import { MAX_SECRET_LENGTH } from '../crypto/secrets.js';
import { JWT_BEARER_ASSERTION, verifyClientAssertion, type ClientAssertionDeps } from './client-assertion.js';
import { InvalidClient, InvalidRequest, TemporarilyUnavailable } from './errors.js';
import type { Params } from './params.js';
import type { FailureThrottle, ThrottledAttempt } from './throttle.js';
import { isClientId } from './syntax.js';

/** A client certificate from the TLS connection or from a trusted proxy. */
export interface PresentedCertificate {
  cert: X509Certificate;
  /** It chains to a configured client CA (checked by the TLS stack, or by tollgate for a proxy's header). */
  chainVerified: boolean;
}

/** What a request presents to prove which client it is. */
export type PresentedCredentials =
  | { method: 'client_secret_basic' | 'client_secret_post'; clientId: string; secret: string }
  | { method: 'private_key_jwt'; clientId: string; assertion: string }
  | { method: 'mtls'; clientId: string; certificate: PresentedCertificate };

export interface ClientAuthRequest {
  authorization: string | undefined;
  params: Params;
  /** The request's source address, for `allowed_ips`. */
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
}

/** An authenticated client, how it proved itself, and the certificate it used, if any. */
export interface AuthenticatedClient {
  client: Client;
  method: AuthMethod;
  /** RFC 8705 §3.1 x5t#S256 of the client certificate, for tokens bound to it. */
  certificateThumbprint?: string;
}

/**
 * Finds the credentials in a request: HTTP Basic (client_secret_basic), client_id and
 * client_secret in the body (client_secret_post), a JWT client assertion (private_key_jwt), or
 * a client_id with a client certificate (RFC 8705). RFC 6749 §2.3.1: a client "MUST NOT use
 * more than one authentication method in each request".
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
    if (assertionType !== JWT_BEARER_ASSERTION) throw new InvalidClient('assertion_type', bodyId);
    if (assertion === undefined) throw new InvalidClient('no_assertion', bodyId);
    // The assertion names its client (RFC 7523 §3: sub); it is verified once the client is known.
    let sub: unknown;
    try {
      sub = decodeJwt(assertion).sub;
    } catch {
      throw new InvalidClient('assertion_malformed', bodyId);
    }
    if (typeof sub !== 'string' || sub === '') throw new InvalidClient('assertion_malformed', bodyId);
    if (bodyId !== undefined && bodyId !== sub) throw new InvalidClient('assertion_client_id_mismatch', bodyId);
    return { method: 'private_key_jwt', clientId: sub, assertion };
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

/**
 * Authenticates the client, or throws InvalidClient whose `reason` (log-only) says why.
 *
 * For secrets, the argon2 work does not depend on why authentication fails: an unknown
 * client, or one with no live secret, is checked against a dummy hash of the same cost, and a
 * disabled client or a forbidden method or address is refused only after the secret check.
 * (A client with several live secrets during a rotation costs one verification per secret
 * tried; a pair verified recently costs none, see VerifiedCredentials.)
 */
export async function authenticateClient(req: ClientAuthRequest, deps: ClientAuthDeps): Promise<AuthenticatedClient> {
  const creds = extractCredentials(req);
  switch (creds.method) {
    case 'client_secret_basic':
    case 'client_secret_post':
      return { client: await authenticateSecret(creds, req, deps), method: creds.method };
    case 'private_key_jwt':
      return throttled(creds.clientId, req, deps, async () => {
        const client = registeredClient(creds.clientId, 'private_key_jwt', req, deps);
        if (deps.assertions === undefined) throw new InvalidClient('private_key_jwt_unavailable', creds.clientId);
        await verifyClientAssertion(creds.assertion, client, { ...deps.assertions, clock: deps.clock });
        return { client, method: 'private_key_jwt' };
      });
    case 'mtls':
      return throttled(creds.clientId, req, deps, () => authenticateCertificate(creds.clientId, creds.certificate, req, deps));
  }
}

/**
 * Runs a check of a client assertion or certificate under the failure throttle: refused with
 * 429 when this client_id or address has no failures left, and counted when it fails as the
 * client's fault (401; a 503 is not counted). Unlike a secret's argon2, these checks cost too
 * little to be worth a hit held while they run (see FailureThrottle.check).
 */
async function throttled<T>(clientId: string, req: ClientAuthRequest, deps: ClientAuthDeps, authenticate: () => Promise<T>): Promise<T> {
  await deps.throttle?.check(clientId, req.ip);
  try {
    return await authenticate();
  } catch (err) {
    if (err instanceof InvalidClient) await deps.throttle?.recordFailure(clientId, req.ip);
    throw err;
  }
}

async function authenticateSecret(
  creds: { method: 'client_secret_basic' | 'client_secret_post'; clientId: string; secret: string },
  req: ClientAuthRequest,
  deps: ClientAuthDeps,
): Promise<Client> {
  if (creds.secret.length > MAX_SECRET_LENGTH) throw new InvalidClient('secret_too_long', creds.clientId);
  const client = isClientId(creds.clientId) ? deps.registry.get(creds.clientId) : undefined;
  const now = deps.clock.now();
  const live = client?.secrets.filter((s) => s.expiresAt === undefined || s.expiresAt > now) ?? [];
  // A recently verified secret passes without being counted; any other attempt is counted as
  // a failure before argon2 runs, and given back if the secret matches.
  let attempt: ThrottledAttempt | undefined;
  const throttle = deps.throttle;
  const begin =
    throttle &&
    (async () => {
      attempt = await throttle.begin(creds.clientId, req.ip, client !== undefined);
    });
  let matched: boolean;
  try {
    matched = (await deps.verifier.check(creds.clientId, creds.secret, live, now, begin)) !== undefined;
  } catch (err) {
    // Not checked, so not a failure: the count is given back.
    await attempt?.release();
    if (err instanceof QueueFull) throw new TemporarilyUnavailable('too many authentication requests; retry later', 1, 'argon2 queue full');
    throw err;
  }
  if (matched) await attempt?.release();
  else await attempt?.failed();

  const id = creds.clientId;
  if (client === undefined) throw new InvalidClient('unknown_client', id);
  if (!matched) throw new InvalidClient(live.length < client.secrets.length ? 'wrong_or_expired_secret' : 'wrong_secret', id);
  checkClientMay(client, creds.method, req);
  return client;
}

/** The registered, enabled client that may use `method` from this address; else InvalidClient. */
function registeredClient(clientId: string, method: AuthMethod, req: ClientAuthRequest, deps: ClientAuthDeps): Client {
  const client = isClientId(clientId) ? deps.registry.get(clientId) : undefined;
  if (client === undefined) throw new InvalidClient('unknown_client', clientId);
  checkClientMay(client, method, req);
  return client;
}

function checkClientMay(client: Client, method: AuthMethod, req: ClientAuthRequest): void {
  if (client.disabled) throw new InvalidClient('client_disabled', client.clientId);
  if (!client.authMethods.includes(method)) throw new InvalidClient(`method_not_allowed:${method}`, client.clientId);
  if (client.allowedIps !== undefined && !listHas(client.allowedIps, req.ip)) throw new InvalidClient('address_not_allowed', client.clientId);
}

/**
 * RFC 8705 §2: tls_client_auth (a certificate from a configured CA whose subject or SAN is the
 * one registered) or self_signed_tls_client_auth (a certificate whose key is in the client's jwks).
 */
async function authenticateCertificate(
  clientId: string,
  presented: PresentedCertificate,
  req: ClientAuthRequest,
  deps: ClientAuthDeps,
): Promise<AuthenticatedClient> {
  const client = isClientId(clientId) ? deps.registry.get(clientId) : undefined;
  if (client === undefined) throw new InvalidClient('unknown_client', clientId);
  const certificateThumbprint = createHash('sha256').update(presented.cert.raw).digest('base64url');
  const pki = client.authMethods.includes('tls_client_auth') && client.tlsSubject !== undefined;
  if (pki && presented.chainVerified && certificateMatches(presented.cert, client.tlsSubject!)) {
    checkClientMay(client, 'tls_client_auth', req);
    return { client, method: 'tls_client_auth', certificateThumbprint };
  }
  if (client.authMethods.includes('self_signed_tls_client_auth') && (await certificateKeyRegistered(presented.cert, client))) {
    checkClientMay(client, 'self_signed_tls_client_auth', req);
    return { client, method: 'self_signed_tls_client_auth', certificateThumbprint };
  }
  if (client.disabled) throw new InvalidClient('client_disabled', clientId);
  if (!pki && !client.authMethods.includes('self_signed_tls_client_auth')) throw new InvalidClient('method_not_allowed:mtls', clientId);
  throw new InvalidClient(pki && !presented.chainVerified ? 'certificate_untrusted' : 'certificate_mismatch', clientId);
}
