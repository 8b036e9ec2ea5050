import { epochSeconds, type Clock } from '../shared/clock.js';
import type { KeySet } from '../keys/key-set.js';
import { signJwt } from '../keys/jws.js';
import type { IntrospectionResponse } from './introspection.js';

/** RFC 9701 §4: the media type a caller asks for, and the JWT's typ (§5). */
export const INTROSPECTION_JWT_MEDIA_TYPE = 'application/token-introspection+jwt';

export interface IntrospectionJwtDeps {
  /** tollgate's issuer: the JWT's iss. */
  issuer: string;
  keys: KeySet;
  clock: Clock;
}

/**
 * RFC 9701 §5: the introspection answer as a JWT signed with the current signing key (its kid
 * in the header, so resource servers find it in the JWKS), for the client that asked: iss,
 * aud (that client), iat and token_introspection (the RFC 7662 answer). The token's own sub
 * and exp stay inside token_introspection: at the top level they would make the answer look
 * like an access token to a careless resource server (§5, §8.2).
 */
export async function signIntrospectionResponse(response: IntrospectionResponse, callerId: string, deps: IntrospectionJwtDeps): Promise<string> {
  return signJwt(deps.keys.signingKey(), 'token-introspection+jwt', {
    iss: deps.issuer,
    aud: callerId,
    iat: epochSeconds(deps.clock.now()),
    token_introspection: response,
  });
}

/** introspection_signing_alg_values_supported: the algorithms of the published keys. */
export function introspectionSigningAlgorithms(keys: KeySet): string[] {
  return [...new Set(keys.jwks().keys.map((k) => k.alg))];
}
