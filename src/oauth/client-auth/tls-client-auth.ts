import { createHash } from 'node:crypto';
import { certificateKeyRegistered, certificateMatches } from '../certificate-match.js';
import { InvalidClient } from '../errors.js';
import type { AuthenticatedClient, ClientAuthenticator, CredentialsOf } from './authenticator.js';
import { checkClientMay, findClient, withFailuresCounted } from './client-checks.js';

/**
 * Mutual TLS client authentication (RFC 8705 §2): a client_id in the body and a client
 * certificate on the connection (or from a trusted proxy). Either method the client has may
 * accept it: tls_client_auth (§2.1, a certificate from a configured CA whose subject or SAN is
 * the one registered) or self_signed_tls_client_auth (§2.2, a certificate whose public key is
 * in the client's jwks). Tokens issued on it are bound to the certificate (§3.1).
 *
 * Matching a certificate costs little, so the failure throttle refuses a spent client_id or
 * address up front and counts an attempt only once it has failed.
 */
export const tlsClientAuth: ClientAuthenticator<CredentialsOf<'mtls'>> = {
  authenticate: (credentials, request, deps) =>
    withFailuresCounted(credentials.clientId, request, deps, async (): Promise<AuthenticatedClient> => {
      const { clientId, certificate: presented } = credentials;
      const client = findClient(clientId, deps);
      if (client === undefined) throw new InvalidClient('unknown_client', clientId);
      const certificateThumbprint = createHash('sha256').update(presented.cert.raw).digest('base64url');
      const pki = client.authMethods.includes('tls_client_auth') && client.tlsSubject !== undefined;
      if (pki && presented.chainVerified && certificateMatches(presented.cert, client.tlsSubject!)) {
        checkClientMay(client, 'tls_client_auth', request);
        return { client, method: 'tls_client_auth', certificateThumbprint };
      }
      if (client.authMethods.includes('self_signed_tls_client_auth') && (await certificateKeyRegistered(presented.cert, client))) {
        checkClientMay(client, 'self_signed_tls_client_auth', request);
        return { client, method: 'self_signed_tls_client_auth', certificateThumbprint };
      }
      if (client.disabled) throw new InvalidClient('client_disabled', clientId);
      if (!pki && !client.authMethods.includes('self_signed_tls_client_auth')) throw new InvalidClient('method_not_allowed:mtls', clientId);
      throw new InvalidClient(pki && !presented.chainVerified ? 'certificate_untrusted' : 'certificate_mismatch', clientId);
    }),
};
