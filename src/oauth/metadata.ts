import { allScopes, AUTH_METHODS, TLS_AUTH_METHODS, type ClientRegistry } from '../clients/registry.js';
import { ASSERTION_ALGORITHMS } from './client-assertion.js';
import { DPOP_ALGORITHMS } from './dpop.js';

export interface MetadataOptions {
  issuer: string;
  publishScopes: boolean;
  /** Mutual TLS is available (a client CA is configured). */
  mtls: boolean;
}

export const TOKEN_PATH = '/oauth2/token';
export const INTROSPECTION_PATH = '/oauth2/introspect';
export const REVOCATION_PATH = '/oauth2/revoke';
export const JWKS_PATH = '/.well-known/jwks.json';
export const METADATA_PATH = '/.well-known/oauth-authorization-server';

/**
 * RFC 8414 §2 authorization server metadata; every URL is built from the issuer.
 * `signingAlgorithms` are those of the published keys, which sign RFC 9701 answers.
 */
export function buildMetadata(options: MetadataOptions, registry: ClientRegistry, signingAlgorithms: readonly string[]): Record<string, unknown> {
  const methods = AUTH_METHODS.filter((m) => options.mtls || !(TLS_AUTH_METHODS as readonly string[]).includes(m));
  const signing = [...ASSERTION_ALGORITHMS];
  const metadata: Record<string, unknown> = {
    issuer: options.issuer,
    token_endpoint: `${options.issuer}${TOKEN_PATH}`,
    jwks_uri: `${options.issuer}${JWKS_PATH}`,
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: methods,
    token_endpoint_auth_signing_alg_values_supported: signing,
    introspection_endpoint: `${options.issuer}${INTROSPECTION_PATH}`,
    introspection_endpoint_auth_methods_supported: methods,
    introspection_endpoint_auth_signing_alg_values_supported: signing,
    // RFC 9701 §6: introspection answers are signed, when asked, with the current signing key.
    introspection_signing_alg_values_supported: [...signingAlgorithms],
    revocation_endpoint: `${options.issuer}${REVOCATION_PATH}`,
    revocation_endpoint_auth_methods_supported: methods,
    revocation_endpoint_auth_signing_alg_values_supported: signing,
    // RFC 8705 §3.3: tokens requested over mutual TLS carry cnf.x5t#S256.
    tls_client_certificate_bound_access_tokens: options.mtls,
    // RFC 9449 §5.1: the proof algorithms the token endpoint accepts.
    dpop_signing_alg_values_supported: [...DPOP_ALGORITHMS],
    // REQUIRED by RFC 8414 §2; tollgate has no authorization endpoint, so it supports none.
    response_types_supported: [],
  };
  if (options.publishScopes) metadata.scopes_supported = allScopes(registry);
  return metadata;
}
