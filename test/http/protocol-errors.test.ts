import { beforeAll, describe, expect, it } from 'vitest';
import { API, client, registryYaml } from '../builders.js';
import { basic, buildTestApp, tempDir, type TestApp } from '../helpers.js';
import { makePki } from '../tls-fixtures.js';
import { rawRequest, type RawAnswer } from './raw-socket.js';

// What Node's HTTP parser refuses, requests that never arrive in full, and URLs the router
// cannot decode: each gets an OAuth error body with no-store, a log line and a count, on a real
// listening server spoken to over raw sockets.

const SECRET = 'proto-secret-0123456789abcdefghijklmnop';
const CLIENTS = () => registryYaml([client({ id: 'svc', secret: SECRET, audiences: [API] })]);

let t: TestApp;
let port: number;

beforeAll(async () => {
  // Short deadlines, so that a request that never completes is cut off within the test.
  t = await buildTestApp({ clients: await CLIENTS(), deps: { deadlines: { headersMs: 1000, requestMs: 1000, checkIntervalMs: 100 } } });
  port = Number(new URL(await t.app.listen({ host: '127.0.0.1', port: 0 })).port);
});

/** tollgate_http_requests_total summed over every endpoint but /metrics itself. */
async function requestsCounted(): Promise<number> {
  const text = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
  return text
    .split('\n')
    .filter((l) => l.startsWith('tollgate_http_requests_total{') && !l.includes('endpoint="/metrics"'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

function expectOAuthRefusal(answer: RawAnswer, status: number): void {
  expect(answer.status, answer.raw).toBe(status);
  expect(answer.headers['cache-control']).toBe('no-store');
  expect(answer.headers['content-type']).toMatch(/^application\/json/);
  const body = JSON.parse(answer.body) as Record<string, unknown>;
  expect(Object.keys(body).sort()).toEqual(['error', 'error_description']);
  expect(body.error).toBe('invalid_request');
  expect(typeof body.error_description).toBe('string');
}

const AUTH = basic('svc', SECRET);
const FORM_BODY = `grant_type=client_credentials&client_secret=${SECRET}`;

describe('HTTP-level errors', () => {
  it.each([
    ['an unknown method', `FOO /oauth2/token?client_secret=${SECRET} HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\n\r\n`, 400, /^HPE_/],
    [
      'Transfer-Encoding with Content-Length',
      `POST /oauth2/token HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`,
      400,
      /^HPE_/,
    ],
    [
      'a bad chunk',
      `POST /oauth2/token HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n${FORM_BODY}\r\n`,
      400,
      /^HPE_INVALID_CHUNK_SIZE$/,
    ],
    ['headers over 16 KiB', `GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`, 431, /^HPE_HEADER_OVERFLOW$/],
    ['a missing Host', `GET /healthz HTTP/1.1\r\nAuthorization: ${AUTH}\r\n\r\n`, 400, /^no_host$/],
    ['a bad URL', `GET /oauth2/%E0%A4%A?client_secret=${SECRET} HTTP/1.1\r\nHost: x\r\n\r\n`, 400, /^FST_ERR_BAD_URL$/],
    ['a bad URL at an endpoint path', `POST /oauth2/token%zz?client_secret=${SECRET} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`, 400, /^FST_ERR_BAD_URL$/],
  ])('answers %s with an OAuth error, no-store, no echo, a log line and a count', async (_what, request, status, detail) => {
    const counted = await requestsCounted();
    const logged = t.logs.lines.length;
    const answer = await rawRequest(port, request);
    expectOAuthRefusal(answer, status);
    // Nothing of the request comes back.
    expect(answer.body).not.toContain(SECRET);
    expect(answer.body).not.toMatch(/%E0|%zz|oauth2|healthz|FST_|HPE_/);
    const lines = t.logs.lines.slice(logged);
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toContainEqual(
      expect.objectContaining({ event: 'request.rejected', error: 'invalid_request', detail: expect.stringMatching(detail) }),
    );
    for (const line of lines) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toContain(AUTH.slice('Basic '.length));
    }
    expect(await requestsCounted()).toBe(counted + 1);
  });

  it('still serves afterwards', async () => {
    const answer = await rawRequest(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(answer.status).toBe(200);
  });
});

describe('request deadlines', () => {
  it('cuts off requests whose body never completes (408, counted)', async () => {
    const counted = await requestsCounted();
    const half = `POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\ngrant_type=client`;
    const answers = await Promise.all(Array.from({ length: 50 }, () => rawRequest(port, half)));
    for (const answer of answers) expectOAuthRefusal(answer, 408);
    expect(await requestsCounted()).toBe(counted + 50);
  });

  it('cuts off requests whose headers never complete (408)', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, () => rawRequest(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a')));
    for (const answer of answers) expectOAuthRefusal(answer, 408);
    expect(t.logs.events('request.rejected')).toContainEqual(expect.objectContaining({ detail: 'ERR_HTTP_REQUEST_TIMEOUT', status: 408 }));
  });

  it('gives the server the documented 10 s deadlines, checked every second, over HTTP and HTTPS', async () => {
    const plain = await buildTestApp({ clients: await CLIENTS() });
    const pki = makePki(tempDir());
    const tls = await buildTestApp({ clients: await CLIENTS(), deps: { tls: { cert: Buffer.from(pki.pem('server.pem')), key: Buffer.from(pki.pem('server.key')) } } });
    for (const { app } of [plain, tls]) {
      expect(app.server.headersTimeout).toBe(10_000);
      expect(app.server.requestTimeout).toBe(10_000);
      expect((app.server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval).toBe(1_000);
    }
  });
});
