import { verifyClientAssertion } from '../client-assertion.js';
import { InvalidClient } from '../errors.js';
import type { ClientAuthenticator, CredentialsOf } from './authenticator.js';
import { registeredClient, withFailuresCounted } from './client-checks.js';

/**
 * private_key_jwt (RFC 7523 §2.2, OpenID Connect Core §9): a JWT the client signed with a key of
 * its registered `jwks` or `jwks_uri`. The client is the assertion's `sub`, which credential
 * extraction has already read (and compared with a client_id in the body).
 *
 * A signature check costs little, so the failure throttle refuses a spent client_id or address
 * up front and counts an attempt only once it has failed.
 */
export const privateKeyJwt: ClientAuthenticator<CredentialsOf<'private_key_jwt'>> = {
  authenticate: (credentials, request, deps) =>
    withFailuresCounted(credentials.clientId, request, deps, async () => {
      const client = registeredClient(credentials.clientId, 'private_key_jwt', request, deps);
      if (deps.assertions === undefined) throw new InvalidClient('private_key_jwt_unavailable', credentials.clientId);
      await verifyClientAssertion(credentials.assertion, client, { ...deps.assertions, clock: deps.clock });
      return { client, method: 'private_key_jwt' };
    }),
};
