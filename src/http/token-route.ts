import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../metrics/metrics.js';
import type { Audit } from './audit.js';
import { TOKEN_PATH } from '../oauth/metadata.js';
import { issueToken, type TokenDeps } from '../oauth/token.js';
import type { CertificateSource } from './client-certificate.js';
import { formParams } from './form.js';
import { headerValues, noStore } from './headers.js';

export interface TokenRouteDeps extends TokenDeps {
  certificates: CertificateSource;
  metrics: Metrics;
  audit: Audit;
}

/** POST /oauth2/token: the client credentials grant (RFC 6749 §4.4) answering RFC 9068 JWTs. */
export function tokenRoute(app: FastifyInstance, deps: TokenRouteDeps): void {
  app.post(TOKEN_PATH, async (req, reply) => {
    const params = formParams(req);
    const { response, client, claims, federated, dpopNonce } = await issueToken(
      {
        authorization: req.headers.authorization,
        params,
        ip: req.ip,
        certificate: deps.certificates(req),
        // Every DPoP header, unjoined, so that a request with two is seen to have two.
        dpop: headerValues(req.raw, 'dpop'),
      },
      deps,
    );
    deps.metrics.tokensIssued.child(client.clientId).inc();
    // Every issuance is traceable: one audit line each, at info.
    deps.audit.tokenIssued(
      { reqId: req.id, ip: req.ip },
      { clientId: client.clientId, scope: claims.scope, aud: claims.aud, jti: claims.jti, exp: claims.exp, tokenType: response.token_type, federated },
    );
    // RFC 6749 §5.1: the answer carries a credential, so no cache may keep it.
    // RFC 9449 §8.2: the nonce for the client's next proof comes with the answer.
    return reply
      .code(200)
      .headers(dpopNonce === undefined ? noStore : { ...noStore, 'DPoP-Nonce': dpopNonce })
      .send(response);
  });
}
