import type { FastifyRequest } from 'fastify';
import type { Client } from '../clients/registry.js';
import { authenticateClient, type ClientAuthDeps } from '../oauth/client-auth.js';
import { InvalidRequest } from '../oauth/errors.js';
import type { CertificateSource } from './client-certificate.js';
import { formParams } from './form.js';

/** Client authentication as the HTTP routes do it: with the request's client certificate. */
export type HttpClientAuthDeps = ClientAuthDeps & { certificates: CertificateSource };

/**
 * The shared start of introspection (RFC 7662 §2.1) and revocation (RFC 7009 §2.1): a form body
 * with a `token`, from an authenticated client. `token_type_hint` is accepted with any value and
 * never needed: tollgate issues one kind of token.
 */
export async function readTokenRequest(
  req: FastifyRequest,
  deps: HttpClientAuthDeps,
): Promise<{ token: string; client: Client }> {
  const params = formParams(req);
  const token = params.get('token');
  if (token === undefined) throw new InvalidRequest('token is required');
  const { client } = await authenticateClient({ authorization: req.headers.authorization, params, ip: req.ip, certificate: deps.certificates(req) }, deps);
  return { token, client };
}
