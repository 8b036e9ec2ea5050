import { generateKeyPairSync } from 'node:crypto';
import { compactVerify, decodeProtectedHeader, exportJWK, importJWK, importPKCS8, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import type { SigningKey } from '../../src/keys/key-set.js';
import { signJwt } from '../../src/keys/jws.js';

// Tokens signed by tollgate's own JWS code must verify with jose as any resource server's
// library would (RFC 7515 compact form, RFC 7518 signature encodings), and nothing else may.

const ALGORITHMS = [
  { alg: 'RS256', pair: () => generateKeyPairSync('rsa', { modulusLength: 2048 }) },
  { alg: 'ES256', pair: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }) },
  { alg: 'EdDSA', pair: () => generateKeyPairSync('ed25519') },
] as const;

async function keyPair(alg: SigningKey['alg'], pair: () => ReturnType<typeof generateKeyPairSync>) {
  const { privateKey, publicKey } = pair();
  // As the key sets load them: a non-extractable CryptoKey imported from PKCS#8.
  const signing: SigningKey = { kid: `kid-${alg}`, alg, key: await importPKCS8(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, alg), createdAt: 0 };
  const jwk = { ...(await exportJWK(publicKey)), alg };
  return { signing, verifyKey: await importJWK(jwk, alg) };
}

describe.each(ALGORITHMS)('signJwt with $alg', ({ alg, pair }) => {
  it('makes a JWT that jose verifies, with the header and the claims it was given', async () => {
    const { signing, verifyKey } = await keyPair(alg, pair);
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: 'https://auth.test', sub: 'svc', aud: ['a', 'b'], exp: now + 60, iat: now, jti: 'j1', scope: 'read é' };
    const jwt = await signJwt(signing, 'at+jwt', claims);
    expect(decodeProtectedHeader(jwt)).toEqual({ alg, typ: 'at+jwt', kid: `kid-${alg}` });
    const { payload, protectedHeader } = await jwtVerify(jwt, verifyKey, { issuer: 'https://auth.test', typ: 'at+jwt', algorithms: [alg] });
    expect(payload).toEqual(claims);
    expect(protectedHeader.alg).toBe(alg);
  });

  it('signs with the key it is given: another key of the same kind does not verify it', async () => {
    const { signing } = await keyPair(alg, pair);
    const other = await keyPair(alg, pair);
    const jwt = await signJwt(signing, 'at+jwt', { sub: 'svc' });
    await expect(compactVerify(jwt, other.verifyKey)).rejects.toThrow(/signature verification failed/);
  });

  it('makes a signature that breaks when one character of the claims changes', async () => {
    const { signing, verifyKey } = await keyPair(alg, pair);
    const jwt = await signJwt(signing, 'at+jwt', { sub: 'svc', scope: 'read' });
    const [h, p, s] = jwt.split('.');
    const forged = Buffer.from(JSON.stringify({ sub: 'svc', scope: 'admin' })).toString('base64url');
    expect(forged).not.toBe(p);
    await expect(compactVerify(`${h}.${forged}.${s}`, verifyKey)).rejects.toThrow(/signature verification failed/);
  });
});

it('signs ES256 as R || S (RFC 7518 §3.4), 64 bytes, not as DER', async () => {
  const { signing } = await keyPair('ES256', ALGORITHMS[1].pair);
  const jwt = await signJwt(signing, 'at+jwt', { sub: 'svc' });
  expect(Buffer.from(jwt.split('.')[2]!, 'base64url')).toHaveLength(64);
});
