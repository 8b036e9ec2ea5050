import type { Client } from '../clients/registry.js';
import type { TokenRecords } from '../store/token-store.js';
import { authenticateClient, type ClientAuthDeps, type ClientAuthRequest } from './client-auth.js';
import { decideGrant, type GrantPolicy } from './client-credentials.js';
import { checkDpopNonce, claimDpopJti, verifyDpopProof, type DpopDeps, type VerifiedProof } from './dpop.js';
import { DpopProofRequired, InvalidRequest, UnsupportedGrantType } from './errors.js';
import { guardStore } from './store-guard.js';
import { tokenDigest } from './token-digest.js';
import type { AccessTokenClaims, Confirmation, TokenIssuer } from './token-issuer.js';

export interface TokenDeps extends ClientAuthDeps {
  issuer: TokenIssuer;
  policy: GrantPolicy;
  store: TokenRecords;
  dpop: DpopDeps;
}

export interface TokenRequest extends ClientAuthRequest {
  /** Every DPoP header's value (RFC 9449 §4); undefined when there is none. */
  dpop?: readonly string[];
}

/** RFC 6749 §5.1 successful response; never a refresh token (§4.4.3). */
export interface TokenResponse {
  access_token: string;
  /** RFC 9449 §5: DPoP for a token bound to the proof's key, else Bearer. */
  token_type: 'Bearer' | 'DPoP';
  /** Seconds. */
  expires_in: number;
  /** RFC 6749 §3.3: the scope granted; absent when the token has none. */
  scope?: string;
}

/**
 * The client credentials grant (RFC 6749 §4.4): checks the request's grant, authenticates the
 * client, decides what it gets (RFC 6749 §3.3 scope, RFC 8707 resource), mints and signs an
 * RFC 9068 access token, and records it. Throws the OAuthError of the first check that fails.
 *
 * A token is recorded before it is handed out: one the store does not know would never
 * introspect active nor be revocable, so when the store fails the client gets 503
 * temporarily_unavailable, not the token.
 *
 * With a DPoP proof (RFC 9449 §5) the token is bound to the proof's key. A client that
 * authenticates with its certificate gets a token bound to that certificate (RFC 8705 §3); a
 * token is never bound to both, which a resource server would have to check twice over, so
 * such a client sending a proof is refused, as node-oidc-provider does.
 */
export async function issueToken(
  request: TokenRequest,
  deps: TokenDeps,
): Promise<{
  response: TokenResponse;
  client: Client;
  claims: AccessTokenClaims;
  federated?: { issuer: string; subject: string };
  /** The DPoP nonce to send with the answer (RFC 9449 §8.2), when nonces are required. */
  dpopNonce?: string;
}> {
  // Cheap checks of the request's shape come before client authentication, so malformed
  // requests cost no argon2 work.
  const grantType = request.params.get('grant_type');
  if (grantType === undefined) throw new InvalidRequest('grant_type is required');
  if (grantType !== 'client_credentials') throw new UnsupportedGrantType('only client_credentials is supported');

  // The proof's checks cost one signature verification, less than authentication: a bad proof
  // is refused first. Its jti is recorded only once the client is known (claimDpopJti).
  const proof: VerifiedProof | undefined = request.dpop === undefined ? undefined : await verifyDpopProof(request.dpop, 'POST', deps.dpop);
  // With dpop.require_nonce, a proof without a current server nonce is refused with the nonce to use.
  const dpopNonce = proof === undefined ? undefined : await checkDpopNonce(proof, deps.dpop);

  const { client, certificateThumbprint, federated } = await authenticateClient(request, deps);
  if (proof === undefined && client.dpopBoundAccessTokens === true) throw new DpopProofRequired(client.clientId);
  if (proof !== undefined && certificateThumbprint !== undefined) {
    throw new InvalidRequest('a token is bound to the client certificate or to a DPoP key, not both: send no DPoP proof with mutual TLS client authentication', 'dpop_with_mtls');
  }
  const grant = decideGrant(client, request.params, deps.policy);
  if (proof !== undefined) await claimDpopJti(proof, deps.dpop);
  // RFC 8705 §3: a token requested over mutual TLS is bound to that certificate.
  const confirmation: Confirmation | undefined =
    proof !== undefined ? { jkt: proof.jkt } : certificateThumbprint !== undefined ? { 'x5t#S256': certificateThumbprint } : undefined;
  const { accessToken, claims } = await deps.issuer.issue(client.clientId, grant, confirmation);
  await guardStore('record', () =>
    deps.store.record({
      jti: claims.jti,
      clientId: client.clientId,
      scope: claims.scope ?? '',
      aud: grant.audience,
      iat: claims.iat,
      exp: claims.exp,
      // The store keeps the token's digest, never the token (see TokenRecord.digest).
      digest: tokenDigest(accessToken),
      ...(certificateThumbprint === undefined ? {} : { cnf: certificateThumbprint }),
      ...(proof === undefined ? {} : { jkt: proof.jkt }),
    }),
  );

  const response: TokenResponse = { access_token: accessToken, token_type: proof === undefined ? 'Bearer' : 'DPoP', expires_in: grant.ttl };
  if (claims.scope !== undefined) response.scope = claims.scope;
  return { response, client, claims, ...(federated === undefined ? {} : { federated }), ...(dpopNonce === undefined ? {} : { dpopNonce }) };
}
