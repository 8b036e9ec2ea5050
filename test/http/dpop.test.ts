import { generateKeyPairSync, randomUUID, sign as cryptoSign, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { base64url, calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.js';
import { API, client, introspect, registryYaml, tokenRequest } from '../builders.js';
import { buildTestApp, form, FORM, tempDir, TestClock, type TestApp } from '../helpers.js';
import { rawRequest } from './raw-socket.js';
import { makePki } from '../tls-fixtures.js';

// DPoP at the token endpoint (RFC 9449 §4.3, §5): every check of a proof, the token it binds,
// and what introspection tells a resource server about it (§6.2).

const ISSUER = 'https://auth.test';
const HTU = `${ISSUER}/oauth2/token`;
const SECRET = 'dpop-secret-0123456789abcdefghijklmnopqr';
const CONFIG = `issuer: ${ISSUER}
keys: { dir: ./keys }
store: { kind: memory }
# Many refused requests come from one address here; throttling has its own tests.
throttle: { client_failures: 1000, address_failures: 1000 }
`;

interface ProofKey {
  privateKey: CryptoKey;
  jwk: JWK;
  alg: string;
}

async function proofKey(alg: string, options: Parameters<typeof generateKeyPair>[1] = {}): Promise<ProofKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...options });
  return { privateKey, jwk: await exportJWK(publicKey), alg };
}

let es256: ProofKey;
let other: ProofKey;
let clock: TestClock;
let t: TestApp;
let assertionKey: ProofKey;

interface ProofOptions {
  key?: ProofKey;
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
}

/** A proof for the token endpoint as a client makes one, with what the test changes. */
function proof({ key = es256, header = {}, claims = {} }: ProofOptions = {}): Promise<string> {
  return new SignJWT({ htm: 'POST', htu: HTU, iat: Math.floor(clock.ms / 1000), jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg: key.alg, typ: 'dpop+jwt', jwk: key.jwk, ...header })
    .sign(key.privateKey);
}

function withProof(dpop: string | undefined, spec: { client?: string; secret?: string; auth?: 'basic' | 'post' } = {}) {
  return tokenRequest(t.app, { client: 'svc', secret: SECRET, ...spec, ...(dpop === undefined ? {} : { headers: { dpop } }) });
}

async function refusedBecause(dpop: string, check: RegExp): Promise<void> {
  const res = await withProof(dpop);
  expect(res.statusCode, res.body).toBe(400);
  expect(res.json()).toEqual({ error: 'invalid_dpop_proof', error_description: expect.stringMatching(check) });
  expect(res.headers['cache-control']).toBe('no-store');
}

beforeAll(async () => {
  es256 = await proofKey('ES256');
  other = await proofKey('ES256');
  assertionKey = await proofKey('ES256');
  clock = new TestClock(Date.UTC(2026, 5, 1, 12));
  t = await buildTestApp({
    config: CONFIG,
    clock,
    clients: await registryYaml([
      client({ id: 'svc', secret: SECRET, auth_methods: ['client_secret_basic', 'client_secret_post'], audiences: [API] }),
      client({ id: 'strict', secret: SECRET, audiences: [API], dpop_bound_access_tokens: true }),
      client({ id: 'ledger', auth_methods: ['private_key_jwt'], jwks: { keys: [{ ...assertionKey.jwk, kid: 'a1' }] }, audiences: [API] }),
      client({ id: 'rs', secret: SECRET, introspect: true, audiences: [API] }),
    ]),
  });
});

describe('a valid proof', () => {
  it('gets a DPoP token bound to the thumbprint of its key, which introspects as DPoP with cnf.jkt', async () => {
    const res = await withProof(await proof());
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ access_token: string; token_type: string }>();
    expect(body.token_type).toBe('DPoP');
    const jkt = await calculateJwkThumbprint(es256.jwk, 'sha256');
    expect(decodeJwt(body.access_token).cnf).toEqual({ jkt });

    const seen = await introspect(t.app, body.access_token, { client: 'rs', secret: SECRET });
    expect(seen.json()).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt }, client_id: 'svc' });
  });

  it('is accepted with every algorithm the metadata lists', async () => {
    const metadata = (await t.app.inject('/.well-known/oauth-authorization-server')).json<{ dpop_signing_alg_values_supported: string[] }>();
    expect(metadata.dpop_signing_alg_values_supported).toEqual(['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'RS256', 'PS256']);
    for (const alg of metadata.dpop_signing_alg_values_supported) {
      const key = await proofKey(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
      const res = await withProof(await proof({ key }));
      expect(res.statusCode, `${alg}: ${res.body}`).toBe(200);
      expect(decodeJwt(res.json<{ access_token: string }>().access_token).cnf).toEqual({ jkt: await calculateJwkThumbprint(key.jwk, 'sha256') });
    }
  });

  it('leaves a request without a proof a Bearer token with no cnf', async () => {
    const res = await withProof(undefined);
    expect(res.json()).toMatchObject({ token_type: 'Bearer' });
    expect(decodeJwt(res.json<{ access_token: string }>().access_token).cnf).toBeUndefined();
  });

  it('works with client_secret_post and private_key_jwt as well as client_secret_basic', async () => {
    const post = await withProof(await proof(), { auth: 'post' });
    expect(post.json()).toMatchObject({ token_type: 'DPoP' });

    const assertion = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', kid: 'a1' })
      .setIssuer('ledger')
      .setSubject('ledger')
      .setAudience(ISSUER)
      .setIssuedAt(Math.floor(clock.ms / 1000))
      .setExpirationTime(Math.floor(clock.ms / 1000) + 60)
      .sign(assertionKey.privateKey);
    const res = await t.app.inject({
      method: 'POST',
      url: '/oauth2/token',
      headers: { ...FORM, dpop: await proof() },
      payload: form({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }),
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ token_type: 'DPoP' });
    expect(decodeJwt(res.json<{ access_token: string }>().access_token)).toMatchObject({ client_id: 'ledger', cnf: { jkt: await calculateJwkThumbprint(es256.jwk, 'sha256') } });
  });

  it('passes 5 seconds old or ahead, and with htu written differently but equal after RFC 3986 normalisation', async () => {
    const now = Math.floor(clock.ms / 1000);
    for (const claims of [
      { iat: now - 5 },
      { iat: now + 5 },
      { htu: 'HTTPS://Auth.Test:443/oauth2/token' },
      { htu: 'https://auth.test/oauth2/%74oken' },
      { htu: 'https://auth.test/oauth2/./x/../token' },
      // RFC 9449 §4.3: query and fragment are ignored.
      { htu: `${HTU}?a=b#frag` },
    ]) {
      const res = await withProof(await proof({ claims }));
      expect(res.statusCode, `${JSON.stringify(claims)}: ${res.body}`).toBe(200);
    }
  });
});

describe('a proof failing a check is 400 invalid_dpop_proof naming the check', () => {
  it('refuses more than one DPoP header', async () => {
    const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const port = Number(new URL(address).port);
    const body = form({ grant_type: 'client_credentials', client_id: 'svc', client_secret: SECRET });
    const [a, b] = [await proof(), await proof()];
    const answer = await rawRequest(
      port,
      `POST /oauth2/token HTTP/1.1\r\nHost: auth.test\r\nContent-Type: application/x-www-form-urlencoded\r\nDPoP: ${a}\r\nDPoP: ${b}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toEqual({ error: 'invalid_dpop_proof', error_description: expect.stringMatching(/exactly one DPoP header/) });
  });

  it('refuses what is not a JWT, and an oversized header', async () => {
    await refusedBecause('not-a-jwt', /well-formed JWT/);
    await refusedBecause('', /well-formed JWT/);
    await refusedBecause(`${base64url.encode('{}')}.${base64url.encode('[]')}.x`, /typ dpop\+jwt/);
    await refusedBecause('a'.repeat(9000), /longer than 8192/);
  });

  it('refuses a wrong or missing typ', async () => {
    await refusedBecause(await proof({ header: { typ: 'JWT' } }), /typ dpop\+jwt/);
    await refusedBecause(await proof({ header: { typ: undefined } }), /typ dpop\+jwt/);
  });

  it('refuses symmetric, unsigned and unlisted algorithms', async () => {
    const hmac = await new SignJWT({ htm: 'POST', htu: HTU, iat: Math.floor(clock.ms / 1000), jti: randomUUID() })
      .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: es256.jwk })
      .sign(new Uint8Array(32));
    await refusedBecause(hmac, /alg must be one of/);
    const none = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'dpop+jwt', jwk: es256.jwk }))}.${base64url.encode(JSON.stringify({ htm: 'POST', htu: HTU, iat: Math.floor(clock.ms / 1000), jti: 'x' }))}.`;
    await refusedBecause(none, /alg must be one of|well-formed/);
    await refusedBecause(await proof({ key: await proofKey('RS384') }), /alg must be one of/);
  });

  it('refuses a missing jwk, a private or symmetric one, and one that does not suit its alg', async () => {
    await refusedBecause(await proof({ header: { jwk: undefined } }), /public key as jwk/);
    const privateJwk = await exportJWK(es256.privateKey);
    await refusedBecause(await proof({ header: { jwk: privateJwk } }), /must be a public key/);
    await refusedBecause(await proof({ header: { jwk: { kty: 'oct', k: 'c2VjcmV0' } } }), /must be a public key/);
    const rsa = await proofKey('RS256');
    await refusedBecause(await proof({ header: { jwk: rsa.jwk } }), /not a usable ES256 public key/);
  });

  it('refuses an RSA key under 2048 bits, and critical header parameters', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    // jose will not sign with so short a key: signed here with node:crypto.
    const part = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const input = `${part({ alg: 'RS256', typ: 'dpop+jwt', jwk: publicKey.export({ format: 'jwk' }) })}.${part({ htm: 'POST', htu: HTU, iat: Math.floor(clock.ms / 1000), jti: randomUUID() })}`;
    await refusedBecause(`${input}.${cryptoSign('sha256', Buffer.from(input), privateKey).toString('base64url')}`, /shorter than 2048 bits/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const critical = `${part({ alg: 'ES256', typ: 'dpop+jwt', jwk: ec.publicKey.export({ format: 'jwk' }), crit: ['x-bind'], 'x-bind': 1 })}.${part({ htm: 'POST', htu: HTU, iat: Math.floor(clock.ms / 1000), jti: randomUUID() })}`;
    const signature = cryptoSign('sha256', Buffer.from(critical), { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    await refusedBecause(`${critical}.${signature}`, /critical header parameters/);
  });

  it('refuses a signature made by another key than its jwk', async () => {
    await refusedBecause(await proof({ key: other, header: { jwk: es256.jwk } }), /signature does not verify/);
  });

  it('refuses another method or another URL', async () => {
    await refusedBecause(await proof({ claims: { htm: 'GET' } }), /htm must be the request's method, POST/);
    await refusedBecause(await proof({ claims: { htm: 'post' } }), /htm/);
    await refusedBecause(await proof({ claims: { htu: `${ISSUER}/oauth2/introspect` } }), /htu must be the token endpoint, https:\/\/auth\.test\/oauth2\/token/);
    await refusedBecause(await proof({ claims: { htu: 'https://evil.test/oauth2/token' } }), /htu/);
    await refusedBecause(await proof({ claims: { htu: 'http://auth.test/oauth2/token' } }), /htu/);
    await refusedBecause(await proof({ claims: { htu: 'https://auth.test/oauth2/token/' } }), /htu/);
    await refusedBecause(await proof({ claims: { htu: 'https://auth.test:8443/oauth2/token' } }), /htu/);
    await refusedBecause(await proof({ claims: { htu: undefined } }), /htu/);
    await refusedBecause(await proof({ claims: { htu: 42 } }), /htu/);
  });

  it('refuses an iat 10 minutes off either way, or none', async () => {
    const now = Math.floor(clock.ms / 1000);
    await refusedBecause(await proof({ claims: { iat: now - 600 } }), /iat must be within 300 seconds/);
    await refusedBecause(await proof({ claims: { iat: now + 600 } }), /iat must be within 300 seconds/);
    await refusedBecause(await proof({ claims: { iat: undefined } }), /must have an iat/);
    await refusedBecause(await proof({ claims: { iat: '2026-06-01' } }), /must have an iat/);
    await refusedBecause(await proof({ claims: { exp: now - 10 } }), /has expired/);
  });

  it('refuses a missing jti, and a jti used before', async () => {
    await refusedBecause(await proof({ claims: { jti: undefined } }), /jti/);
    await refusedBecause(await proof({ claims: { jti: 'x'.repeat(257) } }), /jti/);
    const once = await proof();
    expect((await withProof(once)).statusCode).toBe(200);
    await refusedBecause(once, /jti has been used before/);
  });

  it('logs the failed check as an audit event, never the proof', async () => {
    const bad = await proof({ claims: { htm: 'PUT' } });
    await withProof(bad);
    const event = t.logs.events('dpop.proof_rejected').at(-1);
    expect(event).toMatchObject({ check: 'htm', path: '/oauth2/token' });
    expect(t.logs.text).not.toContain(bad.split('.')[2]);
  });
});

describe('a client that must use DPoP', () => {
  it('is refused with 400 invalid_request without a proof, and gets a DPoP token with one', async () => {
    const without = await withProof(undefined, { client: 'strict' });
    expect(without.statusCode).toBe(400);
    expect(without.json()).toEqual({ error: 'invalid_request', error_description: expect.stringMatching(/must send a DPoP proof/) });
    expect(t.logs.events('dpop.proof_missing').at(-1)).toMatchObject({ client_id: 'strict' });

    const withIt = await withProof(await proof(), { client: 'strict' });
    expect(withIt.json()).toMatchObject({ token_type: 'DPoP' });
  });

  it('is refused a registry entry whose dpop_bound_access_tokens is no boolean', async () => {
    await expect(
      buildTestApp({ config: CONFIG, clients: await registryYaml([client({ id: 'x', secret: SECRET, audiences: [API], dpop_bound_access_tokens: 'yes' })]) }),
    ).rejects.toThrow(/dpop_bound_access_tokens/);
  });
});

describe('replay across instances', () => {
  it('refuses on one instance a proof another instance accepted, through the shared store', async () => {
    const path = join(tempDir(), 'shared.db');
    const clients = await registryYaml([client({ id: 'svc', secret: SECRET, audiences: [API] })]);
    const first = await buildTestApp({ config: CONFIG, clock, clients, store: new SqliteTokenStore(path) });
    const second = await buildTestApp({ config: CONFIG, clock, clients, store: new SqliteTokenStore(path) });
    const once = await proof();
    const send = (app: TestApp) => tokenRequest(app.app, { client: 'svc', secret: SECRET, headers: { dpop: once } });
    expect((await send(first)).statusCode).toBe(200);
    const replayed = await send(second);
    expect(replayed.statusCode).toBe(400);
    expect(replayed.json()).toMatchObject({ error: 'invalid_dpop_proof', error_description: expect.stringMatching(/jti has been used before/) });
  });
});

describe('DPoP and mutual TLS', () => {
  it('refuses a proof from a client authenticating with its certificate: a token is bound to one key only', async () => {
    const pki = makePki(tempDir());
    const cert = new X509Certificate(pki.pem('edge.pem'));
    const mtls = await buildTestApp({
      config: CONFIG,
      clock,
      clients: await registryYaml([client({ id: 'edge-proxy', auth_methods: ['tls_client_auth'], tls_client_auth_san_dns: 'edge.internal', audiences: [API] })]),
      deps: { certificates: () => ({ cert, chainVerified: true }) },
    });
    const send = async (dpop?: string) =>
      mtls.app.inject({
        method: 'POST',
        url: '/oauth2/token',
        headers: { ...FORM, ...(dpop === undefined ? {} : { dpop }) },
        payload: form({ grant_type: 'client_credentials', client_id: 'edge-proxy' }),
      });
    const bound = await send();
    expect(decodeJwt(bound.json<{ access_token: string }>().access_token).cnf).toHaveProperty('x5t#S256');
    const both = await send(await proof());
    expect(both.statusCode).toBe(400);
    expect(both.json()).toEqual({ error: 'invalid_request', error_description: expect.stringMatching(/not both/) });
  });
});
