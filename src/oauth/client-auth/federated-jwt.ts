import { InvalidClient } from '../errors.js';
import { verifyFederatedAssertion } from '../federated-assertion.js';
import type { ClientAuthenticator, CredentialsOf } from './authenticator.js';
import { checkClientMay, findClient, withFailuresCounted } from './client-checks.js';

/**
 * federated_jwt (CONTRACT §6): a workload's token from a trusted issuer (a Kubernetes projected
 * service account token, a CI job's OIDC token) as an RFC 7523 §2.2 client assertion. The client
 * is the `client_id` in the body; the token's `sub` is the workload identity registered in its
 * `federated_identity`, not the client_id.
 *
 * A signature check costs little, so the failure throttle refuses a spent client_id or address
 * up front and counts an attempt only once it has failed.
 */
export const federatedJwt: ClientAuthenticator<CredentialsOf<'federated_jwt'>> = {
  authenticate: (credentials, request, deps) =>
    withFailuresCounted(credentials.clientId, request, deps, async () => {
      const { clientId, assertion } = credentials;
      const client = findClient(clientId, deps);
      if (client === undefined) throw new InvalidClient('unknown_client', clientId);
      // A private_key_jwt assertion whose iss and sub do not both name the client_id ends here.
      if (!client.authMethods.includes('federated_jwt') && client.authMethods.includes('private_key_jwt')) throw new InvalidClient('assertion_iss_or_sub', clientId);
      checkClientMay(client, 'federated_jwt', request);
      const identity = client.federatedIdentity;
      const trusted = identity === undefined ? undefined : deps.registry.trustedIssuer(identity.issuer);
      // The registry refuses a federated_jwt client without an identity or with an unknown issuer.
      if (identity === undefined || trusted === undefined) throw new InvalidClient('federated_issuer_missing', clientId);
      if (deps.federation === undefined) throw new InvalidClient('federation_unavailable', clientId);
      await verifyFederatedAssertion(
        assertion,
        { clientId, trusted, subject: identity.subject, ...(identity.claims === undefined ? {} : { claims: identity.claims }), svid: false },
        { ...deps.federation, clock: deps.clock },
      );
      return { client, method: 'federated_jwt', federated: { issuer: trusted.name, subject: identity.subject } };
    }),
};
