import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import { epochSeconds, type Clock } from '../shared/clock.js';
import type { JwksFetcher } from '../clients/jwks-fetcher.js';
import type { ReplayClaims } from '../store/token-store.js';
import { InvalidClient } from './errors.js';
import { guardStore } from './store-guard.js';

/** RFC 7523 §2.2: the only client_assertion_type tollgate accepts. */
export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/**
 * Signature algorithms accepted for client assertions: asymmetric only. `none` is no signature,
 * and HMAC (client_secret_jwt) would need the plaintext secret, which tollgate never keeps.
 */
export const ASSERTION_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;

/** An assertion may live at most this long past now (seconds): it is a one-time credential. */
const MAX_ASSERTION_LIFETIME = 300;
/** Clock difference tolerated between the client and tollgate (seconds). */
const CLOCK_SKEW = 30;

export interface AssertionClient {
  clientId: string;
  jwks?: readonly JWK[];
  jwksUri?: string;
}

export interface ClientAssertionDeps {
  /** The issuer: the audience an assertion must name (RFC 7523 §3 point 3). */
  issuer: string;
  /** Also accept the token endpoint URL as audience; off by default (see below). */
  tokenEndpointAudience?: string;
  fetcher: JwksFetcher;
  /** Records that a jti was used: its claim resolves false when it had been used before. */
  replay: ReplayClaims;
  clock: Clock;
}

/**
 * Verifies a private_key_jwt client assertion (RFC 7523 §3, RFC 7521 §4.2) for `client`, or
 * throws InvalidClient with the reason for the log. The audience must be exactly the issuer,
 * as one value: an assertion made for another server, or for several at once, must not be
 * replayable here (the audience confusion behind CVE-2025-27370).
 */
export async function verifyClientAssertion(assertion: string, client: AssertionClient, deps: ClientAssertionDeps): Promise<void> {
  const fail = (reason: string): never => {
    throw new InvalidClient(`assertion_${reason}`, client.clientId);
  };
  let header: ReturnType<typeof decodeProtectedHeader>;
  let claims: ReturnType<typeof decodeJwt>;
  try {
    header = decodeProtectedHeader(assertion);
    claims = decodeJwt(assertion);
  } catch {
    return fail('malformed');
  }
  if (typeof header.alg !== 'string' || !(ASSERTION_ALGORITHMS as readonly string[]).includes(header.alg)) return fail('alg_not_allowed');
  if (claims.iss !== client.clientId || claims.sub !== client.clientId) return fail('iss_or_sub');
  const aud = Array.isArray(claims.aud) && claims.aud.length === 1 ? claims.aud[0] : claims.aud;
  if (typeof aud !== 'string' || (aud !== deps.issuer && aud !== deps.tokenEndpointAudience)) return fail('audience');
  const now = epochSeconds(deps.clock.now());
  if (typeof claims.exp !== 'number') return fail('no_exp');
  if (claims.exp > now + MAX_ASSERTION_LIFETIME + CLOCK_SKEW) return fail('exp_too_far');
  if (typeof claims.jti !== 'string' || claims.jti === '' || claims.jti.length > 256) return fail('no_jti');

  // The fetch's error names no secret (the URL and what went wrong), and tells the operator why.
  const keys = await assertionKeys(client, header.kid, deps).catch((err: unknown) => fail(`jwks_unavailable:${(err as Error).message}`));
  try {
    await jwtVerify(assertion, createLocalJWKSet({ keys: keys as JWK[] }), {
      algorithms: [header.alg],
      clockTolerance: CLOCK_SKEW,
      currentDate: new Date(deps.clock.now()),
      requiredClaims: ['exp', 'jti'],
    });
  } catch (err) {
    const code = (err as { code?: string }).code;
    return fail(code === 'ERR_JWT_EXPIRED' ? 'expired' : code === 'ERR_JWKS_NO_MATCHING_KEY' ? 'unknown_key' : 'bad_signature');
  }
  // Checked after the signature, so that nobody but the client can use up its jtis.
  const key = `${client.clientId.length}:${client.clientId}:${claims.jti}`;
  if (!(await guardStore('claim_jti', () => deps.replay.claimOnce(key, (claims.exp! + CLOCK_SKEW) * 1000, deps.clock.now())))) {
    return fail('replayed');
  }
}

/** The client's public keys: inline `jwks`, or its `jwks_uri`, refreshed for an unknown kid. */
async function assertionKeys(client: AssertionClient, kid: string | undefined, deps: ClientAssertionDeps): Promise<readonly JWK[]> {
  const keys = client.jwks ?? (client.jwksUri === undefined ? [] : await deps.fetcher.keys(client.jwksUri, kid));
  // Private parts are never used, and a key meant for encryption never verifies.
  return keys.filter((k) => k.d === undefined && (k.use === undefined || k.use === 'sig'));
}
