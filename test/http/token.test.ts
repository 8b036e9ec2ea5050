import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { client, registryYaml, tokenRequest } from '../builders.js';
import { basic, buildTestApp, form, FORM, type TestApp } from '../helpers.js';

const SECRET_A = 'secret-A-0123456789abcdefghijklmnopqrstuv';
const SECRET_A2 = 'secret-A2-rotated-0123456789abcdefghijklm';
const SECRET_B = 'secret-B-0123456789abcdefghijklmnopqrstuv';
const WEIRD_ID = 'ops team:1+%/ü'.replace('ü', 'u');
const WEIRD_SECRET = 'p@ss w:rd+%/&=?ü';

let t: TestApp;

beforeAll(async () => {
  t = await buildTestApp({
    config: `issuer: https://auth.test
clients_file: ./clients.yaml
keys: { dir: ./keys }
store: { kind: memory }
tokens: { ttl: 900, audience: [https://default.test] }
`,
    clients: await registryYaml([
      client({
        id: 'svc-a',
        secrets: [{ secret: SECRET_A, expires_at: '2026-06-01T00:00:00Z' }, { secret: SECRET_A2 }],
        scopes: ['read', 'write', 'admin'],
        default_scopes: ['read'],
        audiences: ['https://api.a.test', 'https://api.b.test', 'ledger'],
        token_ttl: 600,
      }),
      client({ id: 'svc-post', secret: SECRET_B, auth_methods: ['client_secret_post'], scopes: ['read'] }),
      client({ id: 'svc-basic', secret: SECRET_B, auth_methods: ['client_secret_basic'] }),
      client({ id: 'svc-disabled', secret: SECRET_B, disabled: true }),
      client({ id: 'svc-expired', secrets: [{ secret: SECRET_B, expires_at: '2025-12-31T00:00:00Z' }] }),
      client({ id: 'svc-ip', secret: SECRET_B, allowed_ips: ['10.0.0.0/8', '2001:db8::/32'] }),
      client({ id: 'svc-local', secret: SECRET_B, allowed_ips: ['127.0.0.1'] }),
      client({ id: WEIRD_ID, secret: WEIRD_SECRET, scopes: ['x'] }),
    ]),
  });
});

function token(body: string, headers: Record<string, string> = {}, extra: { remoteAddress?: string } = {}) {
  return t.app.inject({ method: 'POST', url: '/oauth2/token', headers: { ...FORM, ...headers }, payload: body, ...extra });
}

function expectNoStore(res: { headers: Record<string, unknown> }): void {
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers.pragma).toBe('no-cache');
}

function expectError(res: Awaited<ReturnType<typeof token>>, status: number, error: string): void {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expectNoStore(res);
  const body = res.json();
  expect(body.error).toBe(error);
  expect(typeof body.error_description).toBe('string');
  expect(Object.keys(body).sort()).toEqual(['error', 'error_description']);
}

async function verify(accessToken: string) {
  return jwtVerify(accessToken, createLocalJWKSet(t.keys.jwks() as never), { issuer: 'https://auth.test', typ: 'at+jwt', currentDate: new Date(t.clock.now()) });
}

describe('POST /oauth2/token — success', () => {
  it('issues an RFC 9068 token to a client_secret_basic client', async () => {
    const res = await tokenRequest(t.app, { client: 'svc-a', secret: SECRET_A });
    expect(res.statusCode, res.body).toBe(200);
    expectNoStore(res);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'scope', 'token_type']);
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'read' });
    expect(body).not.toHaveProperty('refresh_token');

    const { payload, protectedHeader } = await verify(body.access_token);
    expect(protectedHeader).toEqual({ alg: 'RS256', typ: 'at+jwt', kid: t.keys.signingKey().kid });
    const now = Math.floor(t.clock.now() / 1000);
    expect(payload).toEqual({
      iss: 'https://auth.test',
      sub: 'svc-a',
      client_id: 'svc-a',
      aud: 'https://api.a.test',
      iat: now,
      nbf: now,
      exp: now + 600,
      jti: expect.any(String),
      scope: 'read',
    });
    // ≥ 128 random bits, base64url.
    expect(payload.jti).toMatch(/^[A-Za-z0-9_-]{22,}$/);
  });

  it('issues to a client_secret_post client', async () => {
    const res = await token(form({ grant_type: 'client_credentials', client_id: 'svc-post', client_secret: SECRET_B }));
    expect(res.statusCode, res.body).toBe(200);
    const claims = decodeJwt(res.json().access_token);
    expect(claims.client_id).toBe('svc-post');
    // No audiences of its own: tokens.audience; no token_ttl: tokens.ttl.
    expect(claims.aud).toBe('https://default.test');
    expect(res.json().expires_in).toBe(900);
  });

  it('gives every token a different jti', async () => {
    const jtis = new Set<unknown>();
    for (let i = 0; i < 3; i++) {
      const res = await tokenRequest(t.app, { client: 'svc-a', secret: SECRET_A });
      jtis.add(decodeJwt(res.json().access_token).jti);
    }
    expect(jtis.size).toBe(3);
  });

  it('accepts a second live secret during rotation', async () => {
    const res = await tokenRequest(t.app, { client: 'svc-a', secret: SECRET_A2 });
    expect(res.statusCode).toBe(200);
  });

  it('form-urlencodes the Basic id and secret (RFC 6749 §2.3.1)', async () => {
    const res = await tokenRequest(t.app, { client: WEIRD_ID, secret: WEIRD_SECRET });
    expect(res.statusCode, res.body).toBe(200);
    expect(decodeJwt(res.json().access_token).sub).toBe(WEIRD_ID);
  });

  it('accepts a client_id in the body that matches the Basic header', async () => {
    const res = await token(form({ grant_type: 'client_credentials', client_id: 'svc-a' }), { authorization: basic('svc-a', SECRET_A) });
    expect(res.statusCode).toBe(200);
  });

  it('accepts a charset parameter on the content type', async () => {
    const res = await token(form({ grant_type: 'client_credentials' }), {
      authorization: basic('svc-a', SECRET_A),
      'content-type': 'application/x-www-form-urlencoded; charset=UTF-8',
    });
    expect(res.statusCode).toBe(200);
  });

  it('honours allowed_ips', async () => {
    const ok = await token(form({ grant_type: 'client_credentials', client_id: 'svc-ip', client_secret: SECRET_B }), {}, { remoteAddress: '10.1.2.3' });
    expect(ok.statusCode, ok.body).toBe(200);
    const v6 = await token(form({ grant_type: 'client_credentials', client_id: 'svc-ip', client_secret: SECRET_B }), {}, { remoteAddress: '2001:db8::7' });
    expect(v6.statusCode).toBe(200);
    const mapped = await token(form({ grant_type: 'client_credentials', client_id: 'svc-local', client_secret: SECRET_B }), {}, { remoteAddress: '::ffff:127.0.0.1' });
    expect(mapped.statusCode).toBe(200);
  });
});

describe('POST /oauth2/token — client authentication failures', () => {
  const grant = form({ grant_type: 'client_credentials' });
  const cases: [string, () => ReturnType<typeof token>][] = [
    ['no credentials', () => token(grant)],
    ['an unknown client', () => tokenRequest(t.app, { client: 'nobody', secret: SECRET_A })],
    ['a wrong secret', () => tokenRequest(t.app, { client: 'svc-a', secret: SECRET_B })],
    ['a disabled client', () => tokenRequest(t.app, { client: 'svc-disabled', secret: SECRET_B })],
    ['an expired secret', () => tokenRequest(t.app, { client: 'svc-expired', secret: SECRET_B })],
    ['basic for a post-only client', () => tokenRequest(t.app, { client: 'svc-post', secret: SECRET_B })],
    ['post for a basic-only client', () => token(form({ grant_type: 'client_credentials', client_id: 'svc-basic', client_secret: SECRET_B }))],
    ['an address outside allowed_ips', () => token(form({ grant_type: 'client_credentials', client_id: 'svc-ip', client_secret: SECRET_B }), {}, { remoteAddress: '192.0.2.1' })],
    ['a client_id without a secret', () => token(form({ grant_type: 'client_credentials', client_id: 'svc-a' }))],
    ['an empty secret', () => token(form({ grant_type: 'client_credentials', client_id: 'svc-a', client_secret: '' }))],
    ['a Bearer header', () => token(grant, { authorization: 'Bearer abc' })],
    ['Basic with bad base64', () => token(grant, { authorization: 'Basic !!!' })],
    ['Basic without a colon', () => token(grant, { authorization: `Basic ${Buffer.from('svc-a').toString('base64')}` })],
    ['Basic with broken percent-encoding', () => token(grant, { authorization: `Basic ${Buffer.from('svc-a:%ZZ').toString('base64')}` })],
    ['Basic with an empty id', () => tokenRequest(t.app, { client: '', secret: SECRET_A })],
    ['a secret far too long', () => token(form({ grant_type: 'client_credentials', client_id: 'svc-a', client_secret: 'x'.repeat(5000) }))],
  ];
  for (const [what, send] of cases) {
    it(`answers 401 invalid_client, the same body, for ${what}`, async () => {
      const res = await send();
      expectError(res, 401, 'invalid_client');
      expect(res.headers['www-authenticate']).toBe('Basic realm="tollgate"');
      expect(res.json().error_description).toBe('client authentication failed');
    });
  }

  it('stops accepting a secret once its expires_at passes', async () => {
    const before = await tokenRequest(t.app, { client: 'svc-a', secret: SECRET_A });
    expect(before.statusCode).toBe(200);
    const saved = t.clock.ms;
    t.clock.ms = Date.parse('2026-06-01T00:00:01Z');
    try {
      expectError(await tokenRequest(t.app, { client: 'svc-a', secret: SECRET_A }), 401, 'invalid_client');
      // The other secret of the same client still works.
      expect((await tokenRequest(t.app, { client: 'svc-a', secret: SECRET_A2 })).statusCode).toBe(200);
    } finally {
      t.clock.ms = saved;
    }
  });
});

describe('POST /oauth2/token — malformed requests', () => {
  const auth = { authorization: basic('svc-a', SECRET_A) };

  it('refuses both Basic and client_secret in the body', async () => {
    const res = await token(form({ grant_type: 'client_credentials', client_id: 'svc-a', client_secret: SECRET_A }), auth);
    expectError(res, 400, 'invalid_request');
  });

  it('refuses a body client_id that differs from the Basic one', async () => {
    expectError(await token(form({ grant_type: 'client_credentials', client_id: 'svc-post' }), auth), 400, 'invalid_request');
  });

  it('requires grant_type', async () => {
    expectError(await token(form({}), auth), 400, 'invalid_request');
    expectError(await token(form({ grant_type: '' }), auth), 400, 'invalid_request');
  });

  it.each(['password', 'authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'CLIENT_CREDENTIALS'])(
    'answers unsupported_grant_type for %s',
    async (grantType) => {
      expectError(await token(form({ grant_type: grantType }), auth), 400, 'unsupported_grant_type');
    },
  );

  it.each(['grant_type', 'scope', 'client_id', 'client_secret'])('refuses %s given twice', async (name) => {
    const body = `grant_type=client_credentials&${name}=a&${name}=b`;
    expectError(await token(body, auth), 400, 'invalid_request');
  });

  it.each([
    ['application/json', '{"grant_type":"client_credentials"}'],
    ['text/plain', 'grant_type=client_credentials'],
    ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\nclient_credentials\r\n--x--'],
    ['application/x-www-form-urlencodedX', 'grant_type=client_credentials'],
  ])('refuses a %s body with invalid_request', async (type, payload) => {
    expectError(await token(payload, { ...auth, 'content-type': type }), 400, 'invalid_request');
  });

  it('refuses a request with no content type', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/oauth2/token', headers: auth });
    expectError(res, 400, 'invalid_request');
  });

  it('refuses a body over 16 KiB with 413', async () => {
    const res = await token(`grant_type=client_credentials&pad=${'x'.repeat(17 * 1024)}`, auth);
    expectError(res, 413, 'invalid_request');
  });

  it('refuses an over-long parameter', async () => {
    expectError(await token(form({ grant_type: 'client_credentials', scope: 'a'.repeat(9000) }), auth), 400, 'invalid_request');
  });

  it.each(['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const)('answers %s with 405 and Allow: POST', async (method) => {
    const res = await t.app.inject({ method, url: '/oauth2/token' });
    expectError(res, 405, 'invalid_request');
    expect(res.headers.allow).toBe('POST');
  });

  it('answers an unknown path with a 404 JSON error', async () => {
    expectError(await t.app.inject({ method: 'GET', url: '/oauth2/authorize' }), 404, 'invalid_request');
  });

  it.each([
    ['broken percent-encoding', 'grant_type=client_credentials&client_id=%ZZ&client_secret=%E0%A4%A'],
    ['a __proto__ parameter', 'grant_type=client_credentials&__proto__=x&constructor=y&client_id=svc-a&client_secret=nope'],
    ['NUL bytes', 'grant_type=client_credentials%00&client_id=svc-a'],
    ['only separators', '&&&==&='],
    ['a parameter without a value', 'grant_type&client_id'],
    ['binary junk', '\u0000\u0001\uffff\ud800'],
  ])('answers %s with a 4xx OAuth error, never a 5xx', async (_what, payload) => {
    const res = await token(payload);
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    expect(typeof res.json().error).toBe('string');
  });
});

describe('POST /oauth2/token — scope', () => {
  const auth = { authorization: basic('svc-a', SECRET_A) };
  const ask = (scope: string) => token(form({ grant_type: 'client_credentials', scope }), auth);

  it('grants a requested subset, deduplicated, in the order asked', async () => {
    const res = await ask('write read write');
    expect(res.statusCode).toBe(200);
    expect(res.json().scope).toBe('write read');
    expect(decodeJwt(res.json().access_token).scope).toBe('write read');
  });

  it('treats an empty scope as omitted: the default scopes', async () => {
    expect((await ask('')).json().scope).toBe('read');
  });

  it('refuses a scope the client may not have', async () => {
    expectError(await ask('read delete'), 400, 'invalid_scope');
  });

  it.each(['read  write', ' read', 'read ', 'read\twrite', 'a"b', 'a\\b'])('refuses malformed scope %j', async (scope) => {
    expectError(await ask(scope), 400, 'invalid_scope');
  });

  it('defaults to every scope when default_scopes is absent, and omits scope when there is none', async () => {
    const weird = await tokenRequest(t.app, { client: WEIRD_ID, secret: WEIRD_SECRET });
    expect(weird.json().scope).toBe('x');
    const none = await tokenRequest(t.app, { client: 'svc-basic', secret: SECRET_B });
    expect(none.statusCode).toBe(200);
    expect(none.json()).not.toHaveProperty('scope');
    expect(decodeJwt(none.json().access_token)).not.toHaveProperty('scope');
  });
});

describe('POST /oauth2/token — resource and audience', () => {
  const auth = { authorization: basic('svc-a', SECRET_A) };
  const ask = (params: Record<string, string | string[]>) => token(form({ grant_type: 'client_credentials', ...params }), auth);

  it('sets aud to the one requested resource', async () => {
    const res = await ask({ resource: 'https://api.b.test' });
    expect(res.statusCode).toBe(200);
    expect(decodeJwt(res.json().access_token).aud).toBe('https://api.b.test');
  });

  it('accepts several resources (RFC 8707) as an aud array', async () => {
    const res = await ask({ resource: ['https://api.a.test', 'https://api.b.test'] });
    expect(res.statusCode).toBe(200);
    expect(decodeJwt(res.json().access_token).aud).toEqual(['https://api.a.test', 'https://api.b.test']);
  });

  it('accepts the audience parameter, which need not be a URI', async () => {
    const res = await ask({ audience: 'ledger' });
    expect(res.statusCode, res.body).toBe(200);
    expect(decodeJwt(res.json().access_token).aud).toBe('ledger');
  });

  it.each([
    ['an audience not allowed', { resource: 'https://evil.test' }],
    ['an audience parameter not allowed', { audience: 'https://evil.test' }],
    ['a relative resource', { resource: '/api' }],
    ['a resource with a fragment', { resource: 'https://api.a.test#x' }],
    ['a non-URI resource even if allowed as audience', { resource: 'ledger' }],
    ['one allowed and one not', { resource: ['https://api.a.test', 'https://evil.test'] }],
  ])('answers invalid_target for %s', async (_what, params) => {
    expectError(await ask(params), 400, 'invalid_target');
  });

  it('limits a client without audiences to tokens.audience', async () => {
    const post = (resource: string) => token(form({ grant_type: 'client_credentials', client_id: 'svc-post', client_secret: SECRET_B, resource }));
    expect((await post('https://default.test')).statusCode).toBe(200);
    expectError(await post('https://api.a.test'), 400, 'invalid_target');
  });
});

describe('logs', () => {
  it('record issued tokens and failures without any secret or token', async () => {
    const ok = await tokenRequest(t.app, { client: 'svc-a', secret: SECRET_A });
    await tokenRequest(t.app, { client: 'svc-a', secret: SECRET_B });
    await token(form({ grant_type: 'client_credentials', client_id: 'svc-post', client_secret: SECRET_A }));
    // A secret pasted into the client_id field is logged only as a fingerprint.
    const pasted = 'pasted-secret-0123456789abcdefghijklmnopq';
    await token(form({ grant_type: 'client_credentials', client_id: pasted, client_secret: 'x' }));
    expect(t.logs.events('client.auth_failed').at(-1)).toMatchObject({ reason: 'unknown_client', client_id_sha256: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(t.logs.text).not.toContain(pasted);
    // A secret sent by mistake in the query string must not be logged either.
    await t.app.inject({ method: 'GET', url: `/oauth2/token?client_secret=${SECRET_A}` });

    const accessToken = ok.json().access_token as string;
    const issued = t.logs.events('token.issued').find((e) => e.jti === decodeJwt(accessToken).jti);
    expect(issued).toMatchObject({ client_id: 'svc-a', scope: 'read', aud: 'https://api.a.test', ip: '127.0.0.1' });
    const failures = t.logs.events('client.auth_failed');
    expect(failures).toContainEqual(expect.objectContaining({ client_id: 'svc-a', reason: 'wrong_secret', ip: '127.0.0.1' }));
    expect(failures).toContainEqual(expect.objectContaining({ client_id: 'svc-post', reason: 'wrong_secret' }));

    for (const secret of [SECRET_A, SECRET_A2, SECRET_B, WEIRD_SECRET, accessToken, accessToken.split('.')[2]!]) {
      expect(t.logs.text).not.toContain(secret);
    }
    expect(decodeProtectedHeader(accessToken).kid).toBe(t.keys.signingKey().kid);
  });
});
