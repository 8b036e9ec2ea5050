import { constants, createPublicKey, type JsonWebKey, KeyObject, sign, verify } from 'node:crypto';
import type { CryptoKey } from 'jose';
import type { PublicJwk, SigningKey } from './key-set.js';

/**
 * Signs a JWT (RFC 7519) in the JWS Compact Serialization (RFC 7515 §7.1) with a signing key:
 * the hot path of token issuance.
 *
 * jose (whose verification, key import and JWKS tollgate uses everywhere else) signs through
 * WebCrypto, whose argument checks and promise plumbing cost 50–75 µs of CPU per signature
 * here, a fifth of an ES256 or EdDSA token's whole cost (`node bench/sign.mjs`). Node's own
 * `crypto.sign` does the same signature in the thread pool, as WebCrypto does, without them.
 * What is left is the serialization, which is three base64url strings joined by dots.
 */
export async function signJwt(key: SigningKey, typ: string, claims: object): Promise<string> {
  const header = Buffer.from(JSON.stringify({ alg: key.alg, typ, kid: key.kid })).toString('base64url');
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const input = `${header}.${payload}`;
  return `${input}.${(await signBytes(key, Buffer.from(input))).toString('base64url')}`;
}

/** The key's signature over `data`, as a JWS of its algorithm carries it, made in the thread pool. */
export function signBytes(key: SigningKey, data: Buffer): Promise<Buffer> {
  const { hash, options } = NODE_JWS[key.alg];
  return new Promise((resolve, reject) => {
    sign(hash, data, { key: keyObjectOf(key), ...options }, (err, signature) => {
      if (err !== null) reject(err);
      else resolve(signature);
    });
  });
}

/**
 * Whether `signature` is the signature over `data` of the published key `jwk` (with its `alg`),
 * as signBytes makes it. Anything unusable (another algorithm, a malformed key) is false.
 */
export function verifyBytes(jwk: PublicJwk, data: Buffer, signature: Buffer): boolean {
  const alg = jwk.alg as SigningKey['alg'];
  if (alg !== 'RS256' && alg !== 'ES256' && alg !== 'EdDSA') return false;
  try {
    const key = createPublicKey({ key: jwk as unknown as JsonWebKey, format: 'jwk' });
    return verify(NODE_JWS[alg].hash, data, { key, ...NODE_JWS[alg].options }, signature);
  } catch {
    return false;
  }
}

/**
 * How node:crypto signs and verifies each JWS algorithm tollgate signs with or accepts: RFC 7518
 * §3.3 (RS256: RSASSA-PKCS1-v1_5), §3.4 (ES*: ECDSA, the signature as R || S, not DER), §3.5
 * (PS256: RSASSA-PSS, salt as long as the hash), RFC 8037 §3.1 (EdDSA, and Ed25519 as RFC 9864
 * names it: the curve hashes on its own).
 */
export const NODE_JWS = {
  RS256: { hash: 'sha256', options: { padding: constants.RSA_PKCS1_PADDING } },
  PS256: { hash: 'sha256', options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } },
  ES256: { hash: 'sha256', options: { dsaEncoding: 'ieee-p1363' } },
  ES384: { hash: 'sha384', options: { dsaEncoding: 'ieee-p1363' } },
  ES512: { hash: 'sha512', options: { dsaEncoding: 'ieee-p1363' } },
  EdDSA: { hash: null, options: {} },
  Ed25519: { hash: null, options: {} },
} as const satisfies Record<string, { hash: string | null; options: object }>;

/** Each CryptoKey's KeyObject, made once: the key sets hand out the same CryptoKey each time. */
const keyObjects = new WeakMap<CryptoKey, KeyObject>();

function keyObjectOf(key: SigningKey): KeyObject {
  let keyObject = keyObjects.get(key.key);
  if (keyObject === undefined) {
    keyObject = KeyObject.from(key.key as Parameters<typeof KeyObject.from>[0]);
    keyObjects.set(key.key, keyObject);
  }
  return keyObject;
}
