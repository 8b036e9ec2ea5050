import { decodeJwt } from 'jose';
import { spiffeTrustDomain } from '../../clients/spiffe-id.js';
import { InvalidClient } from '../errors.js';
import { verifyFederatedAssertion } from '../federated-assertion.js';
import type { ClientAuthenticator, CredentialsOf } from './authenticator.js';
import { checkClientMay, findClient, withFailuresCounted } from './client-checks.js';

/**
 * spiffe_jwt (draft-ietf-oauth-spiffe-client-auth, CONTRACT §6): a JWT-SVID whose `sub` is the
 * client's SPIFFE ID, verified with the `jwt-svid` keys of its trust domain's bundle. The
 * client is the `client_id` in the body, or, when there is none, the client whose SPIFFE ID
 * the SVID names.
 *
 * Throttled like private_key_jwt; without a client_id the SPIFFE ID the SVID presents stands
 * for it in the throttle's per-client count.
 */
export const spiffeJwt: ClientAuthenticator<CredentialsOf<'spiffe_jwt'>> = {
  authenticate: async (credentials, request, deps) => {
    const { clientId, assertion } = credentials;
    let presented: string | undefined = clientId;
    if (presented === undefined) {
      let sub: unknown;
      try {
        sub = decodeJwt(assertion).sub;
      } catch {
        throw new InvalidClient('svid_malformed');
      }
      if (typeof sub !== 'string' || sub === '') throw new InvalidClient('svid_malformed');
      presented = sub;
    }
    return withFailuresCounted(presented, request, deps, async () => {
      const client = clientId !== undefined ? findClient(clientId, deps) : deps.registry.bySpiffeId(presented);
      if (client === undefined) throw new InvalidClient('unknown_client', presented);
      checkClientMay(client, 'spiffe_jwt', request);
      const spiffeId = client.spiffeId;
      const domain = spiffeId === undefined ? undefined : spiffeTrustDomain(spiffeId);
      const trusted = domain === undefined ? undefined : deps.registry.trustedIssuers().find((t) => t.spiffeTrustDomain === domain);
      // The registry refuses a spiffe_jwt client whose trust domain is not trusted.
      if (spiffeId === undefined || trusted === undefined) throw new InvalidClient('svid_trust_domain_missing', client.clientId);
      if (deps.federation === undefined) throw new InvalidClient('federation_unavailable', client.clientId);
      await verifyFederatedAssertion(assertion, { clientId: client.clientId, trusted, subject: spiffeId, svid: true }, { ...deps.federation, clock: deps.clock });
      return { client, method: 'spiffe_jwt', federated: { issuer: trusted.name, subject: spiffeId } };
    });
  },
};
