import { createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { calculateJwkThumbprint, exportJWK, importPKCS8, type CryptoKey } from 'jose';
import type { PublicJwk } from './key-set.js';

/** JWS algorithms a key in the store signs with (as keys.algorithm names them). */
export type StoredKeyAlgorithm = 'RS256' | 'ES256' | 'EdDSA';

const MIN_RSA_BITS = 2048;

/** What a private key is: the algorithm it signs with and its size, or undefined for a key tollgate does not sign with. */
export function keyKindOf(key: KeyObject): { alg: StoredKeyAlgorithm; bits: number } | undefined {
  if (key.type !== 'private') return undefined;
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return (details.modulusLength ?? 0) >= MIN_RSA_BITS ? { alg: 'RS256', bits: details.modulusLength! } : undefined;
    case 'ec':
      return details.namedCurve === 'prime256v1' ? { alg: 'ES256', bits: 256 } : undefined;
    case 'ed25519':
      return { alg: 'EdDSA', bits: 256 };
    default:
      return undefined;
  }
}

/** The sentence that says which keys tollgate signs with. */
export const KEY_KINDS = `an RSA key of at least ${MIN_RSA_BITS} bits (RS256), an EC P-256 key (ES256) or an Ed25519 key (EdDSA)`;

/** A new private key for alg: RSA-2048, EC P-256 or Ed25519. */
export async function newPrivateKey(alg: StoredKeyAlgorithm): Promise<KeyObject> {
  const generate = promisify(generateKeyPair);
  const pair =
    alg === 'RS256' ? await generate('rsa', { modulusLength: MIN_RSA_BITS }) : alg === 'ES256' ? await generate('ec', { namedCurve: 'P-256' }) : await generate('ed25519', {});
  return pair.privateKey;
}

/** The published half of a private key, and its kid (the RFC 7638 thumbprint). */
export async function publicJwkOf(key: KeyObject, alg: StoredKeyAlgorithm): Promise<PublicJwk> {
  // Only the public members: a JWK export of the public key never carries private parts.
  const jwk = await exportJWK(createPublicKey(key));
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return Object.freeze({ ...jwk, kty: jwk.kty!, kid, alg, use: 'sig' as const });
}

/** The key as jose signs with it. */
export function signingCryptoKey(key: KeyObject, alg: StoredKeyAlgorithm): Promise<CryptoKey> {
  return importPKCS8(key.export({ type: 'pkcs8', format: 'pem' }) as string, alg);
}
