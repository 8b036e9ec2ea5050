import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { AuthMethod, Client, ClientRegistry } from '../clients/registry.js';
import { QueueFull } from '../crypto/limiter.js';
import type { SecretVerifier } from '../crypto/secret-verifier.js';
import { MAX_SECRET_LENGTH } from '../crypto/secrets.js';
import { InvalidClient, InvalidRequest, TemporarilyUnavailable } from './errors.js';
import type { Params } from './params.js';
import type { FailureThrottle } from './throttle.js';
import { isClientId } from './syntax.js';

/** What a request presents to prove which client it is. */
export interface PresentedCredentials {
  method: AuthMethod;
  clientId: string;
  secret: string;
}

export interface ClientAuthRequest {
  authorization: string | undefined;
  params: Params;
  /** The request's source address, for `allowed_ips`. */
  ip: string;
}

export interface ClientAuthDeps {
  registry: ClientRegistry;
  clock: Clock;
  verifier: SecretVerifier;
  /** Limits failed authentication; none when omitted. */
  throttle?: FailureThrottle;
}

/**
 * Finds the credentials in a request: HTTP Basic (client_secret_basic) or the body
 * (client_secret_post), never both (RFC 6749 §2.3.1: "MUST NOT use more than one").
 */
export function extractCredentials(req: Pick<ClientAuthRequest, 'authorization' | 'params'>): PresentedCredentials {
  const bodyId = req.params.get('client_id');
  const bodySecret = req.params.get('client_secret');
  if (req.authorization !== undefined) {
    const basic = parseBasic(req.authorization);
    if (bodySecret !== undefined) {
      throw new InvalidRequest('use one client authentication method, not both Basic and client_secret');
    }
    // A client_id in the body beside Basic is allowed by RFC 6749 §3.2.1 when it names the same client.
    if (bodyId !== undefined && bodyId !== basic.clientId) {
      throw new InvalidRequest('client_id in the body does not match the Authorization header');
    }
    return { method: 'client_secret_basic', ...basic };
  }
  if (bodyId === undefined && bodySecret === undefined) throw new InvalidClient('no_credentials');
  if (bodyId === undefined) throw new InvalidClient('no_client_id');
  if (bodySecret === undefined) throw new InvalidClient('no_client_secret', bodyId);
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
 * Authenticates the client and returns its registry entry, or throws InvalidClient whose
 * `reason` (log-only) says why. The argon2 work does not depend on why authentication fails: an
 * unknown client, or one with no live secret, is checked against a dummy hash of the same cost,
 * and a disabled client or a forbidden method or address is refused only after the secret check.
 * (A client with several live secrets during a rotation costs one verification per secret tried;
 * a pair verified recently costs none, see VerifiedCredentials.)
 */
export async function authenticateClient(req: ClientAuthRequest, deps: ClientAuthDeps): Promise<Client> {
  const creds = extractCredentials(req);
  if (creds.secret.length > MAX_SECRET_LENGTH) throw new InvalidClient('secret_too_long', creds.clientId);
  const client = isClientId(creds.clientId) ? deps.registry.get(creds.clientId) : undefined;
  const now = deps.clock.now();
  const live = client?.secrets.filter((s) => s.expiresAt === undefined || s.expiresAt > now) ?? [];
  let matched: boolean;
  try {
    const throttle = deps.throttle;
    matched = (await deps.verifier.check(creds.clientId, creds.secret, live, now, throttle && (() => throttle.check(creds.clientId, req.ip)))) !== undefined;
  } catch (err) {
    if (err instanceof QueueFull) throw new TemporarilyUnavailable('too many authentication requests; retry later', 1, 'argon2 queue full');
    throw err;
  }

  const id = creds.clientId;
  if (!matched) await deps.throttle?.recordFailure(creds.clientId, req.ip);
  if (client === undefined) throw new InvalidClient('unknown_client', id);
  if (!matched) throw new InvalidClient(live.length < client.secrets.length ? 'wrong_or_expired_secret' : 'wrong_secret', id);
  if (client.disabled) throw new InvalidClient('client_disabled', id);
  if (!client.authMethods.includes(creds.method)) throw new InvalidClient(`method_not_allowed:${creds.method}`, id);
  if (client.allowedIps !== undefined && !addressAllowed(client, req.ip)) throw new InvalidClient('address_not_allowed', id);
  return client;
}

function addressAllowed(client: Client, ip: string): boolean {
  // An IPv4 peer on a dual-stack socket shows up as ::ffff:a.b.c.d; match it as IPv4.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return client.allowedIps!.check(mapped[1]!, 'ipv4');
  return client.allowedIps!.check(ip, ip.includes(':') ? 'ipv6' : 'ipv4');
}
