import { randomUUID, X509Certificate } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PresentedCertificate } from '../../src/oauth/client-auth.js';
import { PostgresTokenStore } from '../../src/store/postgres-token-store.js';
import { RedisTokenStore } from '../../src/store/redis-token-store.js';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.js';
import type { TokenStore } from '../../src/store/token-store.js';
import { deleteKeys, REDIS_URL, redisAnswers, requireOrSkip, testPrefix } from '../store/redis-helpers.js';
import { POSTGRES_URL, requirePostgres, testSchema } from '../store/postgres-helpers.js';
import { API, client, introspect, registryYaml, revoke, tokenRequest } from '../builders.js';
import { buildTestApp, form, FORM, tempDir, TestClock, type TestApp } from '../helpers.js';
import { makePki } from '../tls-fixtures.js';

const A = 'throttle-secret-a-0123456789abcdefghijklm';
const B = 'throttle-secret-b-0123456789abcdefghijklm';
let t: TestApp;

beforeAll(async () => {
  t = await buildTestApp({
    config: `issuer: https://auth.test
keys: { dir: ./keys }
store: { kind: memory }
throttle: { window: 1m, client_failures: 3, address_failures: 5 }
`,
    clients: await registryYaml([client({ id: 'svc-a', secret: A, audiences: [API] }), client({ id: 'svc-b', secret: B, audiences: [API] })]),
  });
});

const ask = (clientId: string, secret: string, ip: string, url: '/oauth2/token' | '/oauth2/introspect' | '/oauth2/revoke' = '/oauth2/token') => {
  const spec = { client: clientId, secret, ip };
  if (url === '/oauth2/token') return tokenRequest(t.app, spec);
  return url === '/oauth2/introspect' ? introspect(t.app, 'x', spec) : revoke(t.app, 'x', spec);
};

describe('throttling failed client authentication', () => {
  it('refuses a client_id from one address after its failures, with 429 and Retry-After, and not from other addresses', async () => {
    for (let i = 0; i < 3; i++) expect((await ask('svc-a', `wrong-${i}`, '10.0.0.1')).statusCode).toBe(401);
    const refused = await ask('svc-a', A, '10.0.0.1');
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toEqual({ error: 'temporarily_unavailable', error_description: 'too many failed authentication attempts; retry later' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(refused.headers['cache-control']).toBe('no-store');
    // The same client from elsewhere is not locked out.
    expect((await ask('svc-a', A, '10.0.0.2')).statusCode).toBe(200);
    // Another client from the throttled address is not either (its own count is low).
    expect((await ask('svc-b', B, '10.0.0.1')).statusCode).toBe(200);
    expect(t.logs.events('client.throttled')).toContainEqual(expect.objectContaining({ per: 'client', ip: '10.0.0.1' }));
  });

  it('refuses an address after its failures across client_ids, at every endpoint that authenticates', async () => {
    const ids = ['x1', 'x2', 'x3', 'x4', 'x5'];
    for (const id of ids) expect((await ask(id, 'nope', '10.0.0.3')).statusCode).toBe(401);
    // Any credential that would need an argon2 check is refused now.
    expect((await ask('svc-b', 'guess', '10.0.0.3')).statusCode).toBe(429);
    expect((await ask('svc-b', 'guess', '10.0.0.3', '/oauth2/introspect')).statusCode).toBe(429);
    expect((await ask('svc-b', 'guess', '10.0.0.3', '/oauth2/revoke')).statusCode).toBe(429);
  });

  it('counts wrong secrets of registered clients against their address too', async () => {
    for (let i = 0; i < 3; i++) expect((await ask('svc-a', `wrong-${i}`, '10.0.0.9')).statusCode).toBe(401);
    for (let i = 0; i < 2; i++) expect((await ask('svc-b', `wrong-${i}`, '10.0.0.9')).statusCode).toBe(401);
    const refused = await ask('svc-b', 'another-guess', '10.0.0.9');
    expect(refused.statusCode).toBe(429);
    expect(t.logs.events('client.throttled')).toContainEqual(expect.objectContaining({ per: 'address', ip: '10.0.0.9' }));
  });

  it('lets the window pass', async () => {
    for (let i = 0; i < 3; i++) await ask('svc-b', 'wrong', '10.0.0.4');
    expect((await ask('svc-b', 'other-wrong', '10.0.0.4')).statusCode).toBe(429);
    t.clock.advance(61);
    expect((await ask('svc-b', 'other-wrong', '10.0.0.4')).statusCode).toBe(401);
  });

  it('spends no argon2 work on a throttled request, yet lets a recently verified secret through', async () => {
    // svc-b's secret was verified from 10.0.0.5 before the flood: it is in the verified cache.
    expect((await ask('svc-b', B, '10.0.0.5')).statusCode).toBe(200);
    for (let i = 0; i < 3; i++) await ask('svc-b', `wrong-${i}`, '10.0.0.5');
    const before = (await t.app.inject({ method: 'GET', url: '/metrics' })).body.match(/^tollgate_argon2_verify_duration_seconds_count (\d+)$/m)![1];
    expect((await ask('svc-b', 'again-wrong', '10.0.0.5')).statusCode).toBe(429);
    const after = (await t.app.inject({ method: 'GET', url: '/metrics' })).body.match(/^tollgate_argon2_verify_duration_seconds_count (\d+)$/m)![1];
    expect(after).toBe(before);
    expect((await ask('svc-b', B, '10.0.0.5')).statusCode).toBe(200);
  });
});

/** argon2 verifications run so far, from the app's own histogram. */
async function verifications(app: TestApp['app']): Promise<number> {
  const body = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  return Number(body.match(/^tollgate_argon2_verify_duration_seconds_count (\d+)$/m)![1]);
}

function count(statuses: number[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const s of statuses) out[s] = (out[s] ?? 0) + 1;
  return out;
}

describe('concurrent failed authentications (counted as they start)', () => {
  let c: TestApp;
  beforeAll(async () => {
    c = await buildTestApp({
      config: `issuer: https://auth.test
keys: { dir: ./keys }
store: { kind: memory }
throttle: { window: 1m, client_failures: 10, address_failures: 100 }
`,
      clients: await registryYaml([client({ id: 'svc-a', secret: A, audiences: [API] })]),
    });
  });
  const post = (clientId: string, secret: string, ip: string) =>
    tokenRequest(c.app, { client: clientId, secret, ip });

  it('lets at most client_failures of 200 concurrent wrong secrets for one client reach argon2; the rest get 429', async () => {
    const before = await verifications(c.app);
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => post('svc-a', `wrong-secret-${i}`, '10.1.0.1')));
    expect(await verifications(c.app)).toBe(before + 10);
    expect(count(answers.map((r) => r.statusCode))).toEqual({ 401: 10, 429: 190 });
  });

  it('lets at most address_failures of 250 concurrent unknown client_ids from one address reach argon2; the rest get 429', async () => {
    const before = await verifications(c.app);
    const answers = await Promise.all(Array.from({ length: 250 }, (_, i) => post(`nobody-${i}`, 'guess', '10.1.0.2')));
    expect(await verifications(c.app)).toBe(before + 100);
    expect(count(answers.map((r) => r.statusCode))).toEqual({ 401: 100, 429: 150 });
  });

  it('refuses 200 concurrent copies of one wrong secret beyond the limit, with one argon2 verification', async () => {
    const before = await verifications(c.app);
    const answers = await Promise.all(Array.from({ length: 200 }, () => post('svc-a', 'the-same-wrong-secret', '10.1.0.3')));
    expect(await verifications(c.app)).toBe(before + 1);
    expect(count(answers.map((r) => r.statusCode))).toEqual({ 401: 10, 429: 190 });
  });

  it('lets 120 registered clients with their right secrets through at once from one address, beyond address_failures', async () => {
    // 120 services behind one NAT address, none of them in the verified-secret cache (as after
    // a registry reload): none has failed, so none is refused.
    const secret = 'many-services-secret-0123456789abcdefghij';
    const many = await buildTestApp({
      config: `issuer: https://auth.test
keys: { dir: ./keys }
store: { kind: memory }
throttle: { window: 1m, client_failures: 10, address_failures: 100 }
`,
      clients: await registryYaml(Array.from({ length: 120 }, (_, i) => client({ id: `svc-${i}`, secret, audiences: [API] }))),
    });
    const answers = await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        tokenRequest(many.app, { client: `svc-${i}`, secret, ip: '10.1.0.9' }),
      ),
    );
    expect(count(answers.map((r) => r.statusCode))).toEqual({ 200: 120 });
    await many.app.close();
  });

  it('still lets a burst of the right secret through, beyond the limit, and counts none of it', async () => {
    const before = await verifications(c.app);
    const answers = await Promise.all(Array.from({ length: 30 }, () => post('svc-a', A, '10.1.0.4')));
    expect(answers.map((r) => r.statusCode)).toEqual(Array(30).fill(200));
    expect(await verifications(c.app)).toBe(before + 1);
    // Every count was given back: the client still has all its failures left from there.
    const wrong = await Promise.all(Array.from({ length: 12 }, (_, i) => post('svc-a', `late-wrong-${i}`, '10.1.0.4')));
    expect(count(wrong.map((r) => r.statusCode))).toEqual({ 401: 10, 429: 2 });
  });
});

describe('throttling private_key_jwt and mutual TLS', () => {
  let m: TestApp;
  let clientKey: CryptoKey;
  let forgerKey: CryptoKey;
  const certificates: Record<string, PresentedCertificate> = {};
  beforeAll(async () => {
    const client = await generateKeyPair('ES256', { extractable: true });
    clientKey = client.privateKey;
    forgerKey = (await generateKeyPair('ES256')).privateKey;
    const pki = makePki(tempDir());
    const own = new X509Certificate(pki.pem('selfsigned.pem'));
    // A self-signed certificate is not chain-verified, as the TLS stack would report it.
    certificates.own = { cert: own, chainVerified: false };
    certificates.other = { cert: new X509Certificate(pki.pem('edge.pem')), chainVerified: true };
    m = await buildTestApp({
      config: `issuer: https://auth.test
keys: { dir: ./keys }
store: { kind: memory }
throttle: { window: 1m, client_failures: 10, address_failures: 20 }
`,
      clients: `clients:
  - client_id: signer
    auth_methods: [private_key_jwt]
    jwks: { keys: [${JSON.stringify({ ...(await exportJWK(client.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' })}] }
    audiences: [https://api.test]
  - client_id: batch-runner
    auth_methods: [self_signed_tls_client_auth]
    jwks: { keys: [${JSON.stringify(await exportJWK(own.publicKey))}] }
    audiences: [https://api.test]
`,
      // Real time: assertions are dated by the real clock.
      clock: new TestClock(Date.now()),
      deps: { certificates: (req: FastifyRequest) => certificates[String(req.headers['x-test-certificate'])] },
    });
  });

  const assertion = (key: CryptoKey) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: 'signer', sub: 'signer', aud: 'https://auth.test', jti: randomUUID(), iat: now, exp: now + 60 }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(key);
  };
  const withAssertion = async (key: CryptoKey, ip: string) =>
    m.app.inject({
      method: 'POST',
      url: '/oauth2/token',
      headers: FORM,
      payload: form({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await assertion(key) }),
      remoteAddress: ip,
    });
  const withCertificate = (which: 'own' | 'other', ip: string) =>
    m.app.inject({
      method: 'POST',
      url: '/oauth2/token',
      headers: { ...FORM, 'x-test-certificate': which },
      payload: form({ grant_type: 'client_credentials', client_id: 'batch-runner' }),
      remoteAddress: ip,
    });
  const spendAddress = async (ip: string) => {
    for (let i = 0; i < 20; i++) {
      await tokenRequest(m.app, { client: `nobody-${i}`, secret: 'guess', ip });
    }
  };

  it('refuses forged client assertions with 429 once the client has no failures left at that address', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await withAssertion(forgerKey, '10.2.0.1')).statusCode);
    expect(statuses).toEqual([...Array(10).fill(401), ...Array(20).fill(429)]);
    // The client itself, from elsewhere, is not locked out.
    expect((await withAssertion(clientKey, '10.2.0.2')).statusCode).toBe(200);
  });

  it('counts 30 concurrent forged assertions as failures, so that the next one is refused with 429', async () => {
    const answers = await Promise.all(Array.from({ length: 30 }, () => withAssertion(forgerKey, '10.2.0.3')));
    expect(answers.every((r) => r.statusCode === 401 || r.statusCode === 429)).toBe(true);
    expect((await withAssertion(forgerKey, '10.2.0.3')).statusCode).toBe(429);
    expect((await withAssertion(clientKey, '10.2.0.3')).statusCode).toBe(429);
  });

  it('lets a burst of 40 concurrent valid assertions from one address through, beyond client_failures', async () => {
    // Forty instances of one service behind one NAT address, starting together.
    const answers = await Promise.all(Array.from({ length: 40 }, () => withAssertion(clientKey, '10.2.0.8')));
    expect(count(answers.map((r) => r.statusCode))).toEqual({ 200: 40 });
  });

  it('lets a burst of 40 concurrent right certificates from one address through, beyond client_failures', async () => {
    const answers = await Promise.all(Array.from({ length: 40 }, () => withCertificate('own', '10.2.0.9')));
    expect(count(answers.map((r) => r.statusCode))).toEqual({ 200: 40 });
  });

  it('refuses a valid assertion from an address throttled for secrets, and counts none for a valid one', async () => {
    for (let i = 0; i < 15; i++) expect((await withAssertion(clientKey, '10.2.0.4')).statusCode).toBe(200);
    await spendAddress('10.2.0.4');
    const refused = await withAssertion(clientKey, '10.2.0.4');
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBeDefined();
  });

  it('refuses a certificate that does not match with 429 once the client has no failures left at that address', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 15; i++) statuses.push((await withCertificate('other', '10.2.0.5')).statusCode);
    expect(statuses).toEqual([...Array(10).fill(401), ...Array(5).fill(429)]);
    expect((await withCertificate('own', '10.2.0.5')).statusCode).toBe(429);
    expect((await withCertificate('own', '10.2.0.6')).statusCode).toBe(200);
  });

  it('refuses the right certificate from an address throttled for secrets', async () => {
    for (let i = 0; i < 15; i++) expect((await withCertificate('own', '10.2.0.7')).statusCode).toBe(200);
    await spendAddress('10.2.0.7');
    expect((await withCertificate('own', '10.2.0.7')).statusCode).toBe(429);
  });
});

const redisUp = requireOrSkip(await redisAnswers(), 'Redis for the shared-store throttle test');
const postgresUp = requirePostgres();

describe('concurrent failed authentications across instances sharing a store', () => {
  const prefix = testPrefix();
  const stores: TokenStore[] = [];
  afterAll(async () => {
    for (const store of stores) await store.close();
    if (redisUp) await deleteKeys(prefix);
  });

  const shared: Record<string, () => TokenStore> = {
    sqlite: (() => {
      const path = join(tempDir(), 'shared.db');
      return () => new SqliteTokenStore(path);
    })(),
    redis: () => new RedisTokenStore({ url: REDIS_URL, prefix }),
    postgres: (() => {
      const schema = testSchema();
      return () => new PostgresTokenStore({ url: POSTGRES_URL, schema });
    })(),
  };

  for (const [kind, open] of Object.entries(shared)) {
    it.skipIf((kind === 'redis' && !redisUp) || (kind === 'postgres' && !postgresUp))(`lets at most client_failures of 200 wrong secrets sent at once to two instances on one ${kind} store reach argon2`, async () => {
      const clients = await registryYaml([client({ id: 'svc-a', secret: A, audiences: [API] })]);
      const config = `issuer: https://auth.test
keys: { dir: ./keys }
store: { kind: memory }
throttle: { window: 1m, client_failures: 10, address_failures: 100 }
`;
      const instances = await Promise.all([0, 1].map(async () => {
        const store = open();
        stores.push(store);
        return buildTestApp({ config, clients, store, clock: new TestClock(Date.now()) });
      }));
      const before = (await verifications(instances[0]!.app)) + (await verifications(instances[1]!.app));
      const answers = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          tokenRequest(instances[i % 2]!.app, { client: 'svc-a', secret: `shared-wrong-${i}`, ip: '10.3.0.1' }),
        ),
      );
      const after = (await verifications(instances[0]!.app)) + (await verifications(instances[1]!.app));
      expect(after - before).toBe(10);
      expect(count(answers.map((r) => r.statusCode))).toEqual({ 401: 10, 429: 190 });
    });

    it.skipIf((kind === 'redis' && !redisUp) || (kind === 'postgres' && !postgresUp))(`lets a burst of one client's right secrets through two instances on one ${kind} store, beyond client_failures`, async () => {
      // Instances of one service behind one NAT address, starting together, spread over two
      // tollgate instances: the first takes every count the client has while its argon2 check
      // runs, and the second cannot share that check. Its attempts wait for the counts to come
      // back instead of being refused for failures that never happened.
      const clients = await registryYaml([client({ id: 'svc-a', secret: A, audiences: [API] })]);
      const config = `issuer: https://auth.test
keys: { dir: ./keys }
store: { kind: memory }
throttle: { window: 1m, client_failures: 3, address_failures: 100 }
`;
      const instances = await Promise.all([0, 1].map(async () => {
        const store = open();
        stores.push(store);
        return buildTestApp({ config, clients, store, clock: new TestClock(Date.now()) });
      }));
      const ip = `10.3.0.${kind.length + 10}`;
      const answers = await Promise.all([
        ...Array.from({ length: 3 }, () => tokenRequest(instances[0]!.app, { client: 'svc-a', secret: A, ip })),
        ...Array.from({ length: 10 }, () => tokenRequest(instances[1]!.app, { client: 'svc-a', secret: A, ip })),
      ]);
      expect(count(answers.map((r) => r.statusCode))).toEqual({ 200: 13 });
      // Wrong secrets are refused as before once the count is spent.
      for (let i = 0; i < 3; i++) expect((await tokenRequest(instances[1]!.app, { client: 'svc-a', secret: `wrong-${i}`, ip })).statusCode).toBe(401);
      expect((await tokenRequest(instances[0]!.app, { client: 'svc-a', secret: 'wrong-again', ip })).statusCode).toBe(429);
    });
  }
});
