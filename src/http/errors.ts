import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { DpopProofRequired, InvalidClient, InvalidDpopProof, InvalidRequest, OAuthError, PayloadTooLarge, ServerError, TooManyRequests } from '../oauth/errors.js';
import type { ClientRegistry } from '../clients/registry.js';
import type { Metrics } from '../metrics/metrics.js';
import { logId } from '../oauth/client-auth.js';
import { noStore } from './headers.js';

/** Maps anything thrown while serving a request to an OAuth error answer; never a stack trace. */
export function toOAuthError(err: unknown): OAuthError {
  if (err instanceof OAuthError) return err;
  const fe = err as Partial<FastifyError>;
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new PayloadTooLarge('request body too large', fe.code);
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || fe.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') {
    return new InvalidRequest('the body must be application/x-www-form-urlencoded', fe.code);
  }
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) return new InvalidRequest('malformed request', fe.code);
  return new ServerError('internal error');
}

export function sendError(err: OAuthError, reply: FastifyReply): FastifyReply {
  return reply.code(err.status).headers({ ...noStore, ...err.headers() }).send(err.body());
}

/** The Fastify error handler, given the registry so that failed authentications are logged safely. */
export function errorHandler(registry: ClientRegistry, metrics: Metrics) {
  return (err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply => handleError(err, req, reply, registry, metrics);
}

function handleError(err: unknown, req: FastifyRequest, reply: FastifyReply, registry: ClientRegistry, metrics: Metrics): FastifyReply {
  const oauth = toOAuthError(err);
  if (oauth instanceof InvalidClient) {
    // The reason without its detail (`method_not_allowed:…`), so the label set stays small.
    metrics.authFailures.inc({ reason: oauth.reason.split(':')[0] });
    req.log.warn({ event: 'client.auth_failed', ...logId(registry, oauth.presentedId), reason: oauth.reason, ip: req.ip }, 'client authentication failed');
  } else if (oauth instanceof TooManyRequests) {
    req.log.warn({ event: 'client.throttled', per: oauth.scope, retry_after: oauth.retryAfterSeconds, ip: req.ip }, 'authentication throttled');
  } else if (oauth instanceof InvalidDpopProof) {
    // The failed check only: the proof itself, like a token, never reaches the log.
    req.log.warn({ event: 'dpop.proof_rejected', check: oauth.check, path: pathOf(req), ip: req.ip }, oauth.description);
  } else if (oauth instanceof DpopProofRequired) {
    req.log.warn({ event: 'dpop.proof_missing', client_id: oauth.clientId, path: pathOf(req), ip: req.ip }, oauth.description);
  } else if (oauth instanceof ServerError) {
    req.log.error({ err, path: pathOf(req) }, 'request failed');
  } else {
    req.log.info({ event: 'request.rejected', error: oauth.error, detail: oauth.detail, path: pathOf(req), ip: req.ip }, oauth.description);
  }
  return sendError(oauth, reply);
}

/** The request path without its query string, which could hold a credential sent by mistake. */
export function pathOf(req: FastifyRequest): string {
  const q = req.url.indexOf('?');
  return q < 0 ? req.url : req.url.slice(0, q);
}
