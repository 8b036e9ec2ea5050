import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/server/log.js';
import { API, client, registryYaml, tokenRequest } from '../builders.js';
import { basic, buildTestApp, LogCapture } from '../helpers.js';
import { rawRequest } from './raw-socket.js';

// At `trace`, Fastify's "client error" line carried the raw request bytes as a byte array that
// redaction could not see: Authorization headers, secrets, tokens. Here requests carrying
// credentials, well-formed and malformed, go to a real server at every level, and every field of
// every line written is decoded (byte arrays, base64, percent-encoding) and searched.

const SECRET = 'logsecret-0123456789abcdefghijklmnopqrstuv';
const WRONG = 'wrongsecret-0123456789abcdefghijklmnopqrst';
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

/** Every string in a parsed log line: keys, values, numbers, and byte arrays read as text. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (typeof value === 'number' || typeof value === 'boolean') return [String(value)];
  if (Array.isArray(value)) {
    const out = value.flatMap(strings);
    if (value.length > 0 && value.every((v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 255)) {
      out.push(Buffer.from(value as number[]).toString('latin1'));
    }
    return out;
  }
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => [k, ...strings(v)]);
  return [];
}

/** The text, and what it decodes to as percent-encoding and as base64(url), twice over. */
function decodings(text: string, depth = 0): string[] {
  const out = [text];
  if (depth >= 2) return out;
  try {
    const unescaped = decodeURIComponent(text.replace(/\+/g, ' '));
    if (unescaped !== text) out.push(...decodings(unescaped, depth + 1));
  } catch {
    // Not percent-encoding.
  }
  for (const piece of new Set(text.split(/[^A-Za-z0-9+/=_-]+/))) {
    if (piece.length < 8) continue;
    for (const encoding of ['base64', 'base64url'] as const) out.push(...decodings(Buffer.from(piece, encoding).toString('latin1'), depth + 1));
  }
  return out;
}

async function serverAt(level: (typeof LEVELS)[number]) {
  const logs = new LogCapture();
  const t = await buildTestApp({
    clients: await registryYaml([client({ id: 'svc', secret: SECRET, audiences: [API], introspect: true })]),
    deps: { logger: createLogger(level, logs), deadlines: { headersMs: 500, requestMs: 500, checkIntervalMs: 100 } },
  });
  const port = Number(new URL(await t.app.listen({ host: '127.0.0.1', port: 0 })).port);
  return { ...t, logs, port };
}

describe('no log line at any level holds a secret or a token', () => {
  it.each(LEVELS)('at %s', async (level) => {
    const t = await serverAt(level);
    const issued = await tokenRequest(t.app, { client: 'svc', secret: SECRET });
    expect(issued.statusCode).toBe(200);
    const token = issued.json().access_token as string;
    const auth = basic('svc', SECRET);
    const wrongAuth = basic('svc', WRONG);
    const post = (path: string, body: string, headers = `Authorization: ${auth}\r\n`) =>
      `POST ${path} HTTP/1.1\r\nHost: x\r\n${headers}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

    const requests = [
      // Well-formed, succeeding and failing.
      post('/oauth2/token', 'grant_type=client_credentials'),
      post('/oauth2/token', `grant_type=client_credentials&client_id=svc&client_secret=${WRONG}`, ''),
      post('/oauth2/token', 'grant_type=client_credentials', `Authorization: ${wrongAuth}\r\n`),
      post('/oauth2/introspect', `token=${token}`),
      post(`/oauth2/introspect?token=${token}&client_secret=${SECRET}`, `token=${token}`),
      post('/oauth2/revoke', `token=${token}`, `Authorization: ${wrongAuth}\r\n`),
      post('/oauth2/token', `grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=${token}`, ''),
      post('/oauth2/token', `client_secret=${SECRET}&client_secret=${SECRET}`, ''),
      post('/oauth2/token', `${'x'.repeat(17_000)}&client_secret=${SECRET}`),
      `POST /oauth2/token HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n{"client_secret":"${SECRET.slice(0, 10)}`,
      // Malformed: each reaches Node's clientError, Fastify's bad-URL path or a deadline.
      `FOO /oauth2/token?client_secret=${SECRET} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n\r\n`,
      `POST /oauth2/token HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\ntoken=${token}`,
      `POST /oauth2/introspect HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\ntoken=${token}\r\n`,
      `GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nX-Token: ${token}\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`,
      `GET /healthz HTTP/1.1\r\nAuthorization: ${auth}\r\n\r\n`,
      `GET /oauth2/%E0%A4%A?client_secret=${SECRET}&token=${token} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n\r\n`,
      `GET /oauth2/token HTTP/1.1 ${SECRET}\r\nHost: x\r\n\r\n`,
      `POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\nAuthorization: ${auth}\r\n\r\nab`,
      `POST /oauth2/token HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\nclient_secret=${SECRET}&token=${token}`,
      `GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nX-Unfinished: ${token}`,
    ];
    const answers = await Promise.all(requests.map((r) => rawRequest(t.port, r)));
    for (const answer of answers) expect(answer.status, answer.raw.slice(0, 200)).toBeGreaterThan(0);
    await t.app.close();

    const needles = [SECRET, WRONG, token, token.split('.')[2]!, auth.slice('Basic '.length), wrongAuth.slice('Basic '.length)];
    for (const line of t.logs.lines) {
      const found = strings(JSON.parse(line))
        .flatMap((s) => decodings(s))
        .flatMap((s) => needles.filter((n) => s.includes(n)));
      expect(found, line.slice(0, 300)).toEqual([]);
    }
    // Not vacuous: the malformed requests were logged wherever the level lets info through.
    if (level === 'trace' || level === 'debug' || level === 'info') {
      const details = t.logs.events('request.rejected').map((e) => e.detail);
      expect(details).toEqual(expect.arrayContaining(['HPE_INVALID_METHOD', 'HPE_HEADER_OVERFLOW', 'ERR_HTTP_REQUEST_TIMEOUT', 'FST_ERR_BAD_URL', 'no_host']));
    }
  });
});

describe('a parser error logged by accident', () => {
  it('loses its raw request bytes', () => {
    const logs = new LogCapture();
    const err = Object.assign(new Error('Parse Error: Invalid method encountered'), {
      code: 'HPE_INVALID_METHOD',
      rawPacket: Buffer.from(`FOO / HTTP/1.1\r\nAuthorization: ${basic('svc', SECRET)}\r\n\r\n`),
    });
    const logger = createLogger('trace', logs);
    logger.trace({ err }, 'client error');
    logger.trace(err);
    expect(logs.lines).toHaveLength(2);
    for (const line of logs.lines) {
      expect(strings(JSON.parse(line)).flatMap((s) => decodings(s)).some((s) => s.includes(SECRET))).toBe(false);
      expect(line).toContain('HPE_INVALID_METHOD');
    }
  });
});
