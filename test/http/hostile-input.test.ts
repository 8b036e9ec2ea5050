import { connect } from 'node:net';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { API, client, introspect, registryYaml, tokenRequest } from '../builders.js';
import { basic, buildTestApp, type TestApp } from '../helpers.js';

// Random and mutated requests at every endpoint: never a 5xx, never a crash, always an OAuth
// error body for a 4xx, and the server still answers correctly afterwards.

const SECRET = 'fuzz-secret-0123456789abcdefghijklmnopqr';
let t: TestApp;

beforeAll(async () => {
  t = await buildTestApp({
    clients: await registryYaml([client({ id: 'svc', secret: SECRET, scopes: ['read'], audiences: [API], introspect: true })]),
  });
});

const PATHS = ['/oauth2/token', '/oauth2/introspect', '/oauth2/revoke', '/.well-known/jwks.json', '/.well-known/oauth-authorization-server', '/healthz', '/readyz', '/metrics'];
const NAMES = ['grant_type', 'client_id', 'client_secret', 'scope', 'resource', 'audience', 'token', 'token_type_hint', '__proto__', 'constructor'];
const VALUES = ['client_credentials', 'svc', SECRET, 'read', 'https://api.test', '', 'refresh_token', 'a.b.c', '%', '%00', '\u0000', '😀', 'x'.repeat(9000)];

const text = fc.oneof(fc.constantFrom(...VALUES), fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }));
const body = fc.oneof(
  fc.array(fc.tuple(fc.oneof(fc.constantFrom(...NAMES), fc.string({ maxLength: 12 })), text), { maxLength: 8 }).map((pairs) =>
    pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&'),
  ),
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
);
const contentType = fc.option(
  fc.oneof(
    fc.constantFrom('application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=utf-8', 'application/json', 'text/plain', 'multipart/form-data'),
    fc.string({ maxLength: 30 }).filter((s) => /^[\x21-\x7e][\x20-\x7e]*$/.test(s)),
  ),
  { nil: undefined },
);
const authorization = fc.option(
  fc.oneof(
    fc.tuple(text, text).map(([id, secret]) => basic(id, secret)),
    fc.constant(basic('svc', SECRET)),
    fc.string({ maxLength: 60 }).map((s) => `Basic ${Buffer.from(s).toString('base64')}`),
    fc.string({ maxLength: 60 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
  ),
  { nil: undefined },
);
const request = fc.record({
  method: fc.constantFrom('GET', 'POST', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
  path: fc.oneof(fc.constantFrom(...PATHS), fc.string({ maxLength: 30 }).map((s) => `/${encodeURIComponent(s)}`)),
  query: fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
  contentType,
  authorization,
  body,
});

describe('hostile input', () => {
  it('never answers 5xx to random and mutated requests', async () => {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const headers: Record<string, string> = {};
        if (r.contentType !== undefined) headers['content-type'] = r.contentType;
        if (r.authorization !== undefined) headers.authorization = r.authorization;
        const url = r.query === undefined ? r.path : `${r.path}?${encodeURIComponent(r.query)}`;
        const res = await t.app.inject({ method: r.method as 'GET', url, headers, ...(r.method === 'GET' || r.method === 'HEAD' ? {} : { payload: r.body }) });
        expect(res.statusCode, `${r.method} ${url} -> ${res.body}`).toBeLessThan(500);
        if (res.statusCode >= 400 && r.method !== 'HEAD') {
          const parsed = JSON.parse(res.body) as { error?: unknown };
          expect(typeof parsed.error).toBe('string');
          expect(res.headers['cache-control']).toBe('no-store');
        }
      }),
      { numRuns: 400 },
    );
  });

  it('still answers correctly afterwards', async () => {
    const res = await tokenRequest(t.app, { client: 'svc', secret: SECRET });
    expect(res.statusCode).toBe(200);
    const intro = await introspect(t.app, res.json().access_token, { client: 'svc', secret: SECRET });
    expect(intro.json().active).toBe(true);
  });
});

describe('hostile input on a real socket', () => {
  async function raw(request: string | Buffer): Promise<string> {
    const address = await t.app.listen({ host: '127.0.0.1', port: 0 }).catch(() => `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`);
    const port = Number(new URL(address).port);
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let data = '';
      socket.on('data', (d) => (data += d.toString('latin1')));
      socket.on('end', () => resolve(data));
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
      socket.end(request);
    });
  }

  it.each([
    ['a malformed request line', 'GARBAGE\r\n\r\n', /^HTTP\/1\.1 400/],
    ['headers over the limit', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, /^HTTP\/1\.1 431/],
    ['a body shorter than its Content-Length', 'POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\nConnection: close\r\n\r\ngrant_type=client', /^(HTTP\/1\.1 4\d\d .*|)$/],
    ['a Content-Length over the body limit', 'POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 99999999\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 413/],
    ['two Content-Length headers', 'POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', /^HTTP\/1\.1 400/],
  ])('answers %s with a 4xx or closes, never a 5xx', async (_what, request, expected) => {
    const answer = await raw(request);
    expect(answer.split('\r\n')[0] ?? '').toMatch(expected);
    // The server is still there.
    const res = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
  });
});
