import { createLocalJWKSet, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { basic, buildTestApp, form, FORM, hashOf } from '../helpers.js';

const SECRET = 'alg-secret-0123456789abcdefghijklmnopqrst';

describe('keys.algorithm', () => {
  it.each(['ES256', 'EdDSA'] as const)('signs tokens with %s that verify against the served JWKS', async (alg) => {
    const t = await buildTestApp({
      config: `issuer: https://auth.test
keys: { dir: ./keys, algorithm: ${alg} }
store: { kind: memory }
`,
      clients: `clients:
  - client_id: svc
    secrets: [{ hash: "${await hashOf(SECRET)}" }]
    audiences: [https://api.test]
`,
    });
    const res = await t.app.inject({
      method: 'POST',
      url: '/oauth2/token',
      headers: { ...FORM, authorization: basic('svc', SECRET) },
      payload: form({ grant_type: 'client_credentials' }),
    });
    expect(res.statusCode).toBe(200);
    const jwks = (await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
    const { protectedHeader } = await jwtVerify(res.json().access_token, createLocalJWKSet(jwks), {
      issuer: 'https://auth.test',
      typ: 'at+jwt',
      algorithms: [alg],
      currentDate: new Date(t.clock.now()),
    });
    expect(protectedHeader.alg).toBe(alg);
  });
});
