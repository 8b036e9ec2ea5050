import type { ClientSecret } from '../../clients/registry.js';
import { QueueFull } from '../../crypto/limiter.js';
import { MAX_SECRET_LENGTH } from '../../crypto/secrets.js';
import { InvalidClient, TemporarilyUnavailable } from '../errors.js';
import type { ThrottledAttempt } from '../throttle.js';
import type { ClientAuthDeps, ClientAuthenticator, ClientAuthRequest, CredentialsOf } from './authenticator.js';
import { checkClientMay, findClient } from './client-checks.js';

/**
 * client_secret_basic and client_secret_post (RFC 6749 §2.3.1): a client_id and a secret,
 * checked against the client's live argon2id hashes.
 *
 * The argon2 work does not depend on why authentication fails: an unknown client, or one with
 * no live secret, is checked against a dummy hash of the same cost, and a disabled client or a
 * forbidden method or address is refused only after the secret check. (A client with several
 * live secrets during a rotation costs one verification per secret tried; a pair verified
 * recently costs none, see VerifiedCredentials.)
 */
export const clientSecret: ClientAuthenticator<CredentialsOf<'client_secret_basic' | 'client_secret_post'>> = {
  async authenticate(credentials, request, deps) {
    const id = credentials.clientId;
    if (credentials.secret.length > MAX_SECRET_LENGTH) throw new InvalidClient('secret_too_long', id);
    const client = findClient(id, deps);
    const now = deps.clock.now();
    const live = client?.secrets.filter((s) => s.expiresAt === undefined || s.expiresAt > now) ?? [];
    const matched = (await matchSecret(id, client !== undefined, credentials.secret, live, now, request, deps)) !== undefined;

    if (client === undefined) throw new InvalidClient('unknown_client', id);
    if (!matched) throw new InvalidClient(live.length < client.secrets.length ? 'wrong_or_expired_secret' : 'wrong_secret', id);
    checkClientMay(client, credentials.method, request);
    return { client, method: credentials.method };
  },
};

/**
 * The live secret the presented one matches, in three steps, cheapest first:
 * 1. the cache of recently verified pairs: passes without being counted by the throttle;
 * 2. the throttle (FailureThrottle.begin): the attempt is counted as a failure before argon2
 *    runs, so that at most the limit of a burst reaches argon2 (RFC 6749 §2.3.1 asks for
 *    protection against brute force), and given back if the secret matches (for a registered
 *    client the address is counted only once the secret has proved wrong);
 * 3. argon2, shared with a verification of the same pair already under way. An attempt the
 *    throttle refused may still share one, which costs no argon2 work: it passes if the
 *    secret is right, and gets the refusal if not.
 */
async function matchSecret(
  clientId: string,
  registered: boolean,
  secret: string,
  live: readonly ClientSecret[],
  now: number,
  request: Pick<ClientAuthRequest, 'ip'>,
  deps: Pick<ClientAuthDeps, 'verifier' | 'throttle'>,
): Promise<ClientSecret | undefined> {
  const cached = deps.verifier.cached(clientId, secret, live, now);
  if (cached !== undefined) return cached;

  let attempt: ThrottledAttempt | undefined;
  let refused: { error: unknown } | undefined;
  try {
    attempt = await deps.throttle?.begin(clientId, request.ip, registered);
  } catch (error) {
    refused = { error };
  }

  let matched: ClientSecret | undefined;
  try {
    matched =
      refused === undefined
        ? // The cache again: a wait in the throttle may have seen this pair verified meanwhile.
          await deps.verifier.check(clientId, secret, live, now)
        : await deps.verifier.verifyIfShared(clientId, secret, live, now);
  } catch (err) {
    // Not checked, so not a failure: the count is given back.
    await attempt?.release();
    if (err instanceof QueueFull) throw new TemporarilyUnavailable('too many authentication requests; retry later', 1, 'argon2 queue full');
    throw err;
  }
  if (matched === undefined && refused !== undefined) throw refused.error;
  if (matched !== undefined) await attempt?.release();
  else await attempt?.failed();
  return matched;
}
