import { createLocalJWKSet, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { API, client, registryYaml, tokenRequest } from '../builders.js';
import { buildTestApp } from '../helpers.js';

const SECRET = 'alg-secret-0123456789abcdefghijklmnopqrst';

describe('keys.algorithm', () => {
  it.each(['ES256', 'EdDSA'] as const)('signs tokens with %s that verify against the served JWKS', async (alg) => {
    const t = await buildTestApp({
      config: `issuer: https://auth.test
keys: { dir: ./keys, algorithm: ${alg} }
store: { kind: memory }
`,
      clients: await registryYaml([client({ id: 'svc', secret: SECRET, audiences: [API] })]),
    });
    const res = await tokenRequest(t.app, { client: 'svc', secret: SECRET });
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
