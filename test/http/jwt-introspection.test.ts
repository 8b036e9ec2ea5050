import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { prefers } from '../../src/http/accept.js';
import { API, client, introspect, registryYaml, tokenRequest } from '../builders.js';
import { buildTestApp, TestClock, type TestApp } from '../helpers.js';

// RFC 9701: an introspection answer as a signed JWT, for a caller that asks for one.

const ISSUER = 'https://auth.test';
const SECRET = 'jwt-introspection-secret-0123456789abcdef';
const JWT_TYPE = 'application/token-introspection+jwt';
let t: TestApp;
let token: string;

beforeAll(async () => {
  t = await buildTestApp({
    config: `issuer: ${ISSUER}
keys: { dir: ./keys, algorithm: ES256 }
store: { kind: memory }
`,
    clock: new TestClock(Date.now()),
    clients: await registryYaml([client({ id: 'svc', secret: SECRET, audiences: [API] }), client({ id: 'rs', secret: SECRET, audiences: [API], introspect: true })]),
  });
  token = (await tokenRequest(t.app, { client: 'svc', secret: SECRET })).json<{ access_token: string }>().access_token;
});

const ask = (accept: string | undefined, what = token, caller = 'rs', secret = SECRET) =>
  introspect(t.app, what, { client: caller, secret, ...(accept === undefined ? {} : { headers: { accept } }) });

describe('introspection as a JWT', () => {
  it('answers a signed JWT for the caller, verifiable with the JWKS, holding the RFC 7662 answer', async () => {
    const res = await ask(JWT_TYPE);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(JWT_TYPE);
    expect(res.headers['cache-control']).toBe('no-store');
    const jwks = createLocalJWKSet((await t.app.inject('/.well-known/jwks.json')).json());
    const { payload, protectedHeader } = await jwtVerify(res.body, jwks, { issuer: ISSUER, audience: 'rs', typ: 'token-introspection+jwt' });
    expect(protectedHeader).toEqual({ alg: 'ES256', typ: 'token-introspection+jwt', kid: t.keys.signingKey().kid });
    expect(Object.keys(payload).sort()).toEqual(['aud', 'iat', 'iss', 'token_introspection']);
    expect(payload.token_introspection).toEqual((await ask(undefined)).json());
    expect(payload.token_introspection).toMatchObject({ active: true, client_id: 'svc', token_type: 'Bearer' });
  });

  it('signs inactive answers too, and lists the signing algorithm in the metadata', async () => {
    const res = await ask(JWT_TYPE, 'garbage');
    expect(decodeJwt(res.body).token_introspection).toEqual({ active: false });
    expect(decodeProtectedHeader(res.body).typ).toBe('token-introspection+jwt');
    const metadata = (await t.app.inject('/.well-known/oauth-authorization-server')).json<Record<string, unknown>>();
    expect(metadata.introspection_signing_alg_values_supported).toEqual(['ES256']);
  });

  it('is addressed to the caller: a client introspecting its own token is the audience', async () => {
    const res = await ask(JWT_TYPE, token, 'svc');
    expect(decodeJwt(res.body)).toMatchObject({ aud: 'svc', token_introspection: { active: true } });
  });

  it('keeps errors plain JSON', async () => {
    const res = await ask(JWT_TYPE, token, 'rs', 'wrong-secret-0123456789abcdefghijklmno');
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toMatchObject({ error: 'invalid_client' });
  });

  it('weighs the Accept header: JSON unless the JWT type is named and not outweighed', async () => {
    for (const [accept, jwt] of [
      [undefined, false],
      ['application/json', false],
      ['*/*', false],
      ['application/*', false],
      [`${JWT_TYPE}`, true],
      [`Application/Token-Introspection+JWT`, true],
      [`application/json;q=0.5, ${JWT_TYPE}`, true],
      [`application/json, ${JWT_TYPE};q=0.9`, false],
      [`${JWT_TYPE};q=0`, false],
      [`${JWT_TYPE} ; q=0.8, */*;q=0.1`, true],
      [`${JWT_TYPE};q=2`, false],
      [`${JWT_TYPE};q=abc`, false],
      [`text/html, ${JWT_TYPE}`, true],
      ['a'.repeat(5000), false],
    ] as const) {
      const res = await ask(accept);
      expect(res.statusCode, String(accept)).toBe(200);
      expect(res.headers['content-type'], String(accept)).toBe(jwt ? JWT_TYPE : 'application/json; charset=utf-8');
    }
  });
});

describe('prefers', () => {
  it('reads weights as RFC 9110 §12.5.1 writes them, the most specific range deciding', () => {
    expect(prefers('application/json;q=1.000, application/x;q=1.0', 'application/x', 'application/json')).toBe(true);
    expect(prefers('application/*;q=0.9, application/x;q=0.5', 'application/x', 'application/json')).toBe(false);
    expect(prefers('application/x;q=0.5, application/*;q=0.9, application/json;q=0.1', 'application/x', 'application/json')).toBe(true);
    expect(prefers('application/x;charset=utf-8;q=0.4, application/json;q=0.3', 'application/x', 'application/json')).toBe(true);
    expect(prefers(',,,;;;=', 'application/x', 'application/json')).toBe(false);
  });
});
