import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWK, type JWTPayload } from 'jose';
import type { IssuerKeys } from '../clients/issuer-keys.js';
import type { TrustedIssuer } from '../clients/registry.js';
import { epochSeconds, type Clock } from '../shared/clock.js';
import { InvalidClient } from './errors.js';

/** draft-ietf-oauth-spiffe-client-auth: the client_assertion_type of a JWT-SVID. */
export const JWT_SPIFFE_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-spiffe';

/**
 * Signature algorithms a trusted issuer's token may use: asymmetric only (RFC 7518 §3.1, and the
 * JWT-SVID specification §3). `none` is no signature, and an HMAC key would be a shared secret.
 */
export const FEDERATED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

/** Clock difference tolerated between the issuer and tollgate (seconds). */
const CLOCK_SKEW = 30;
/** A presented iss or sub is quoted in the log's reason up to this length. */
const QUOTED = 120;

export interface FederatedAssertionDeps {
  /** tollgate's issuer: the audience a token must name. */
  issuer: string;
  /** Also accept the token endpoint URL as audience (client_auth.accept_token_endpoint_audience). */
  tokenEndpointAudience?: string;
  keys: IssuerKeys;
  clock: Clock;
}

export interface FederatedExpectation {
  /** The presented client_id, for the log. */
  clientId: string | undefined;
  trusted: TrustedIssuer;
  /** The `sub` the token must carry: the workload identity, or the SPIFFE ID. */
  subject: string;
  /** Claims the token must carry with exactly these values. */
  claims?: Readonly<Record<string, string>>;
  /** A JWT-SVID: only bundle keys with `use: jwt-svid` verify it, and `iss` is optional. */
  svid: boolean;
}

/**
 * Verifies a workload's token from a trusted issuer (CONTRACT §6), or throws InvalidClient with
 * the reason for the log (never the token). Checked: an asymmetric alg; `iss` is the issuer's
 * (for a JWT-SVID only when the entry names one); `sub` the expected identity; `aud` tollgate's
 * issuer, as a string or a one-element array; `exp` required and in the future, `nbf` passed,
 * `iat` required, not in the future, and `exp - iat` within the issuer's max_lifetime; any claim
 * conditions; and the signature, with a key of the issuer's key set.
 *
 * Unlike a private_key_jwt assertion the token is reusable until it expires (RFC 7523 §3 leaves
 * jti optional; a Kubernetes or CI token is presented many times): no jti is claimed.
 */
export async function verifyFederatedAssertion(assertion: string, expect: FederatedExpectation, deps: FederatedAssertionDeps): Promise<JWTPayload> {
  const prefix = expect.svid ? 'svid' : 'federated';
  const fail = (reason: string): never => {
    throw new InvalidClient(`${prefix}_${reason}`, expect.clientId);
  };
  let header: ReturnType<typeof decodeProtectedHeader>;
  let claims: JWTPayload;
  try {
    header = decodeProtectedHeader(assertion);
    claims = decodeJwt(assertion);
  } catch {
    return fail('malformed');
  }
  const { trusted } = expect;
  if (typeof header.alg !== 'string' || !(FEDERATED_ALGORITHMS as readonly string[]).includes(header.alg)) return fail('alg_not_allowed');
  const quote = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v.slice(0, QUOTED)) : typeof v);
  if (trusted.issuer !== undefined || !expect.svid) {
    if (claims.iss !== trusted.issuer) return fail(`iss:${quote(claims.iss)} is not ${trusted.name}'s`);
  }
  if (claims.sub !== expect.subject) return fail(`sub:${quote(claims.sub)} is not the client's`);
  const aud = Array.isArray(claims.aud) && claims.aud.length === 1 ? claims.aud[0] : claims.aud;
  if (typeof aud !== 'string' || (aud !== deps.issuer && aud !== deps.tokenEndpointAudience)) return fail('audience');
  const now = epochSeconds(deps.clock.now());
  if (typeof claims.exp !== 'number') return fail('no_exp');
  if (typeof claims.iat !== 'number') return fail('no_iat');
  if (claims.iat > now + CLOCK_SKEW) return fail('iat_in_future');
  if (claims.exp - claims.iat > trusted.maxLifetime) return fail(`lifetime_too_long:${claims.exp - claims.iat}s>${trusted.maxLifetime}s`);
  for (const [name, value] of Object.entries(expect.claims ?? {})) {
    if (claims[name] !== value) return fail(`claim:${name}`);
  }

  // The fetch's error names no secret (the URL and what went wrong), and tells the operator why.
  const all = await deps.keys.keys(trusted, header.kid).catch((err: unknown) => fail(`jwks_unavailable:${(err as Error).message}`));
  // Private parts are never used; a SPIFFE bundle's x509-svid keys never verify a JWT-SVID, nor
  // an encryption key anything.
  // jose itself passes only keys without `use` or with `use: sig`: the filter is done here, then
  // `use` dropped.
  const keys = all
    .filter((k) => k.d === undefined && (expect.svid ? k.use === 'jwt-svid' : k.use === undefined || k.use === 'sig'))
    .map(({ use: _use, ...k }) => k);
  try {
    await jwtVerify(assertion, createLocalJWKSet({ keys: keys as JWK[] }), {
      algorithms: [header.alg],
      clockTolerance: CLOCK_SKEW,
      currentDate: new Date(deps.clock.now()),
      requiredClaims: ['exp', 'iat'],
    });
  } catch (err) {
    const code = (err as { code?: string }).code;
    return fail(
      code === 'ERR_JWT_EXPIRED'
        ? 'expired'
        : code === 'ERR_JWKS_NO_MATCHING_KEY'
          ? 'unknown_key'
          : code === 'ERR_JWT_CLAIM_VALIDATION_FAILED'
            ? `claim_invalid:${(err as { claim?: string }).claim ?? ''}`
            : code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS'
              ? 'ambiguous_key'
              : 'bad_signature',
    );
  }
  return claims;
}
