import type { FastifyInstance } from 'fastify';
import { introspect, type IntrospectionDeps } from '../oauth/introspection.js';
import { INTROSPECTION_PATH } from '../oauth/metadata.js';
import { noStore } from './headers.js';
import { readTokenRequest, type HttpClientAuthDeps } from './token-param-request.js';

/** POST /oauth2/introspect (RFC 7662). */
export function introspectionRoute(app: FastifyInstance, deps: IntrospectionDeps & HttpClientAuthDeps): void {
  app.post(INTROSPECTION_PATH, async (req, reply) => {
    const { token, client } = await readTokenRequest(req, deps);
    const { response, jti, reason } = await introspect(token, client, deps);
    req.log.info({ event: 'token.introspected', client_id: client.clientId, jti, active: response.active, reason, ip: req.ip }, 'token introspected');
    return reply.code(200).headers(noStore).send(response);
  });
}
