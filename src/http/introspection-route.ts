import type { FastifyInstance } from 'fastify';
import { introspect, type IntrospectionDeps } from '../oauth/introspection.js';
import { INTROSPECTION_JWT_MEDIA_TYPE, signIntrospectionResponse } from '../oauth/introspection-jwt.js';
import { INTROSPECTION_PATH } from '../oauth/metadata.js';
import { prefers } from './accept.js';
import type { Audit } from './audit.js';
import { noStore } from './headers.js';
import { readTokenRequest, type HttpClientAuthDeps } from './token-param-request.js';

/** POST /oauth2/introspect (RFC 7662), answered as a signed JWT when asked (RFC 9701). */
export function introspectionRoute(app: FastifyInstance, deps: IntrospectionDeps & HttpClientAuthDeps & { config: { issuer: string }; audit: Audit }): void {
  app.post(INTROSPECTION_PATH, async (req, reply) => {
    const { token, client } = await readTokenRequest(req, deps);
    let answer: Awaited<ReturnType<typeof introspect>>;
    try {
      answer = await introspect(token, client, deps);
    } catch (err) {
      // Answered by the error handler (503 when the store is down); counted for the summary.
      deps.audit.introspectionFailed(client.clientId);
      throw err;
    }
    const { response, jti, reason } = answer;
    deps.audit.introspected({ reqId: req.id, ip: req.ip }, client.clientId, jti, response.active, reason);
    // Errors thrown above stay plain JSON (RFC 9701 §4); only the answer itself is signed.
    if (prefers(req.headers.accept, INTROSPECTION_JWT_MEDIA_TYPE, 'application/json')) {
      const jwt = await signIntrospectionResponse(response, client.clientId, { issuer: deps.config.issuer, keys: deps.keys, clock: deps.clock });
      return reply.code(200).headers({ ...noStore, 'content-type': INTROSPECTION_JWT_MEDIA_TYPE }).send(jwt);
    }
    return reply.code(200).headers(noStore).send(response);
  });
}
