import type { FastifyInstance } from 'fastify';
import { REVOCATION_PATH } from '../oauth/metadata.js';
import { revokeToken, type RevocationDeps } from '../oauth/revocation.js';
import { noStore } from './headers.js';
import { readTokenRequest, type HttpClientAuthDeps } from './token-param-request.js';

/** POST /oauth2/revoke (RFC 7009). */
export function revocationRoute(app: FastifyInstance, deps: RevocationDeps & HttpClientAuthDeps): void {
  app.post(REVOCATION_PATH, async (req, reply) => {
    const { token, client } = await readTokenRequest(req, deps);
    const outcome = await revokeToken(token, client, deps);
    if (outcome.revoked) {
      req.log.info({ event: 'token.revoked', client_id: client.clientId, jti: outcome.jti, ip: req.ip }, 'token revoked');
    } else {
      req.log.info({ event: 'token.revoke_ignored', client_id: client.clientId, reason: outcome.reason, ip: req.ip }, 'nothing to revoke');
    }
    // RFC 7009 §2.2: 200 whether or not there was anything to revoke; the body is empty.
    return reply.code(200).headers(noStore).send();
  });
}
