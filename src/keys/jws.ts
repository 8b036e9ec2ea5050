import { createPublicKey, type JsonWebKey, KeyObject, sign, verify } from 'node:crypto';
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
  const { digest, key: privateKey } = signingParameters(key);
  return new Promise((resolve, reject) => {
    sign(digest, data, privateKey, (err, signature) => {
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
  if (!Object.hasOwn(DIGESTS, alg)) return false;
  try {
    const key = createPublicKey({ key: jwk as unknown as JsonWebKey, format: 'jwk' });
    return verify(DIGESTS[alg], data, alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key, signature);
  } catch {
    return false;
  }
}

const DIGESTS: Record<SigningKey['alg'], string | null> = { RS256: 'sha256', ES256: 'sha256', EdDSA: null };

/** Each CryptoKey's KeyObject, made once: the key sets hand out the same CryptoKey each time. */
const keyObjects = new WeakMap<CryptoKey, KeyObject>();

/**
 * RFC 7518 §3.3 (RS256: RSASSA-PKCS1-v1_5, SHA-256), §3.4 (ES256: ECDSA P-256 and SHA-256,
 * the signature as R || S, not DER) and RFC 8037 §3.1 (EdDSA: Ed25519 hashes on its own).
 */
function signingParameters(key: SigningKey): { digest: string | null; key: KeyObject | { key: KeyObject; dsaEncoding: 'ieee-p1363' } } {
  let keyObject = keyObjects.get(key.key);
  if (keyObject === undefined) {
    keyObject = KeyObject.from(key.key as Parameters<typeof KeyObject.from>[0]);
    keyObjects.set(key.key, keyObject);
  }
  return { digest: DIGESTS[key.alg], key: key.alg === 'ES256' ? { key: keyObject, dsaEncoding: 'ieee-p1363' } : keyObject };
}
