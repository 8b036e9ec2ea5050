// A resource server's check of a request carrying a DPoP-bound tollgate token (RFC 9449 §7):
// `Authorization: DPoP <token>` and a fresh `DPoP: <proof>` signed by the key the token is
// bound to. Plain JavaScript with jose (https://github.com/panva/jose); tollgate's tests run it.
import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify } from 'jose';

const PROOF_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'RS256', 'PS256'];
const PROOF_WINDOW = 300; // seconds a proof's iat may be from now, either way

/**
 * Verifies the request, or throws an Error whose message starts with the RFC 6750 / RFC 9449
 * error code to answer with 401 (`WWW-Authenticate: DPoP error="…"`).
 *
 * request: { method, url, authorization, dpop } where url is the URL the client called (your
 *   public URL, not the one behind your proxy) and dpop every DPoP header value (a string, or
 *   an array when the client sent several).
 * options: { issuer, audience, jwks } where jwks = createRemoteJWKSet(new URL(issuer +
 *   '/.well-known/jwks.json')), and seen(jti, until) records a proof's jti, resolving false when
 *   it was seen before (with several instances, keep it in a shared store such as Redis SET NX).
 */
export async function verifyDpopRequest(request, { issuer, audience, jwks, seen }) {
  const m = /^DPoP +([A-Za-z0-9\-._~+/]+=*)$/.exec(request.authorization ?? '');
  if (m === null) throw new Error('invalid_token: send the token as Authorization: DPoP <token>');
  const token = m[1];

  // 1. The token itself: an RFC 9068 access token of this issuer, for this audience.
  let claims;
  try {
    ({ payload: claims } = await jwtVerify(token, jwks, { issuer, audience, typ: 'at+jwt' }));
  } catch {
    throw new Error('invalid_token: the access token is not valid');
  }
  if (typeof claims.cnf?.jkt !== 'string') throw new Error('invalid_token: the token is not DPoP-bound');

  // 2. Exactly one proof, a JWT signed by the public key it carries.
  const proofs = Array.isArray(request.dpop) ? request.dpop : request.dpop === undefined ? [] : [request.dpop];
  if (proofs.length !== 1 || proofs[0].includes(',')) throw new Error('invalid_dpop_proof: send exactly one DPoP header');
  let proof;
  let header;
  try {
    ({ payload: proof, protectedHeader: header } = await jwtVerify(proofs[0], EmbeddedJWK, { typ: 'dpop+jwt', algorithms: PROOF_ALGORITHMS }));
  } catch {
    throw new Error('invalid_dpop_proof: the proof is not a valid dpop+jwt');
  }

  // 3. Its key is the one the token is bound to.
  if ((await calculateJwkThumbprint(header.jwk, 'sha256')) !== claims.cnf.jkt) throw new Error('invalid_dpop_proof: the proof is signed by another key than the token is bound to');

  // 4. It was made for this request, for this token, just now, and only once.
  if (proof.htm !== request.method) throw new Error('invalid_dpop_proof: htm is not this request method');
  if (typeof proof.htu !== 'string' || withoutQuery(proof.htu) !== withoutQuery(request.url)) throw new Error('invalid_dpop_proof: htu is not this URL');
  if (proof.ath !== createHash('sha256').update(token).digest('base64url')) throw new Error('invalid_dpop_proof: ath is not the hash of this token');
  const now = Math.floor(Date.now() / 1000);
  if (typeof proof.iat !== 'number' || Math.abs(now - proof.iat) > PROOF_WINDOW) throw new Error('invalid_dpop_proof: iat is too far from now');
  if (typeof proof.jti !== 'string' || !(await seen(`${claims.cnf.jkt}:${proof.jti}`, (proof.iat + PROOF_WINDOW) * 1000))) {
    throw new Error('invalid_dpop_proof: the proof has been used before');
  }
  return claims;
}

/** The URL as RFC 9449 compares it: normalised by the URL parser, without query and fragment. */
function withoutQuery(url) {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return undefined;
  }
}
