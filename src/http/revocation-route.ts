import type { FastifyInstance } from 'fastify';
import { REVOCATION_PATH } from '../oauth/metadata.js';
import { revokeToken, type RevocationDeps } from '../oauth/revocation.js';
import type { Audit } from './audit.js';
import { noStore } from './headers.js';
import { readTokenRequest, type HttpClientAuthDeps } from './token-param-request.js';

/** POST /oauth2/revoke (RFC 7009). */
export function revocationRoute(app: FastifyInstance, deps: RevocationDeps & HttpClientAuthDeps & { audit: Audit }): void {
  app.post(REVOCATION_PATH, async (req, reply) => {
    const { token, client } = await readTokenRequest(req, deps);
    const outcome = await revokeToken(token, client, deps);
    const context = { reqId: req.id, ip: req.ip };
    if (outcome.revoked) deps.audit.tokenRevoked(context, client.clientId, outcome.jti);
    else deps.audit.revokeIgnored(context, client.clientId, outcome.reason);
    // RFC 7009 §2.2: 200 whether or not there was anything to revoke; the body is empty.
    return reply.code(200).headers(noStore).send();
  });
}
