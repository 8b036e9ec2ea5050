import { SignJWT, decodeJwt, generateKeyPair } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { API, client, type ClientSpec, introspect, registryYaml, revoke, tokenRequest } from '../builders.js';
import { basic, buildTestApp, form, FORM, type TestApp } from '../helpers.js';

const S = {
  a: 'secret-a-0123456789abcdefghijklmnopqrstuvw',
  b: 'secret-b-0123456789abcdefghijklmnopqrstuvw',
  rs: 'secret-rs-0123456789abcdefghijklmnopqrstuv',
};

let t: TestApp;

const CLIENTS = [
  client({ id: 'svc-a', secret: S.a, scopes: ['read', 'write'], audiences: [API] }),
  client({ id: 'svc-b', secret: S.b, audiences: [API] }),
  client({ id: 'resource-server', secret: S.rs, audiences: [API], introspect: true }),
];
const clientsYaml = (...extra: ClientSpec[]) => registryYaml([...CLIENTS, ...extra]);

beforeAll(async () => {
  t = await buildTestApp({ clients: await clientsYaml() });
});

async function issue(clientId = 'svc-a', secret = S.a, scope?: string): Promise<string> {
  const res = await tokenRequest(t.app, { client: clientId, secret, params: scope ? { scope } : {} });
  expect(res.statusCode, res.body).toBe(200);
  return res.json().access_token;
}

function post(url: string, params: Record<string, string>, auth?: [string, string], app = t.app) {
  return app.inject({
    method: 'POST',
    url,
    headers: { ...FORM, ...(auth ? { authorization: basic(...auth) } : {}) },
    payload: form(params),
  });
}

const introspectAs = ([client, secret]: [string, string], token: string, params: Record<string, string> = {}) =>
  introspect(t.app, token, { client, secret, params });
const revokeAs = ([client, secret]: [string, string], token: string, params: Record<string, string> = {}) => revoke(t.app, token, { client, secret, params });

async function expectInactive(auth: [string, string], token: string): Promise<void> {
  const res = await introspectAs(auth, token);
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.body).toBe('{"active":false}');
}

describe('POST /oauth2/introspect', () => {
  it('describes an active token with every RFC 7662 field', async () => {
    const token = await issue('svc-a', S.a, 'read write');
    const claims = decodeJwt(token);
    const res = await introspectAs(['resource-server', S.rs], token, { token_type_hint: 'access_token' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers.pragma).toBe('no-cache');
    expect(res.json()).toEqual({
      active: true,
      scope: 'read write',
      client_id: 'svc-a',
      sub: 'svc-a',
      aud: 'https://api.test',
      iss: 'https://auth.test',
      exp: claims.exp,
      iat: claims.iat,
      nbf: claims.nbf,
      jti: claims.jti,
      token_type: 'Bearer',
    });
  });

  it('lets a client introspect its own token, and not another client’s unless introspect is true', async () => {
    const token = await issue();
    expect((await introspectAs(['svc-a', S.a], token)).json().active).toBe(true);
    await expectInactive(['svc-b', S.b], token);
    expect((await introspectAs(['resource-server', S.rs], token)).json().active).toBe(true);
  });

  it('accepts any token_type_hint, even a wrong one', async () => {
    const token = await issue();
    expect((await introspectAs(['svc-a', S.a], token, { token_type_hint: 'refresh_token' })).json().active).toBe(true);
    expect((await introspectAs(['svc-a', S.a], token, { token_type_hint: 'nonsense' })).json().active).toBe(true);
  });

  it('answers exactly {"active":false} for an expired token', async () => {
    const token = await issue();
    const saved = t.clock.ms;
    t.clock.advance(901);
    try {
      await expectInactive(['resource-server', S.rs], token);
    } finally {
      t.clock.ms = saved;
    }
  });

  it('answers {"active":false} for a token that is not yet valid (clock behind)', async () => {
    const token = await issue();
    const saved = t.clock.ms;
    t.clock.advance(-120);
    try {
      await expectInactive(['resource-server', S.rs], token);
    } finally {
      t.clock.ms = saved;
    }
  });

  it.each([
    ['garbage', 'not-a-token'],
    ['a JWT-looking string', 'a.b.c'],
    ['a huge value', 'x'.repeat(8000)],
    ['unicode', 'ü€𝄞'],
  ])('answers {"active":false} for %s', async (_what, token) => {
    await expectInactive(['resource-server', S.rs], token);
  });

  it('answers {"active":false} for a token with a known jti but another signature, payload or issuer', async () => {
    const token = await issue();
    const [h, p, s] = token.split('.') as [string, string, string];
    const flipped = s.slice(0, -2) + (s.at(-2) === 'A' ? 'B' : 'A') + s.at(-1);
    await expectInactive(['resource-server', S.rs], `${h}.${p}.${flipped}`);
    const claims = decodeJwt(token);
    // Same jti and claims, signed by a key that is not ours, or with a foreign issuer.
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: t.keys.signingKey().kid }).sign(privateKey);
    await expectInactive(['resource-server', S.rs], forged);
    const foreign = await new SignJWT({ ...claims, iss: 'https://evil.test' })
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: t.keys.signingKey().kid })
      .sign(t.keys.signingKey().key);
    await expectInactive(['resource-server', S.rs], foreign);
    // The genuine token is untouched by all that.
    expect((await introspectAs(['resource-server', S.rs], token)).json().active).toBe(true);
  });

  it('needs an authenticated caller and a token', async () => {
    const token = await issue();
    const none = await post('/oauth2/introspect', { token });
    expect(none.statusCode).toBe(401);
    expect(none.json().error).toBe('invalid_client');
    expect(none.headers['www-authenticate']).toBe('Basic realm="tollgate"');
    const wrong = await introspectAs(['resource-server', 'wrong'], token);
    expect(wrong.statusCode).toBe(401);
    const missing = await post('/oauth2/introspect', {}, ['resource-server', S.rs]);
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error).toBe('invalid_request');
    const twice = await t.app.inject({
      method: 'POST',
      url: '/oauth2/introspect',
      headers: { ...FORM, authorization: basic('resource-server', S.rs) },
      payload: `token=${token}&token=${token}`,
    });
    expect(twice.statusCode).toBe(400);
    const json = await t.app.inject({ method: 'POST', url: '/oauth2/introspect', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ token }) });
    expect(json.statusCode).toBe(400);
    expect(json.headers['cache-control']).toBe('no-store');
    const get = await t.app.inject({ method: 'GET', url: '/oauth2/introspect' });
    expect(get.statusCode).toBe(405);
    expect(get.headers.allow).toBe('POST');
  });
});

describe('POST /oauth2/revoke', () => {
  it('revokes the caller’s own token: 200, then inactive', async () => {
    const token = await issue();
    const other = await issue();
    const res = await revokeAs(['svc-a', S.a], token);
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    expect(res.headers['cache-control']).toBe('no-store');
    await expectInactive(['resource-server', S.rs], token);
    // Another token of the same client stays active.
    expect((await introspectAs(['resource-server', S.rs], other)).json().active).toBe(true);
    // Revoking twice is still 200.
    expect((await revokeAs(['svc-a', S.a], token)).statusCode).toBe(200);
  });

  it('answers 200 for unknown and malformed tokens', async () => {
    expect((await revokeAs(['svc-a', S.a], 'garbage')).statusCode).toBe(200);
    expect((await revokeAs(['svc-a', S.a], 'eyJhbGciOiJub25lIn0.eyJqdGkiOiJub3BlIn0.')).statusCode).toBe(200);
  });

  it('takes a token_type_hint of refresh_token as no error and revokes the access token', async () => {
    const token = await issue();
    expect((await revokeAs(['svc-a', S.a], token, { token_type_hint: 'refresh_token' })).statusCode).toBe(200);
    await expectInactive(['resource-server', S.rs], token);
  });

  it('refuses to revoke another client’s token, which stays active', async () => {
    const token = await issue();
    for (const caller of [['svc-b', S.b], ['resource-server', S.rs]] as [string, string][]) {
      const res = await revokeAs(caller, token);
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toBe('unauthorized_client');
    }
    expect((await introspectAs(['resource-server', S.rs], token)).json().active).toBe(true);
  });

  it('does not let a forged token with a real jti revoke it', async () => {
    const token = await issue();
    const claims = decodeJwt(token);
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'RS256' }).sign(privateKey);
    expect((await revokeAs(['svc-a', S.a], forged)).statusCode).toBe(200);
    expect((await introspectAs(['resource-server', S.rs], token)).json().active).toBe(true);
  });

  it('needs an authenticated caller and a token', async () => {
    const token = await issue();
    expect((await post('/oauth2/revoke', { token })).statusCode).toBe(401);
    expect((await post('/oauth2/revoke', {}, ['svc-a', S.a])).json().error).toBe('invalid_request');
    expect((await introspectAs(['resource-server', S.rs], token)).json().active).toBe(true);
  });

  it('logs the revocation without the token', async () => {
    const token = await issue();
    await revokeAs(['svc-a', S.a], token);
    expect(t.logs.events('token.revoked')).toContainEqual(expect.objectContaining({ client_id: 'svc-a', jti: decodeJwt(token).jti }));
    expect(t.logs.text).not.toContain(token.split('.')[2]);
  });
});

describe('client state', () => {
  it('makes the tokens of a disabled or removed client inactive at once, and of a re-enabled one active again', async () => {
    const yaml = (flags: Record<string, unknown>) => clientsYaml(client({ id: 'svc-c', secret: S.a, audiences: [API], ...flags }));
    const app = await buildTestApp({ clients: await yaml({}) });
    const res = await post('/oauth2/token', { grant_type: 'client_credentials' }, ['svc-c', S.a], app.app);
    const token = res.json().access_token as string;
    const active = async () => (await post('/oauth2/introspect', { token }, ['resource-server', S.rs], app.app)).json().active;
    const edit = async (text: string) => {
      writeFileSync(app.fixture.clientsFile, text);
      expect(app.registry.reload()).toBe(true);
    };
    expect(await active()).toBe(true);

    await edit(await yaml({ disabled: true }));
    expect(await active()).toBe(false);
    const refused = await post('/oauth2/token', { grant_type: 'client_credentials' }, ['svc-c', S.a], app.app);
    expect(refused.statusCode).toBe(401);

    await edit(await yaml({}));
    expect(await active()).toBe(true);

    await edit(await clientsYaml());
    expect(await active()).toBe(false);
    expect(app.logs.events('registry.reloaded').at(-1)).toMatchObject({ removed: ['svc-c'], added: [], changed: [] });

    // A broken edit is refused and the last good registry keeps serving.
    writeFileSync(app.fixture.clientsFile, 'clients:\n  - client_id: svc-a\n    secret: plaintext\n');
    expect(app.registry.reload()).toBe(false);
    expect(app.logs.events('registry.rejected')).toHaveLength(1);
    expect(app.logs.text).not.toContain('plaintext\n');
    const stillServing = await post('/oauth2/token', { grant_type: 'client_credentials' }, ['svc-a', S.a], app.app);
    expect(stillServing.statusCode).toBe(200);
  });
});

describe('store failure', () => {
  it('answers 503 temporarily_unavailable with Retry-After and hands out no token', async () => {
    const broken = {
      record: async () => Promise.reject(new Error('disk on fire')),
      find: async () => Promise.reject(new Error('disk on fire')),
      revoke: async () => Promise.reject(new Error('disk on fire')),
      revokeClient: async () => Promise.reject(new Error('disk on fire')),
      claimOnce: async () => Promise.reject(new Error('disk on fire')),
      reserveHits: async () => Promise.reject(new Error('disk on fire')),
      releaseHits: async () => Promise.reject(new Error('disk on fire')),
      peekCounts: async () => Promise.reject(new Error('disk on fire')),
      purgeExpired: async () => 0,
      ping: async () => Promise.reject(new Error('disk on fire')),
      listSigningKeys: async () => Promise.reject(new Error('disk on fire')),
      signingKeyGeneration: async () => Promise.reject(new Error('disk on fire')),
      addSigningKey: async () => Promise.reject(new Error('disk on fire')),
      removeSigningKey: async () => Promise.reject(new Error('disk on fire')),
      resealSigningKeys: async () => Promise.reject(new Error('disk on fire')),
      close: async () => {},
    };
    const app = await buildTestApp({ clients: await clientsYaml(), store: broken });
    const token = await post('/oauth2/token', { grant_type: 'client_credentials' }, ['svc-a', S.a], app.app);
    expect(token.statusCode).toBe(503);
    expect(token.headers['retry-after']).toBe('5');
    expect(token.json()).toEqual({ error: 'temporarily_unavailable', error_description: expect.any(String) });
    expect(token.body).not.toContain('eyJ');
    const real = await issue();
    const introspection = await post('/oauth2/introspect', { token: real }, ['resource-server', S.rs], app.app);
    expect(introspection.statusCode).toBe(503);
    expect(introspection.body).not.toContain('active');
    const revocation = await post('/oauth2/revoke', { token: real }, ['svc-a', S.a], app.app);
    expect(revocation.statusCode).toBe(503);
    const ready = await app.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
  });
});

describe('verified-credential cache', () => {
  it('stops accepting a secret at once when the registry drops it, though it was verified moments before', async () => {
    const app = await buildTestApp({ clients: await clientsYaml() });
    const ask = () => post('/oauth2/token', { grant_type: 'client_credentials' }, ['svc-b', S.b], app.app);
    expect((await ask()).statusCode).toBe(200);
    expect((await ask()).statusCode).toBe(200);
    // svc-b now has only a new secret.
    const rotated = await registryYaml(CLIENTS.map((c) => (c.id === 'svc-b' ? { ...c, secret: 'brand-new-secret-0123456789abcdefghijk' } : c)));
    writeFileSync(app.fixture.clientsFile, rotated);
    expect(app.registry.reload()).toBe(true);
    expect((await ask()).statusCode).toBe(401);
  });
});

describe('argon2 back-pressure', () => {
  it('answers a flood beyond the argon2 queue with 503 and Retry-After, never 5xx otherwise', async () => {
    const { SecretVerifier } = await import('../../src/crypto/secret-verifier.js');
    const { Limiter } = await import('../../src/crypto/limiter.js');
    const { buildApp } = await import('../../src/server/build-app.js');
    const base = await buildTestApp({ clients: await clientsYaml() });
    const app = buildApp({
      config: base.config,
      registry: base.registry,
      keys: base.keys,
      clock: base.clock,
      store: base.store,
      logger: (await import('../../src/server/log.js')).createLogger('silent'),
      verifier: new SecretVerifier({ limiter: new Limiter(1, 2) }),
    });
    // As many as the client may fail from one address: beyond that the throttle answers 429.
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => post('/oauth2/token', { grant_type: 'client_credentials' }, ['svc-a', `wrong-${i}`], app)),
    );
    const statuses = answers.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 401).length).toBeGreaterThanOrEqual(3);
    const refused = answers.filter((r) => r.statusCode === 503);
    expect(refused.length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 401 || s === 503)).toBe(true);
    for (const r of refused) {
      expect(r.headers['retry-after']).toBe('1');
      expect(r.json().error).toBe('temporarily_unavailable');
    }
    // Service resumes once the flood has passed.
    expect((await post('/oauth2/token', { grant_type: 'client_credentials' }, ['svc-a', S.a], app)).statusCode).toBe(200);
    await app.close();
  });
});
