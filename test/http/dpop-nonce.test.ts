import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/server/log.js';
import { startServer, type RunningServer } from '../../src/server/start-server.js';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.js';
import { API, client, introspect, registryYaml, tokenRequest } from '../builders.js';
import { buildTestApp, tempDir, TestClock, writeFixture, type TestApp } from '../helpers.js';
import { freePort } from '../store/redis-helpers.js';

// Server nonces for DPoP (RFC 9449 §8) with dpop.require_nonce: a proof without a current nonce
// is refused with the nonce to use, every DPoP answer carries the next one, and instances that
// share the signing keys accept each other's nonces with no shared state.

const ISSUER = 'https://auth.test';
const HTU = `${ISSUER}/oauth2/token`;
const SECRET = 'nonce-secret-0123456789abcdefghijklmnopq';
const config = (requireNonce: boolean, keysDir = './keys') => `issuer: ${ISSUER}
keys: { dir: ${keysDir} }
store: { kind: memory }
dpop: { require_nonce: ${requireNonce} }
`;

let key: { privateKey: CryptoKey; jwk: JWK };
let clock: TestClock;
let clients: string;
let t: TestApp;

function proof(claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ htm: 'POST', htu: HTU, iat: Math.floor(clock.ms / 1000), jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk })
    .sign(key.privateKey);
}

const ask = (app: TestApp, dpop?: string) => tokenRequest(app.app, { client: 'svc', secret: SECRET, ...(dpop === undefined ? {} : { headers: { dpop } }) });

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  key = { privateKey: pair.privateKey, jwk: await exportJWK(pair.publicKey) };
  clock = new TestClock(Date.UTC(2026, 5, 1, 12));
  clients = await registryYaml([
    client({ id: 'svc', secret: SECRET, audiences: [API] }),
    client({ id: 'rs', secret: SECRET, introspect: true, audiences: [API] }),
  ]);
  t = await buildTestApp({ config: config(true), clock, clients });
});

describe('dpop.require_nonce', () => {
  it('answers a proof without a nonce 400 use_dpop_nonce with a DPoP-Nonce header, and takes the proof made with it', async () => {
    const refused = await ask(t, await proof());
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toEqual({ error: 'use_dpop_nonce', error_description: expect.stringMatching(/nonce/) });
    expect(refused.headers['cache-control']).toBe('no-store');
    const nonce = refused.headers['dpop-nonce'] as string;
    expect(nonce).toMatch(/^[0-9a-z]+\.[^.]+\.[A-Za-z0-9_-]+$/);
    const taken = await ask(t, await proof({ nonce }));
    expect(taken.statusCode, taken.body).toBe(200);
    expect(taken.json()).toMatchObject({ token_type: 'DPoP' });
    // The answer carries the nonce for the next proof.
    expect(taken.headers['dpop-nonce']).toBe(nonce);
    const seen = await introspect(t.app, taken.json().access_token, { client: 'rs', secret: SECRET });
    expect(seen.json()).toMatchObject({ active: true, token_type: 'DPoP' });
  });

  it('keeps a nonce for one to two minutes, then asks for the new one', async () => {
    const nonce = (await ask(t, await proof())).headers['dpop-nonce'] as string;
    clock.advance(60);
    expect((await ask(t, await proof({ nonce }))).statusCode).toBe(200);
    clock.advance(120);
    const stale = await ask(t, await proof({ nonce }));
    expect(stale.statusCode).toBe(400);
    expect(stale.json().error).toBe('use_dpop_nonce');
    const fresh = stale.headers['dpop-nonce'] as string;
    expect(fresh).not.toBe(nonce);
    expect((await ask(t, await proof({ nonce: fresh }))).statusCode).toBe(200);
  });

  it('refuses a nonce it did not make: a forged or altered one, one for a window to come, one of another type', async () => {
    const nonce = (await ask(t, await proof())).headers['dpop-nonce'] as string;
    const [window, kid, signature] = nonce.split('.') as [string, string, string];
    const later = (Number.parseInt(window, 36) + 5).toString(36);
    const flipped = `${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BA' : 'AA'}`;
    for (const bad of [`${later}.${kid}.${signature}`, `${window}.${kid}.${flipped}`, `${window}.other-kid.${signature}`, 'nonce', 42, { nonce }, '', 'x'.repeat(5000)]) {
      const res = await ask(t, await proof({ nonce: bad }));
      expect(res.statusCode, JSON.stringify(bad).slice(0, 40)).toBe(400);
      expect(res.json().error).toBe('use_dpop_nonce');
      expect(res.headers['dpop-nonce']).toBe(nonce);
    }
  });

  it('leaves token requests without a proof alone, and checks the proof itself first', async () => {
    const bearer = await ask(t);
    expect(bearer.statusCode).toBe(200);
    expect(bearer.headers['dpop-nonce']).toBeUndefined();
    const unsigned = await ask(t, 'not.a.proof');
    expect(unsigned.json().error).toBe('invalid_dpop_proof');
  });

  it('accepts on one instance the nonce another made, when they share the signing keys', async () => {
    const shared = join(tempDir(), 'keys');
    const path = join(tempDir(), 'shared.db');
    const first = await buildTestApp({ config: config(true, shared), clock, clients, store: new SqliteTokenStore(path) });
    const second = await buildTestApp({ config: config(true, shared), clock, clients, store: new SqliteTokenStore(path) });
    const nonce = (await ask(first, await proof())).headers['dpop-nonce'] as string;
    expect((await ask(second, await proof({ nonce }))).statusCode).toBe(200);
    // An instance with keys of its own does not.
    const stranger = await buildTestApp({ config: config(true), clock, clients });
    expect((await ask(stranger, await proof({ nonce }))).json().error).toBe('use_dpop_nonce');
  });

  it('is off by default: a proof without a nonce gets its token, and no DPoP-Nonce header comes back', async () => {
    const plain = await buildTestApp({ config: `issuer: ${ISSUER}\nkeys: { dir: ./keys }\nstore: { kind: memory }\n`, clock, clients });
    const res = await ask(plain, await proof());
    expect(res.statusCode).toBe(200);
    expect(res.headers['dpop-nonce']).toBeUndefined();
  });
});

describe('dpop.require_nonce with a real client library', () => {
  let server: RunningServer;
  const insecure = { [oauth.allowInsecureRequests]: true };

  beforeAll(async () => {
    const port = await freePort();
    const fixture = writeFixture({
      config: `issuer: http://127.0.0.1:${port}\nlisten: { host: 127.0.0.1, port: ${port} }\nkeys: { dir: ./keys }\nstore: { kind: memory }\ndpop: { require_nonce: true }\n`,
      clients,
    });
    server = await startServer(loadConfig(fixture.configFile), createLogger('silent'));
  });
  afterAll(async () => server?.close());

  it("gets a token with oauth4webapi: its use_dpop_nonce error, then the retry with the nonce it kept", async () => {
    const issuer = new URL(server.url);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }));
    const svc: oauth.Client = { client_id: 'svc' };
    const DPoP = oauth.DPoP(svc, await oauth.generateKeyPair('ES256'));
    const request = () => oauth.clientCredentialsGrantRequest(as, svc, oauth.ClientSecretBasic(SECRET), {}, { ...insecure, DPoP });
    const first = await oauth.processClientCredentialsResponse(as, svc, await request()).catch((err: unknown) => err);
    expect(oauth.isDPoPNonceError(first)).toBe(true);
    const result = await oauth.processClientCredentialsResponse(as, svc, await request());
    expect(result.token_type).toBe('dpop');
  });
});
