import type { FastifyRequest } from 'fastify';
import { InvalidRequest } from '../oauth/errors.js';
import { Params } from '../oauth/params.js';

/** RFC 6749 §3.2: requests to the token endpoint are application/x-www-form-urlencoded. */
export function formParams(req: FastifyRequest): Params {
  const type = req.headers['content-type'];
  if (type === undefined || type.split(';')[0]!.trim().toLowerCase() !== 'application/x-www-form-urlencoded') {
    throw new InvalidRequest('the body must be application/x-www-form-urlencoded');
  }
  return Params.fromBody(req.body);
}
