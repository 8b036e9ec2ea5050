import type { FastifyInstance } from 'fastify';
import { authenticateClient } from '../oauth/client-auth.js';
import { decideGrant, type GrantPolicy } from '../oauth/client-credentials.js';
import { InvalidRequest, UnsupportedGrantType } from '../oauth/errors.js';
import { TOKEN_PATH } from '../oauth/metadata.js';
import { guardStore } from '../oauth/store-guard.js';
import { tokenDigest } from '../oauth/token-digest.js';
import type { TokenIssuer } from '../oauth/token-issuer.js';
import type { Metrics } from '../metrics.js';
import type { TokenStore } from '../store/token-store.js';
import { formParams } from './form.js';
import { noStore } from './headers.js';
import type { HttpClientAuthDeps } from './token-param-request.js';

export interface TokenRouteDeps extends HttpClientAuthDeps {
  issuer: TokenIssuer;
  policy: GrantPolicy;
  store: TokenStore;
  metrics: Metrics;
}

/** POST /oauth2/token: the client credentials grant (RFC 6749 §4.4) answering RFC 9068 JWTs. */
export function tokenRoute(app: FastifyInstance, deps: TokenRouteDeps): void {
  app.post(TOKEN_PATH, async (req, reply) => {
    const params = formParams(req);
    // Cheap checks of the request's shape come before client authentication, so malformed
    // requests cost no argon2 work.
    const grantType = params.get('grant_type');
    if (grantType === undefined) throw new InvalidRequest('grant_type is required');
    if (grantType !== 'client_credentials') throw new UnsupportedGrantType('only client_credentials is supported');

    const { client, certificateThumbprint } = await authenticateClient(
      { authorization: req.headers.authorization, params, ip: req.ip, certificate: deps.certificates(req) },
      deps,
    );
    const grant = decideGrant(client, params, deps.policy);
    // RFC 8705 §3: a token requested over mutual TLS is bound to that certificate.
    const { accessToken, claims } = await deps.issuer.issue(client.clientId, grant, certificateThumbprint);
    // Recorded before it is handed out: a token the store does not know would never introspect
    // active nor be revocable, so when the store fails the client gets 503, not the token.
    await guardStore('record', () =>
      deps.store.record({
        jti: claims.jti,
        clientId: client.clientId,
        scope: claims.scope ?? '',
        aud: grant.audience,
        iat: claims.iat,
        exp: claims.exp,
        digest: tokenDigest(accessToken),
        ...(certificateThumbprint === undefined ? {} : { cnf: certificateThumbprint }),
      }),
    );

    deps.metrics.tokensIssued.child(client.clientId).inc();
    req.log.info(
      { event: 'token.issued', client_id: client.clientId, scope: claims.scope, aud: claims.aud, jti: claims.jti, ip: req.ip },
      'token issued',
    );
    const body: Record<string, unknown> = { access_token: accessToken, token_type: 'Bearer', expires_in: grant.ttl };
    if (claims.scope !== undefined) body.scope = claims.scope;
    return reply.code(200).headers(noStore).send(body);
  });
}
