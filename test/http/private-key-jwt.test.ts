import { createServer, type Server } from 'node:https';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, decodeJwt, type CryptoKey, type JWK } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JwksFetcher } from '../../src/clients/jwks-fetcher.js';
import { client, registryYaml } from '../builders.js';
import { buildTestApp, form, FORM, tempDir, TestClock, type TestApp } from '../helpers.js';
import { makePki, type Pki } from '../tls-fixtures.js';

// private_key_jwt (RFC 7523 §2.2): a client proves itself with a JWT signed by its own key.

const ISSUER = 'https://auth.test';
const ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const RS_SECRET = 'rs-secret-0123456789abcdefghijklmnopqrstuv';

let t: TestApp;
let inlineKey: CryptoKey;
let remoteKeys: { kid: string; key: CryptoKey; jwk: JWK }[] = [];
let jwksServer: Server;
let jwksUri: string;
let pki: Pki;

async function keyPair(alg: 'ES256' | 'RS256' | 'PS256' | 'EdDSA', kid: string) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, key: privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

beforeAll(async () => {
  const inline = await keyPair('ES256', 'k1');
  inlineKey = inline.key;
  remoteKeys = [await keyPair('RS256', 'r1')];
  pki = makePki(tempDir());
  jwksServer = createServer({ cert: pki.pem('server.pem'), key: pki.pem('server.key') }, (_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: remoteKeys.map((k) => k.jwk) }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksUri = `https://127.0.0.1:${(jwksServer.address() as { port: number }).port}/jwks.json`;

  t = await buildTestApp({
    config: `issuer: ${ISSUER}
keys: { dir: ./keys }
store: { kind: memory }
# These tests send many refused assertions from one address; throttling has its own tests.
throttle: { client_failures: 1000, address_failures: 1000 }
`,
    clients: await registryYaml([
      client({ id: 'ledger-sync', auth_methods: ['private_key_jwt'], jwks: { keys: [inline.jwk] }, scopes: ['ledger:write'], audiences: ['https://ledger.test'] }),
      client({ id: 'remote-keys', auth_methods: ['private_key_jwt'], jwks_uri: jwksUri, audiences: ['https://ledger.test'] }),
      client({ id: 'secret-only', secret: RS_SECRET, audiences: ['https://ledger.test'], introspect: true }),
    ]),
    // Real time: a client library dates its assertions by the real clock.
    clock: new TestClock(Date.now()),
    deps: { jwksFetcher: new JwksFetcher({ ca: pki.pem('ca.pem'), cooldownMs: 0 }) },
  });
});

afterAll(() => new Promise<void>((resolve) => jwksServer.close(() => resolve())));

function assertion(claims: Record<string, unknown> = {}, options: { key?: CryptoKey; alg?: string; kid?: string } = {}) {
  const now = Math.floor(t.clock.now() / 1000);
  return new SignJWT({ iss: 'ledger-sync', sub: 'ledger-sync', aud: ISSUER, jti: randomUUID(), iat: now, exp: now + 60, ...claims })
    .setProtectedHeader({ alg: options.alg ?? 'ES256', kid: options.kid ?? 'k1' })
    .sign(options.key ?? inlineKey);
}

function tokenWith(clientAssertion: string, extra: Record<string, string> = {}) {
  return t.app.inject({
    method: 'POST',
    url: '/oauth2/token',
    headers: FORM,
    payload: form({ grant_type: 'client_credentials', client_assertion_type: ASSERTION, client_assertion: clientAssertion, ...extra }),
  });
}

function expect401(res: Awaited<ReturnType<typeof tokenWith>>): void {
  expect(res.statusCode, res.body).toBe(401);
  expect(res.json()).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
}

describe('private_key_jwt', () => {
  it('gets a token for a real client library’s PrivateKeyJwt', async () => {
    const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const as: oauth.AuthorizationServer = { issuer: ISSUER, token_endpoint: `${address}/oauth2/token` };
    const client: oauth.Client = { client_id: 'ledger-sync' };
    const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.PrivateKeyJwt({ key: inlineKey, kid: 'k1' }), { scope: 'ledger:write' }, {
      [oauth.allowInsecureRequests]: true,
    });
    const body = (await response.clone().json()) as { scope?: string; access_token: string };
    if (response.status !== 200) throw new Error(JSON.stringify(body));
    expect(body.scope).toBe('ledger:write');
    expect(decodeJwt(body.access_token)).toMatchObject({ sub: 'ledger-sync', client_id: 'ledger-sync' });
  });

  it('accepts a well-formed assertion once, then refuses the replay', async () => {
    const jwt = await assertion();
    expect((await tokenWith(jwt)).statusCode).toBe(200);
    expect401(await tokenWith(jwt));
  });

  it.each([
    ['expired', { exp: -120 }],
    ['too far ahead', { exp: 3600 }],
    ['for the token endpoint URL', { aud: `${ISSUER}/oauth2/token` }],
    ['for another server', { aud: 'https://other.test' }],
    ['for several audiences', { aud: [ISSUER, 'https://other.test'] }],
    ['with another issuer', { iss: 'someone-else' }],
    ['without a jti', { jti: undefined }],
  ])('refuses an assertion %s', async (_what, claims) => {
    const now = Math.floor(t.clock.now() / 1000);
    const adjusted = { ...claims } as Record<string, unknown>;
    if (typeof adjusted.exp === 'number') adjusted.exp = now + (adjusted.exp as number);
    expect401(await tokenWith(await assertion(adjusted)));
  });

  it('refuses alg none, HMAC and an unknown key', async () => {
    const now = Math.floor(t.clock.now() / 1000);
    const claims = { iss: 'ledger-sync', sub: 'ledger-sync', aud: ISSUER, jti: randomUUID(), exp: now + 60 };
    expect401(await tokenWith(new UnsecuredJWT(claims).encode()));
    const hmac = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('a shared secret of thirty-two b'));
    expect401(await tokenWith(hmac));
    const stranger = await keyPair('ES256', 'k1');
    expect401(await tokenWith(await assertion({}, { key: stranger.key })));
    expect401(await tokenWith(await assertion({}, { kid: 'k9' })));
  });

  it('refuses a wrong client_assertion_type, a client_id that differs from sub, and a second method', async () => {
    const jwt = await assertion();
    expect401(await tokenWith(jwt, { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer' }));
    expect401(await tokenWith(await assertion(), { client_id: 'remote-keys' }));
    const both = await tokenWith(await assertion(), { client_secret: 'x' });
    expect(both.statusCode).toBe(400);
    expect(both.json().error).toBe('invalid_request');
  });

  it('refuses a secret for a key-only client', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/oauth2/token',
      headers: FORM,
      payload: form({ grant_type: 'client_credentials', client_id: 'ledger-sync', client_secret: 'anything' }),
    });
    expect401(res);
  });

  it('follows a jwks_uri that rotates its key', async () => {
    const signed = (key: { kid: string; key: CryptoKey }) => {
      const now = Math.floor(t.clock.now() / 1000);
      return new SignJWT({ iss: 'remote-keys', sub: 'remote-keys', aud: ISSUER, jti: randomUUID(), exp: now + 60 })
        .setProtectedHeader({ alg: 'RS256', kid: key.kid })
        .sign(key.key);
    };
    expect((await tokenWith(await signed(remoteKeys[0]!))).statusCode).toBe(200);
    const next = await keyPair('RS256', 'r2');
    remoteKeys = [next];
    // An unknown kid makes tollgate fetch the set again, and the new key works at once.
    expect((await tokenWith(await signed(next))).statusCode).toBe(200);
    // The old key is gone from the set.
    expect401(await tokenWith(await signed({ kid: 'r1', key: (await keyPair('RS256', 'r1')).key })));
  });

  it('authenticates at the introspection endpoint too', async () => {
    const issued = await tokenWith(await assertion());
    const token = issued.json().access_token as string;
    const res = await t.app.inject({
      method: 'POST',
      url: '/oauth2/introspect',
      headers: FORM,
      payload: form({ token, client_assertion_type: ASSERTION, client_assertion: await assertion() }),
    });
    expect(res.json()).toMatchObject({ active: true, client_id: 'ledger-sync' });
  });
});
