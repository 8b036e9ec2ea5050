import type { Client } from '../clients/registry.js';
import type { TokenRecords } from '../store/token-store.js';
import { authenticateClient, type ClientAuthDeps, type ClientAuthRequest } from './client-auth.js';
import { decideGrant, type GrantPolicy } from './client-credentials.js';
import { InvalidRequest, UnsupportedGrantType } from './errors.js';
import { guardStore } from './store-guard.js';
import { tokenDigest } from './token-digest.js';
import type { AccessTokenClaims, TokenIssuer } from './token-issuer.js';

export interface TokenDeps extends ClientAuthDeps {
  issuer: TokenIssuer;
  policy: GrantPolicy;
  store: TokenRecords;
}

/** RFC 6749 §5.1 successful response; never a refresh token (§4.4.3). */
export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
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
 */
export async function issueToken(
  request: ClientAuthRequest,
  deps: TokenDeps,
): Promise<{ response: TokenResponse; client: Client; claims: AccessTokenClaims; federated?: { issuer: string; subject: string } }> {
  // Cheap checks of the request's shape come before client authentication, so malformed
  // requests cost no argon2 work.
  const grantType = request.params.get('grant_type');
  if (grantType === undefined) throw new InvalidRequest('grant_type is required');
  if (grantType !== 'client_credentials') throw new UnsupportedGrantType('only client_credentials is supported');

  const { client, certificateThumbprint, federated } = await authenticateClient(request, deps);
  const grant = decideGrant(client, request.params, deps.policy);
  // RFC 8705 §3: a token requested over mutual TLS is bound to that certificate.
  const { accessToken, claims } = await deps.issuer.issue(client.clientId, grant, certificateThumbprint);
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
    }),
  );

  const response: TokenResponse = { access_token: accessToken, token_type: 'Bearer', expires_in: grant.ttl };
  if (claims.scope !== undefined) response.scope = claims.scope;
  return { response, client, claims, ...(federated === undefined ? {} : { federated }) };
}
